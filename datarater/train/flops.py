"""FLOPs of a compiled program, counting every iteration of its loops.

XLA's cost analysis (`compiled.cost_analysis()`) counts the body of a `while`
loop once, whatever its trip count, so a rolled `lax.scan` of T steps reports
the FLOPs of one step. `compiled_flops` corrects that: it reads the optimized
HLO (`compiled.as_text()`), finds each `while` instruction and the trip count
XLA annotated on it (`known_trip_count`, present for `scan` and `fori_loop`
with static bounds), has XLA cost the loop body as a module of its own, and
adds the missing (trip count - 1) copies, recursively for nested loops:

  F(c) = X(c) + sum over loops w directly in c of [n_w F(body_w) - X(body_w)]

where X is XLA's count (every loop body once) and F the full count. A loop
whose trip count XLA cannot know (a `while_loop` that stops on a tolerance,
such as `jax.scipy.sparse.linalg.cg`) is counted once, as XLA does;
`while_loops` lists each loop with its trip count (None when unknown).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Dict, List, Optional, Tuple

from jax._src.lib import _jax
from jax._src.lib import hlo

_HEADER = re.compile(r'^(ENTRY )?%(\S+) .*\{$')
_WHILE = re.compile(r'= .*? while\(.*?body=%([\w.\-]+)')
_BACKEND = re.compile(r'backend_config=(\{.*\})\s*$')


def _computations(text: str) -> Tuple[Dict[str, List[str]], str]:
  """{name: lines (header first)} of an HLO module's text, and the entry's name."""
  comps, entry, name = {}, None, None
  for line in re.sub(r',? stack_frame_id=\d+', '', text).splitlines():
    header = _HEADER.match(line)
    if header:
      name = header.group(2)
      comps[name] = [line]
      if header.group(1):
        entry = name
    elif name is not None:
      comps[name].append(line)
      if line == '}':
        name = None
  return comps, entry


def _loops(lines: List[str]) -> List[Tuple[str, Optional[int]]]:
  """(body computation, trip count or None) of each `while` in these lines."""
  out = []
  for line in lines:
    match = _WHILE.search(line)
    if not match:
      continue
    trips = None
    config = _BACKEND.search(line)
    if config:
      known = json.loads(config.group(1)).get('known_trip_count')
      trips = int(known['n']) if known else None
    out.append((match.group(1), trips))
  return out


def _xla_flops(client, comps: Dict[str, List[str]], entry: str) -> float:
  """XLA's cost analysis of the module whose entry computation is `entry`."""
  body = []
  for name, lines in comps.items():
    header = lines[0].removeprefix('ENTRY ')
    body.append('\n'.join([('ENTRY ' if name == entry else '') + header] + lines[1:]))
  module = hlo.hlo_module_from_text('HloModule flops\n\n' + '\n\n'.join(body))
  return float(_jax.hlo_module_cost_analysis(client, module).get('flops', 0.0))


def while_loops(compiled) -> List[Tuple[str, Optional[int]]]:
  """Every `while` loop of a compiled program: (body name, trip count or None).

  Args:
    compiled: a `jax.stages.Compiled` (`jax.jit(f).lower(...).compile()`).

  Returns:
    One (body computation name, known trip count or None) per loop, nested
    loops included.
  """
  comps, _ = _computations(compiled.as_text())
  return [loop for lines in comps.values() for loop in _loops(lines)]


def compiled_flops(compiled) -> float:
  """FLOPs of one call of a compiled program, every loop iteration counted.

  Per device: for an SPMD program over D devices multiply by D for the total.

  Args:
    compiled: a `jax.stages.Compiled` (`jax.jit(f).lower(...).compile()`).

  Returns:
    XLA's cost-analysis FLOPs with each `while` body scaled by its known trip
    count (loops of unknown trip count counted once).
  """
  comps, entry = _computations(compiled.as_text())
  client = compiled.runtime_executable().client
  xla = functools.lru_cache(maxsize=None)(lambda name: _xla_flops(client, comps, name))

  @functools.lru_cache(maxsize=None)
  def full(name: str) -> float:
    extra = sum(((trips or 1) * full(body) - xla(body)) for body, trips in _loops(comps[name]))
    return xla(name) + extra

  return full(entry)
