"""Timing, compiling and comparing helpers shared by every section of the benchmark.

Every timing is the median of `repeats` blocks of calls of a compiled program,
after compilation and one warm-up call, in blocks that alternate with the plain
program it is compared with (load from other processes then hits both alike).
Memory is XLA's static buffer assignment of the compiled program
(`compiled.memory_analysis()`, `temp_size_in_bytes`: what the backward pass
keeps alive).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Optional, Tuple

import jax
import numpy as np


def _timed_block(fn: Callable[[], Any], calls: int) -> float:
  t0 = time.perf_counter()
  for _ in range(calls):
    out = fn()
  jax.block_until_ready(out)
  return (time.perf_counter() - t0) / calls


def paired_times(fn: Callable[[], Any], plain: Callable[[], Any], repeats: int,
                 block_s: float = 0.05) -> Tuple[float, float]:
  """Median seconds per call of `fn` and of `plain`, timed in alternating blocks.

  Each block makes as many calls as fill about `block_s` seconds (at least
  one), so that dispatch latency and short load spikes weigh alike on both.

  Args:
    fn, plain: zero-argument calls of compiled programs (already compiled).
    repeats: blocks of each.
    block_s: target duration of one block.

  Returns:
    (median seconds per call of fn, median seconds per call of plain).
  """
  calls = [max(1, int(block_s / min(_timed_block(f, 1) for _ in range(3)))) for f in (fn, plain)]
  a, b = [], []
  for _ in range(repeats):
    a.append(_timed_block(fn, calls[0]))
    b.append(_timed_block(plain, calls[1]))
  return statistics.median(a), statistics.median(b)


def compile_timed(fn: Callable, *args) -> Tuple[Any, float]:
  """(jax.jit(fn) lowered and compiled for `args`, seconds the compilation took)."""
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - t0


def temp_bytes(compiled) -> Optional[int]:
  """XLA's temp buffer bytes of a compiled program (None where the backend does not say)."""
  stats = compiled.memory_analysis()
  return None if stats is None else int(stats.temp_size_in_bytes)


def max_abs_diff(a, b) -> float:
  """Largest absolute difference between matching leaves of two pytrees (in float64)."""
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def max_abs(tree) -> float:
  """Largest absolute value over the leaves of a pytree (in float64)."""
  return max(float(np.max(np.abs(np.asarray(x, np.float64)))) for x in jax.tree.leaves(tree))
