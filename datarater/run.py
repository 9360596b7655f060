"""The runner: looks a method up by name and runs its pipeline into a run directory.

`train_and_evaluate(config, workdir)` is the library entry point of every run:
it validates the config (`validate`), loads the data, builds the task and
finds `datarater.methods.<config.method.name>` by name (`method_module`),
checks that a re-run continues the run in `workdir` exactly (`check_resume`:
fingerprint.json holds the config and a hash of the data), and runs the
method's phases with the framework (datarater.train). This is the only module
that knows methods exist: it sits above datarater.methods, and the framework
imports no method. The experiments choose methods by what each declares
(`declaration`, `methods_with`), so no list of methods is kept anywhere.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil

import numpy as np

import datarater.methods
from datarater.data import load_dataset
from datarater.errors import ConfigError, DataError, Diverged, WorkdirError, require
from datarater.methods import FAMILIES, INFORMATION, Declares, _filter
from datarater.report import plots
from datarater.train import sharding
from datarater.train.context import Context
from datarater.train.loop import check_batch_sizes, check_dispatch
from datarater.train.pipeline import Pipeline, run_pipeline, single
from datarater.train.rundir import RunDir, check_workdir, run_metadata
from datarater.train.task import make_task
from datarater.train.validate import validate_shared

__all__ = ['RESUMABLE_FIELDS', 'changed_fields', 'check_resume', 'data_fingerprint', 'declaration',
           'make_mesh', 'method_module', 'method_names', 'methods_with', 'prepare',
           'train_and_evaluate', 'validate']


# ----------------------------------------------------------------------------- methods by name


def method_names() -> list[str]:
  """Registered methods: the modules of `datarater.methods` (without importing them)."""
  return sorted(m.name for m in pkgutil.iter_modules(datarater.methods.__path__)
                if not m.name.startswith('_'))


def method_module(name: str):
  """The module `datarater.methods.<name>`, found by name (no list of methods is kept).

  Raises:
    ConfigError: no such method.
  """
  names = method_names()
  require(name in names, 'method.name', f'one of {names}', name)
  return importlib.import_module(f'datarater.methods.{name}')


def declaration(name: str) -> Declares:
  """What method `name` declares: its module's `DECLARES` dict as a `Declares`.

  Raises:
    ConfigError: no such method.
    TypeError: the module declares nothing, or a field Declares does not have.
    ValueError: a family not in FAMILIES, or information not in INFORMATION.
  """
  module = method_module(name)
  fields = getattr(module, 'DECLARES', None)
  if not isinstance(fields, dict):
    raise TypeError(f'{module.__name__} has no DECLARES = dict(family=..., label=..., ...) '
                    '(the fields of datarater.methods.Declares; README: "Add a method")')
  declared = Declares(**fields)
  if declared.family not in FAMILIES:
    raise ValueError(f'{module.__name__}: DECLARES family={declared.family!r} is not one of '
                     f'{FAMILIES}')
  if declared.information not in INFORMATION:
    raise ValueError(f'{module.__name__}: DECLARES information={declared.information!r} is not '
                     f'one of {INFORMATION}')
  return declared


def methods_with(**fields) -> list[str]:
  """Registered methods whose declaration matches `fields`, in table order.

  Table order: by family (in FAMILIES order), then by name. A field given a
  tuple, list or set matches any of its values:
  `methods_with(scores=True)`, `methods_with(family=('rule', 'pruning'))`.

  Raises:
    TypeError: a field Declares does not have.
  """
  unknown = sorted(set(fields) - set(Declares._fields))
  if unknown:
    raise TypeError(f'methods_with: no Declares field {unknown}; fields: {Declares._fields}')
  wanted = {k: v if isinstance(v, (tuple, list, set, frozenset)) else (v,)
            for k, v in fields.items()}
  declared = {name: declaration(name) for name in method_names()}
  return sorted((name for name, d in declared.items()
                 if all(getattr(d, k) in v for k, v in wanted.items())),
                key=lambda name: (FAMILIES.index(declared[name].family), name))


def validate(config) -> None:
  """Raises ConfigError for a bad shared field (datarater.train.validate) or method name.

  The method's own `config.method.*` fields are checked by its `make`.
  """
  validate_shared(config)
  method_module(config.method.name)


# ----------------------------------------------------------------------------- one run


def make_mesh(config):
  """The device mesh of `config.mesh` (population axis size, default 1).

  Raises:
    ConfigError: config.mesh.population does not divide the device count.
  """
  mesh = config.get('mesh')
  return sharding.make_mesh(mesh.get('population', 1) if mesh else 1)


def prepare(config):
  """Validates the config and builds data, task and pipeline; writes nothing.

  The method is looked up by name (`method_module`); its
  `make(config, task, dataset)` returns a Method (one phase 'train') or a
  Pipeline.

  Raises:
    ConfigError / DataError (one-line messages) on bad input.
  """
  validate(config)
  check_dispatch(config)
  make_mesh(config)
  dataset = load_dataset(config.data, config.seed)
  task = make_task(config, dataset.info)
  made = method_module(config.method.name).make(config, task, dataset)
  pipeline = made if isinstance(made, Pipeline) else single(made, config.num_steps)
  for phase in pipeline.phases:   # phases built later (filters) are checked when they start
    if not callable(phase.method):
      check_batch_sizes(phase.method, dataset, phase.trains_model)
  return dataset, task, pipeline


# Fields a resumed run may change: how long it trains, how often it reports, what
# it does on a non-finite value (a stopped run may go on with 'skip'), and how
# steps are dispatched and placed (neither changes the results).
RESUMABLE_FIELDS = ('num_steps', 'log_every', 'eval_every', 'eval_test', 'checkpoint_every',
                    'nonfinite', 'steps_per_dispatch', 'mesh', '_run')
# Fields of config.data that say where the data lives, not what it is (the data fingerprint
# checks that): data.store (a run may be resumed with the other store).
RESUMABLE_DATA_FIELDS = ('store',)


FINGERPRINT_BYTES = 64 << 20


def data_fingerprint(dataset) -> str:
  """SHA-256 of every array (values, dtype and shape) of the train, meta, valid and test splits,
  read about FINGERPRINT_BYTES at a time (a split on disk, `datarater.data.windows.Rows`, is
  never read whole; the hash is that of the whole array's bytes either way)."""
  h = hashlib.sha256()
  for split in (dataset.train, dataset.meta, dataset.valid, dataset.test):
    for a in split:
      h.update(f'{a.dtype}{a.shape}'.encode())
      rows = max(1, FINGERPRINT_BYTES // max(1, a.dtype.itemsize * int(np.prod(a.shape[1:]))))
      for start in range(0, len(a), rows):
        h.update(np.ascontiguousarray(a[start:start + rows]).data)
  return h.hexdigest()


def _latest_steps(run: RunDir, pipeline: Pipeline) -> dict:
  """{phase: newest checkpointed step} (0 when a phase has no checkpoint)."""
  out = {}
  for phase in pipeline.phases:
    folder = run.shared('checkpoints', phase.name)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    out[phase.name] = max((int(n) for n in names if n.isdigit()), default=0)
  return out


def upgrade_recorded(old: dict) -> dict:
  """A config dict recorded by an older version, with the fields changed since as it ran.

  * method.filter_mode (added with the one filter of datarater/methods/_filter.py):
    a recorded method with a discard_fraction filtered as
    `_filter.recorded_mode` says, except the filters whose checkpointed score
    table held "higher = corrupted" values (`_filter.RAW_TABLE_FILTERS`): those
    stay unmatched, so their resume is refused rather than filtered the wrong way;
  * data.generator_seed (added for the MNIST-1D calibration): a recorded config
    without it generated MNIST-1D from the run's seed, the -1 of today;
  * data.valid_mode (added with clean validation rows): a recorded config without it
    corrupted its validation rows like the training rows, the 'noisy' of today;
  * data.tokenizer of dataset=text (added with tokenizer files): without it a document was
    its bytes, the '' of today;
  * score_filter's method.higher_is_better (removed when every score file
    became higher = keep): True kept the highest scores, as score_filter
    does now, so it is dropped; False stays, and the run differs;
  * DataRater's method.outer_trim_low (added with the two-sided trimmed meta loss): a
    recorded config without it trimmed the high-loss side only, the 0.0 of today;
  * eval_test (added to evaluate the test split at the last step only): a recorded config
    without it evaluated the test split at every evaluation, the 'every' of today;
  * the Mixing Agent's method.pretrain_sources / pretrain_steps (added with continual
    pre-training): a recorded config without them trained from scratch, the () and 0 of today.

  Args:
    old: a recorded config (fingerprint.json's 'config').

  Returns:
    The upgraded dict (a copy where something changed).
  """
  old = {'eval_test': 'every', **old}
  data = old.get('data')
  if isinstance(data, dict):
    added = {'tokenizer': ''} if data.get('name') == 'text' else {}
    old = {**old, 'data': {'generator_seed': -1, 'valid_mode': 'noisy', **added, **data}}
  method = old.get('method')
  if not isinstance(method, dict):
    return old
  method = dict(method)
  if 'discard_fraction' in method and 'filter_mode' not in method:
    if method.get('name') in _filter.RAW_TABLE_FILTERS and method['discard_fraction']:
      return old  # its checkpointed score table is "higher = corrupted": refused, not resumed
    method['filter_mode'] = _filter.recorded_mode(method)
  if method.get('name') == 'score_filter' and method.get('higher_is_better') is True:
    del method['higher_is_better']
  if method.get('name') == 'datarater' and 'outer_trim' in method:
    method.setdefault('outer_trim_low', 0.0)
  if method.get('name') == 'mixing_agent':
    method.setdefault('pretrain_sources', [])
    method.setdefault('pretrain_steps', 0)
  return {**old, 'method': method}


def changed_fields(old: dict, config, ignore) -> list:
  """Top-level config fields (sorted) where `config` differs from a recorded `old` config dict.

  `old` is compared as `upgrade_recorded` reads it.
  """
  old = upgrade_recorded(old)
  new = json.loads(config.to_json_best_effort())
  old, new = ({**d, 'data': {k: v for k, v in d['data'].items() if k not in RESUMABLE_DATA_FIELDS}}
              if isinstance(d.get('data'), dict) else d for d in (old, new))
  return sorted(k for k in set(old) | set(new) if k not in ignore and old.get(k) != new.get(k))


def check_resume(config, dataset, pipeline: Pipeline, run: RunDir) -> None:
  """Refuses a re-run that would not continue the run held in `run` exactly.

  A run stopped by a non-finite value says so again (unless the re-run sets
  nonfinite='skip'). A fresh run (no checkpoint yet) records its config and a
  hash of its data in fingerprint.json; a resume must match both, except for
  RESUMABLE_FIELDS, may not lower num_steps below a checkpointed step, and may
  change num_steps only under a constant learning-rate schedule (the others
  are defined over the total number of steps).

  Raises:
    Diverged, ConfigError, DataError, WorkdirError: one line naming the problem.
  """
  record = run.read_json('diverged.json')
  if record is not None and config.get('nonfinite', 'stop') == 'stop':
    message = record.get('message') if isinstance(record, dict) else None
    if not isinstance(message, str):
      raise WorkdirError(f'{run.shared("diverged.json")} has no message; restore or remove it')
    raise Diverged(message)
  new = json.loads(config.to_json_best_effort())
  latest = _latest_steps(run, pipeline)
  if not any(latest.values()):
    if run.primary:
      run.write_json('fingerprint.json', {'config': new, 'data_sha256': data_fingerprint(dataset)})
  else:
    _check_fingerprint(config, dataset, pipeline, run, run.read_json('fingerprint.json'), latest)
  if record is not None and run.primary:  # only once the re-run is accepted (nonfinite='skip')
    os.remove(run.file('diverged.json'))


def _check_fingerprint(config, dataset, pipeline: Pipeline, run: RunDir, fingerprint, latest):
  """check_resume's comparison of a re-run with the run recorded in fingerprint.json."""
  new = json.loads(config.to_json_best_effort())
  where = f'--workdir={run.path}'
  if fingerprint is None:
    raise WorkdirError(f'{where} holds checkpoints but no fingerprint.json, so it cannot be '
                       'checked to be the same run; use a new workdir')
  if not (isinstance(fingerprint, dict) and isinstance(fingerprint.get('config'), dict)
          and isinstance(fingerprint.get('data_sha256'), str)):
    raise WorkdirError(f'{run.shared("fingerprint.json")} is not a run fingerprint (config and '
                       'data_sha256); restore it or use a new workdir')
  old = fingerprint['config']
  changed = changed_fields(old, config, RESUMABLE_FIELDS)
  if changed:
    raise ConfigError(f'{where} holds a run with different config.{changed[0]} '
                      f'(changed: {", ".join(changed)}); use a new workdir to start a new run')
  if fingerprint['data_sha256'] != data_fingerprint(dataset):
    raise DataError(f'{where} holds a run on different data (the train/meta/valid/test arrays of '
                    f'config.data.name={config.data.name!r} changed); use a new workdir')
  for name, step in latest.items():
    steps = next(p.steps for p in pipeline.phases if p.name == name)
    if step > steps:
      raise ConfigError(f'config.num_steps={config.num_steps}: phase {name!r} of {where} is '
                        f'already checkpointed at step {step}; a run cannot be shortened '
                        '(use a new workdir)')
  if old['num_steps'] != new['num_steps'] and config.optimizer.schedule != 'constant':
    raise ConfigError(f'config.num_steps cannot change from {old["num_steps"]} to '
                      f'{new["num_steps"]} on resume: config.optimizer.schedule='
                      f'{config.optimizer.schedule!r} is defined over the total steps '
                      '(use a new workdir)')


def _start(config, dataset, pipeline, workdir: str) -> RunDir:
  """Opens the run directory and checks the resume in every process.

  Only the primary takes the lock and writes; if any process fails here, all
  raise (the others a one-line WorkdirError naming it), so none waits for a
  peer that has stopped.
  """
  error, run = None, None
  try:
    run = RunDir(workdir, primary=sharding.is_primary())
    check_resume(config, dataset, pipeline, run)
  except (ConfigError, DataError, WorkdirError, Diverged) as e:
    error = e
  failed = [i for i, ok in enumerate(sharding.process_flags(error is None)) if not ok]
  if failed:
    if run is not None:
      if not isinstance(error, Diverged):
        run.remove_if_unresumable()
      run.close()
    raise error or WorkdirError(f'--workdir={workdir}: process {failed[0]} of this run could not '
                                'start (see its error)')
  return run


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains and evaluates `config.method.name` on `config.data.name` into `workdir`.

  Re-running with the same workdir resumes from the latest checkpoints (see
  `check_resume`). One run at a time may use a workdir (its primary process
  holds the lock). A run that fails follows the cleanup rule of
  `RunDir.remove_if_unresumable` (nothing is removed once a checkpoint is on
  disk, nor after a non-finite stop or an interrupt). summary.json is written
  last, so a run that has one has every artifact. In a multi-process run
  every process calls this with the same arguments; only the primary writes
  the run directory's files.

  Returns:
    The summary dict also written to `workdir/summary.json`.

  Raises:
    ConfigError, DataError, WorkdirError: bad input, one line, before anything
      is written.
    Diverged: a non-finite value under config.nonfinite='stop'.
  """
  check_workdir(workdir)
  dataset, task, pipeline = prepare(config)
  primary = sharding.is_primary()
  run = _start(config, dataset, pipeline, workdir)
  if primary:
    plots.preload()  # the closing plot's import overlaps compiling and training
  try:
    run.write_config(config, run_metadata())
    ctx = Context(config, dataset, run, make_mesh(config))
    summary = run_pipeline(ctx, task, pipeline)
    if primary:
      plots.training_curves(run.read_metrics(), run.file('plots', 'training_curves.png'))
    run.close_tensorboard()
    run.write_summary(summary)
  except BaseException as e:
    if not isinstance(e, (KeyboardInterrupt, Diverged)):
      run.remove_if_unresumable()
    raise
  finally:
    run.close()
  if primary:
    print(f'done: test accuracy {summary["test_accuracy"]:.4f}, '
          f'test loss {summary["test_loss"]:.4f}; run directory {workdir}', flush=True)
  return summary
