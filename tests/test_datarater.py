"""DataRater method: pipeline contract, filtering, population resets, devices."""

import json
import os
import subprocess
import sys

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, check_run_dir, load_config
from datarater.data import load_dataset, sampler
from datarater.errors import ConfigError
from datarater.meta import datarater_features
from datarater.methods import _filter, datarater
from datarater.models.rater import build_rater
from datarater.run import train_and_evaluate
from datarater.train.loop import step_flops
from datarater.train.state import init_train_state, weighted_update
from datarater.train.task import make_task
from test_devices import assert_same_rows, run_on
from test_l2rw_mwn_methods import score_auroc_from_file


def test_smoke_digits_writes_everything(run_smoke):
  summary, rows, workdir = run_smoke('datarater', scores=True, method__discard_fraction=0.5)
  assert {r['phase'] for r in rows} == {'meta_train', 'filtered', 'uniform'}
  for f in ('scores_by_source.png', 'scores_by_corruption.png'):
    assert os.path.exists(os.path.join(workdir, 'plots', f))
  assert summary['score_auroc'] == pytest.approx(
      score_auroc_from_file(workdir, load_config('datarater')), abs=1e-6)
  assert len(summary['source_mean_score']) == 5
  # The rater scores the meta split's rows too.
  meta_rows = np.load(os.path.join(workdir, 'meta_rows.npy'))
  assert meta_rows.any() and np.load(os.path.join(workdir, 'scored_rows.npy'))[meta_rows].all()
  phases, c = summary['phases'], summary['compute']
  assert c['extra_flops'] == phases['meta_train']['ledger']['flops'] > 0
  per_step = phases['uniform']['ledger']['flops'] / phases['uniform']['ledger']['steps']
  assert c['baseline_flops_to_target'] == c['baseline_steps_to_target'] * per_step > 0
  # The filtered phase scores 2x the examples it trains on (rho = 0.5).
  led = phases['filtered']['ledger']
  assert led['examples_processed'] == 2 * led['gradient_evaluations']
  # Total ledger = meta-training + filtered + uniform.
  assert summary['ledger']['flops'] == sum(p['ledger']['flops'] for p in phases.values())

  # The saved rater filters another run (a wider inner model) with no meta-training; the
  # meta-training FLOPs it cost are charged to that run's method.
  config = load_config('datarater')
  config.method.discard_fraction, config.method.rater_from = 0.5, workdir
  config.model.kwargs.hidden = (64, 64)
  workdir2 = workdir + '_reused'
  train_and_evaluate(config, workdir2)
  reused, rows2 = check_run_dir(workdir2)
  assert {r['phase'] for r in rows2} == {'filtered', 'uniform'}
  np.testing.assert_array_equal(np.load(os.path.join(workdir2, 'scores_train.npy')),
                                np.load(os.path.join(workdir, 'scores_train.npy')))
  assert reused['compute']['extra_flops'] == phases['meta_train']['ledger']['flops']
  assert reused['phases']['filtered']['ledger']['flops'] > phases['filtered']['ledger']['flops']


def test_smoke_text(run_smoke):
  """The text rater's AUROC is the one its score file gives against the corrupted flags (one
  score per sequence of the user's data), not just present."""
  # One filtered arm ('auto''s three arms are test_smoke_digits_writes_everything's).
  summary, _, workdir = run_smoke('datarater', 'dataset=stdlib_text,smoke', scores=True,
                                  method__discard_fraction=0.5, method__baseline=False)
  assert summary['dataset'] == 'stdlib_text'
  assert summary['score_auroc'] == pytest.approx(
      score_auroc_from_file(workdir, load_config('datarater', 'dataset=stdlib_text,smoke')),
      abs=1e-6)


def _setup(arg='dataset=digits,smoke'):
  config = load_config('datarater', arg)
  config.method.discard_fraction = 0.5   # a fixed fraction (the default 'auto' is chosen in a run)
  data = load_dataset(config.data, 0)
  task = make_task(config, data.info)
  rater = build_rater(config.method.rater, data.info)
  return config, data, task, rater


