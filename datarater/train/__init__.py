"""`train_and_evaluate(config, workdir)`: the library entry point of every run."""

from __future__ import annotations

import json
import os
import shutil

from datarater.data import load_dataset
from datarater.train import plots
from datarater.train.loop import Context, base_summary, train_phase
from datarater.train.methods import METHODS
from datarater.train.rundir import RunDir, run_metadata
from datarater.train.sharding import make_mesh
from datarater.train.task import make_task
from datarater.train.validate import ConfigError, validate


def prepare(config):
  """Validates the config and builds data, task and method; writes nothing.

  Raises ConfigError / DataError (one-line messages) on bad input.
  """
  validate(config, METHODS)
  dataset = load_dataset(config.data, config.seed)
  module = METHODS[config.method.name]
  try:
    task = make_task(config, dataset.info)
    method = module.make(config, task, dataset)
  except ConfigError:
    raise
  except ValueError as e:  # hyperparameter checks in factories name their field
    if not str(e).startswith('config.'):
      raise  # a real error, not a bad config value: keep its traceback
    raise ConfigError(str(e).splitlines()[0]) from None
  return dataset, module, task, method


def run_single(ctx: Context, task, method) -> dict:
  """The default pipeline: one phase named 'train'."""
  result = train_phase(ctx, 'train', method, task, ctx.config.num_steps)
  summary = base_summary(ctx, result)
  if method.finalize is not None:
    summary.update(method.finalize(ctx, result.train_state, result.method_state))
  return summary


# Fields a resumed run may change: how long it trains and how often it reports.
RESUMABLE_FIELDS = ('num_steps', 'log_every', 'eval_every', 'checkpoint_every', '_run')


def check_resume_config(config, workdir: str) -> None:
  """Raises ConfigError if `workdir` holds checkpoints of a run with another config.

  Resuming with a different batch size, data, model, optimizer or method would
  silently continue a different experiment; only RESUMABLE_FIELDS may change.
  """
  old_path = os.path.join(workdir, 'config.json')
  if not (os.path.exists(old_path) and os.path.isdir(os.path.join(workdir, 'checkpoints'))):
    return
  with open(old_path) as f:
    old = json.load(f)
  new = json.loads(config.to_json_best_effort())
  changed = sorted(k for k in set(old) | set(new)
                   if k not in RESUMABLE_FIELDS and old.get(k) != new.get(k))
  if changed:
    raise ConfigError(f'--workdir={workdir} holds a run with different config.{changed[0]} '
                      f'(changed: {", ".join(changed)}); use a new workdir to start a new run')


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains and evaluates `config.method.name` on `config.data.name` into `workdir`.

  Re-running with the same workdir resumes from the latest checkpoints.

  Returns:
    The summary dict also written to `workdir/summary.json`.
  """
  dataset, module, task, method = prepare(config)
  check_resume_config(config, workdir)
  created = not os.path.exists(workdir)
  try:
    run = RunDir(workdir)
    run.write_config(config, run_metadata())
    ctx = Context(config, dataset, run, make_mesh())
    pipeline = getattr(module, 'run', run_single)
    summary = pipeline(ctx, task, method)
  except KeyboardInterrupt:
    raise
  except BaseException:
    if created and not os.path.exists(os.path.join(workdir, 'checkpoints')):
      shutil.rmtree(workdir, ignore_errors=True)
    raise
  run.write_summary(summary)
  plots.training_curves(run.read_metrics(), run.file('plots', 'training_curves.png'))
  run.close()
  print(f'done: test accuracy {summary["test_accuracy"]:.4f}, test loss {summary["test_loss"]:.4f}; '
        f'run directory {workdir}', flush=True)
  return summary
