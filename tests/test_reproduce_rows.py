"""What each row of the committed reproduction tables ran, read from its committed run directories.

test_reproduce.py checks the tables' format on runs it makes itself; this file checks the runs
that are committed under results/<suite>/cpu/runs/<setting>/<method>/seed<k>/ (summary.json,
fingerprint.json) against the suite's own grid, rebuilt with `suite.runs('cpu')` (it builds
Run objects and trains nothing) and matched to its directories with core.run_dir:

  * coverage: the committed directories are exactly the grid's runs, and table.csv's rows and
    seed counts are those runs;
  * rows: each run ran the method its row label names, with the overrides the suite gives that
    row, and a row whose label promises no filtered retraining (STORM, the compute-matched
    uniform rows, the detection-only scorers) has no filtered phase;
  * pairing: the runs of a setting and seed that the table compares share data (data_sha256,
    data config), seed, model and paired initialisation (paired_arms), and every uniform model
    (the uniform row, each run's own paired uniform arm) ended exactly where every other one
    with the same config and data did, within and across settings;
  * staleness: each run's recorded config is what the suite builds for that row today (the
    config half of core.check_finished, which makes a re-run refuse to reuse a stale run), and
    its data hash is that of the data the suite loads today (one run per data config).

Each check is a function returning the problems it finds (strings naming the run directory), so
the `test_break_*` tests can point it at an edited copy of a committed run in tmp_path and show
that it fails. Only JSON is read, except by the data-hash test, which loads each distinct data
set once.

Runs outside the training loop (linear_regression: Run.config is a callable) record no
fingerprint.json and no method name; for them only coverage and distinct curves are checked.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import shutil

import pytest

from datarater.run import changed_fields, upgrade_recorded
from experiments.reproduce.core import (BOOKKEEPING_FIELDS, data_sha256, matched_steps,
                                        run_config, run_dir, same_rater_run, slug)
from experiments.reproduce.suites import SUITES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'results')
SCALE = 'cpu'
# The suites whose cpu-scale runs are committed.
COMMITTED = [name for name in sorted(SUITES)
             if os.path.isdir(os.path.join(RESULTS, name, SCALE, 'runs'))]
ABSENT = '(absent)'
# The phase names of a filtered retraining (datarater/methods/_filter.py's arms).
FILTERED_PHASES = ('filtered', 'filtered_half')
# The noisy_labels setting the break tests copy (10 seeds, every row of the suite).
NOISY = 'digits symmetric 40%'


def folder_of(name: str) -> str:
  return os.path.join(RESULTS, name, SCALE)


@functools.lru_cache(maxsize=None)
def grid(name: str) -> tuple:
  """The suite's runs at cpu scale, as its module builds them (no training)."""
  return tuple(SUITES[name].runs(SCALE))


def read(path: str):
  with open(path) as f:
    return json.load(f)


def norm(value):
  """`value` as JSON stores it (tuples become lists), for comparing with a recorded config."""
  return json.loads(json.dumps(value))


def dotted(config: dict, key: str):
  node = config
  for part in key.split('.'):
    if not isinstance(node, dict) or part not in node:
      return ABSENT
    node = node[part]
  return node


def leaf_diff(old, new, prefix: str = '') -> list:
  """['field: recorded X, today Y'] for every dotted leaf where `old` and `new` differ."""
  if isinstance(old, dict) and isinstance(new, dict):
    out = []
    for k in sorted(set(old) | set(new)):
      out += leaf_diff(old.get(k, ABSENT), new.get(k, ABSENT), f'{prefix}{k}.')
    return out
  return [] if old == new else [f'{prefix.rstrip(".")}: recorded {old!r}, today {new!r}']


def seeds_of(folder: str, run) -> list:
  """The seeds of `run` with a finished (summary.json) directory under `folder`."""
  method_dir = os.path.dirname(run_dir(folder, run, 0))
  if not os.path.isdir(method_dir):
    return []
  return sorted(int(d[4:]) for d in os.listdir(method_dir)
                if re.fullmatch(r'seed\d+', d)
                and os.path.exists(os.path.join(method_dir, d, 'summary.json')))


def trained(runs) -> list:
  """The runs of a grid that run something (not the rows that read another run's summary)."""
  return [r for r in runs if not r.reads]


def recorded_config(workdir: str) -> dict:
  """fingerprint.json's config, as datarater.run.upgrade_recorded reads an older record."""
  return upgrade_recorded(read(os.path.join(workdir, 'fingerprint.json'))['config'])


def run_tail(path: str) -> str:
  """'<suite>/<scale>/runs/<setting>/<method>/seed<k>' of a run directory: method.rater_from
  is recorded as an absolute path, which depends on where the checkout lies."""
  return '/'.join(os.path.normpath(path).split(os.sep)[-6:])


def source_of(runs, run):
  """The run whose rater `run` reuses (Run.rater_of)."""
  return next(r for r in runs if (r.setting, r.method) == tuple(run.rater_of))