def test_filter_trains_on_the_top_scored_examples():
  config, data, task, rater = _setup()
  eta = rater.init(jax.random.key(0), data.train.x[:1], data.train.y[:1])['params']
  method = _filter.make_filter(config, task, data, datarater.filter_score(config, task, rater), eta)
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
  keep = np.argsort(-scores, kind='stable')[:config.batch_size]
  sub = {k: v[keep] for k, v in batch.items()}
  ref, _ = weighted_update(task, state, sub, lambda l: jnp.full_like(l, 1 / config.batch_size))
  for a, b in zip(jax.tree.leaves(ref.params), jax.tree.leaves(new_state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _meta_batch(data, m, step):
  """The loop batch of outer step `step`: N*T*B train and N*M meta examples (disjoint per step)."""
  n, nm = m.population * m.inner_steps * m.inner_batch_size, m.population * m.meta_batch_size
  tr, me = slice(step * n, (step + 1) * n), slice(step * nm, (step + 1) * nm)
  return {'x': data.train.x[tr], 'y': data.train.y[tr], 'source': data.train.source[tr],
          'index': np.arange(tr.start, tr.stop, dtype=np.int32),
          'meta': {'x': data.meta.x[me], 'y': data.meta.y[me], 'source': data.meta.source[me],
                   'index': np.arange(me.start, me.stop, dtype=np.int32)}}


def _adam_direction(g, mu, nu, count, eps_root=0.0, b1=0.9, b2=0.999, eps=1e-8):
  """Hand-written Adam on flat vectors: (bias-corrected direction, mu, nu, count)."""
  count = count + 1
  mu = b1 * mu + (1 - b1) * g
  nu = b2 * nu + (1 - b2) * g * g
  mu_hat, nu_hat = mu / (1 - b1 ** count), nu / (1 - b2 ** count)
  return mu_hat / (jnp.sqrt(nu_hat + eps_root) + eps), mu, nu, count


def _reference_meta_training(config, task, rater, eta0, params0, batches):
  """Outer steps written out independently of the method module.

  Per model i: the meta-gradient is jax.grad of an explicit T-step unroll of a
  hand-written inner Adam; it takes a step of model i's own hand-written
  AdamW (global-norm clipping, decoupled weight decay, learning rate
  lr * min(k + 1, W) / W at outer step k); the new rater parameters are the
  mean of the N proposals. With `method.rater_features == ('loss_rank',)` the
  rater also sees each loss's rank in its inner batch, counted by hand; with
  `method.outer_loss == 'mae'` the meta loss is the mean of 1 - p_y.
  """
  m, opt = config.method, config.method.inner_optimizer
  assert (opt.name, opt.schedule, opt.weight_decay, opt.grad_clip) == ('adam', 'constant', 0, 0)
  n, t, b, bm = m.population, m.inner_steps, m.inner_batch_size, m.meta_batch_size
  eta, unravel_eta = ravel_pytree(eta0)
  _, unravel_p = ravel_pytree(jax.tree.map(lambda a: a[0], params0))

  def meta_loss(eta, inner, train, meta):
    p, mu, nu, count = inner
    for k in range(t):
      batch = jax.tree.map(lambda a: a[k], train)
      def inner_loss(p):
        losses = task.per_example_loss(unravel_p(p), batch)
        feats = None
        if m.rater_features:
          assert tuple(m.rater_features) == ('loss_rank',)
          below = jnp.sum(losses[None, :] < losses[:, None], axis=1)   # no ties in float losses
          feats = jax.lax.stop_gradient(below / (len(losses) - 1))[:, None]
        w = jax.nn.softmax(rater.apply({'params': unravel_eta(eta)}, batch['x'], batch['y'], feats)
                           / m.temperature)
        return jnp.sum(w * losses)
      d, mu, nu, count = _adam_direction(jax.grad(inner_loss)(p), mu, nu, count, opt.eps_root)
      p = p - opt.learning_rate * d
    meta_losses = task.per_example_loss(unravel_p(p), meta)
    if m.outer_loss == 'mae':
      meta_losses = 1 - jnp.exp(-meta_losses)    # 1 - p_y, from the cross-entropy
    return meta_losses.mean(), (p, mu, nu, count)

  meta_grad = jax.jit(jax.value_and_grad(meta_loss, has_aux=True))
  inner = []
  for i in range(n):
    p = ravel_pytree(jax.tree.map(lambda a: a[i], params0))[0]
    inner.append((p, jnp.zeros_like(p), jnp.zeros_like(p), 0))
  outer = [(jnp.zeros_like(eta), jnp.zeros_like(eta), 0)] * n
  warmup = max(m.outer_warmup_steps, 1)
  for k, batch in enumerate(batches):
    lr = m.outer_learning_rate * min(k + 1, warmup) / warmup
    proposals = []
    for i in range(n):
      train = {f: v.reshape((n, t, b) + v.shape[1:])[i] for f, v in batch.items() if f != 'meta'}
      meta = {f: v.reshape((n, bm) + v.shape[1:])[i] for f, v in batch['meta'].items()}
      (_, inner[i]), g = meta_grad(eta, inner[i], train, meta)
      g = g * jnp.minimum(1.0, m.outer_clip / jnp.linalg.norm(g))
      d, *outer[i] = _adam_direction(g, *outer[i])
      proposals.append(eta - lr * (d + m.outer_weight_decay * eta))
    eta = sum(proposals) / n
  return unravel_eta(eta)


def _float64(tree):
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64)
                      if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


@pytest.mark.parametrize('options', [{}, {'rater_features': ('loss_rank',), 'outer_loss': 'mae'}])
def test_meta_steps_match_an_independent_reference(x64, options):
  """Two outer steps from a fresh state equal the written-out reference: each model's
  meta-gradient through its own outer AdamW, proposals averaged (averaging the
  meta-gradients before one AdamW step, or negating the update, fails this);
  the first step already moves the rater (warm-up starts above 0). Also with the
  noisy-meta options: the rater sees the inner model's loss ranks, the meta loss is 1 - p_y."""
  config, data, task, rater = _setup()
  config.method.population, config.method.reset_period = 2, 4
  config.method.update(options)
  method = datarater.make_meta_trainer(config, task, data, rater)
  ts = init_train_state(task, jax.random.key(0))
  # In float64: the rater's output bias has a meta-gradient of exactly 0 (the batch
  # softmax ignores a shift), which Adam would turn from float32 rounding noise into
  # steps of +-lr.
  ms0 = _float64(method.init(jax.random.key(1), ts))
  step = jax.jit(method.step)
  batches = [_float64(_meta_batch(data, config.method, k)) for k in range(2)]
  ts1, ms1, metrics = step(ts, ms0, batches[0], jax.random.key(2))
  assert int(metrics['meta/resets']) == 0
  _, ms2, metrics = step(ts1, ms1, batches[1], jax.random.key(3))
  assert int(metrics['meta/resets']) == 0   # no reset at steps 0 and 1

  ref = _reference_meta_training(config, task, rater, ms0.eta, ms0.params, batches)
  moved = ravel_pytree(ref)[0] - ravel_pytree(ms0.eta)[0]
  got = ravel_pytree(ms2.eta)[0] - ravel_pytree(ms0.eta)[0]
  scale = float(jnp.max(jnp.abs(moved)))
  assert scale > 0.5 * config.method.outer_learning_rate / config.method.outer_warmup_steps
  np.testing.assert_allclose(got, moved, rtol=1e-6, atol=1e-6 * scale)
  first = ravel_pytree(ms1.eta)[0] - ravel_pytree(ms0.eta)[0]
  assert float(jnp.max(jnp.abs(first))) > 0.1 * scale   # step 0 moved the rater


def _counts(inner_opt):
  """Inner optimizer step counts per model (every integer leaf of the stacked state)."""
  return np.stack([np.asarray(x) for x in jax.tree.leaves(inner_opt)
                   if jnp.issubdtype(x.dtype, jnp.integer)], axis=1)


def test_resets_are_staggered_and_restart_the_model():
  """N=2, period 4: model 0 resets at steps 4, 8 and model 1 at 2, 6; a reset model starts
  from a fresh optimizer state (T updates after the step), the other continues (2T)."""
  config, data, task, rater = _setup()
  m = config.method
  m.population, m.reset_period = 2, 4
  method = datarater.make_meta_trainer(config, task, data, rater)
  ts = init_train_state(task, jax.random.key(0))
  step = jax.jit(method.step)
  batch = _meta_batch(data, m, 0)
  _, ms1, _ = step(ts, method.init(jax.random.key(1), ts), batch, jax.random.key(2))
  t = m.inner_steps
  assert np.all(_counts(ms1.inner_opt) == t)
  resets = []
  for s in range(1, 9):
    _, ms, met = step(ts._replace(step=jnp.asarray(s, jnp.int32)), ms1, batch, jax.random.key(3))
    resets.append(int(met['meta/resets']))
    expect = [t if (s + offset) % 4 == 0 else 2 * t for offset in (0, 2)]
    assert np.all(_counts(ms.inner_opt) == np.asarray(expect)[:, None]), (s, _counts(ms.inner_opt))
  assert resets == [0, 1, 0, 1, 0, 1, 0, 1]


def test_eight_devices_same_scores_and_metrics(tmp_path):
  """Batch softmax and top-K are over the global batch: 8 devices == 1 device."""
  # A fixed discard fraction: 'auto' rounds an estimate from the scores to 0.01, and a
  # rounding-level score difference may move it by one step (a different candidate batch).
  one = run_on(1, tmp_path / 'one', 'datarater', 'dataset=digits,smoke', 'method.discard_fraction=0.5')
  eight = run_on(8, tmp_path / 'eight', 'datarater', 'dataset=digits,smoke',
                 'method.discard_fraction=0.5')
  # Adam's first steps amplify reduction-order rounding; batch means of near-zero scores
  # (filter/all_score_mean ~ 0.015) get the same absolute tolerance as the scores below.
  assert_same_rows(one, eight, rtol=1e-3, atol=1e-4)
  s1 = np.load(tmp_path / 'one' / 'scores_train.npy')
  s8 = np.load(tmp_path / 'eight' / 'scores_train.npy')
  np.testing.assert_allclose(s1, s8, rtol=1e-3, atol=1e-4)


def test_bad_hyperparameters_name_the_field(tmp_path):
  for field, value in (('mode', 'sideways'), ('discard_fraction', 1.0), ('inner_steps', 0),
                       ('outer_loss', 'huber'), ('rater_features', ('loss', 'entropy')),
                       ('filter_mode', 'online'), ('outer_trim', 1.0),
                       ('rater_from', str(tmp_path / 'no_run'))):
    config = load_config('datarater')
    config.method[field] = value
    with pytest.raises(ConfigError, match=f'config.method.{field}'):
      train_and_evaluate(config, str(tmp_path / 'r'))


def test_meta_step_flops_count_every_unrolled_step():
  """The unroll is a rolled scan; the ledger's FLOPs still count all T inner steps."""
  flops = {}
  for t in (1, 2):
    config, data, task, rater = _setup()
    config.method.inner_steps = t
    method = datarater.make_meta_trainer(config, task, data, rater)
    ts = init_train_state(task, jax.random.key(0))
    ms = method.init(jax.random.key(1), ts)
    batch = _meta_batch(data, config.method, 0)
    flops[t] = step_flops(jax.jit(method.step).lower(ts, ms, batch, jax.random.key(2)).compile())
  assert flops[2] > 1.5 * flops[1], flops


def test_loss_features_on_a_hand_made_batch():
  """Ranks 0..B-1 scaled to [0, 1] (smallest loss 0), batch z-scores, no gradient."""
  losses = jnp.array([2.0, 0.1, 5.0, 1.0])
  np.testing.assert_allclose(datarater_features.loss_rank(losses), [2 / 3, 0, 1, 1 / 3])
  feats = datarater_features.loss_features(losses, ('loss_rank', 'loss', 'loss_z'))
  np.testing.assert_allclose(feats[:, 0], [2 / 3, 0, 1, 1 / 3])
  np.testing.assert_allclose(feats[:, 1], losses)
  np.testing.assert_allclose(feats[:, 2], (losses - 2.025) / (np.std([2.0, 0.1, 5.0, 1.0]) + 1e-6),
                             rtol=1e-5)
  grad = jax.grad(lambda l: datarater_features.loss_features(l, ('loss', 'loss_z')).sum())(losses)
  np.testing.assert_array_equal(grad, 0.0)
  with pytest.raises(ValueError, match='entropy'):
    datarater_features.loss_features(losses, ('entropy',))
  # An evaluation batch padded with copies of a row: the real rows' features are unchanged.
  padded = jnp.concatenate([losses, jnp.array([0.0, 0.0])])
  real = jnp.array([True] * 4 + [False] * 2)
  both = datarater_features.loss_features(padded, ('loss_rank', 'loss_z'), real)[:4]
  np.testing.assert_allclose(both, datarater_features.loss_features(losses, ('loss_rank', 'loss_z')),
                             rtol=1e-6)


def test_mae_loss_is_one_minus_the_label_probability():
  logits = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1]]))
  np.testing.assert_allclose(datarater_features.mae_loss(logits, jnp.array([0, 2])), [0.3, 0.9],
                             rtol=1e-6)
  # Sequences: the mean over positions.
  np.testing.assert_allclose(datarater_features.mae_loss(logits[None], jnp.array([[0, 2]])), [0.6],
                             rtol=1e-6)


