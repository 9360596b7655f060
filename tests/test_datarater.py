"""DataRater method: pipeline contract, filtering, population resets, devices."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from conftest import load_config
from datarater.data import load_dataset
from datarater.methods import datarater
from datarater.models.rater import build_rater
from datarater.train.state import init_train_state
from datarater.train.task import make_task
from test_devices import assert_same_rows, run_on


def test_smoke_digits_writes_everything(run_smoke):
  summary, rows, workdir = run_smoke('datarater', scores=True)
  assert {r['phase'] for r in rows} == {'meta_train', 'filtered', 'uniform'}
  for f in ('scores_by_source.png', 'scores_by_corruption.png'):
    assert os.path.exists(os.path.join(workdir, 'plots', f))
  assert 0.0 <= summary['score_auroc'] <= 1.0
  assert len(summary['source_mean_score']) == 5
  c = summary['compute']
  assert c['meta_train_flops'] > 0 and c['baseline_flops'] > 0
  # The filtered phase scores 2x the examples it trains on (rho = 0.5).
  led = summary['filtered']['ledger']
  assert led['examples_processed'] == 2 * led['gradient_evaluations']
  # Total ledger = meta-training + filtered + uniform.
  assert summary['ledger']['flops'] == c['meta_train_flops'] + led['flops'] + c['baseline_flops']


def test_smoke_text(run_smoke):
  summary, _, _ = run_smoke('datarater', 'dataset=stdlib_text,smoke', scores=True)
  assert summary['dataset'] == 'stdlib_text' and summary['score_auroc'] is not None


def _setup(arg='dataset=digits,smoke'):
  config = load_config('datarater', arg)
  data = load_dataset(config.data, 0)
  task = make_task(config, data.info)
  rater = build_rater(config.method.rater, data.info)
  return config, data, task, rater


def test_filter_trains_on_the_top_scored_examples():
  config, data, task, rater = _setup()
  eta = rater.init(jax.random.key(0), data.train.x[:1], data.train.y[:1])['params']
  method = datarater.make_filter(config, task, rater, eta)
  assert method.train_batch_size == 2 * config.batch_size
  idx = np.arange(method.train_batch_size)
  batch = {'x': data.train.x[idx], 'y': data.train.y[idx], 'source': data.train.source[idx],
           'index': idx.astype(np.int32)}
  state = init_train_state(task, jax.random.key(1))
  new_state, _, metrics = jax.jit(method.step)(state, eta, batch, jax.random.key(2))
  scores = np.asarray(rater.apply({'params': eta}, batch['x'], batch['y']))
  top = np.sort(scores)[-config.batch_size:]
  np.testing.assert_allclose(metrics['filter/kept_score_mean'], top.mean(), rtol=1e-5)
  # Same update as uniform training on exactly those examples.
  from datarater.train.state import weighted_update
  keep = np.argsort(-scores, kind='stable')[:config.batch_size]
  sub = {k: v[keep] for k, v in batch.items()}
  ref, _ = weighted_update(task, state, sub, lambda l: jnp.full_like(l, 1 / config.batch_size))
  for a, b in zip(jax.tree.leaves(ref.params), jax.tree.leaves(new_state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_oversampled_batch_size():
  assert datarater.oversampled_batch_size(64, 0.5) == 128
  assert datarater.oversampled_batch_size(64, 0.75) == 256
  assert datarater.oversampled_batch_size(100, 0.1) == 112  # ceil(111.1) = 112


def test_meta_step_matches_independent_unroll_and_staggers_resets():
  """One outer step: eta moves by the mean of per-model outer-Adam updates of each
  model's own unrolled meta-gradient; resets hit one model at a time."""
  import optax
  from datarater.meta import unroll
  from datarater.weighting.scores import batch_softmax
  config, data, task, rater = _setup()
  config.method.population, config.method.reset_period = 2, 4
  method = datarater.make_meta_trainer(config, task, data, rater)
  ts = init_train_state(task, jax.random.key(0))
  ms = method.init(jax.random.key(1), ts)
  m = config.method
  n = m.population * m.inner_steps * m.inner_batch_size
  batch = {'x': data.train.x[:n], 'y': data.train.y[:n], 'source': data.train.source[:n],
           'index': np.arange(n, dtype=np.int32),
           'meta': {'x': data.meta.x[:2 * m.meta_batch_size], 'y': data.meta.y[:2 * m.meta_batch_size],
                    'source': data.meta.source[:2 * m.meta_batch_size],
                    'index': np.arange(2 * m.meta_batch_size, dtype=np.int32)}}
  ts1, ms1, metrics = jax.jit(method.step)(ts, ms, batch, jax.random.key(2))
  assert int(metrics['meta/resets']) == 0   # no reset at step 0

  inner_opt = datarater.make_optimizer(m.inner_optimizer, config.num_steps)
  def inner_loss(p, eta, b):
    w = batch_softmax(rater.apply({'params': eta}, b['x'], b['y']), m.temperature)
    return jnp.sum(w * task.per_example_loss(p, b))
  outer = lambda p, b: task.per_example_loss(p, b).mean()  # noqa: E731
  outer_opt = optax.chain(optax.clip_by_global_norm(m.outer_clip),
                          optax.adamw(optax.linear_schedule(0.0, m.outer_learning_rate,
                                                            m.outer_warmup_steps),
                                      weight_decay=m.outer_weight_decay))
  updates = []
  for i in range(2):
    take = lambda a: a[i]  # noqa: E731
    tb = {k: v.reshape((2, m.inner_steps, m.inner_batch_size) + v.shape[1:])[i]
          for k, v in batch.items() if k != 'meta'}
    mb = {k: v.reshape((2, m.meta_batch_size) + v.shape[1:])[i] for k, v in batch['meta'].items()}
    _, g, _ = unroll.meta_loss_and_grad(ms.eta, jax.tree.map(take, ms.params),
                                        jax.tree.map(take, ms.inner_opt), tb, mb,
                                        inner_loss_fn=inner_loss, outer_loss_fn=outer,
                                        optimizer=inner_opt, mode='reverse')
    u, _ = outer_opt.update(g, outer_opt.init(ms.eta), ms.eta)
    updates.append(u)
  expected = jax.tree.map(lambda e, a, b: e + (a + b) / 2, ms.eta, *updates)
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(ms1.eta)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-7)

  # Staggered resets: with N=2 and period 4, model 0 resets at steps 4, 8 and model 1 at 2, 6.
  resets = []
  for s in range(1, 9):
    ts_s = ts._replace(step=jnp.asarray(s, jnp.int32))
    _, _, met = jax.jit(method.step)(ts_s, ms, batch, jax.random.key(3))
    resets.append(int(met['meta/resets']))
  assert resets == [0, 1, 0, 1, 0, 1, 0, 1]


