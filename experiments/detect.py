"""Label-error detection report: every per-example scorer on the same data, one table.

  python -m experiments.detect --dataset=digits --meta_mode=clean --out=results/detection

runs each scorer's config (`SCORERS`) on the same data and seed, into
`<out>/<dataset>_<meta_mode>_seed<seed>/<scorer>/` (a finished run is reused,
an interrupted one resumes), and writes `table.md` and `table.csv` there:
AUROC, average precision and precision at the true corruption rate of each
scorer's `scores_train.npy` against the ground-truth flag (over the rows it
scored), the scorer's wall
time and XLA-counted FLOPs (its own phases; the retraining arms excluded), and
the test accuracy of a model retrained on the kept data next to a uniform
model from the same initial parameters (paired). Scorers without their own
filtered-retraining phase are retrained by the `score_filter` method on their
score file. `--smoke` shrinks every run to a few steps (used by the tests).
"""

from __future__ import annotations

import csv
import os
import sys
import time

from absl import app, flags, logging

from experiments._runs import SCORERS, load_config, override, run_detection, run_one

FILTER_PHASES = ('filtered', 'uniform')


def scorer_row(name: str, arg: str, meta_mode: str, seed: int, folder: str) -> dict:
  """Runs one scorer (and its retraining) and returns its table row."""
  cfg_name, overrides = SCORERS[name]
  base = {'data.meta_mode': meta_mode, 'seed': seed}
  config = override(load_config(cfg_name, arg), {**base, **overrides})
  workdir = os.path.join(folder, name.split(' ')[0])
  summary = run_one(config, workdir)
  higher = bool(summary['score_higher_is_corrupted'])
  own = [p for p in summary['phases'] if p not in FILTER_PHASES]
  cost = {k: sum(summary['phases'][p]['ledger'][k] for p in own)
          for k in ('wall_seconds', 'flops')}
  if summary.get('result_phase') == 'filtered':
    retrained = summary
  else:
    retrain = override(load_config('score_filter', arg), {
        **base, 'method.scores_path': os.path.join(workdir, 'scores_train.npy'),
        'method.higher_is_better': not higher})
    retrained = run_one(retrain, workdir + '_retrain')
  return {'scorer': name, **run_detection(config, workdir, summary),
          'wall_seconds': cost['wall_seconds'], 'gflops': cost['flops'] / 1e9,
          'filtered_test_accuracy': retrained['test_accuracy'],
          'uniform_test_accuracy': retrained['phases']['uniform']['test_accuracy']}


def fmt(v, digits=3) -> str:
  return '' if v is None else (f'{v:.{digits}f}' if isinstance(v, float) else str(v))


def write_table(rows: list, folder: str, title: str) -> str:
  cols = list(rows[0])
  with open(os.path.join(folder, 'table.csv'), 'w', newline='') as f:
    w = csv.DictWriter(f, cols)
    w.writeheader()
    w.writerows(rows)
  lines = [f'# {title}', '', '| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
  lines += ['| ' + ' | '.join(fmt(r[c], 1 if c == 'wall_seconds' else 3)
                              for c in cols) + ' |' for r in rows]
  text = '\n'.join(lines) + '\n'
  with open(os.path.join(folder, 'table.md'), 'w') as f:
    f.write(text)
  return text


def define_flags():
  """Defines the flags (only when run as a script, so tests can import this module)."""
  flags.DEFINE_string('dataset', 'digits', 'Dataset preset (digits, tabular, ...).')
  flags.DEFINE_enum('meta_mode', 'clean', ['clean', 'noisy'], 'Meta split mode.')
  flags.DEFINE_integer('seed', 0, 'Seed of data, initialisation and order (all scorers).')
  flags.DEFINE_string('out', 'results/detection', 'Output folder.')
  flags.DEFINE_list('scorers', list(SCORERS), 'Scorers to run (names in SCORERS).')
  flags.DEFINE_bool('smoke', False, 'A few steps per run (tests).')


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # keep library INFO logs off the progress lines
  unknown = [s for s in flags.FLAGS.scorers if s not in SCORERS]
  if unknown:
    print(f'error: --scorers: unknown {unknown}; known: {list(SCORERS)}', file=sys.stderr)
    sys.exit(2)
  arg = f'dataset={flags.FLAGS.dataset}' + (',smoke' if flags.FLAGS.smoke else '')
  folder = os.path.join(flags.FLAGS.out, f'{flags.FLAGS.dataset}_{flags.FLAGS.meta_mode}_seed{flags.FLAGS.seed}')
  os.makedirs(folder, exist_ok=True)
  rows, t0 = [], time.time()
  for i, name in enumerate(flags.FLAGS.scorers):
    print(f'[detect] {i + 1}/{len(flags.FLAGS.scorers)} {name}', flush=True)
    rows.append(scorer_row(name, arg, flags.FLAGS.meta_mode, flags.FLAGS.seed, folder))
  title = (f'Label-error detection: {flags.FLAGS.dataset}, {flags.FLAGS.meta_mode} meta, seed {flags.FLAGS.seed}'
           f' ({time.time() - t0:.0f} s)')
  print(write_table(rows, folder, title), flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