def test_trimmed_mean_keeps_the_lowest_losses():
  losses = jnp.array([1.0, 5.0, 2.0, 10.0])
  assert datarater_features.trimmed_mean(losses, 0.5) == pytest.approx(1.5)
  assert datarater_features.trimmed_mean(losses, 0.0) == pytest.approx(4.5)
  assert datarater_features.trimmed_mean(losses, 0.9) == pytest.approx(1.0)  # at least one row
  grad = jax.grad(lambda l: datarater_features.trimmed_mean(l, 0.5))(losses)
  np.testing.assert_allclose(grad, [0.5, 0.0, 0.5, 0.0])
  # Two-sided: the lowest quarter (1.0) and the highest quarter (10.0) left out.
  assert datarater_features.trimmed_mean(losses, 0.25, 0.25) == pytest.approx(3.5)
  np.testing.assert_array_equal(datarater_features.kept_rows(losses, 0.25, 0.25), [2, 1])


def test_rated_trimmed_mean_weights_the_kept_rows_by_the_raters_softmax():
  losses = jnp.array([1.0, 5.0, 2.0, 10.0])
  scores = jnp.array([0.0, 9.0, jnp.log(3.0), -9.0])
  # Rows 0 and 2 are kept (the lower-loss half); softmax of their scores: 1/4, 3/4.
  assert datarater_features.rated_trimmed_mean(losses, scores, 0.5) == pytest.approx(
      0.25 * 1.0 + 0.75 * 2.0)
  # Equal scores: the trimmed mean; temperature divides the scores.
  assert datarater_features.rated_trimmed_mean(losses, jnp.zeros(4), 0.5) == pytest.approx(1.5)
  assert datarater_features.rated_trimmed_mean(losses, 2 * scores, 0.5, 0.0, 2.0) == pytest.approx(
      1.75)
  # The gradient flows through the kept losses with those weights, not through the scores.
  grad_l, grad_s = jax.grad(lambda l, s: datarater_features.rated_trimmed_mean(l, s, 0.5),
                            argnums=(0, 1))(losses, scores)
  np.testing.assert_allclose(grad_l, [0.25, 0.0, 0.75, 0.0], rtol=1e-6)
  np.testing.assert_array_equal(grad_s, 0.0)