def label(run) -> str:
  return f'{run.setting} | {run.method}'


def promised_fraction(run):
  """The discard fraction a row's label names: 'discard 25%' -> 0.25, 'discard auto' or
  '<filter>, auto' -> 'auto', None when the label names none."""
  text = label(run)
  m = re.search(r'discard (\d+(?:\.\d+)?)%', text)
  if m:
    return float(m.group(1)) / 100
  if re.search(r'discard auto\b|, auto$', text):
    return 'auto'
  return None


def promises_filter(run) -> bool:
  """The row label promises a filtered retraining: it names a discard fraction, or the method
  label says 'filter' (the scorers' '<label> filter', 'STORM filter'). A compute-matched row
  ('uniform, FLOPs of X') is uniform whatever X is."""
  if run.match_compute:
    return False
  return promised_fraction(run) is not None or re.search(r'\bfilter\b', run.method) is not None


# ----------------------------------------------------------------------------------- checks


def coverage_problems(folder: str, runs, table: str | None = None) -> list:
  """The committed run directories against the grid (and table.csv, when given).

  Guards against: a directory the grid no longer has (a renamed label or a dropped row whose
  old runs would be read under the wrong row), a grid row with no committed run, seeds that
  are not 0..n-1 or differ between the rows of one setting (the paired columns pair seed k
  with seed k), a row that reads another run (early-stopped view) having a directory of its
  own, and a table whose rows or seed counts are not those of the committed runs.
  """
  problems = []
  expected, seeds = set(), {}
  for run in trained(runs):
    found = seeds_of(folder, run)
    seeds[(run.setting, run.method)] = found
    expected |= {run_dir(folder, run, k) for k in found}
    if not found:
      problems.append(f'{label(run)}: no committed run under '
                      f'{os.path.relpath(os.path.dirname(run_dir(folder, run, 0)), folder)}')
    elif found != list(range(len(found))):
      problems.append(f'{label(run)}: seeds {found} are not 0..{len(found) - 1}')
  for run in runs:
    if run.reads:
      seeds[(run.setting, run.method)] = seeds.get((run.setting, run.reads), [])
      if os.path.isdir(os.path.dirname(run_dir(folder, run, 0))):
        problems.append(f'{label(run)}: reads {run.reads!r} but has a run directory of its own')
  for setting in dict.fromkeys(r.setting for r in runs):
    counts = {r.method: len(seeds[(r.setting, r.method)]) for r in runs if r.setting == setting}
    if len(set(counts.values())) > 1:
      problems.append(f'{setting}: rows ran different numbers of seeds {counts}')
  present = {root for root, _, files in os.walk(os.path.join(folder, 'runs'))
             if 'summary.json' in files}
  problems += [f'{os.path.relpath(p, folder)}: a run directory of no row of the grid'
               for p in sorted(present - expected)]
  if table is not None:
    rows = {(r['setting'], r['method']): int(r['seeds']) for r in csv.DictReader(open(table))}
    grid_rows = {(r.setting, r.method): len(seeds[(r.setting, r.method)]) for r in runs}
    problems += [f'table.csv row {k} is not a row of the grid' for k in rows if k not in grid_rows]
    problems += [f'table.csv has no row {k}' for k in grid_rows if k not in rows]
    problems += [f'table.csv row {k}: {rows[k]} seeds, {n} committed runs'
                 for k, n in grid_rows.items() if k in rows and rows[k] != n]
  return problems


