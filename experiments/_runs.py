"""Helpers shared by the experiment scripts: configs by name, resumable runs, detection metrics."""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import sys
from typing import Callable

import numpy as np
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Methods that write scores but are left out of the label-error detection report (and of the
# label_error_detection suite): their scores are the latest training loss under a loss rule,
# which the kl_dro and small_loss rows already report, and the committed tables were made
# without them. Any other method that declares scores is in the report (datarater.run).
NOT_DETECTED = ('chi2_dro', 'cvar', 'infobatch', 'loss_reweight')
# Overrides that only add a filtered retraining after the scoring: a variant made of these
# alone ('storm_filter') writes the same scores as its method and is not a scorer of its own.
RETRAIN_ONLY = frozenset({'method.filter', 'method.discard_fraction', 'method.filter_mode'})


# Scorers that value a random subset of the training rows (TMC-Shapley's method.max_rows: its
# cost grows with permutations x rows). The other scorers' detection population leaves them
# out, so it stays every training row; theirs is the rows of it they valued (column "rows").
SUBSET_SCORERS = ('tmc_shapley',)


# One budget for the label-error detection report (experiments.detect) and the
# label_error_detection suite at cpu scale: the steps of every scoring (and retraining) phase,
# and DataRater's meta-steps, so the two report the same numbers.
DETECTION_BUDGET = {'num_steps': 600, 'method.meta_steps': 200}


# EL2N / GraNd score after this many of the budget's 600 steps (25%), as the committed
# label_error_detection rows ran; configs/el2n.py's own default is num_steps // 10 (60 here).
DETECTION_SCORE_STEPS = 150


def detection_budget(config_name: str, budget: dict = DETECTION_BUDGET) -> dict:
  """`budget`'s overrides that apply to configs/<config_name>.py (meta-steps: DataRater's), and
  for EL2N / GraNd the steps before scoring (DETECTION_SCORE_STEPS) at the cpu budget."""
  out = {k: v for k, v in budget.items() if k != 'method.meta_steps' or config_name == 'datarater'}
  if config_name == 'el2n' and budget is DETECTION_BUDGET:
    out['method.score_steps'] = DETECTION_SCORE_STEPS
  return out


def scorers() -> dict:
  """The label-error detection report's scorers, from the method registry.

  Every registered method that declares `scores` (datarater.run.methods_with),
  except NOT_DETECTED, in table order; a method with variants (EL2N's 'grand')
  is one scorer per variant (but for variants that only add a retraining,
  RETRAIN_ONLY), and latest-loss scores are named '<method> (latest loss)'.

  Returns:
    {scorer name: (config file in configs/, overrides)}.
  """
  from datarater.run import declaration, methods_with
  out = {}
  for name in methods_with(scores=True):
    if name in NOT_DETECTED:
      continue
    declared = declaration(name)
    suffix = ' (latest loss)' if declared.loss_scores else ''
    for variant, overrides in (declared.variants or {name: {}}).items():
      if overrides and set(overrides) <= RETRAIN_ONLY:
        continue
      out[variant + suffix] = (name, dict(overrides))
  return out


def finish() -> None:
  """Ends a finished entry point at once, without the interpreter's teardown.

  Called when every output is closed (checkpoints waited for, TensorBoard
  closed, summary.json written). The atexit handlers still run (absl, orbax,
  jax.distributed's shutdown); what is skipped is freeing every object of jax,
  grain, orbax and matplotlib one by one at interpreter exit, which took 0.4 s
  of a 4.4 s uniform digits run and writes nothing. Under a profiler or tracer
  (`python -m cProfile`, coverage) the process exits normally, so it can write
  its report.
  """
  if sys.getprofile() is not None or sys.gettrace() is not None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  atexit._run_exitfuncs()  # noqa: SLF001 - what a normal exit runs first
  os._exit(0)


def out_problem(out: str, suffix: str = '', note: str = '') -> str | None:
  """Why the file --out cannot be written as given (None: it can): not ending in `suffix`
  (`note` says why it must), a directory, in no directory, or in one not writable."""
  if suffix and not out.endswith(suffix):
    return f'--out={out} must end with {suffix}{note}'
  if os.path.isdir(out):
    return f'--out={out} is a directory'
  folder = os.path.dirname(out) or '.'
  if not os.path.isdir(folder):
    return f'--out={out}: no directory {folder}'
  if not os.access(folder, os.W_OK):
    return f'--out={out}: directory {folder} is not writable'
  return None


def fail(status: int, message) -> None:
  """Prints `error: <message>` as one line on stderr and exits with `status` (entry points)."""
  print('error: ' + ' '.join(str(message).split()), file=sys.stderr, flush=True)
  sys.exit(status)


# The persistent compilation cache: runs whose programs have the same shapes (another seed,
# data set of the same size, rates) load compiled programs instead of compiling them again
# (same numbers). It has no size limit (JAX's limit needs every writer of the folder to keep
# access times, which older versions of this project did not): delete the folder to empty it.


def default_cache_dir() -> str:
  """$XDG_CACHE_HOME/datarater/jax (default ~/.cache/datarater/jax)."""
  return os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
                      'datarater', 'jax')


