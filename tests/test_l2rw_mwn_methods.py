"""L2RW and Meta-Weight-Net as training-loop methods (datarater.meta.l2rw / mwn `make`).

Smoke runs check the run-directory contract (scores_train.npy included); one
step of each method is compared with the tested math functions called
independently on the same batch; bad hyperparameters fail with one line.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import load_config
from datarater.data import sampler
from datarater.methods import l2rw, mwn
from datarater.train import ConfigError, prepare, train_and_evaluate
from datarater.train.state import init_train_state


def _setup(name):
  """Smoke config, task, method, fresh states and one batch (train + meta)."""
  config = load_config(name)
  dataset, _, task, method = prepare(config)
  key = jax.random.key(3)
  train_state = init_train_state(task, key)
  method_state = jax.jit(method.init)(jax.random.key(4), train_state)
  idx = sampler.sequential_indices(dataset.train.size, method.train_batch_size, 0, 0)
  midx = sampler.sequential_indices(dataset.meta.size, method.meta_batch_size, 0, 0, sampler.META)
  batch = jax.tree.map(jnp.asarray, dict(sampler.gather(dataset.train, idx),
                                         meta=sampler.gather(dataset.meta, midx)))
  return config, dataset, task, method, train_state, method_state, batch


def _apply(task, train_state, loss_fn):
  """Independent model update: one task.optimizer step on loss_fn(params)."""
  grads = jax.grad(loss_fn)(train_state.params)
  updates, _ = task.optimizer.update(grads, train_state.opt_state, train_state.params)
  return optax.apply_updates(train_state.params, updates)


def _assert_tree_close(a, b, **tol):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol), a, b)


def _max_abs_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_l2rw_smoke_digits(run_smoke):
  summary, rows, workdir = run_smoke('l2rw', scores=True)
  assert summary['method'] == 'l2rw'
  assert summary['ledger']['gradient_evaluations'] == 6 * (3 * 16 + 16)
  assert summary['score_auroc'] is None or 0.0 <= summary['score_auroc'] <= 1.0
  assert 0.0 < summary['scored_fraction'] <= 1.0 and len(summary['source_mean_score']) == 5
  logged = [r for r in rows if 'l2rw/zero_fraction' in r]
  assert logged and all(0.0 <= r['l2rw/zero_fraction'] <= 1.0 and np.isfinite(r['train/ess'])
                        for r in logged)
  assert os.path.exists(os.path.join(workdir, 'plots', 'scores_by_corruption.png'))


def test_mwn_smoke_digits(run_smoke):
  summary, rows, workdir = run_smoke('mwn', scores=True)
  assert summary['method'] == 'mwn'
  v = np.asarray(summary['weight_function']['weight'])
  assert v.shape == (21,) and np.all((v > 0) & (v < 1))
  scores = np.load(os.path.join(workdir, 'scores_train.npy'))
  assert np.all((scores > 0) & (scores < 1))
  assert all(0 < r['mwn/mean_weight'] < 1 for r in rows if 'mwn/mean_weight' in r)
  assert os.path.exists(os.path.join(workdir, 'plots', 'weight_function.png'))


def test_l2rw_smoke_text(run_smoke):
  summary, _, _ = run_smoke('l2rw', 'dataset=stdlib_text,smoke', scores=True)
  assert summary['dataset'] == 'stdlib_text' and 0 < summary['test_loss'] < 10


def test_l2rw_step_uses_l2rw_weights():
  config, dataset, task, method, ts, table, batch = _setup('l2rw')
  train = l2rw.train_part(batch)
  new_ts, new_table, metrics = jax.jit(method.step)(ts, table, batch, jax.random.key(0))

  @jax.jit
  def independent(ts, train, meta):
    """The tested math on the same batch, then one optimizer step (and a uniform one)."""
    kw = dict(per_example_loss_fn=task.per_example_loss, inner_lr=config.optimizer.learning_rate)
    w = l2rw.l2rw_weights(ts.params, train, meta, **kw)
    u = l2rw.l2rw_scores(ts.params, train, meta, **kw)
    expected = _apply(task, ts, lambda p: jnp.sum(w * task.per_example_loss(p, train)))
    uniform = _apply(task, ts, lambda p: jnp.mean(task.per_example_loss(p, train)))
    return w, u, expected, uniform

  w, u, expected, uniform = jax.device_get(independent(ts, train, batch['meta']))
  assert 0 < int(np.sum(w == 0)) < w.shape[0]  # a mixed batch: some weights clipped to 0
  _assert_tree_close(new_ts.params, expected, rtol=1e-5, atol=1e-6)
  assert _max_abs_diff(expected, uniform) > 1e-4  # the comparison can tell weightings apart

  idx = np.asarray(train['index'])
  np.testing.assert_allclose(np.asarray(new_table.scores)[idx], np.asarray(u), rtol=1e-4,
                             atol=1e-9)
  pos = np.maximum(np.asarray(new_table.scores)[idx], 0)
  np.testing.assert_allclose(pos / pos.sum(), w, rtol=1e-4, atol=1e-7)
  count = np.asarray(new_table.count)
  assert count[idx].min() == 1 and count.sum() == len(idx)
  assert float(metrics['l2rw/zero_fraction']) == pytest.approx(float(np.mean(w == 0)))


def test_mwn_step_updates_weight_net_and_uses_its_weights():
  config, dataset, task, method, ts, state, batch = _setup('mwn')
  train = l2rw.train_part(batch)
  new_ts, new_state, metrics = jax.jit(method.step)(ts, state, batch, jax.random.key(0))
  m = config.method
  net = mwn.WeightNet(m.wnet_hidden)

  @jax.jit
  def independent(ts, state, train, meta):
    """The tested `mwn_step` on the same batch, then one optimizer step on `weighted_loss`."""
    weights, wnet, _, _ = mwn.mwn_step(
        state.wnet_params, state.wnet_opt_state, ts.params, train, meta,
        per_example_loss_fn=task.per_example_loss,
        wnet_optimizer=mwn.make_wnet_optimizer(m.wnet_learning_rate, m.wnet_weight_decay),
        inner_lr=config.optimizer.learning_rate, weight_fn=mwn.batch_normalized(net.apply))
    expected = _apply(task, ts, lambda p: mwn.weighted_loss(
        p, train, weights, per_example_loss_fn=task.per_example_loss))
    v = net.apply(wnet, task.per_example_loss(ts.params, train))  # raw V(L_i; Theta_new)
    return weights, wnet, expected, v

  weights, wnet, expected, v = jax.device_get(independent(ts, state, train, batch['meta']))
  assert _max_abs_diff(new_state.wnet_params, state.wnet_params) > 0  # Theta moved
  _assert_tree_close(new_state.wnet_params, wnet, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(float(np.mean(weights)), 1.0, rtol=1e-5)  # batch-normalized
  _assert_tree_close(new_ts.params, expected, rtol=1e-5, atol=1e-6)

  recorded = np.asarray(new_state.table.scores)[np.asarray(train['index'])]
  assert np.all((recorded > 0) & (recorded < 1))
  np.testing.assert_allclose(recorded, np.asarray(v), rtol=1e-5)
  assert float(metrics['mwn/mean_weight']) == pytest.approx(float(np.mean(v)), rel=1e-5)


@pytest.mark.parametrize('name, field, value', [
    ('l2rw', 'inner_lr', -0.1),
    ('l2rw', 'mode', 'backwards'),
    ('mwn', 'wnet_hidden', 0),
    ('mwn', 'wnet_learning_rate', 0.0),
    ('mwn', 'meta_batch_size', -16),
])
def test_bad_hyperparameter_is_one_line(tmp_path, name, field, value):
  config = load_config(name)
  config.method[field] = value
  workdir = tmp_path / 'run'
  with pytest.raises(ConfigError) as err:
    train_and_evaluate(config, str(workdir))
  message = str(err.value)
  assert f'config.method.{field}' in message and '\n' not in message
  assert not workdir.exists()