def row_problems(folder: str, runs, run, seed: int) -> list:
  """What the run of `run` and `seed` ran, against what the suite assigns to its row.

  Guards against a row that runs something other than its label:
    * summary.json's `method` and the fingerprint's method.name are the row's config
      (Run.config) -- a directory holding another method's run;
    * every override the suite gives the row (method.discard_fraction, data.meta_mode,
      model.kwargs.*, corruption, steps, ...) is in the recorded config, and the seed is the
      directory's;
    * a compute-matched row's num_steps is core.matched_steps of the committed runs it matches;
    * a reused rater (Run.rater_of) is the source row's run of the same seed;
    * the summary's dataset, corruption and meta split are the recorded config's;
    * a label that names a discard fraction ran that fraction (summary and config), and a
      filtered row recorded the fraction it used ('auto': the one it chose);
    * a label that promises no filtered retraining (STORM, the detection-only scorers, the
      compute-matched and reference rows) has no filtered phase in summary['phases'] -- the
      review's finding, the STORM row that ran a filtered retrain. DataRater is the exception:
      its method is the paper's filtered retraining, so its plain label includes it; where a
      suite switches that off (label_error_detection) the config's discard fraction 0 is
      checked instead, as an override, and here against the summary.
  """
  workdir = run_dir(folder, run, seed)
  where = os.path.relpath(workdir, folder)
  summary = read(os.path.join(workdir, 'summary.json'))
  if callable(run.config):  # outside the training loop: no fingerprint, no method name
    missing = [k for k in ('curve', 'final_excess_risk', 'mean_excess_risk') if k not in summary]
    return [f'{where}: summary has no {missing}'] if missing else []
  config = recorded_config(workdir)
  problems = []
  if summary.get('method') != run.config:
    problems.append(f'{where}: summary method {summary.get("method")!r}, row {label(run)!r} '
                    f'runs {run.config!r}')
  if dotted(config, 'method.name') != run.config:
    problems.append(f'{where}: fingerprint method.name {dotted(config, "method.name")!r}, row '
                    f'runs {run.config!r}')
  if config.get('seed') != seed:
    problems.append(f'{where}: fingerprint seed {config.get("seed")!r} in directory seed{seed}')
  for key, value in run.overrides.items():
    if key == 'num_steps' and run.match_compute:
      continue  # set from the matched run's FLOPs instead, below
    if dotted(config, key) != norm(value):
      problems.append(f'{where}: {key} = {dotted(config, key)!r}, the suite sets {value!r}')
  if run.match_compute:
    steps = matched_steps(folder, list(runs), run, seed)
    if config.get('num_steps') != steps:
      problems.append(f'{where}: num_steps {config.get("num_steps")!r}, matched_steps of '
                      f'{run.match_compute!r} is {steps}')
  if run.rater_of:
    source = run_dir(folder, source_of(runs, run), seed)
    got = dotted(config, 'method.rater_from')
    if not isinstance(got, str) or run_tail(got) != run_tail(source):
      problems.append(f'{where}: method.rater_from {got!r}, the row reuses {run_tail(source)}')
  for key, field in (('dataset', 'name'), ('corruption_rates', 'corruption_rates'),
                     ('corruption', 'corruption'), ('meta_mode', 'meta_mode')):
    if key in summary and summary[key] != config['data'].get(field):
      problems.append(f'{where}: summary {key} {summary[key]!r}, config data.{field} '
                      f'{config["data"].get(field)!r}')
  phases = list(summary.get('phases', {}))
  filtered = [p for p in phases if p in FILTERED_PHASES]
  fraction = dotted(config, 'method.discard_fraction')
  promised = promised_fraction(run)
  if promised is not None and fraction != promised:
    problems.append(f'{where}: the label promises discard {promised!r}, config has {fraction!r}')
  if promises_filter(run) and 'filtered' not in phases:
    problems.append(f'{where}: label {run.method!r} promises a filtered retraining, phases '
                    f'{phases}')
  if filtered and not promises_filter(run) and run.config != 'datarater':
    problems.append(f'{where}: label {label(run)!r} promises no filtered retraining, but phases '
                    f'{phases} include {filtered}')
  if filtered:
    used = summary.get('discard_fraction', ABSENT)
    if fraction == 'auto':
      chosen = (summary.get('discard_fraction_auto') or {}).get('chosen', ABSENT)
      if chosen != used:
        problems.append(f'{where}: auto chose {chosen!r}, summary discard_fraction {used!r}')
    elif used != fraction:
      problems.append(f'{where}: summary discard_fraction {used!r}, config {fraction!r}')
  return problems


def curve_problems(folder: str, runs, setting: str, seed: int) -> list:
  """Runs outside the training loop (no fingerprint): two rows of one setting and seed with the
  same curve read one run's summary (a copied directory)."""
  seen, problems = {}, []
  for run in runs:
    if run.setting == setting and callable(run.config) and seed in seeds_of(folder, run):
      curve = json.dumps(read(os.path.join(run_dir(folder, run, seed), 'summary.json'))['curve'])
      if curve in seen:
        problems.append(f'{setting} seed{seed}: {run.method!r} has the curve of {seen[curve]!r}')
      seen.setdefault(curve, run.method)
  return problems


def arm_key(config: dict, sha: str) -> str:
  """What decides a uniform arm's result: its config less method and bookkeeping fields, and its
  data hash (the seed is in the config)."""
  rest = {k: v for k, v in config.items() if k not in BOOKKEEPING_FIELDS and k != 'method'}
  return json.dumps([rest, sha], sort_keys=True)


def uniform_arms(runs, folder: str, seed: int):
  """(row label, phase, arm_key, (test accuracy, test loss)) of every uniform model of `runs` and
  `seed`: the result of a 'uniform' row and every phase named 'uniform' (a run's own paired
  arm, the fine-tune's starting model)."""
  for run in trained(runs):
    if callable(run.config) or seed not in seeds_of(folder, run):
      continue
    workdir = run_dir(folder, run, seed)
    summary = read(os.path.join(workdir, 'summary.json'))
    key = arm_key(recorded_config(workdir),
                  read(os.path.join(workdir, 'fingerprint.json'))['data_sha256'])
    for phase, record in summary.get('phases', {}).items():
      if phase == 'uniform' or (run.config == 'uniform' and phase == summary['result_phase']):
        yield run, phase, key, (record.get('test_accuracy'), record.get('test_loss'))


