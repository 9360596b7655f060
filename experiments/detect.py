"""Label-error detection report: every per-example scorer on the same data, one table.

  python -m experiments.detect --dataset=digits --meta_mode=clean --out=results/detection

runs each scorer's config (`experiments._runs.scorers()`: every registered
method that declares scores) on the same data and seed, at the budget of the
label_error_detection suite (`experiments._runs.DETECTION_BUDGET`: 600 steps
per scoring and retraining phase, DataRater 200 meta-steps; its other
settings are the config's), into
`<out>/<dataset>_<meta_mode>_seed<seed>/<scorer>/` (a finished run is reused,
an interrupted one resumes), and writes `table.md` and `table.csv` there:
AUROC, average precision and precision at the true corruption rate of each
scorer's `scores_train.npy` (higher = keep) against the ground-truth flag
over the SAME rows for every scorer (the training rows every scorer scored;
meta rows, which DataRater also scores, are left out; column `rows`), the
scorer's wall time and XLA-counted FLOPs (its own phases; the retraining arms
excluded), and the test accuracy of a model retrained on the kept data next to a uniform
model from the same initial parameters (paired). Scorers without their own
filtered-retraining phase are retrained by the `score_filter` method on their
score file. `--smoke` shrinks every run to a few steps (used by the tests).

Every flag, config and the data are checked before anything is written: bad
flags or input exit with status 2 and one line on stderr, as does a finished
scorer run written by an older version whose scores may have the other
direction (`score_higher_is_corrupted` in its summary.json: re-run it); a run
stopped by a non-finite value exits with status 3.
"""

from __future__ import annotations

import csv
import io
import os
import time

from absl import app, flags, logging

from experiments._runs import (define_compilation_cache_flag, detection_budget,
                               detection_population, fail, load_config, old_direction, override,
                               parse_flags, run_detection, run_one, scorers,
                               use_compilation_cache)

FILTERED = ('filtered', 'filtered_half')  # the filtered arms (_filter.AUTO_ARMS)
FILTER_PHASES = FILTERED + ('uniform',)


def budget(cfg_name: str, arg: str) -> dict:
  """The step overrides of configs/<cfg_name>.py: the label_error_detection suite's cpu budget
  (`_runs.DETECTION_BUDGET`), none with `smoke` in arg (the smoke preset's few steps)."""
  return {} if 'smoke' in arg.split(',') else detection_budget(cfg_name)


def scorer_config(name: str, arg: str, meta_mode: str, seed: int):
  """The ConfigDict of scorer `name` (a key of scorers()) on the report's data and seed, at the
  detection budget."""
  cfg_name, overrides = scorers()[name]
  return override(load_config(cfg_name, arg), {**budget(cfg_name, arg), 'data.meta_mode':
                                               meta_mode, 'seed': seed, **overrides})


def check_flags(dataset: str, meta_mode: str, seed: int, names: list, smoke: bool) -> str:
  """Checks every flag, every scorer's config and the data; writes nothing.

  Returns:
    The config arg of every run ('dataset=digits[,smoke]').

  Raises:
    ConfigError, DataError: one line naming the flag.
  """
  from datarater.data import DataError, load_dataset
  from datarater.errors import ConfigError
  from datarater.run import validate
  known = list(scorers())
  if not names:
    raise ConfigError(f'--scorers is empty; name one or more of {known}')
  unknown = [s for s in names if s not in known]
  if unknown:
    raise ConfigError(f'--scorers: unknown {unknown}; known: {known}')
  if seed < 0:
    raise ConfigError(f'--seed={seed} must be >= 0')
  arg = f'dataset={dataset}' + (',smoke' if smoke else '')
  try:
    configs = [scorer_config(name, arg, meta_mode, seed) for name in names]
    for config in configs:
      validate(config)
    load_dataset(configs[0].data, seed)  # the data every scorer trains on
  except ValueError as e:  # ConfigError, DataError, or a config arg the config files refuse
    error = DataError if isinstance(e, DataError) else ConfigError
    raise error(f'--dataset={dataset} --seed={seed}: {e}') from None
  return arg


def scorer_run(name: str, arg: str, meta_mode: str, seed: int, folder: str) -> tuple:
  """Runs one scorer (and its retraining).

  Returns:
    (config, workdir, summary, table row without the detection metrics).

  Raises:
    WorkdirError: the scorer's finished run was written by an older version
      whose scores_train.npy may have the other direction (re-run it).
  """
  from datarater.errors import WorkdirError
  config = scorer_config(name, arg, meta_mode, seed)
  base = {'data.meta_mode': meta_mode, 'seed': seed}
  workdir = os.path.join(folder, name.split(' ')[0])
  summary = run_one(config, workdir)
  stale = old_direction(workdir, summary)
  if stale:
    raise WorkdirError(stale)
  own = [p for p in summary['phases'] if p not in FILTER_PHASES]
  cost = {k: sum(summary['phases'][p]['ledger'][k] for p in own)
          for k in ('wall_seconds', 'flops')}
  if summary.get('result_phase') in FILTERED:
    retrained = summary
  else:
    retrain = override(load_config('score_filter', arg), {
        **base, **budget('score_filter', arg),
        'method.scores_path': os.path.join(workdir, 'scores_train.npy')})
    retrained = run_one(retrain, workdir + '_retrain')
  return config, workdir, summary, {
      'wall_seconds': cost['wall_seconds'], 'gflops': cost['flops'] / 1e9,
      'filtered_test_accuracy': retrained['test_accuracy'],
      'uniform_test_accuracy': retrained['phases']['uniform']['test_accuracy']}


