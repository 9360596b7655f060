"""Suite discard_auto: discard_fraction='auto' against fixed discard fractions.

The protocol issue's target for every filtering method's default: on clean data 'auto' loses
no accuracy against its paired uniform arm (the paired interval includes 0 or lies above it);
at 40% label noise it is within 2 points of the best fixed fraction. `extra` writes that
check below the table from the finished runs.
"""

from __future__ import annotations

import numpy as np

from experiments.reproduce.core import Metric, Run, Suite, read_summary, run_dir
from experiments.reproduce.stats import paired_interval
from experiments.reproduce.suites._common import (ACCURACY, FINAL_STEP, config_arg,
                                                  UNIFORM_ARM, meta_overrides, suite_methods)

FILTERS = ('DataRater', 'STORM filter', 'AUM filter')  # the filtering rows of noisy_labels
FRACTIONS = (0.1, 0.25, 0.5, 0.75)
RATES = (0, 40)
TOLERANCE = 2.0  # points of test accuracy 'auto' may trail the best fixed fraction at 40%


def _row(label, fraction):
  return f'{label}, auto' if fraction == 'auto' else f'{label}, discard {int(100 * fraction)}%'


def grid(scale):
  """The runs of this suite at `scale` (none at paper scale: a check of the cpu defaults)."""
  if scale == 'paper':
    return []
  methods = [m for m in suite_methods(lambda d: True) if m[0] in FILTERS]
  fractions = {'smoke': (0.5,), 'cpu': FRACTIONS}[scale] + ('auto',)
  base = {'smoke': {}, 'cpu': {'num_steps': 1000}}[scale]
  return [Run(f'digits symmetric {rate}%', _row(label, f), cfg, config_arg('digits', scale),
              {**base, 'data.corruption': 'label_symmetric', 'data.corruption_rates': (rate / 100,),
               'data.meta_mode': 'clean', **meta_overrides(cfg, scale), **variant,
               'method.discard_fraction': f},
              {'dataset': 'digits', 'rate': rate, 'filter': label, 'discard': f})
          for rate in ({'smoke': (40,), 'cpu': RATES}[scale]) for label, cfg, variant in methods
          for f in fractions]


def header(scale):
  grids = {'smoke': 'digits, symmetric 40%, 6 steps, discard 50% and auto',
           'cpu': 'digits, symmetric noise 0% and 40% (the noisy_labels data: MLP 256-256, '
                  '1000 steps of batch 64, Adam 1e-3, a clean meta split of 100 rows, a noisy '
                  'validation split of 10% of the pool; DataRater meta-trains 200 steps); '
                  'discard 10/25/50/75% and auto',
           'paper': 'none (this suite checks the cpu defaults)'}
  return (f'Grid: {grids[scale]}. Every run trains its filtered model(s) and a paired uniform '
          'arm (same initial parameters and data order); "uniform arm acc." is that arm, and '
          'the paired difference is against it. "auto" is the default: an estimated fraction '
          'of low-scored rows from the score distribution, two filtered arms (that fraction '
          'and half of it), and the arm with the best final validation accuracy among them and '
          'the uniform arm (no test data, no ground truth); "discard used %" is the fraction of '
          'the arm it chose (0: uniform). Information: DataRater uses the clean meta rows, '
          'STORM filter and AUM filter none. Below the table: the target check. ' + FINAL_STEP)


def _discard_used(s, w, c):
  return 100 * s['discard_fraction'] if 'discard_fraction' in s else None



def target_check(runs, seeds, folder) -> list:
  """Markdown lines: per (setting, filter), auto's mean accuracy against the best fixed
  fraction's (40%) or its paired interval against the uniform arm (0%), and the verdict
  (seeds: {setting: number of seeds}, as Suite.extra gets it)."""
  def accuracies(run):
    out = []
    for seed in range(seeds[run.setting]):
      try:
        s = read_summary(run_dir(folder, run, seed))
      except OSError:
        return None
      out.append((100 * s['test_accuracy'],
                  100 * s['phases'][s['baseline_phase']]['test_accuracy']))
    return np.array(out)

  lines = ['## Target check', '',
           '| setting | filter | auto acc. % | check | target met |', '|---|---|---|---|---|']
  for setting in dict.fromkeys(r.setting for r in runs):
    for label in dict.fromkeys(r.key['filter'] for r in runs if r.setting == setting):
      rows = {r.key['discard']: accuracies(r) for r in runs
              if r.setting == setting and r.key['filter'] == label}
      auto = rows.pop('auto')
      if auto is None or any(v is None for v in rows.values()):
        continue
      if next(r.key['rate'] for r in runs if r.setting == setting) == 0:
        mean, lo, hi = paired_interval(auto[:, 0], auto[:, 1])
        check = (f'paired diff vs uniform arm {mean:+.2f}' +
                 (f' [{lo:+.2f}, {hi:+.2f}]' if hi is not None else ''))
        met = hi >= 0 if hi is not None else mean >= 0
      else:
        best = max(rows, key=lambda f: rows[f][:, 0].mean())
        gap = auto[:, 0].mean() - rows[best][:, 0].mean()
        check = (f'best fixed: discard {int(100 * best)}% at {rows[best][:, 0].mean():.2f}; '
                 f'auto minus best {gap:+.2f}')
        met = gap >= -TOLERANCE
      lines.append(f'| {setting} | {label} | {auto[:, 0].mean():.2f} | {check} | '
                   f'{"yes" if met else "no"} |')
  return lines + ['', 'Targets: at 0% the paired interval of auto against its uniform arm '
                  'includes 0 or lies above it; at 40% auto is within '
                  f'{TOLERANCE:g} points of the best fixed fraction (mean over seeds).']


SUITE = Suite(grid, (ACCURACY, UNIFORM_ARM, Metric('discard used %', _discard_used)), header,
              extra=target_check, own_baseline={ACCURACY.name: UNIFORM_ARM.name})