def pairing_problems(folder: str, runs, setting: str, seed: int) -> list:
  """The runs of `setting` and `seed` that the table pairs share data, seed and initialisation.

  Guards against a paired difference that compares different data or initial parameters:
    * every run of the setting and seed has the same data_sha256 and data config (as
      upgrade_recorded reads it), the directory's seed, the same model and batch size (initial
      parameters are drawn from (seed, model); data order from (seed, step, batch size)) and
      paired_arms=True (phases of one run share their initial parameters);
    * a reused rater was trained on the same data (same data_sha256 as its source run).
  arm_problems checks the uniform models across the settings of a suite.
  """
  members = [r for r in trained(runs) if r.setting == setting and not callable(r.config)
             and seed in seeds_of(folder, r)]
  problems, reference = [], None
  for run in members:
    workdir = run_dir(folder, run, seed)
    where = os.path.relpath(workdir, folder)
    sha = read(os.path.join(workdir, 'fingerprint.json')).get('data_sha256')
    config = recorded_config(workdir)
    if config.get('seed') != seed:
      problems.append(f'{where}: seed {config.get("seed")!r} in directory seed{seed}')
    if config.get('paired_arms') is not True:
      problems.append(f'{where}: paired_arms={config.get("paired_arms")!r}, its arms are not '
                      'paired')
    if run.rater_of:
      source = run_dir(folder, source_of(runs, run), seed)
      if read(os.path.join(source, 'fingerprint.json')).get('data_sha256') != sha:
        problems.append(f'{where}: data_sha256 differs from that of the run whose rater it reuses '
                        f'({os.path.relpath(source, folder)})')
    shared = (sha, config.get('data'), config.get('model'), config.get('batch_size'))
    if reference is None:
      reference = (where, shared)
      continue
    for name, mine, theirs in zip(('data_sha256', 'data', 'model', 'batch_size'), shared,
                                  reference[1]):
      if mine != theirs:
        fields = '; '.join(leaf_diff(theirs, mine, name + '.'))
        detail = '' if name == 'data_sha256' else f' ({fields})'
        problems.append(f'{where}: {name} differs from {reference[0]}\'s{detail}')
  return problems


def arm_problems(folder: str, runs, seed: int) -> list:
  """The uniform models of seed `seed` across every setting of a suite.

  Guards against paired arms that are not what they are paired with:
    * runs with the same data config (as upgrade_recorded reads it) and seed have the same
      data_sha256 (a hash recorded from other data than the config says);
    * every uniform model (the result of a 'uniform' row, each run's own paired 'uniform' arm,
      the fine-tune's uniform start) ended with the same test accuracy and loss as every other
      one with the same config less method fields and the same data_sha256 -- the setting's
      uniform row, the other rows' arms, and across settings (datarater_filtering's discard
      settings and its references). Training is deterministic here, so equal results are the
      recorded trace of equal initial parameters and data order (summary.json records no
      parameter fingerprint); a paired difference against an arm that started elsewhere
      would show as a mismatch.
  """
  problems, hashes, groups = [], {}, {}
  for run in trained(runs):
    if callable(run.config) or seed not in seeds_of(folder, run):
      continue
    workdir = run_dir(folder, run, seed)
    data = json.dumps(recorded_config(workdir)['data'], sort_keys=True)
    sha = read(os.path.join(workdir, 'fingerprint.json')).get('data_sha256')
    where, other = hashes.setdefault(data, (os.path.relpath(workdir, folder), sha))
    if other != sha:
      problems.append(f'{os.path.relpath(workdir, folder)}: data_sha256 differs from {where}\'s, '
                      'which has the same data config and seed')
  for run, phase, key, result in uniform_arms(runs, folder, seed):
    groups.setdefault(key, []).append((f'{label(run)} [{phase}]', result))
  for arms in groups.values():
    first = arms[0]
    for name, result in arms[1:]:
      if result != pytest.approx(first[1], rel=1e-6, abs=1e-9):
        problems.append(f'seed{seed}: uniform arm {name} ended at (test acc., test loss) '
                        f'{result}, {first[0]} at {first[1]}: not the same initialisation and '
                        'data order')
  return problems


def stale_fields(folder: str, runs, run, seed: int) -> list:
  """['field: recorded X, today Y'] where the run's recorded config differs from the config the
  suite builds for its row today (core.run_config), over the fields core.check_finished compares
  (datarater.run.changed_fields less core.BOOKKEEPING_FIELDS); [] for a current run.

  Guards against a committed table made from runs of another grid: `--reuse` (a re-run into
  results/) refuses such a run (core.check_finished), so a stale run means the table cannot be
  re-made from the committed runs. method.rater_from is compared by its run directory, not its
  absolute path, as check_finished does (core.same_rater_run).
  """
  workdir = run_dir(folder, run, seed)
  config = run_config(folder, list(runs), run, seed)
  old = same_rater_run(recorded_config(workdir), config)
  today = json.loads(config.to_json_best_effort())
  changed = changed_fields(old, config, BOOKKEEPING_FIELDS)
  return [d for field in changed for d in leaf_diff(old.get(field, ABSENT),
                                                    today.get(field, ABSENT), field + '.')]


