"""k steps per dispatch (config.steps_per_dispatch, a lax.scan over k prefetched
batches) gives exactly the metrics and checkpoints of one step per dispatch."""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import load_config
from datarater.errors import ConfigError
from datarater.run import train_and_evaluate


def _checkpoint(workdir, phase, step):
  """(state arrays as numpy, ledger without wall time) of one checkpoint."""
  out = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints', phase)).restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                    ledger=ocp.args.JsonRestore(), data=ocp.args.JsonRestore()))
  ledger = {k: v for k, v in out.ledger.items() if k != 'wall_seconds'}
  return out.state, ledger, out.data


def _rows(workdir):
  return [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]


@pytest.mark.parametrize('name', ['uniform', 'kl_dro'])
def test_k_steps_per_dispatch_equal_one(tmp_path, name):
  """Smoke: 6 steps, logs at 2/4/6, evaluations and checkpoints at 3/6: with
  k=8 the dispatches are cut at 2, 3, 4 and 6 (lengths 2, 1, 1, 2)."""
  runs = {}
  for k in (1, 8):
    config = load_config(name)
    config.steps_per_dispatch = k
    train_and_evaluate(config, str(tmp_path / str(k)))
    runs[k] = str(tmp_path / str(k))
  assert _rows(runs[1]) == _rows(runs[8])
  for step in (3, 6):
    (a, la, da), (b, lb, db) = (_checkpoint(runs[k], 'train', step) for k in (1, 8))
    assert la == lb and da == db == {'next_index': step}
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_steps_per_dispatch_must_be_positive(tmp_path):
  config = load_config('uniform')
  config.steps_per_dispatch = 0
  with pytest.raises(ConfigError, match='config.steps_per_dispatch must be an integer >= 1'):
    train_and_evaluate(config, str(tmp_path / 'run'))