def test_eight_devices_same_scores_and_metrics(tmp_path):
  """Batch softmax and top-K are over the global batch: 8 devices == 1 device."""
  one = run_on(1, tmp_path / 'one', 'datarater', 'dataset=digits,smoke')
  eight = run_on(8, tmp_path / 'eight', 'datarater', 'dataset=digits,smoke')
  assert_same_rows(one, eight, rtol=1e-3)  # Adam's first steps amplify reduction-order rounding
  s1 = np.load(tmp_path / 'one' / 'scores_train.npy')
  s8 = np.load(tmp_path / 'eight' / 'scores_train.npy')
  np.testing.assert_allclose(s1, s8, rtol=1e-3, atol=1e-4)


def test_bad_hyperparameters_name_the_field(tmp_path):
  import pytest
  from datarater.train import ConfigError, train_and_evaluate
  for field, value in (('mode', 'sideways'), ('discard_fraction', 1.0), ('inner_steps', 0)):
    config = load_config('datarater')
    config.method[field] = value
    with pytest.raises(ConfigError, match=f'config.method.{field}'):
      train_and_evaluate(config, str(tmp_path / 'r'))


def test_meta_step_flops_count_every_unrolled_step():
  """XLA counts a rolled loop body once; the unroll is unrolled so the ledger sees T steps."""
  from datarater.train.loop import _step_flops
  flops = {}
  for t in (1, 2):
    config, data, task, rater = _setup()
    config.method.inner_steps = t
    method = datarater.make_meta_trainer(config, task, data, rater)
    ts = init_train_state(task, jax.random.key(0))
    ms = method.init(jax.random.key(1), ts)
    n, bm = method.train_batch_size, method.meta_batch_size
    batch = {'x': data.train.x[:n], 'y': data.train.y[:n], 'source': data.train.source[:n],
             'index': np.arange(n, dtype=np.int32),
             'meta': {'x': data.meta.x[:bm], 'y': data.meta.y[:bm], 'source': data.meta.source[:bm],
                      'index': np.arange(bm, dtype=np.int32)}}
    flops[t] = _step_flops(jax.jit(method.step).lower(ts, ms, batch, jax.random.key(2)).compile())
  assert flops[2] > 1.5 * flops[1], flops