def data_problems(folder: str, runs, run, seed: int) -> list:
  """The run's recorded data_sha256 against the hash of the data the suite's config for its row
  loads today (core.data_sha256, the data half of core.check_finished).

  Guards against a committed run made on other data than a re-run would load (a data recipe
  changed since it ran), which `--reuse` refuses."""
  workdir = run_dir(folder, run, seed)
  recorded = read(os.path.join(workdir, 'fingerprint.json')).get('data_sha256')
  today = data_sha256(run_config(folder, list(runs), run, seed))
  if recorded != today:
    return [f'{os.path.relpath(workdir, folder)}: data_sha256 {str(recorded)[:12]}..., today\'s '
            f'data {today[:12]}...']
  return []


# ------------------------------------------------------------------ the committed runs


def each_run(name: str):
  """(run, seed) of every committed run of suite `name` that runs something."""
  for run in trained(grid(name)):
    for seed in seeds_of(folder_of(name), run):
      yield run, seed


def report(problems: list, limit: int = 60) -> str:
  lines = problems[:limit] + ([f'... and {len(problems) - limit} more'] if len(problems) > limit
                              else [])
  return f'{len(problems)} problems:\n' + '\n'.join(lines)


def test_every_suite_with_committed_runs_is_checked():
  assert COMMITTED, 'no results/<suite>/cpu/runs found'
  assert set(COMMITTED) >= {'noisy_labels', 'discard_auto', 'label_error_detection'}


@pytest.mark.parametrize('name', COMMITTED)
def test_committed_runs_are_the_grid_and_the_table(name):
  """Every committed run directory is a run of a row of today's grid and every row has its runs
  (seeds 0..n-1, the same n across a setting); table.csv lists those rows with those seeds."""
  table = os.path.join(folder_of(name), 'table.csv')
  problems = coverage_problems(folder_of(name), grid(name),
                               table if os.path.exists(table) else None)
  assert not problems, report(problems)


@pytest.mark.parametrize('name', COMMITTED)
def test_each_row_ran_what_its_label_says(name):
  """row_problems on every committed run of the suite (see its docstring)."""
  problems = [p for run, seed in each_run(name)
              for p in row_problems(folder_of(name), grid(name), run, seed)]
  assert not problems, report(problems)


@pytest.mark.parametrize('name', COMMITTED)
def test_paired_arms_share_data_seed_and_init(name):
  """pairing_problems on every setting and seed of the suite and arm_problems on every seed (see
  their docstrings); runs outside the training loop: no two rows of a setting and seed with the
  same curve."""
  folder, runs = folder_of(name), grid(name)
  pairs = {(run.setting, seed) for run, seed in each_run(name)}
  assert pairs
  problems = [p for setting, seed in sorted(pairs)
              for p in pairing_problems(folder, runs, setting, seed)
              + curve_problems(folder, runs, setting, seed)]
  problems += [p for seed in sorted({seed for _, seed in pairs})
               for p in arm_problems(folder, runs, seed)]
  assert not problems, report(problems)


# Rows whose committed runs are known to be stale, by suite: {row label: why}. Each must be
# stated in the README section of its table; re-running it (delete its run directories, run the
# suite) removes it from here. A stale row not listed, or a listed row that is current, fails.
KNOWN_STALE = {}


@pytest.mark.parametrize('name', COMMITTED)
def test_committed_configs_are_what_the_suite_builds_today(name):
  """No committed run is stale (stale_fields) but the rows KNOWN_STALE lists (and those are): a
  table whose runs `--reuse` would refuse is not the table the suite makes today. The failure
  lists every stale row, its seeds and the changed fields."""
  known = KNOWN_STALE.get(name, {})
  stale, seen = {}, set()
  for run, seed in each_run(name):
    if callable(run.config):
      continue  # no recorded config (linear_regression)
    diff = stale_fields(folder_of(name), grid(name), run, seed)
    if diff and run.method in known:
      seen.add(run.method)
    elif diff:
      stale.setdefault((label(run), tuple(diff)), []).append(seed)
  lines = [f'{row}: seeds {seeds}: {"; ".join(diff)}' for (row, diff), seeds in stale.items()]
  assert not stale, (f'{sum(map(len, stale.values()))} stale runs of {name} in {len(stale)} rows '
                     '(recorded vs today):\n' + '\n'.join(lines))
  assert seen == set(known), f'KNOWN_STALE rows of {name} that are current now: {set(known) - seen}'