def define_compilation_cache_flag():
  """The --compilation_cache flag of the entry points that train."""
  return flags.DEFINE_string(
      'compilation_cache', default_cache_dir(),
      'JAX persistent compilation cache directory: a run whose programs another run already '
      'compiled (same shapes: another seed, rates or data of the same size) loads them instead '
      'of compiling (same numbers; no size limit: delete the folder to empty it). "" = off.')


def use_compilation_cache(path: str) -> None:
  """Turns on JAX's persistent compilation cache in `path` for every program ('' = off).

  Exits with status 2 and one line when the directory cannot be created.
  """
  if not path:
    return
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    fail(2, f'--compilation_cache={path}: cannot create it ({e.strerror or e}); "" turns the '
         'cache off')
  import jax
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def parse_flags(argv: list, describe: Callable[[BaseException], str] = str,
                check: Callable[[], object] | None = None) -> list:
  """absl flag parsing where every error is one line and exit status 2.

  Pass it to `app.run(main, flags_parser=parse_flags)`; bind the keyword
  arguments with functools.partial.

  Args:
    argv: the command line (argv[0] is the program).
    describe: the one-line message of a parsing error (default: the error's
      text, e.g. "flag --keep=half: could not convert string to float: 'half'").
    check: called after parsing; what it raises is a flag error too (e.g.
      reading a config-file flag's value, which loads the file).

  Returns:
    The remaining arguments (argv[0] alone: any other argument is an error).
  """
  try:
    argv = flags.FLAGS(argv)
    if check is not None:
      check()
  except Exception as e:  # noqa: BLE001 - flag parsers and config files raise any type
    fail(2, describe(e))
  if len(argv) > 1:
    fail(2, f'unexpected arguments: {argv[1:]}')
  return argv


