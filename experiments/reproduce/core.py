"""Running a suite: what a suite declares (Run, Metric, Suite), run directories, resume.

Every (setting, method, seed) of a suite runs into
`<folder>/runs/<setting>/<method>/seed<k>/`. A run whose summary.json parses
has finished and is reused, after its fingerprint.json shows it was made with
the suite's config of today; one cut short by a kill is re-run (resumed).
Each run's wall time is recorded atomically in its directory (WALL_FILE); an
unreadable record leaves the run untimed. Its table cells are recorded there
too (METRICS_FILE). The repository commits only a run's small files
(COMMITTED_FILES: summary, config, fingerprint and these two records; no
checkpoints, plots, metrics.jsonl or score arrays), so every per-seed number of
a table can be checked, and the table rewritten, from a clone.

Suites live in `suites/<name>.py`; this module finds one by name
(find_suite) and imports none of them.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import time
from typing import Callable

from experiments._runs import load_config, override, read_json, run_one

SCALES = ('smoke', 'cpu', 'paper')
DEFAULT_SEEDS = {'smoke': 2, 'cpu': 3, 'paper': 3}
# Seeds of a suite's headline settings (Suite.headline) by default (--headline_seeds).
DEFAULT_HEADLINE_SEEDS = 10


@dataclasses.dataclass
class Run:
  """One (setting, method) cell of a suite; seeds are added when it runs.

  Attributes:
    setting: the setting's label (a table row group; also its folder name).
    method: the method's label ('uniform' is every setting's paired baseline).
    config: configs/<config>.py, or a callable (seed, workdir) -> summary for
      runs outside the training loop.
    arg: the config arg ('dataset=digits,smoke').
    overrides: dotted config fields set on top of the config file.
    key: what the setting is ({'dataset': 'digits', 'rate': 40, ...}), for
      matching published rows.
    match_compute: for a compute-matched run (a uniform run given a method's
      FLOPs): the row label of that method in the same setting, '' otherwise.
      Its num_steps becomes `matched_steps`: round(method FLOPs / uniform FLOPs
      per step), measured on the finished runs of the same seed, which come
      earlier in the grid.
    reads: for a row that runs nothing: the method label of the run (same
      setting, same seed, listed earlier) whose summary it reads through `view`.
    view: with `reads`, summary -> the summary this row's metrics see (e.g.
      `suites._common.early_stopped_view`: the run's early-stopped test metrics).
    rater_of: for a DataRater run that reuses a rater: (setting, method label) of the run
      (same seed, earlier in the grid) whose saved rater it filters with
      (config.method.rater_from; that run's meta-training FLOPs are charged to it).
  """
  setting: str
  method: str
  config: str | Callable
  arg: str = ''
  overrides: dict = dataclasses.field(default_factory=dict)
  key: dict = dataclasses.field(default_factory=dict)
  match_compute: str = ''
  reads: str = ''
  view: Callable | None = None
  rater_of: tuple = ()

  def derived(self, method: str, view: Callable) -> 'Run':
    """A row of this run's setting that reads this run's summary through `view` (no run)."""
    return dataclasses.replace(self, method=method, reads=self.method, view=view)

  def make_config(self, seed: int):
    """The run's ConfigDict for `seed` (None for a callable run)."""
    if callable(self.config):
      return None
    return override(load_config(self.config, self.arg), {**self.overrides, 'seed': seed})


@dataclasses.dataclass(frozen=True)
class Metric:
  """A table column computed from a finished run.

  Attributes:
    name: column label.
    fn: (summary, workdir, config) -> float | None.
    paired: also report the paired difference vs uniform in this column.
  """
  name: str
  fn: Callable
  paired: bool = False


@dataclasses.dataclass(frozen=True)
class Suite:
  """A reproduction suite.

  Attributes:
    runs: scale -> list of Run.
    metrics: the table's columns.
    header: scale -> the paragraph on the grid and on how it differs from the papers.
    published: optional scale -> list of published.Published: the papers' numbers shown in
      the table's "Published (their setting)" block, each with the paper's setting (None:
      no published numbers).
    plot: optional (runs, seeds, folder) -> None, extra plots from the run directories;
      seeds: {setting: number of seeds it ran} (seeds 0..n-1).
    curve: optional (x key, x label, log x): plots/curve_<metric>.png draws each
      metric against Run.key[x key], one line per method, one panel per value
      of the other keys.
    extra: optional (runs, seeds, folder) -> markdown lines added to table.md (seeds as
      for plot).
    note: optional scale -> a paragraph added to table.md below the table.
    own_baseline: {metric name: name of the metric holding the paired baseline}
      for runs that train their own uniform arm (same initial parameters and data
      order): that column's paired difference is against this metric of the
      same run instead of the setting's uniform run.
    headline: {scale: setting names}: the settings the README headlines, which run
      `headline_seeds` seeds (--headline_seeds) at that scale while every other setting runs
      `seeds` (--seeds); see `setting_seeds`.
  """
  runs: Callable
  metrics: tuple
  header: Callable
  published: Callable | None = None
  plot: Callable | None = None
  curve: tuple | None = None
  extra: Callable | None = None
  note: Callable | None = None
  own_baseline: dict = dataclasses.field(default_factory=dict)
  headline: dict = dataclasses.field(default_factory=dict)


def setting_seeds(suite: Suite, scale: str, seeds: int, headline_seeds: int | None = None) -> dict:
  """{setting: number of seeds its cells run} of `suite` at `scale`.

  A headline setting (suite.headline[scale]) runs max(headline_seeds, seeds) seeds, every
  other setting `seeds`; headline_seeds None runs `seeds` everywhere. Seeds are 0..n-1, so a
  setting's cells (and the rows that read them or match their compute) share their seeds.

  Raises:
    ConfigError: a headline setting that is not in the suite's grid at `scale`.
  """
  from datarater.errors import ConfigError
  settings = list(dict.fromkeys(run.setting for run in suite.runs(scale)))
  headline = suite.headline.get(scale, ())
  unknown = [s for s in headline if s not in settings]
  if unknown:
    raise ConfigError(f'Suite.headline[{scale!r}] names {unknown[0]!r}, not a setting of the '
                      f'grid at that scale ({", ".join(settings)})')
  top = seeds if headline_seeds is None else max(headline_seeds, seeds)
  return {s: top if s in headline else seeds for s in settings}


def find_suite(name: str) -> Suite:
  """suites/<name>.py's SUITE, from the registry in suites/.

  The registry is imported when first asked for, so the suite modules (which
  import this one) load after this module.
  """
  return importlib.import_module(f'{__package__}.suites').SUITES[name]


# ------------------------------------------------------------- run directories

def slug(text: str) -> str:
  """A folder or file name for a label: runs of non-alphanumerics become '_', lower case."""
  return re.sub(r'[^A-Za-z0-9]+', '_', text).strip('_').lower()


def run_dir(folder: str, run: Run, seed: int) -> str:
  """<folder>/runs/<setting>/<method>/seed<k>."""
  return os.path.join(folder, 'runs', slug(run.setting), slug(run.method), f'seed{seed}')


def read_summary(workdir: str) -> dict:
  """A finished run's summary.json."""
  with open(os.path.join(workdir, 'summary.json')) as f:
    return json.load(f)


# Fields that do not change a finished run's numbers; any other difference between the
# config a run was made with and the suite's config now makes the run stale.
BOOKKEEPING_FIELDS = ('log_every', 'checkpoint_every', 'nonfinite', 'steps_per_dispatch', 'mesh',
                      '_run')


def check_finished(config, workdir: str) -> None:
  """Refuses to reuse a finished run made with a different config (a grid that changed).

  Raises:
    ConfigError: one line naming the run directory and the first changed field.
  """
  from datarater.errors import ConfigError
  from datarater.run import changed_fields
  fingerprint = read_json(os.path.join(workdir, 'fingerprint.json'))
  if not isinstance(fingerprint, dict) or 'config' not in fingerprint:
    raise ConfigError(f'{workdir} holds a finished run without fingerprint.json (or with an '
                      'unreadable one), so it cannot be checked against the suite\'s config; '
                      'delete it to re-run')
  old = same_rater_run(fingerprint['config'], config)
  changed = changed_fields(old, config, BOOKKEEPING_FIELDS)
  if changed:
    raise ConfigError(f'{workdir} holds a finished run made with a different config.{changed[0]} '
                      f'(changed: {", ".join(changed)}); delete it to re-run with the suite\'s '
                      'config, or use another --out')
  if fingerprint.get('data_sha256') != data_sha256(config):
    raise ConfigError(f'{workdir} holds a finished run on other data (same config, but the data '
                      'recipe changed since it ran: its data_sha256 differs); delete it to re-run')


def same_rater_run(old: dict, config) -> dict:
  """`old` with its method.rater_from set to `config`'s when both name the same run directory
  (<setting>/<method>/seed<k>) of a suite's runs: a run records the absolute path of the
  checkout it ran in, and a clone elsewhere must still reuse it."""
  method = old.get('method')
  now = config.get('method', {}).get('rater_from', '') if 'method' in config else ''
  if not (isinstance(method, dict) and isinstance(method.get('rater_from'), str) and now):
    return old
  tail = lambda path: os.path.normpath(path).split(os.sep)[-3:]  # noqa: E731
  if tail(method['rater_from']) != tail(now):
    return old
  return {**old, 'method': {**method, 'rater_from': now}}


_DATA_SHA256 = {}  # (config.data, seed) -> hash, once per invocation


def data_sha256(config) -> str:
  """SHA-256 of the data `config` loads today (datarater.run.data_fingerprint)."""
  key = (json.dumps(config.data.to_dict(), sort_keys=True, default=str), int(config.seed))
  if key not in _DATA_SHA256:
    from datarater.data import load_dataset
    from datarater.run import data_fingerprint
    _DATA_SHA256[key] = data_fingerprint(load_dataset(config.data, config.seed))
  return _DATA_SHA256[key]


# ------------------------------------------------------------------ compute

COMPUTE = '_compute'  # key of a run's compute in run_suite's results (not a table column)


def charged_ledger(summary: dict) -> dict | None:
  """The compute that made a run's result: summary.json's `method_ledger` (the run's
  ledger less a paired uniform arm it trains itself); None for a run without a ledger.

  Runs recorded before `method_ledger` existed: `ledger` less the ledger of the
  `baseline_phase` (every such pipeline's baseline was a separate arm).
  """
  if 'method_ledger' in summary:
    return summary['method_ledger']
  if 'ledger' not in summary:
    return None
  arm = own_baseline_ledger(summary)
  if arm is None:
    return summary['ledger']
  return {k: v - arm.get(k, 0) for k, v in summary['ledger'].items()
          if isinstance(v, (int, float))}


def own_baseline_ledger(summary: dict) -> dict | None:
  """The ledger of the run's own paired uniform arm (its `baseline_phase`), or None."""
  phase = summary.get('baseline_phase')
  return summary['phases'][phase]['ledger'] if phase else None


def _setting_run(runs: list, setting: str, method: str) -> Run | None:
  return next((r for r in runs if r.setting == setting and r.method == method), None)


def matched_steps(folder: str, runs: list, run: Run, seed: int) -> int:
  """num_steps of the compute-matched uniform `run`: round(F_method / f_uniform).

  F_method: the charged FLOPs (`charged_ledger`) of the run labelled
  `run.match_compute` in the same setting and seed; f_uniform: uniform's FLOPs
  per step, from the setting's uniform run of that seed, or (a setting without
  one) from the method run's own uniform arm. Equivalently round(ratio *
  uniform's steps), ratio = F_method / F_uniform.

  Raises:
    ConfigError: a run it needs is not in the grid before `run` or has not finished.
  """
  from datarater.errors import ConfigError
  target = _setting_run(runs, run.setting, run.match_compute)
  uniform = _setting_run(runs, run.setting, 'uniform')
  earlier = runs[:runs.index(run)]
  if target is None or target not in earlier or (uniform is not None and uniform not in earlier):
    raise ConfigError(f'{run.setting} | {run.method}: match_compute={run.match_compute!r} needs '
                      'that method (and the setting\'s uniform run, if any) earlier in the grid')
  try:
    method = read_summary(run_dir(folder, target, seed))
    base = (charged_ledger(read_summary(run_dir(folder, uniform, seed))) if uniform
            else own_baseline_ledger(method))
  except (OSError, ValueError) as e:
    raise ConfigError(f'{run.setting} | {run.method}: the runs it matches have no readable '
                      f'summary.json for seed {seed} ({e})') from e
  if base is None:
    raise ConfigError(f'{run.setting} | {run.method}: no uniform run or uniform arm to measure '
                      'FLOPs per step on')
  return max(1, round(charged_ledger(method)['flops'] / (base['flops'] / base['steps'])))


def run_config(folder: str, runs: list, run: Run, seed: int):
  """The config `run` runs with for `seed`: Run.make_config, with a compute-matched run's
  num_steps from `matched_steps` and a reused rater's run directory (`Run.rater_of`) (None for
  a callable run)."""
  config = run.make_config(seed)
  if run.match_compute:
    config = override(config, {'num_steps': matched_steps(folder, runs, run, seed)})
  if run.rater_of:
    source = _setting_run(runs, *run.rater_of)
    if source is None or source not in runs[:runs.index(run)]:
      from datarater.errors import ConfigError
      raise ConfigError(f'{run.setting} | {run.method}: rater_of={run.rater_of!r} needs that '
                        'run earlier in the grid')
    config = override(config, {'method.rater_from': os.path.abspath(run_dir(folder, source,
                                                                            seed))})
  return config


def run_compute(summary: dict) -> dict | None:
  """{'method': charged ledger, 'arm': own uniform arm's ledger or None} of a finished
  run (None without a ledger: a run outside the training loop)."""
  charged = charged_ledger(summary)
  return None if charged is None else {'method': charged, 'arm': own_baseline_ledger(summary)}


# ------------------------------------------------------------------ execution

WALL_FILE = 'reproduce_seconds.json'  # a run's wall time as timed by run_suite, in its directory
METRICS_FILE = 'reproduce_metrics.json'  # the run's table cells ({metric name: value}), likewise
# The files of a run directory that are committed with a suite's table (.gitignore keeps only
# these under results/*/*/runs/): enough to check every per-seed number and to reuse the run.
COMMITTED_FILES = ('summary.json', 'config.json', 'fingerprint.json', WALL_FILE, METRICS_FILE)


def run_metrics(suite: Suite, summary: dict, workdir: str, config) -> dict:
  """{metric name: value} of one finished run, recorded in its METRICS_FILE.

  A metric that reads files the repository does not commit (a detection
  metric's score files) falls back to the recorded value when those files are
  absent, so a suite's table can be rewritten from a clone's committed runs.
  """
  from datarater.train.rundir import dumps, write_atomic
  path = os.path.join(workdir, METRICS_FILE)
  try:
    values = {m.name: m.fn(summary, workdir, config) for m in suite.metrics}
  except FileNotFoundError:
    recorded = read_json(path)
    if not isinstance(recorded, dict) or any(m.name not in recorded for m in suite.metrics):
      raise
    return {m.name: recorded[m.name] for m in suite.metrics}
  if read_json(path) != values:
    write_atomic(path, [dumps(values)])
  return values


def run_suite(name: str, scale: str, seeds: int, folder: str,
              headline_seeds: int | None = None, settings: str = '') -> dict:
  """Runs (or reuses) every run of suite `name` and returns its metric values.

  The metrics are computed once every run has finished, so a metric may read
  the other runs of its setting (label_error_detection measures every scorer
  on the rows all of them scored).

  Args:
    name: a key of SUITES.
    scale: one of SCALES.
    seeds: seeds 0..seeds-1 per (setting, method) of every setting but the headline ones.
    folder: the suite's output folder (<out>/<name>/<scale>); runs go to its runs/.
    headline_seeds: seeds of the suite's headline settings at `scale` (setting_seeds; at
      least `seeds`); None: `seeds` everywhere.
    settings: a regular expression: only the settings it finds (re.search) run, e.g. to
      split a suite over processes or machines; '' = every setting.

  Returns:
    {(setting, method, seed): {metric name: value, COMPUTE: run_compute(summary)}}.
  """
  from datarater.train.rundir import dumps, write_atomic
  suite = find_suite(name)
  counts = setting_seeds(suite, scale, seeds, headline_seeds)
  runs = [run for run in suite.runs(scale) if re.search(settings, run.setting)]
  if not runs:
    from datarater.errors import ConfigError
    raise ConfigError(f'--settings={settings!r} matches no setting of {name} at scale {scale} '
                      f'({", ".join(counts)})')
  total = sum(counts[run.setting] for run in runs)
  finished, i = [], 0
  for run in runs:
    source = next(r for r in runs if r.setting == run.setting and r.method == run.reads
                  ) if run.reads else None
    for seed in range(counts[run.setting]):
      i += 1
      if source is not None:  # a row read from another run of the suite: nothing runs
        workdir = run_dir(folder, source, seed)
        finished.append((run, seed, run.view(read_summary(workdir)), workdir,
                         source.make_config(seed)))
        continue
      workdir = run_dir(folder, run, seed)
      config = run_config(folder, runs, run, seed)
      t0 = time.time()
      # Finished: summary.json parses (one cut short by a kill is re-run).
      summary = read_json(os.path.join(workdir, 'summary.json'))
      done = summary is not None
      if config is not None:
        if done:
          check_finished(config, workdir)
        summary = run_one(config, workdir)  # a finished run is reused
      elif not done:
        summary = run.config(seed, workdir)
      if not done:
        write_atomic(os.path.join(workdir, WALL_FILE), [dumps({'seconds': time.time() - t0})])
      status = 'finished earlier' if done else f'{time.time() - t0:.1f} s'
      print(f'[reproduce] {i}/{total} {run.setting} | {run.method} | seed {seed}: {status}',
            flush=True)
      finished.append((run, seed, summary, workdir, config))
  def cells(run, summary, workdir, config):
    if run.reads:  # a view of another run's summary: its own cells, not recorded in that run
      return {m.name: m.fn(summary, workdir, config) for m in suite.metrics}
    return run_metrics(suite, summary, workdir, config)
  return {(run.setting, run.method, seed): {**cells(run, summary, workdir, config),
                                            COMPUTE: run_compute(summary)}
          for run, seed, summary, workdir, config in finished}


def runs_wall_seconds(folder: str) -> tuple:
  """(sum of the recorded run wall times, number of runs with a record, number of runs).

  A record that is missing or unreadable (cut short by a kill) leaves its run untimed.
  """
  total, timed, runs = 0.0, 0, 0
  for root, _, files in os.walk(os.path.join(folder, 'runs')):
    if 'summary.json' in files:
      runs += 1
      record = read_json(os.path.join(root, WALL_FILE))
      seconds = record.get('seconds') if isinstance(record, dict) else None
      if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        total += seconds
        timed += 1
  return total, timed, runs