def test_stale_fields_agrees_with_core_check_finished(tmp_path):
  """stale_fields (and data_problems) say stale exactly where core.check_finished, the check that
  makes a re-run refuse to reuse a finished run, raises: on every row of one noisy_labels setting
  and seed (stale DataRater runs among them, if any) and on a stale copy of a current one."""
  from datarater.errors import ConfigError
  from experiments.reproduce.core import check_finished
  folder, runs = folder_of('noisy_labels'), grid('noisy_labels')
  verdicts = []
  for run in trained(runs):
    if run.setting != NOISY:
      continue
    config = run_config(folder, list(runs), run, 0)
    try:
      check_finished(config, run_dir(folder, run, 0))
      refused = False
    except ConfigError:
      refused = True
    stale = bool(stale_fields(folder, runs, run, 0) or data_problems(folder, runs, run, 0))
    verdicts.append((run.method, refused, stale))
  copy, copied = copy_settings(tmp_path, 'noisy_labels', NOISY)
  uniform = find(copied, NOISY, 'uniform')
  edit(os.path.join(run_dir(copy, uniform, 0), 'fingerprint.json'),
       lambda f: f['config'].update(num_steps=999))
  with pytest.raises(ConfigError, match='config.num_steps'):
    check_finished(run_config(copy, copied, uniform, 0), run_dir(copy, uniform, 0))
  verdicts.append(('uniform, stale copy', True, bool(stale_fields(copy, copied, uniform, 0))))
  assert len(verdicts) > 10 and any(not refused for _, refused, _ in verdicts)
  assert [v for v in verdicts if v[1] != v[2]] == [], verdicts


def data_sample(every: bool = False) -> list:
  """(suite, run, seed) of the committed runs whose data the data check re-hashes.

  Default: one run (the first in grid order, its lowest seed) per data recipe: the recorded
  data config less its corruption rates and imbalance factor (12 recipes, 12 loads; MNIST-1D
  generation takes about 1.6 s a seed here). every=True: one per distinct (data config, seed),
  159 loads, about a minute and a half.
  """
  out, seen = [], set()
  for name in COMMITTED:
    for run, seed in each_run(name):
      if callable(run.config):
        continue
      data = dict(recorded_config(run_dir(folder_of(name), run, seed))['data'])
      if every:
        key = (json.dumps(data, sort_keys=True), seed)
      else:
        key = json.dumps({k: v for k, v in data.items()
                          if k not in ('corruption_rates', 'imbalance')}, sort_keys=True)
      if key not in seen:
        seen.add(key)
        out.append((name, run, seed))
  return out


def test_committed_data_hashes_are_todays_data():
  """data_problems on one committed run per data recipe (data_sample); arm_problems ties every
  other run of the same data config and seed to one data_sha256. REPRODUCE_ROWS_ALL_DATA=1
  re-hashes every (data config, seed) instead."""
  todo = data_sample(every=bool(os.environ.get('REPRODUCE_ROWS_ALL_DATA')))
  assert todo
  problems = [f'{name}: {p}' for name, run, seed in todo
              for p in data_problems(folder_of(name), grid(name), run, seed)]
  assert not problems, report(problems)


# --------------------------------------------------- the checks fail on broken copies


def copy_settings(tmp_path, name: str, *settings: str) -> tuple:
  """A copy of the committed runs of `settings` of suite `name` under tmp_path/<name>/cpu (same
  tail, so rater_from tails compare) and the grid restricted to those settings."""
  folder = str(tmp_path / name / SCALE)
  for setting in settings:
    shutil.copytree(os.path.join(folder_of(name), 'runs', slug(setting)),
                    os.path.join(folder, 'runs', slug(setting)))
  return folder, [r for r in grid(name) if r.setting in settings]


def find(runs, setting: str, method: str):
  return next(r for r in runs if (r.setting, r.method) == (setting, method))


def edit(path: str, change) -> None:
  """Rewrites the JSON file at `path` with change(dict) applied in place."""
  data = read(path)
  change(data)
  with open(path, 'w') as f:
    json.dump(data, f)


def test_break_method_name(tmp_path):
  """A directory holding another method's run: the fingerprint says uniform where the STORM
  row's run should be; and a summary from another method."""
  folder, runs = copy_settings(tmp_path, 'noisy_labels', NOISY)
  storm = find(runs, NOISY, 'STORM')
  assert row_problems(folder, runs, storm, 0) == []
  assert stale_fields(folder, runs, storm, 0) == []
  workdir = run_dir(folder, storm, 0)
  edit(os.path.join(workdir, 'fingerprint.json'),
       lambda f: f['config']['method'].update(name='uniform'))
  assert any('method.name' in p for p in row_problems(folder, runs, storm, 0))
  assert any(d.startswith('method.name:') for d in stale_fields(folder, runs, storm, 0))
  edit(os.path.join(workdir, 'summary.json'), lambda s: s.update(method='mwn'))
  assert any('summary method' in p for p in row_problems(folder, runs, storm, 0))