def read_json(path: str):
  """The parsed JSON file at `path`, or None if it is missing or unreadable (cut short)."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def load_config(name: str, arg: str):
  """`configs/<name>.py`'s get_config(arg).

  Args:
    name: config file path under configs/, without '.py' (e.g. 'mwn', 'paper/mwn').
    arg: the config arg ('dataset=digits,smoke').

  Returns:
    The ConfigDict.
  """
  path = os.path.join(ROOT, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'configs_{name.replace("/", "_")}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def override(config, overrides: dict):
  """Sets dotted fields ('data.meta_mode': 'noisy') of `config` in place.

  Args:
    config: a ConfigDict.
    overrides: {dotted field: value}.

  Returns:
    `config`.
  """
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def run_one(config, workdir: str) -> dict:
  """train_and_evaluate, or the summary of a run that already finished.

  A run has finished when its summary.json parses (train_and_evaluate writes
  it last, after every plot and score file); one cut short by a kill is not,
  and the run resumes from its last checkpoint.

  Args:
    config: the run's ConfigDict.
    workdir: its run directory.

  Returns:
    The run's summary dict.
  """
  from datarater.run import train_and_evaluate
  summary = read_json(os.path.join(workdir, 'summary.json'))
  return train_and_evaluate(config, workdir) if summary is None else summary


# summary.json key of runs written before scores_train.npy had one direction: True when that
# file held "higher = corrupted" scores (losses, EL2N, forgetting counts).
OLD_DIRECTION_KEY = 'score_higher_is_corrupted'


def old_direction(workdir: str, summary: dict) -> str | None:
  """Why a run's scores_train.npy cannot be read as "higher = keep", or None if it can.

  Runs written before every scores_train.npy had the direction "higher = more
  worth keeping" carry OLD_DIRECTION_KEY in summary.json; those where it is
  True held "higher = corrupted" scores, and entry points that act on the
  scores (curate, detect) refuse them with this one-line message.

  Args:
    workdir: the run directory.
    summary: its parsed summary.json.

  Returns:
    The message (naming the file and saying to re-run), or None.
  """
  if not summary.get(OLD_DIRECTION_KEY):
    return None  # absent, or False: the old file was already "higher = keep"
  return (f'{os.path.join(workdir, "summary.json")} was written by an older version whose '
          f'scores_train.npy may hold "higher = corrupted" scores ({OLD_DIRECTION_KEY}); '
          f're-run it (remove {workdir}) to get scores with higher = keep')


def scored_train_rows(workdir: str) -> np.ndarray:
  """bool per row of the user's training data: the scorer run in `workdir` scored the row
  and the row is in its train split (not carved into its meta split).

  DataRater's rater also scores the meta split it was meta-trained on; those
  rows are left out, so its metrics are over training rows as every other
  scorer's are.
  """
  scored = np.load(os.path.join(workdir, 'scored_rows.npy'))
  return scored & ~np.load(os.path.join(workdir, 'meta_rows.npy'))


def detection_population(runs: dict, name: str) -> np.ndarray:
  """The rows scorer `name` is measured on, among the scorer runs `runs` ({scorer name:
  workdir}) of one data set and seed: the rows every scorer of full coverage scored
  (`common_rows`), for a SUBSET_SCORERS scorer only those of them it valued."""
  subset = {n for n, (config, _) in scorers().items() if config in SUBSET_SCORERS}
  subset |= set(SUBSET_SCORERS)  # a run named by its config file
  rows = common_rows([w for n, w in runs.items() if n not in subset])
  if name in subset:
    rows = rows & scored_train_rows(runs[name])
  return rows


def common_rows(workdirs) -> np.ndarray:
  """The detection population of several scorer runs on the same data and seed: the train-split
  rows (`scored_train_rows`) that EVERY run scored, as a bool mask over the user's rows."""
  masks = [scored_train_rows(w) for w in workdirs]
  return np.logical_and.reduce(masks)


def keep_scores(workdir: str, summary: dict) -> np.ndarray:
  """scores_train.npy of a finished scorer run, higher = keep (a run written by an older
  version, OLD_DIRECTION_KEY in its summary, is turned round)."""
  scores = np.load(os.path.join(workdir, 'scores_train.npy'))
  return -scores if summary.get(OLD_DIRECTION_KEY) else scores


def run_detection(config, workdir: str, summary: dict, rows: np.ndarray | None = None) -> dict:
  """`datarater.report.detection.detection_metrics` of a finished scorer run's
  scores_train.npy against the corruption flags, over a stated population of rows.

  Scores are "higher = keep". A run written by an older version (OLD_DIRECTION_KEY
  in its summary) is read in the direction its summary records, so the cached
  runs of a reproduction suite keep their AUROC; curate and detect refuse such
  runs instead (`old_direction`).

  Args:
    config: the run's ConfigDict (its data and seed give the ground truth).
    workdir: the run directory holding scores_train.npy, scored_rows.npy and meta_rows.npy.
    summary: the run's summary.
    rows: bool mask over the user's training rows to evaluate on; pass
      `common_rows` of every scorer compared, so that all are measured on the
      same rows. None: this run's own `scored_train_rows`.

  Returns:
    detection_metrics over `rows`, and 'rows': how many rows that is.
  """
  from datarater.data import load_dataset
  from datarater.data.core import per_row
  from datarater.report.detection import detection_metrics
  scores = keep_scores(workdir, summary)
  rows = scored_train_rows(workdir) if rows is None else np.asarray(rows, bool)
  data = load_dataset(config.data, config.seed)
  corrupted, _ = per_row(data, data.train.corrupted, data.meta.corrupted, False)
  return {**detection_metrics(scores[rows], corrupted[rows].astype(bool)),
          'rows': int(rows.sum())}
