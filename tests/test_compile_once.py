"""The training loop compiles a method's step once per dispatch length and never
retraces it across steps (chex.assert_max_traces counts the traces)."""

import chex
import pytest

from conftest import load_config
from datarater.data import load_dataset
from datarater.methods import kl_dro
from datarater.train.loop import Context, train_phase
from datarater.train.rundir import RunDir
from datarater.train.sharding import make_mesh
from datarater.train.task import make_task


def _phase(tmp_path, k: int, max_traces: int, name: str = 'train'):
  """Runs kl_dro's smoke phase (6 steps, logs at 2/4/6, checkpoints at 3/6) with
  its step wrapped by chex.assert_max_traces(n=max_traces)."""
  config = load_config('kl_dro')
  config.steps_per_dispatch = k
  dataset = load_dataset(config.data, config.seed)
  task = make_task(config, dataset.info)
  method = kl_dro.make(config, task, dataset)
  counted = method._replace(step=chex.assert_max_traces(method.step, n=max_traces))
  ctx = Context(config, dataset, RunDir(str(tmp_path / f'k{k}')), make_mesh())
  try:
    return train_phase(ctx, name, counted, task, config.num_steps), counted
  finally:
    ctx.run.close()


def test_one_step_per_dispatch_traces_the_step_once(tmp_path):
  result, _ = _phase(tmp_path, k=1, max_traces=1)
  assert result.ledger['steps'] == 6


def test_k_steps_per_dispatch_trace_once_per_dispatch_length(tmp_path):
  """k=8 cuts the 6 steps into dispatches of 2, 1, 1, 2 steps: two programs."""
  _phase(tmp_path, k=8, max_traces=2)
  with pytest.raises(AssertionError, match='traced > 1 times'):
    _phase(tmp_path / 'strict', k=8, max_traces=1)   # the check can fail