def test_break_storm_row_with_a_filtered_retrain(tmp_path):
  """The review's finding: the STORM row (label without 'filter') with a filtered phase is
  caught; 'STORM filter' without one is caught too."""
  folder, runs = copy_settings(tmp_path, 'noisy_labels', NOISY)
  storm, storm_filter = find(runs, NOISY, 'STORM'), find(runs, NOISY, 'STORM filter')
  assert row_problems(folder, runs, storm_filter, 0) == []
  filtered = read(os.path.join(run_dir(folder, storm_filter, 0), 'summary.json'))['phases']
  edit(os.path.join(run_dir(folder, storm, 0), 'summary.json'),
       lambda s: s['phases'].update(filtered=filtered['filtered']))
  assert any('promises no filtered retraining' in p for p in row_problems(folder, runs, storm, 0))
  edit(os.path.join(run_dir(folder, storm_filter, 0), 'summary.json'),
       lambda s: [s['phases'].pop(p) for p in FILTERED_PHASES])
  assert any('promises a filtered retraining' in p
             for p in row_problems(folder, runs, storm_filter, 0))


def test_break_discard_fraction(tmp_path):
  """A 'discard 25%' row whose run discarded 50%: the override check, the label check and the
  staleness check each fail; a summary that used another fraction than its config fails too."""
  setting = 'digits symmetric 40%'
  folder, runs = copy_settings(tmp_path, 'discard_auto', setting)
  row = find(runs, setting, 'DataRater, discard 25%')
  assert row_problems(folder, runs, row, 1) == []
  workdir = run_dir(folder, row, 1)
  edit(os.path.join(workdir, 'fingerprint.json'),
       lambda f: f['config']['method'].update(discard_fraction=0.5))
  problems = row_problems(folder, runs, row, 1)
  assert any(p.endswith('method.discard_fraction = 0.5, the suite sets 0.25') for p in problems)
  assert any('promises discard 0.25' in p for p in problems)
  assert any(d.startswith('method.discard_fraction: recorded 0.5, today 0.25')
             for d in stale_fields(folder, runs, row, 1))
  edit(os.path.join(workdir, 'fingerprint.json'),
       lambda f: f['config']['method'].update(discard_fraction=0.25))
  edit(os.path.join(workdir, 'summary.json'), lambda s: s.update(discard_fraction=0.1))
  assert any('summary discard_fraction 0.1' in p for p in row_problems(folder, runs, row, 1))


def test_break_data_sha256_seed_and_paired_arms(tmp_path):
  """An arm on other data, another seed or unpaired arms: the pairing check fails; the data
  check fails on a data_sha256 that is not today's data."""
  folder, runs = copy_settings(tmp_path, 'noisy_labels', NOISY)
  assert pairing_problems(folder, runs, NOISY, 2) == []
  datarater = find(runs, NOISY, 'DataRater')
  fingerprint = os.path.join(run_dir(folder, datarater, 2), 'fingerprint.json')
  assert data_problems(folder, runs, find(runs, NOISY, 'uniform'), 2) == []
  edit(fingerprint, lambda f: f.update(data_sha256='0' * 64))
  assert any('data_sha256 differs' in p for p in pairing_problems(folder, runs, NOISY, 2))
  assert data_problems(folder, runs, datarater, 2) != []
  edit(fingerprint, lambda f: f['config'].update(paired_arms=False, seed=1))
  problems = pairing_problems(folder, runs, NOISY, 2)
  assert any('paired_arms=False' in p for p in problems)
  assert any('seed 1 in directory seed2' in p for p in problems)


def test_break_model_and_uniform_arm(tmp_path):
  """An arm with another model (other initial parameters) and a paired uniform arm whose result
  is not the uniform run's (not the same initialisation or data order) are caught."""
  folder, runs = copy_settings(tmp_path, 'noisy_labels', NOISY)
  assert arm_problems(folder, runs, 0) == [] and pairing_problems(folder, runs, NOISY, 0) == []
  aum = find(runs, NOISY, 'AUM filter')
  edit(os.path.join(run_dir(folder, aum, 0), 'summary.json'),
       lambda s: s['phases']['uniform'].update(test_loss=s['phases']['uniform']['test_loss'] + 1e-3)
       )
  assert any('uniform arm digits symmetric 40% | AUM filter [uniform]' in p
             for p in arm_problems(folder, runs, 0))
  edit(os.path.join(run_dir(folder, find(runs, NOISY, 'L2RW'), 0), 'fingerprint.json'),
       lambda f: f['config']['model']['kwargs'].update(hidden=[128, 128]))
  assert any('model.kwargs.hidden' in p for p in pairing_problems(folder, runs, NOISY, 0))