def detection_rows(names: list, runs: list) -> list:
  """The table rows: each scorer's detection metrics over the SAME rows for every scorer.

  Args:
    names: the scorers, in table order.
    runs: scorer_run's output for each.

  Returns:
    [{'scorer', 'auroc', 'average_precision', 'precision_at_rate', 'rows', ...}]: metrics over
    the training rows every scorer scored (`experiments._runs.detection_population`: a
    scorer that values a subset of them is measured on its subset; the meta split, which
    DataRater also scores, is left out), 'rows' their number.
  """
  workdirs = {name: workdir for name, (_, workdir, _, _) in zip(names, runs)}
  return [{'scorer': name, **run_detection(config, workdir, summary,
                                           detection_population(workdirs, name)), **extra}
          for name, (config, workdir, summary, extra) in zip(names, runs)]


def fmt(v, digits=3) -> str:
  return '' if v is None else (f'{v:.{digits}f}' if isinstance(v, float) else str(v))


def write_table(rows: list, folder: str, title: str) -> str:
  """Writes table.csv and table.md (each atomically) into `folder`; returns the markdown."""
  from datarater.train.rundir import write_atomic
  cols = list(rows[0])
  csv_text = io.StringIO(newline='')
  w = csv.DictWriter(csv_text, cols)
  w.writeheader()
  w.writerows(rows)
  write_atomic(os.path.join(folder, 'table.csv'), [csv_text.getvalue()])
  lines = [f'# {title}', '', '| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
  lines += ['| ' + ' | '.join(fmt(r[c], 1 if c == 'wall_seconds' else 3)
                              for c in cols) + ' |' for r in rows]
  text = '\n'.join(lines) + '\n'
  write_atomic(os.path.join(folder, 'table.md'), [text])
  return text


def define_flags():
  """Defines the flags (only when run as a script, so tests can import this module)."""
  flags.DEFINE_string('dataset', 'digits', 'Dataset preset (digits, tabular, ...).')
  flags.DEFINE_enum('meta_mode', 'clean', ['clean', 'noisy'], 'Meta split mode.')
  flags.DEFINE_integer('seed', 0, 'Seed of data, initialisation and order (all scorers).')
  flags.DEFINE_string('out', 'results/detection', 'Output folder.')
  flags.DEFINE_list('scorers', list(scorers()),
                    'Scorers to run (default: every method that declares scores).')
  flags.DEFINE_bool('smoke', False, 'A few steps per run (tests).')
  define_compilation_cache_flag()


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # keep library INFO logs off the progress lines
  from datarater.errors import ConfigError, DataError, Diverged, WorkdirError
  out = flags.FLAGS.out
  if os.path.exists(out) and not os.path.isdir(out):
    fail(2, f'--out={out} is a file, not a folder')
  try:
    arg = check_flags(flags.FLAGS.dataset, flags.FLAGS.meta_mode, flags.FLAGS.seed,
                      flags.FLAGS.scorers, flags.FLAGS.smoke)
  except (ConfigError, DataError) as e:
    fail(2, e)
  folder = os.path.join(
      out, f'{flags.FLAGS.dataset}_{flags.FLAGS.meta_mode}_seed{flags.FLAGS.seed}')
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    fail(2, f'--out={out}: cannot create {folder} ({e.strerror or e})')
  use_compilation_cache(flags.FLAGS.compilation_cache)
  runs, t0 = [], time.time()
  for i, name in enumerate(flags.FLAGS.scorers):
    print(f'[detect] {i + 1}/{len(flags.FLAGS.scorers)} {name}', flush=True)
    try:
      runs.append(scorer_run(name, arg, flags.FLAGS.meta_mode, flags.FLAGS.seed, folder))
    except (ConfigError, DataError, WorkdirError) as e:
      fail(2, e)
    except Diverged as e:
      fail(3, f'diverged: {e}')
  rows = detection_rows(flags.FLAGS.scorers, runs)
  title = (f'Label-error detection: {flags.FLAGS.dataset}, {flags.FLAGS.meta_mode} meta, seed '
           f'{flags.FLAGS.seed} ({time.time() - t0:.0f} s). Population of every scorer\'s '
           f'metrics: the same {rows[0]["rows"]} training rows, those every scorer scored '
           '(meta rows left out)')
  print(write_table(rows, folder, title), flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=parse_flags)
