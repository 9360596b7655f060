"""`train_and_evaluate(config, workdir)`: the library entry point of every run."""

from __future__ import annotations

import json
import os
import shutil

from datarater.data import load_dataset
from datarater.errors import ConfigError
from datarater.train import plots
from datarater.train.loop import Context
from datarater.train.pipeline import Pipeline, run_pipeline, single
from datarater.train.rundir import RunDir, run_metadata
from datarater.train.sharding import make_mesh
from datarater.train.task import make_task
from datarater.train.validate import method_module, validate


def prepare(config):
  """Validates the config and builds data, task and pipeline; writes nothing.

  The method is looked up by name (`datarater.methods.<config.method.name>`);
  its `make(config, task, dataset)` returns a Method (one phase 'train') or a
  Pipeline.

  Raises:
    ConfigError / DataError (one-line messages) on bad input.
  """
  validate(config)
  dataset = load_dataset(config.data, config.seed)
  task = make_task(config, dataset.info)
  made = method_module(config.method.name).make(config, task, dataset)
  pipeline = made if isinstance(made, Pipeline) else single(made, config.num_steps)
  return dataset, task, pipeline


# Fields a resumed run may change: how long it trains and how often it reports.
RESUMABLE_FIELDS = ('num_steps', 'log_every', 'eval_every', 'checkpoint_every', '_run')

__all__ = ['ConfigError', 'prepare', 'train_and_evaluate']


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
  dataset, task, pipeline = prepare(config)
  check_resume_config(config, workdir)
  created = not os.path.exists(workdir)
  try:
    run = RunDir(workdir)
    run.write_config(config, run_metadata())
    ctx = Context(config, dataset, run, make_mesh())
    summary = run_pipeline(ctx, task, pipeline)
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
