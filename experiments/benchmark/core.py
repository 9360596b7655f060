"""`run_benchmark`: every section in order, the machine it ran on, and the targets met.

The PyTorch peers run only when asked for (`peers=True`, the CLI's --peers):
only then is `torch_peer` (and so torch) imported. Whether torch is installed
and its version are read from the package metadata, without importing it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
from typing import Any, Callable, Dict, Optional

import jax

from datarater.meta import unroll
from experiments.benchmark import corpus, methods, modes, targets, time_to_result

PEERS_SKIPPED = ('PyTorch peers not asked for (--peers; they need pip install -r '
                 'requirements-bench.txt): peers skipped.')


def torch_installed() -> bool:
  """Whether torch can be imported (found on the path; not imported)."""
  return importlib.util.find_spec('torch') is not None


def _torch_version() -> Optional[str]:
  try:
    return importlib.metadata.version('torch')
  except importlib.metadata.PackageNotFoundError:
    return None


def machine() -> Dict[str, Any]:
  """The platform, Python, JAX, device, CPU count, torch version, XLA flags and load average."""
  device = jax.devices()[0]
  return dict(platform=platform.platform(), python=platform.python_version(),
              machine=platform.machine(), cpu_count=os.cpu_count(), jax=jax.__version__,
              device=f'{device.platform}:{device.device_kind}', num_devices=jax.device_count(),
              torch=_torch_version(), xla_flags=os.environ.get('XLA_FLAGS', ''),
              load_average=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None)


SECTIONS = ('modes', 'methods', 'scoring', 'time_to_result', 'corpus')
# What --quick runs by default: 'corpus' (minutes: a 100 MB corpus scored three times) is not.
QUICK_SECTIONS = tuple(s for s in SECTIONS if s != 'corpus')
# The result's fields each section writes ('peers' goes with 'modes': its step peer).
SECTION_FIELDS = {'modes': ('modes', 'flops_check', 'peers'), 'methods': ('methods',),
                  'scoring': ('scoring',), 'time_to_result': ('time_to_result',),
                  'corpus': ('corpus',)}


def default_sections(quick: bool) -> tuple:
  """The sections run when none are named: QUICK_SECTIONS with --quick, else SECTIONS."""
  return QUICK_SECTIONS if quick else SECTIONS


def run_benchmark(quick: bool = False, log: Callable[[str], None] = lambda _: None,
                  notes: str = '', peers: bool = False, sections=None,
                  previous: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
  """Runs the chosen sections (see the package docstring).

  Args:
    quick: tiny sizes, T in (2, 5) (5: two checkpointed segments), one repeat,
      smoke-sized time-to-result jobs without the DataRater one.
    log: progress callback.
    notes: markdown explaining missed targets, copied into the result.
    peers: also run the PyTorch peers (needs torch: requirements-bench.txt);
      otherwise torch is never imported and the peers section says so.
    sections: the sections to run (of SECTIONS; default_sections(quick) when None). With
      quick, 'corpus' runs at small sizes (a 2 MB corpus and a 20 MB one).
    previous: an earlier result (benchmark.json): the sections not run are
      taken from it, with its machine under `kept[<section>]`.

  Returns:
    JSON-serialisable dict: machine, quick, repeats, sections, kept, the
    sections' fields (SECTION_FIELDS), targets, notes.
  """
  repeats = 1 if quick else 9
  sections = tuple(default_sections(quick) if sections is None else sections)
  result = dict(machine=machine(), quick=quick, repeats=repeats, sections=list(sections),
                peers_run=bool(peers), kept={})
  if 'modes' in sections or 'scoring' in sections:
    horizons = (2, 5) if quick else (1, 2, 4, 8, 16, 32)
    layers = (8, 16, 3) if quick else (64, 256, 256, 10)
    batch = 8 if quick else 128
    prob = modes.make_problem(layers, (4,) if quick else (64,), batch, batch, max(horizons),
                              1e-3, 0)
  if 'modes' in sections:
    result['modes'] = modes.bench_modes(prob, horizons, unroll.MODES, repeats, log)
    result['flops_check'] = modes.flops_check(prob, min(8, max(horizons)))
    if not peers:
      result['peers'] = dict(skipped=PEERS_SKIPPED)
    else:
      from experiments.benchmark import torch_peer  # imports torch
      result['peers'] = dict(step=torch_peer.bench_peer_step((16,) if quick else (256, 1024),
                                                             8 if quick else 128, repeats))
  if 'methods' in sections:
    names = methods.QUICK_METHODS if quick else methods.timed_methods()
    result['methods'] = methods.bench_methods(names, quick, 16 if quick else 128, repeats, log)
  if 'scoring' in sections:
    result['scoring'] = modes.bench_scoring(prob, 256 if quick else 8192, repeats)
  if 'time_to_result' in sections:
    result['time_to_result'] = time_to_result.bench_time_to_result(
        quick, 1 if quick else 3, log, peers=peers and not quick)
  if 'corpus' in sections:
    result['corpus'] = corpus.bench_corpus(small_mb=2.0 if quick else 12.0, log=log)
  for section in SECTIONS:
    if section not in sections and previous and all(f in previous
                                                    for f in SECTION_FIELDS[section]):
      result.update({f: previous[f] for f in SECTION_FIELDS[section]})
      result['kept'][section] = previous.get('kept', {}).get(section) or previous['machine']
  result['targets'] = targets.evaluate_targets(result)
  result['notes'] = notes
  return result