def test_break_stale_config(tmp_path):
  """A committed run made with another config (steps, learning rate) is named stale, field by
  field; one made before a field existed shows it as absent."""
  folder, runs = copy_settings(tmp_path, 'noisy_labels', NOISY)
  uniform = find(runs, NOISY, 'uniform')
  assert stale_fields(folder, runs, uniform, 0) == []
  edit(os.path.join(run_dir(folder, uniform, 0), 'fingerprint.json'),
       lambda f: (f['config'].update(num_steps=500),
                  f['config']['optimizer'].update(learning_rate=0.01),
                  f['config']['optimizer'].pop('eps_root')))
  assert stale_fields(folder, runs, uniform, 0) == [
      'num_steps: recorded 500, today 1000',
      'optimizer.eps_root: recorded \'(absent)\', today 1e-08',
      'optimizer.learning_rate: recorded 0.01, today 0.001']


def test_break_compute_matched_steps(tmp_path):
  """A compute-matched row whose steps are not the matched method's FLOPs: caught."""
  folder, runs = copy_settings(tmp_path, 'noisy_labels', NOISY)
  matched = find(runs, NOISY, 'uniform, FLOPs of L2RW')
  assert row_problems(folder, runs, matched, 0) == []
  edit(os.path.join(run_dir(folder, matched, 0), 'fingerprint.json'),
       lambda f: f['config'].update(num_steps=f['config']['num_steps'] + 1))
  assert any('matched_steps' in p for p in row_problems(folder, runs, matched, 0))


def test_break_reused_rater(tmp_path):
  """A fixed-fraction DataRater run that reused another seed's rater, or one trained on other
  data, is caught; so is a uniform arm that is not the preset's references' uniform run (another
  setting)."""
  auto, fixed, refs = ('text mixed discard auto', 'text mixed discard 50%',
                       'text mixed references')
  folder, runs = copy_settings(tmp_path, 'datarater_filtering', auto, fixed, refs)
  row = find(runs, fixed, 'DataRater')
  assert row_problems(folder, runs, row, 0) == [] and pairing_problems(folder, runs, fixed, 0) == []
  assert arm_problems(folder, runs, 0) == []
  edit(os.path.join(run_dir(folder, row, 0), 'fingerprint.json'),
       lambda f: f['config']['method'].update(
           rater_from=f['config']['method']['rater_from'].replace('seed0', 'seed1')))
  assert any('rater_from' in p for p in row_problems(folder, runs, row, 0))
  edit(os.path.join(run_dir(folder, find(runs, refs, 'uniform'), 0), 'summary.json'),
       lambda s: s['phases']['train'].update(test_accuracy=0.5))
  assert any(f'{refs} | uniform [train]' in p and f'{auto} | DataRater [uniform]' in p
             for p in arm_problems(folder, runs, 0))
  edit(os.path.join(run_dir(folder, find(runs, auto, 'DataRater'), 0), 'fingerprint.json'),
       lambda f: f.update(data_sha256='0' * 64))
  assert any('whose rater it reuses' in p for p in pairing_problems(folder, runs, fixed, 0))
  assert any('same data config and seed' in p for p in arm_problems(folder, runs, 0))


def test_break_coverage(tmp_path):
  """An orphan directory (a label the grid no longer has), a missing seed and a derived row with
  a directory of its own are caught; so is a table whose seed count is not the runs'."""
  folder, runs = copy_settings(tmp_path, 'noisy_labels', NOISY)
  assert coverage_problems(folder, runs) == []
  runs_dir = os.path.join(folder, 'runs', slug(NOISY))
  shutil.copytree(os.path.join(runs_dir, 'storm'), os.path.join(runs_dir, 'storm_old_label'))
  shutil.rmtree(os.path.join(runs_dir, 'l2rw', 'seed9'))
  shutil.copytree(os.path.join(runs_dir, 'uniform'),
                  os.path.join(runs_dir, slug('uniform (early-stopped on validation)')))
  table = tmp_path / 'table.csv'
  table.write_text('setting,method,seeds\n' + ''.join(f'"{r.setting}","{r.method}",10\n'
                                                       for r in runs))
  problems = coverage_problems(folder, runs, str(table))
  assert any('storm_old_label/seed0: a run directory of no row' in p for p in problems)
  assert any('different numbers of seeds' in p and "'L2RW': 9" in p for p in problems)
  assert any('has a run directory of its own' in p for p in problems)
  assert any("'L2RW'): 10 seeds, 9 committed runs" in p for p in problems)


def test_break_copied_curve(tmp_path):
  """linear_regression (no fingerprint): a row holding another row's summary is caught."""
  folder, runs = copy_settings(tmp_path, 'linear_regression', 'clean')
  assert curve_problems(folder, runs, 'clean', 0) == []
  shutil.copy(os.path.join(run_dir(folder, find(runs, 'clean', 'uniform'), 0), 'summary.json'),
              os.path.join(run_dir(folder, find(runs, 'clean', 'extremes'), 0), 'summary.json'))
  assert any("'extremes' has the curve of 'uniform'" in p
             for p in curve_problems(folder, runs, 'clean', 0))
