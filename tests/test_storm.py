"""STORM: features by hand, meta-gradient vs finite differences, the mean-one
constraint against the all-zero solution, and runs
in the loop (contract, and that the rescaler learns to down-weight corrupted
examples)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from conftest import load_config
from datarater.errors import ConfigError
from datarater.meta import storm
from datarater.run import prepare


def test_features_hand_case():
  logits = jnp.array([[0.0, np.log(2.0), 0.0], [0.0, 0.0, 0.0]])
  obs = storm.features(logits, jnp.array([0, 2]), prev_loss=jnp.array([1.0, 9.0]),
                       prev_confidence=jnp.array([0.5, 0.0]), seen=jnp.array([True, False]))
  # Example 0: p = (1/4, 1/2, 1/4), label 0. Example 1: p = 1/3 each, label 2, never seen.
  loss = np.array([np.log(4.0), np.log(3.0)])
  expected = np.array([[loss[0], 0.25, 0.25 - 0.5, loss[0] - 1.0, 0.25 - 0.5, 1.0],
                       [loss[1], 1 / 3, 0.0, 0.0, 0.0, -1.0]])
  np.testing.assert_allclose(obs.features, expected, atol=1e-4)
  np.testing.assert_allclose(obs.loss, loss, rtol=1e-6)
  np.testing.assert_allclose(obs.confidence, [0.25, 1 / 3], rtol=1e-6)
  assert obs.features.shape[1] == storm.NUM_FEATURES == len(storm.FEATURE_NAMES)


def test_features_average_sequence_positions():
  logits = jax.random.normal(jax.random.key(0), (3, 4, 5))
  labels = jnp.array([[0, 1, 2, 3]] * 3)
  no_history = (jnp.zeros(3), jnp.zeros(3), jnp.zeros(3, bool))
  seq = storm.features(logits, labels, *no_history)
  per_pos = [storm.features(logits[:, t], labels[:, t], *no_history) for t in range(4)]
  np.testing.assert_allclose(seq.loss, np.mean([o.loss for o in per_pos], 0), rtol=1e-5)
  np.testing.assert_allclose(seq.features[:, 2], np.mean([o.features[:, 2] for o in per_pos], 0),
                             rtol=1e-5, atol=1e-6)


def _toy_problem(key):
  """A linear 3-class model, a rescaler with random output layer, train/val batches."""
  kx, kw, ko, kv, ky = jax.random.split(key, 5)
  params = {'w': jax.random.normal(kw, (5, 3))}
  x = jax.random.normal(kx, (8, 5))
  y = jax.random.randint(ky, (8,), 0, 3)
  omega = storm.rescaler_init(ko, 4)
  omega['w2'] = jax.random.normal(kv, (4,))
  train, val = {'x': x[:4], 'y': y[:4]}, {'x': x[4:], 'y': y[4:]}
  logits_fn = lambda p, xb: xb @ p['w']  # noqa: E731
  history = (jnp.full(4, 1.0), jnp.full(4, 0.3), jnp.array([True, False, True, True]))
  feats = storm.features(logits_fn(params, train['x']), train['y'], *history).features
  return params, omega, train, val, feats, history, logits_fn


@pytest.mark.parametrize('mode', ['reverse', 'mixed'])
def test_meta_gradient_matches_central_differences(x64, mode):
  params, omega, train, val, feats, history, logits_fn = _toy_problem(jax.random.key(1))
  kw = dict(logits_fn=logits_fn, lookahead_lr=0.5, mode=mode)
  _, grad, _ = storm.meta_loss_and_grad(omega, params, train, feats, val, history, **kw)
  flat, unravel = ravel_pytree(omega)
  loss = jax.jit(jax.vmap(
      lambda f: storm.meta_loss(unravel(f), params, train, feats, val, history, **kw)[0]))
  step = 1e-6 * jnp.eye(flat.size)
  fd = (loss(flat + step) - loss(flat - step)) / 2e-6
  g = np.asarray(ravel_pytree(grad)[0])
  assert np.abs(g).max() > 1e-3
  np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_normalisation_rules_out_the_all_zero_solution():
  params, omega, train, val, feats, history, logits_fn = _toy_problem(jax.random.key(2))
  # Raw outputs ~ 1e-30: the weights still sum to the batch size.
  tiny = dict(omega, b2=jnp.asarray(-70.0))
  np.testing.assert_allclose(storm.rescaler_weights(tiny, feats).sum(), 4.0, rtol=1e-5)
  kw = dict(logits_fn=logits_fn, lookahead_lr=0.1)
  grad_fn = jax.jit(lambda om: storm.meta_loss_and_grad(om, params, train, feats, val, history,
                                                        **kw))
  val_losses = storm.cross_entropy(logits_fn(params, val['x']), val['y'])
  for _ in range(300):  # descend the meta loss hard
    m, g, obs = grad_fn(omega)
    omega = jax.tree.map(lambda p, d: p - 1.0 * d, omega, g)
  v = storm.rescaler_weights(omega, obs.features)
  np.testing.assert_allclose(v.sum(), 4.0, rtol=1e-5)
  # M is a mean-one weighted mean of the look-ahead validation losses.
  assert float(m) >= float(obs.loss.min()) - 1e-6
  # Without the normalisation the same descent drives the rescaled meta loss toward 0.
  raw = lambda om: jnp.mean(storm.rescaler_scores(om, obs.features) * val_losses)  # noqa: E731
  raw_grad = jax.jit(jax.grad(raw))
  om = storm.rescaler_init(jax.random.key(3), 4)
  for _ in range(300):
    om = jax.tree.map(lambda p, d: p - 1.0 * d, om, raw_grad(om))
  assert float(raw(om)) < 0.05 * float(val_losses.min())


def test_bad_config_is_one_line():
  config = load_config('storm')
  config.method.discard_fraction = 1.0
  with pytest.raises(ConfigError, match='config.method.discard_fraction'):
    prepare(config)
  config = load_config('storm')
  config.method.filter_mode = 'online'
  with pytest.raises(ConfigError, match='config.method.filter_mode'):
    prepare(config)


def test_storm_filter_pipeline_smoke(run_smoke):
  summary, rows, workdir = run_smoke('storm', scores=True, method__filter=True,
                                     method__discard_fraction=0.5)
  assert summary['method'] == 'storm' and summary['meta_mode'] == 'noisy'
  assert set(summary['phases']) == {'storm', 'filtered', 'uniform'}
  assert summary['result_phase'] == 'filtered' and summary['baseline_phase'] == 'uniform'
  assert summary['scored_fraction'] > 0.0 and 'score_auroc' in summary
  logged = [r for r in rows if r['phase'] == 'storm' and 'storm/meta_loss' in r]
  assert logged and all(np.isfinite(r['storm/meta_loss']) for r in logged)
  # B train + B validation examples per step, 4B gradient evaluations.
  assert summary['phases']['storm']['ledger']['gradient_evaluations'] == 6 * 4 * 16


def test_rescaler_learns_to_downweight_corrupted(run_smoke):
  """Fails when the rescaler update is negated (AUROC < 0.5) or disabled (0.5)."""
  summary, _, _ = run_smoke('storm', scores=True, num_steps=300, batch_size=32, log_every=100,
                            eval_every=300, checkpoint_every=300)
  assert summary['score_auroc'] > 0.75, summary['score_auroc']
  # The default result is the model trained on the rescaled losses, not a filtered retrain.
  assert summary['result_phase'] == 'train' and set(summary['phases']) == {'train'}
