"""The training input pipeline on grain: dispatch -> global indices -> this process's rows.

Every process runs the same pipeline: the global batch of step t is a pure
function of (seed, t) (datarater.data.sampler), or of (t, method state) for a
method that samples its own batches; each process gathers only its rows of
it. The training loop runs its steps in dispatches of n steps (one jitted
program each); grain's `MapDataset.range(len(spans)).map(...)` yields the
stacked batches of dispatch i at index i and prefetches them on a background
thread, one grain element per dispatch (per step, the iterator's hand-off
cost more than gathering the rows: 2,000 digits steps took 0.13 s through
grain against 0.035 s gathered directly). The data position a checkpoint
records is the step (`position`); a resumed phase builds its spans from it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import numpy as np


def dispatch_batches(make_batch: Callable[[int], dict], spans: Sequence[tuple[int, int]],
                     prefetch: int = 2):
  """A grain iterator over the host batches of each dispatch (step, n) in `spans`.

  Args:
    make_batch: step -> host batch (pytree of numpy arrays).
    spans: (first step, steps) of each dispatch, in order.
    prefetch: dispatches computed ahead on a background thread.

  Returns:
    An iterator of host batches: make_batch(step) for n == 1, else the n
    steps' batches stacked along a new leading axis.
  """
  import grain.python as grain  # here, not at the top: `--help` and the configs need no grain

  def stacked(i):
    step, n = spans[i]
    host = [make_batch(s) for s in range(step, step + n)]
    return host[0] if n == 1 else jax.tree.map(lambda *xs: np.stack(xs), *host)

  dataset = grain.MapDataset.range(len(spans)).map(stacked)
  return iter(dataset.to_iter_dataset(
      grain.ReadOptions(num_threads=1, prefetch_buffer_size=prefetch)))


def position(step: int) -> dict:
  """The data position a checkpoint records at `step`."""
  return {'next_index': int(step)}
