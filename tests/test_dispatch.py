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
from datarater.train import loop


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
  flops = {}
  for step in (3, 6):
    (a, la, da), (b, lb, db) = (_checkpoint(runs[k], 'train', step) for k in (1, 8))
    assert la == lb and da == db == {'next_index': step}
    flops[step] = la['flops']
    assert la['segments'][-1]['flops'] == la['flops']
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  # Every step is counted at the one-step program's FLOPs, also the steps run before that
  # program finished compiling in the background (loop._StepCost).
  assert 2 * flops[3] == flops[6] > 0


def test_steps_per_dispatch_must_be_a_count_or_auto(tmp_path):
  for bad in (-1, -8):   # (ml_collections refuses a non-integer for this int field itself)
    config = load_config('uniform')
    config.steps_per_dispatch = bad
    with pytest.raises(ConfigError, match='config.steps_per_dispatch must be an integer >= 0'):
      train_and_evaluate(config, str(tmp_path / 'run'))
  assert not os.path.exists(tmp_path / 'run')


def test_automatic_dispatch_rule():
  """AUTO: the largest divisor of the intervals and the steps left (one program), within the
  step and byte caps."""
  auto, fixed = {'steps_per_dispatch': loop.AUTO}, {'steps_per_dispatch': 8}
  assert loop.dispatch_steps(auto, 1500, (50, 500, 100)) == 50
  assert loop.dispatch_steps(auto, 1000, (50, 500, 100)) == 50
  assert loop.dispatch_steps(auto, 3000, (500, 1000)) == 100   # 500 capped to its divisor 100
  assert loop.dispatch_steps(auto, 1500, (50, 500, 100), batch_bytes=2 << 20) == 25
  assert loop.dispatch_steps(auto, 1501, (50, 500, 100)) == 1    # no common divisor
  assert loop.dispatch_steps(fixed, 1500, (50, 500, 100)) == 8


def test_automatic_dispatch_equals_one_step_dispatch(tmp_path, monkeypatch):
  """AUTO scans the smoke run (12 steps, logs and evaluations every 4, checkpoints every 12:
  dispatches of 4); its metrics and final checkpoint are those of one step per dispatch, and
  the scanned program ran."""
  runs, lengths = {}, []
  real_scan = loop._scan
  monkeypatch.setattr(loop, '_scan', lambda guarded, n: lengths.append(n) or real_scan(guarded, n))
  for k in (1, loop.AUTO):
    config = load_config('uniform')
    config.num_steps, config.log_every, config.eval_every, config.checkpoint_every = 12, 4, 4, 12
    config.steps_per_dispatch = k
    train_and_evaluate(config, str(tmp_path / str(k)))
    runs[k] = str(tmp_path / str(k))
  assert lengths == [4]
  assert _rows(runs[1]) == _rows(runs[loop.AUTO])
  (a, la, _), (b, lb, _) = (_checkpoint(runs[k], 'train', 12) for k in (1, loop.AUTO))
  assert la == lb
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_dispatch_batches_stack_each_dispatchs_steps():
  """The pipeline yields, per (first step, steps) span, make_batch of each of its steps
  stacked on a leading axis (one step: the batch itself), in order."""
  from datarater.data import pipeline
  make = lambda s: {'x': np.full((3, 2), s, np.float32), 'meta': {'i': np.arange(3) + 10 * s}}
  spans = loop._spans(4, 11, 3, (5,))   # cut at 5 and 10, at most 3 steps each
  assert spans == [(4, 1), (5, 3), (8, 2), (10, 1)]
  got = list(pipeline.dispatch_batches(make, spans))
  assert len(got) == len(spans)
  for (step, n), batch in zip(spans, got):
    if n == 1:
      np.testing.assert_array_equal(batch['x'], make(step)['x'])
    else:
      for i in range(n):
        np.testing.assert_array_equal(batch['x'][i], make(step + i)['x'])
        np.testing.assert_array_equal(batch['meta']['i'][i], make(step + i)['meta']['i'])
