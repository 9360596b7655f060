"""Tests for L2RW scores and Meta-Weight-Net's look-ahead (datarater.meta.l2rw / mwn)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from datarater.meta import l2rw
from datarater.meta import mwn
from datarater.meta import unroll
from datarater.models.weight_net import WeightNet


def _flat(tree):
  return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


def per_example_ce(params, batch):
  """Softmax cross-entropy of a 4-5-3 tanh MLP classifier; labels are ints."""
  x, y = batch
  logits = jnp.tanh(x @ params['w1'] + params['b1']) @ params['w2']
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]


def _problem(seed=0, n=8, m=6, dim=4, hidden=5, classes=3):
  rng = np.random.default_rng(seed)
  params = {'w1': rng.normal(size=(dim, hidden)), 'b1': 0.1 * rng.normal(size=hidden),
            'w2': rng.normal(size=(hidden, classes))}
  train = (rng.normal(size=(n, dim)), rng.integers(0, classes, size=n).astype(np.int32))
  meta = (rng.normal(size=(m, dim)), rng.integers(0, classes, size=m).astype(np.int32))
  return jax.tree.map(jnp.asarray, (params, train, meta))


def test_l2rw_scores_equal_gradient_alignment(x64):
  """u_i = alpha <grad f_i(theta), grad (1/m) sum_j f^meta_j(theta)>, exactly
  (at eps = 0 the look-ahead params equal theta)."""
  params, train, meta = _problem()
  alpha = 0.3

  @jax.jit
  def compute(params, train, meta):
    scores = {mode: l2rw.l2rw_scores(params, train, meta, per_example_loss_fn=per_example_ce,
                                     lookahead_lr=alpha, mode=mode) for mode in unroll.MODES}
    weights = l2rw.normalize_nonnegative(scores['reverse'])
    # Independent: explicit per-example gradients and their dot products.
    def single(p, x, y):
      return per_example_ce(p, (x[None], y[None]))[0]
    per_ex = jax.vmap(jax.grad(single), in_axes=(None, 0, 0))(params, *train)
    g_meta = jax.grad(lambda p: jnp.mean(per_example_ce(p, meta)))(params)
    dots = sum(jnp.sum(a.reshape(a.shape[0], -1) * b.reshape(1, -1), axis=1)
               for a, b in zip(jax.tree.leaves(per_ex), jax.tree.leaves(g_meta)))
    return scores, weights, alpha * dots

  scores, weights, ref = compute(params, train, meta)
  ref = np.asarray(ref)
  assert np.any(ref > 0) and np.any(ref < 0)  # A mixed case: some weights are clipped.
  for mode, u in scores.items():
    np.testing.assert_allclose(np.asarray(u), ref, rtol=1e-10, atol=1e-14, err_msg=mode)
  w = np.asarray(weights)
  np.testing.assert_allclose(w, np.maximum(ref, 0) / np.maximum(ref, 0).sum(), rtol=1e-10)
  assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
  assert np.all(w[ref < 0] == 0)


def _lin_loss(params, batch):
  x, y = batch
  return (x @ params - y) ** 2


def test_l2rw_zero_sum_guard_gives_zeros_not_nan():
  x = np.ones((4, 1), np.float32)
  theta = np.zeros((1,), np.float32)
  ones = np.ones(4, np.float32)
  scores = functools.partial(l2rw.l2rw_scores, per_example_loss_fn=_lin_loss, lookahead_lr=0.1)
  weights = jax.jit(lambda *a: l2rw.normalize_nonnegative(scores(*a)))
  # Every train gradient opposes the meta gradient: all u_i < 0.
  w = np.asarray(weights(theta, (x, ones), (x, -ones)))
  assert np.all(np.isfinite(w)) and np.all(w == 0)
  # The meta loss is at its optimum: all u_i == 0.
  w = np.asarray(weights(theta, (x, ones), (x, 0 * ones)))
  assert np.all(np.isfinite(w)) and np.all(w == 0)
  # Sanity: aligned gradients give uniform positive weights.
  w = np.asarray(weights(theta, (x, ones), (x, 2 * ones)))
  np.testing.assert_allclose(w, np.full(4, 0.25), rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(l2rw.normalize_nonnegative(np.array([-1., 0., -2.]))),
                                [0., 0., 0.])


def _init_wnet(seed, dtype=jnp.float32):
  return jax.jit(lambda: WeightNet().init(jax.random.PRNGKey(seed), jnp.zeros((1,), dtype)))()


def test_weight_net_output_range_and_shape():
  wnet = _init_wnet(0)
  shapes = jax.tree.map(jnp.shape, wnet['params'])
  assert shapes == {'Dense_0': {'kernel': (1, 100), 'bias': (100,)},
                    'Dense_1': {'kernel': (100, 1), 'bias': (1,)}}
  losses = np.linspace(0.0, 10.0, 13, dtype=np.float32)
  v = np.asarray(jax.jit(WeightNet().apply)(wnet, losses))
  assert v.shape == (13,) and np.all(v > 0) and np.all(v < 1)
  assert np.std(v) > 1e-3  # Depends on the loss.


def _lookahead_meta_loss(wnet, params, train, meta, a):
  """Independent MW-Net look-ahead: w_hat = w - a (1/n) sum V(L_i) grad L_i."""
  v = WeightNet().apply(wnet, jax.lax.stop_gradient(per_example_ce(params, train)))
  g = jax.grad(lambda p: jnp.mean(v * per_example_ce(p, train)))(params)
  p_hat = jax.tree.map(lambda p, gi: p - a * gi, params, g)
  return jnp.mean(per_example_ce(p_hat, meta))


def test_mwn_grad_matches_finite_differences(x64):
  params, train, meta = _problem(seed=1)
  a, h = 0.5, 1e-6
  wnet = _init_wnet(1, jnp.float64)
  assert _flat(wnet).size == 301
  flat = _flat(wnet)
  leaves, treedef = jax.tree.flatten(wnet)

  def unravel(vec):
    out, i = [], 0
    for leaf in leaves:
      out.append(vec[i:i + leaf.size].reshape(leaf.shape))
      i += leaf.size
    return jax.tree.unflatten(treedef, out)

  @jax.jit
  def compute(wnet, points):
    loss, grad = mwn.mwn_meta_loss_and_grad(
        wnet, params, train, meta, per_example_loss_fn=per_example_ce,
        weight_fn=WeightNet().apply, lookahead_lr=a, mode='mixed')
    ref_loss = _lookahead_meta_loss(wnet, params, train, meta, a)
    vals = jax.vmap(lambda v: _lookahead_meta_loss(unravel(v), params, train, meta, a))(points)
    return loss, grad, ref_loss, vals

  eye = np.eye(flat.size)
  loss, grad, ref_loss, vals = compute(wnet, np.concatenate([flat + h * eye, flat - h * eye]))
  fd = (np.asarray(vals[:flat.size]) - np.asarray(vals[flat.size:])) / (2 * h)
  np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-12)
  assert np.linalg.norm(fd) > 1e-4
  np.testing.assert_allclose(_flat(grad), fd, rtol=1e-5, atol=1e-9)


def test_mwn_step_is_one_optimizer_step_on_the_meta_gradient():
  params, train, meta = _problem(seed=2)
  a, lr = 0.5, 0.1
  wnet0 = _init_wnet(2)
  opt = optax.sgd(lr)
  kw = dict(per_example_loss_fn=per_example_ce, weight_fn=WeightNet().apply, lookahead_lr=a)

  @jax.jit
  def compute(wnet0, params):
    loss0, grad0 = mwn.mwn_meta_loss_and_grad(wnet0, params, train, meta, **kw)
    wnet1, _, meta_loss = mwn.mwn_step(wnet0, opt.init(wnet0), params, train, meta,
                                       wnet_optimizer=opt, **kw)
    loss1 = _lookahead_meta_loss(wnet1, params, train, meta, a)
    return loss0, grad0, wnet1, meta_loss, loss1

  loss0, grad0, wnet1, meta_loss, loss1 = compute(wnet0, params)
  np.testing.assert_allclose(float(meta_loss), float(loss0), rtol=1e-6)
  np.testing.assert_allclose(_flat(wnet1), _flat(wnet0) - lr * _flat(grad0), rtol=1e-5, atol=1e-7)
  assert np.linalg.norm(_flat(grad0)) > 1e-5
  assert float(loss1) < float(loss0)  # A meta-descent step.