def test_rated_ce_meta_loss_follows_the_raters_scores_of_the_meta_rows(run_smoke):
  """outer_loss='rated_ce' meta-trains end to end, and its meta loss differs from
  trimmed_ce's (same data, init and trim) only through the rater's weights of the meta rows."""
  short = dict(method__discard_fraction=0.5, method__baseline=False, num_steps=1,
               method__meta_steps=2)   # the rater's AUROC is all this test reads
  rated, _, _ = run_smoke('datarater', data__meta_mode='noisy', method__outer_loss='rated_ce',
                          **short)
  trimmed, _, _ = run_smoke('datarater', tag='_trimmed', data__meta_mode='noisy',
                            method__outer_loss='trimmed_ce', **short)
  assert rated['outer_loss'] == 'rated_ce' and trimmed['outer_loss'] == 'trimmed_ce'
  assert rated['score_auroc'] is not None and rated['score_auroc'] != trimmed['score_auroc']


def test_rater_from_a_different_rater_names_the_field(tmp_path, run_smoke):
  """A rater that does not fit this run's rater fields: one ConfigError, nothing written."""
  _, _, workdir = run_smoke('datarater', method__discard_fraction=0.5, method__baseline=False)
  config = load_config('datarater')
  config.method.rater_from = workdir
  config.method.rater.kwargs = dict(hidden=(7,))
  with pytest.raises(ConfigError, match='config.method.rater_from'):
    train_and_evaluate(config, str(tmp_path / 'r'))
  assert not os.path.exists(tmp_path / 'r')


