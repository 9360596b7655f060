"""The benchmark's targets (issues 11, 20 and 23) and their evaluation against a result.

Per-method step targets are `methods.method_target` (each method row carries
its own); the meta-gradient, memory, compile-time, FLOPs-count, time-to-result,
end-to-end and corpus-scoring memory (issue 20) targets are here. A section the result lacks has no targets.
"""

from __future__ import annotations

from typing import Any, Dict, List

from datarater.meta import unroll
from experiments.benchmark import time_to_result

META_TARGET = 2.5  # meta-step per inner step / plain step, best exact mode
MEMORY_TARGET = 3.0  # checkpointed temp memory, largest T / smallest T
COMPILE_TARGET = 2.0  # compile time, largest T / smallest T, worst exact mode
E2E_TARGET = 3.0  # L2RW npz job: torch.func process seconds / ours (warm cache)
WARM_TARGET = 1.5  # whole process / floor, warm compilation cache (time to result)
COLD_TARGET = 2.5  # ... empty compilation cache
HELP_TARGET = 1.5  # seconds of `python -m experiments.train --help`


def evaluate_targets(result: Dict[str, Any]) -> List[Dict[str, Any]]:
  """Every target with its measured figure: [{'name', 'figure', 'target', 'met'}]."""
  out = []

  def add(name, figure, target, met):
    out.append(dict(name=name, figure=figure, target=target, met=bool(met)))

  if 'modes' in result:
    _mode_targets(result, add)
  for r in result.get('methods', ()):
    if r['target'] is not None:
      add(f"{r['method']} step / plain step", f"{r['ratio']:.2f} (FLOPs {r['flops_ratio']:.2f})",
          f"<= {r['target']}", r['ratio'] <= r['target'])
  ttr = result.get('time_to_result')
  if ttr:
    for r in ttr['jobs']:
      if r['job'] in time_to_result.QUICK_JOBS:
        for run, target in (('warm', WARM_TARGET), ('cold', COLD_TARGET)):
          x = r[f'{run}_ratio']
          add(f"{r['job']}: whole process ({run} cache) / floor", f'{x:.2f}', f'<= {target}',
              x <= target)
    add('experiments.train --help, seconds', f"{ttr['help_s']:.2f}", f'<= {HELP_TARGET}',
        ttr['help_s'] <= HELP_TARGET)
    e2e = ttr.get('peer')
    if e2e:
      add('L2RW npz job, torch.func process / ours (warm cache; median of pairs)',
          f"{e2e['median_speedup']:.2f}", f'>= {E2E_TARGET}', e2e['median_speedup'] >= E2E_TARGET)
  c = result.get('corpus')
  if c:
    add('experiments.score peak RSS, 10x corpus / 1x (1 process)',
        f"{c['rss_ratio']:.2f} ({c['rss_large_mib']:.0f} / {c['rss_small_mib']:.0f} MiB)",
        f"<= {c['rss_target']}", c['rss_ratio'] <= c['rss_target'])
    if 'train_rows' in c:   # results from before the training rows have none
      small, large = (r['peak_rss_mib'] for r in c['train_rows'][:2])
      add("experiments.train (data.store='disk') peak RSS, 10x corpus / 1x",
          f"{c['train_rss_ratio']:.2f} ({large:.0f} / {small:.0f} MiB)", f"<= {c['rss_target']}",
          c['train_rss_ratio'] <= c['rss_target'])
  return out


def _mode_targets(result, add) -> None:
  """The meta-gradient, memory, compile-time, gradient-equality and FLOPs-count targets."""
  rows = result['modes']['rows']
  horizons = sorted({r['T'] for r in rows})
  lo, hi = (2, 32) if {2, 32} <= set(horizons) else (horizons[0], horizons[-1])
  at = lambda mode, t: next(r for r in rows if r['mode'] == mode and r['T'] == t)
  exact = [m for m in unroll.EXACT_MODES if any(r['mode'] == m for r in rows)]
  for t in [t for t in (2, 8, 32) if t in horizons] or horizons:
    best = min((at(m, t) for m in exact), key=lambda r: r['ratio_per_inner_step'])
    add(f'meta-step per inner step / plain step, T={t}, best exact mode',
        f"{best['ratio_per_inner_step']:.2f} ({best['mode']}; FLOPs "
        f"{best['flops_ratio_per_inner_step']:.2f})", f'<= {META_TARGET}',
        best['ratio_per_inner_step'] <= META_TARGET)
  if 'checkpointed' in exact:
    x = at('checkpointed', hi)['temp_bytes'] / at('checkpointed', lo)['temp_bytes']
    add(f'checkpointed temp memory T={hi} / T={lo}', f'{x:.2f}', f'<= {MEMORY_TARGET}',
        x <= MEMORY_TARGET)
  worst = max(exact, key=lambda m: at(m, hi)['compile_s'] / at(m, lo)['compile_s'])
  x = at(worst, hi)['compile_s'] / at(worst, lo)['compile_s']
  add(f'compile time T={hi} / T={lo}, worst exact mode', f'{x:.2f} ({worst})',
      f'<= {COMPILE_TARGET}', x <= COMPILE_TARGET)
  for m in exact:
    r = max((at(m, t) for t in horizons),
            key=lambda r: r['grad_max_abs_diff_vs_reverse'] / max(r['grad_max_abs_reverse'], 1e-30))
    rel = r['grad_max_abs_diff_vs_reverse'] / max(r['grad_max_abs_reverse'], 1e-30)
    add(f'{m} meta-gradient equals reverse (max rel diff, all T)', f'{rel:.1e}', '<= 1e-4',
        rel <= 1e-4)
  fc = result['flops_check']
  x = fc['rolled'] / fc['unrolled']
  add(f"FLOPs of the rolled T={fc['T']} unroll / XLA's count of the unrolled one", f'{x:.4f}',
      '1 +- 0.03', abs(x - 1) <= 0.03)


def format_targets(targets: List[Dict[str, Any]]) -> str:
  """One line per target: status, name, figure and requirement (what the CLI prints)."""
  return '\n'.join(f"{'met    ' if t['met'] else 'NOT MET'}  {t['name']}: {t['figure']} "
                   f"(target {t['target']})" for t in targets)