def test_filter_with_loss_features_keeps_the_current_models_smallest_losses():
  """A linear rater scoring -loss_rank keeps the B examples the model being trained fits
  best; the kept set follows the model (its losses), not only the examples."""
  config, data, task, _ = _setup()
  config.method.rater_features = ('loss_rank',)
  config.method.rater.kwargs = dict(hidden=())
  rater = build_rater(config.method.rater, data.info)
  x0, y0 = data.train.x[:1], data.train.y[:1]
  eta = rater.init(jax.random.key(0), x0, y0, jnp.zeros((1, 1)))['params']
  kernel = jnp.zeros_like(eta['Dense_0']['kernel']).at[-1, 0].set(-1.0)   # the feature's row
  eta = {'Dense_0': {'kernel': kernel, 'bias': eta['Dense_0']['bias']}}
  method = _filter.make_filter(config, task, data, datarater.filter_score(config, task, rater), eta)
  idx = np.arange(method.train_batch_size)
  batch = {'x': data.train.x[idx], 'y': data.train.y[idx], 'source': data.train.source[idx],
           'index': idx.astype(np.int32)}
  step = jax.jit(method.step)
  kept = []
  for seed in (1, 2):
    state = init_train_state(task, jax.random.key(seed))
    new_state, _, _ = step(state, eta, batch, jax.random.key(3))
    keep = np.argsort(np.asarray(task.per_example_loss(state.params, batch)))[:config.batch_size]
    sub = {k: v[keep] for k, v in batch.items()}
    ref, _ = weighted_update(task, state, sub, lambda l: jnp.full_like(l, 1 / config.batch_size))
    for a, b in zip(jax.tree.leaves(ref.params), jax.tree.leaves(new_state.params)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    kept.append(set(keep.tolist()))
  assert kept[0] != kept[1]


def test_smoke_noisy_meta_options(run_smoke):
  """The noisy-meta options run end to end; scores come from the population's losses."""
  summary, _, workdir = run_smoke('datarater', scores=True, data__meta_mode='noisy',
                                  method__outer_loss='mae', method__rater_features=('loss_rank',))
  config = load_config('datarater')
  config.data.meta_mode = 'noisy'
  assert summary['score_auroc'] == pytest.approx(score_auroc_from_file(workdir, config), abs=1e-6)


def test_meta_signal_alignment_is_the_meta_loss_slope_along_one_example(x64):
  """experiments/meta_signal.py's alignment of row i equals the finite-difference slope of the
  meta loss along grad l_i (the first-order effect of up-weighting row i in an SGD step)."""
  from experiments import meta_signal
  config, data, task, _ = _setup()
  params = jax.tree.map(lambda p: p.astype(jnp.float64), task.init_params(jax.random.key(0)))
  meta_loss = meta_signal.meta_losses(task, data.meta, data.meta)['CE, noisy meta']
  batch = sampler.gather(data.train, np.arange(3))
  aligned = meta_signal.alignments(task, params, {'ce': jax.grad(meta_loss)(params)}, batch)['ce']
  eps = 1e-6  # the ReLU kinks need a small step
  for i in range(3):
    row = {'x': batch['x'][i:i + 1], 'y': batch['y'][i:i + 1]}
    g = jax.grad(lambda p: task.per_example_loss(p, row)[0])(params)
    step = lambda s: jax.tree.map(lambda p, d: p + s * d, params, g)  # noqa: E731
    slope = (meta_loss(step(eps)) - meta_loss(step(-eps))) / (2 * eps)
    assert float(aligned[i]) == pytest.approx(float(slope), rel=1e-5)


def test_meta_signal_prints_each_corruption_kinds_loss_position():
  """experiments/meta_signal.py on the mixed text preset: the alignment table has the two-sided
  trimmed loss's column, and the second table places each corruption kind in the loss ranking
  (positions in [0, 1])."""
  out = subprocess.run(
      [sys.executable, '-m', 'experiments.meta_signal',
       '--config=configs/datarater.py:dataset=stdlib_text,smoke', '--config.data.corruption=mixed',
       '--config.data.corruption_rates=(0.0,0.2,0.4,0.6,0.8)', '--ages=0,2', '--rows=48'],
      capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'CE, trimmed 50% and lowest 12.5%' in out.stdout
  table = out.stdout.split("loss ranking (0 = lowest loss):")[1].strip().splitlines()
  assert table[0] == '| age | clean | ocr | boilerplate | mojibake | random_bytes |'
  rows = [[float(v) for v in line.strip('| ').split(' | ')] for line in table[2:]]
  assert [r[0] for r in rows] == [0, 2]
  assert all(0 <= v <= 1 for r in rows for v in r[1:])


def test_a_datarater_run_recorded_before_outer_trim_low_is_the_same_run():
  """Suites reuse finished DataRater runs recorded before method.outer_trim_low existed
  (their trim was one-sided, today's 0.0); a run with a two-sided trim is another run."""
  from datarater.run import changed_fields
  config = load_config('datarater')
  old = json.loads(config.to_json_best_effort())
  del old['method']['outer_trim_low']
  assert changed_fields(old, config, ()) == []
  config.method.outer_trim_low = 0.125
  assert changed_fields(old, config, ()) == ['method']
