"""Tests for datarater.bilevel: ScaleBiO/F2SA penalty method and hypergradients.

Implicit hypergradients are checked against the closed form on quadratic
bilevel problems, the unrolled one against finite differences of a numpy
unroll, the penalty method against a scipy reference optimum.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

from datarater.bilevel import implicit
from datarater.bilevel import scalebio
from datarater.weighting import groups


# ---------------------------------------------------------------------------
# Quadratic bilevel problem with a closed form.
#   lbar_k(w) = 0.5/m ||A_k w - b_k||^2,  L1(w) = 0.5 ||C w - d||^2,
#   w*(lambda) = (sum lambda_k G_k)^-1 sum lambda_k c_k,  G_k = A_k^T A_k / m,
#   c_k = A_k^T b_k / m.  Params are a dict {'a': w[:2], 'b': w[2:]} so that
#   every estimator is exercised on a pytree.
# ---------------------------------------------------------------------------


def _flat(params):
  return jnp.concatenate([params['a'], params['b']])


def _unflat(w):
  return {'a': w[:2], 'b': w[2:]}


def quad_per_source_loss(params, batch):
  w = _flat(params)
  resid = jnp.einsum('kmd,d->km', batch['A'], w) - batch['b']
  return 0.5 * jnp.mean(resid ** 2, axis=1), batch['counts']


def quad_meta_loss(params, meta_batch):
  w = _flat(params)
  return 0.5 * jnp.sum((meta_batch['C'] @ w - meta_batch['d']) ** 2)


def make_problem(seed, num_sources=3, dim=4, rows=8, meta_rows=3):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(num_sources, rows, dim))
  b = rng.normal(size=(num_sources, rows))
  c = rng.normal(size=(meta_rows, dim))
  d = rng.normal(size=(meta_rows,))
  batch = {'A': a, 'b': b, 'counts': np.full((num_sources,), rows)}
  return batch, {'C': c, 'd': d}


def closed_form(p, batch, meta, damping=0.0):
  """Returns (w*, F(p), dF/dp) in numpy float64."""
  p = np.asarray(p, np.float64)
  lam = np.exp(p - p.max())
  lam /= lam.sum()
  present = (np.asarray(batch['counts']) > 0).astype(np.float64)
  a, b = batch['A'], batch['b']
  m = a.shape[1]
  g = np.einsum('kmd,kme->kde', a, a) / m
  c = np.einsum('kmd,km->kd', a, b) / m
  weights = lam * present
  h = np.einsum('k,kde->de', weights, g)
  w = np.linalg.solve(h, np.einsum('k,kd->d', weights, c))
  resid = meta['C'] @ w - meta['d']
  f = 0.5 * resid @ resid
  g1 = meta['C'].T @ resid
  v = np.linalg.solve(h + damping * np.eye(h.shape[0]), g1)
  grad_lbar = np.einsum('kde,e->kd', g, w) - c          # [K, d]
  df_dlam = -present * (grad_lbar @ v)
  jac = np.diag(lam) - np.outer(lam, lam)
  return w, f, jac.T @ df_dlam


def test_closed_form_matches_finite_differences(x64):
  batch, meta = make_problem(0)
  p = np.array([0.3, -0.5, 0.1])
  _, _, grad = closed_form(p, batch, meta)
  eps = 1e-6
  fd = np.array([
      (closed_form(p + eps * e, batch, meta)[1]
       - closed_form(p - eps * e, batch, meta)[1]) / (2 * eps)
      for e in np.eye(3)])
  np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
  assert np.abs(grad).max() > 1e-3  # non-trivial


def _lipschitz(batch, p):
  """Largest eigenvalue of the lower-level Hessian (present sources only)."""
  lam = np.asarray(jax.nn.softmax(jnp.asarray(p)))
  lam = lam * (np.asarray(batch['counts']) > 0)
  a = batch['A']
  g = np.einsum('kmd,kme->kde', a, a) / a.shape[1]
  return np.linalg.eigvalsh(np.einsum('k,kde->de', lam, g)).max()


@pytest.mark.parametrize('seed,absent', [(0, None), (1, None), (2, 1)])
def test_hypergradients_match_closed_form(x64, seed, absent):
  batch, meta = make_problem(seed)
  if absent is not None:
    batch['counts'][absent] = 0
  p = np.array([0.2, -0.4, 0.7])
  w_star, _, expected = closed_form(p, batch, meta)
  lip = _lipschitz(batch, p)
  p_j = jnp.asarray(p)
  w_j = _unflat(jnp.asarray(w_star))
  args = (quad_per_source_loss, quad_meta_loss)

  # Every estimator is jitted with traced hyperparameters (one compile each).
  cg = jax.jit(implicit.cg_hypergrad, static_argnums=(0, 1))(
      *args, p_j, w_j, batch, meta, maxiter=50, tol=1e-12)
  np.testing.assert_allclose(cg, expected, rtol=1e-7, atol=1e-10)

  eta = 1.0 / lip
  neumann_fn = jax.jit(implicit.neumann_hypergrad, static_argnums=(0, 1))
  neumann = neumann_fn(*args, p_j, w_j, batch, meta, num_terms=3000, eta=eta)
  np.testing.assert_allclose(neumann, expected, rtol=1e-6, atol=1e-9)
  # Too few terms is measurably worse: the test can tell estimators apart.
  short = neumann_fn(*args, p_j, w_j, batch, meta, num_terms=2, eta=eta)
  err_short = np.abs(np.asarray(short) - expected).max()
  err_full = np.abs(np.asarray(neumann) - expected).max()
  assert err_short > 1e-6 and err_short > 100 * err_full

  if absent is not None:
    # w* depends only on the ratios of the present sources' weights, so the
    # absent source's logit has zero hypergradient; the others do not.
    assert abs(float(cg[absent])) < 1e-12
    assert np.abs(np.asarray(cg)).max() > 1e-3


def test_cg_damping_matches_ridge_closed_form(x64):
  batch, meta = make_problem(3)
  p = np.array([0.0, 0.5, -0.5])
  w_star, _, exact = closed_form(p, batch, meta)
  _, _, expected = closed_form(p, batch, meta, damping=0.3)
  got = jax.jit(implicit.cg_hypergrad, static_argnums=(0, 1))(
      quad_per_source_loss, quad_meta_loss, jnp.asarray(p),
      _unflat(jnp.asarray(w_star)), batch, meta, maxiter=50, tol=1e-12,
      damping=0.3)
  np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-10)
  assert np.abs(expected - exact).max() > 1e-4  # damping really changes it


def _lower_level(p, batch):
  """(H, c) of grad_w L2(softmax(p), w) = H w - c, in numpy float64."""
  p = np.asarray(p, np.float64)
  lam = np.exp(p - p.max())
  lam = lam / lam.sum() * (np.asarray(batch['counts']) > 0)
  a, b = batch['A'], batch['b']
  h = np.einsum('k,kmd,kme->de', lam, a, a) / a.shape[1]
  return h, np.einsum('k,kmd,km->d', lam, a, b) / a.shape[1]


@pytest.mark.parametrize('seed,absent', [(0, None), (2, 1)])
def test_unrolled_hypergrad_matches_finite_differences(x64, seed, absent):
  batch, meta = make_problem(seed)
  if absent is not None:
    batch['counts'][absent] = 0
  p = np.array([0.2, -0.4, 0.7])
  w0 = np.random.default_rng(seed).normal(size=4)
  lr, num_steps = 0.5 / _lipschitz(batch, p), 4

  def meta_after_unroll(p_):   # L1(w_T), w_{t+1} = w_t - lr (H w_t - c)
    h, c = _lower_level(p_, batch)
    w = w0
    for _ in range(num_steps):
      w = w - lr * (h @ w - c)
    resid = meta['C'] @ w - meta['d']
    return 0.5 * resid @ resid

  eps = 1e-6
  expected = np.array([(meta_after_unroll(p + eps * e) - meta_after_unroll(p - eps * e))
                       / (2 * eps) for e in np.eye(3)])
  got = jax.jit(implicit.unrolled_hypergrad, static_argnums=(0, 1),
                static_argnames=('num_steps',))(
                    quad_per_source_loss, quad_meta_loss, jnp.asarray(p),
                    _unflat(jnp.asarray(w0)), batch, meta, num_steps=num_steps,
                    lr=lr)
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
  assert np.abs(expected).max() > 1e-3
  # One step fewer is a different function of p: the test sees the horizon.
  fewer = jax.jit(implicit.unrolled_hypergrad, static_argnums=(0, 1),
                  static_argnames=('num_steps',))(
                      quad_per_source_loss, quad_meta_loss, jnp.asarray(p),
                      _unflat(jnp.asarray(w0)), batch, meta,
                      num_steps=num_steps - 1, lr=lr)
  assert np.abs(np.asarray(fewer) - expected).max() > 1e-4


def test_hvp_and_mixed_term_match_dense_autodiff(x64):
  batch, meta = make_problem(4)
  p = jnp.array([0.1, 0.2, -0.3])
  w = _unflat(jnp.asarray(np.random.default_rng(0).normal(size=4)))
  v = _unflat(jnp.asarray(np.random.default_rng(1).normal(size=4)))
  l2 = lambda p_, wf: scalebio.weighted_loss(quad_per_source_loss, p_,
                                             _unflat(wf), batch)
  dense_h = jax.jit(jax.hessian(l2, argnums=1))(p, _flat(w))
  hvp = jax.jit(implicit.hvp, static_argnums=0)
  np.testing.assert_allclose(_flat(hvp(quad_per_source_loss, p, w, batch, v)),
                             dense_h @ _flat(v), rtol=1e-10)
  mixed = jax.jit(jax.jacfwd(jax.grad(l2, argnums=1), argnums=0))(
      p, _flat(w))  # [d, K]
  mixed_vjp = jax.jit(implicit.mixed_vjp, static_argnums=0)
  np.testing.assert_allclose(mixed_vjp(quad_per_source_loss, p, w, batch, v),
                             mixed.T @ _flat(v), rtol=1e-10)


# ---------------------------------------------------------------------------
# ScaleBiO / F2SA.
# ---------------------------------------------------------------------------


def penalty(per_source_loss_fn, alpha, p, u, w, batch):
  l2 = functools.partial(scalebio.weighted_loss, per_source_loss_fn)
  return alpha * (l2(p, w, batch) - l2(p, u, batch))


@pytest.mark.parametrize('recompute', [False, True])
@pytest.mark.parametrize('absent', [None, 0])
def test_step_p_gradient_is_autodiff_of_penalty(x64, recompute, absent):
  batch, meta = make_problem(5)
  if absent is not None:
    batch['counts'][absent] = 0
  lr_p = 0.05
  method = scalebio.scalebio(
      quad_per_source_loss, quad_meta_loss, alpha=7.0,
      optimizers=scalebio.make_optimizers(
          lr_u=0.05, lr_w=0.05, inner_optimizer='sgd',
          optimizer_p=optax.sgd(lr_p)),
      recompute_losses=recompute)
  rng = np.random.default_rng(0)
  p0 = jnp.asarray(rng.normal(size=3))
  p0 = p0 - p0.mean()
  state = method.init(p0, _unflat(jnp.asarray(rng.normal(size=4))),
                      _unflat(jnp.asarray(rng.normal(size=4))))
  new_state, metrics = jax.jit(method.step)(state, batch, meta)
  u, w = (new_state.u, new_state.w) if recompute else (state.u, state.w)
  penalty_grad = jax.jit(jax.grad(penalty, argnums=2), static_argnums=0)
  expected = penalty_grad(quad_per_source_loss, 7.0, p0, u, w, batch)
  np.testing.assert_allclose(metrics['grad_p'], expected, rtol=1e-10,
                             atol=1e-12)
  assert np.abs(np.asarray(expected)).max() > 1e-3
  # The p optimizer received exactly that gradient (SGD on zero-mean logits).
  np.testing.assert_allclose(new_state.p, p0 - lr_p * expected, rtol=1e-10,
                             atol=1e-12)
  gap = jax.jit(penalty, static_argnums=0)(quad_per_source_loss, 1.0, p0, u,
                                           w, batch)
  np.testing.assert_allclose(metrics['L2_gap'], gap, rtol=1e-10)
  if absent is not None:
    assert not bool(metrics['present'][absent])


def test_mirror_update_is_exponentiated_gradient(x64):
  batch, meta = make_problem(6)
  lr = 0.3
  method = scalebio.scalebio(
      quad_per_source_loss, quad_meta_loss, alpha=4.0, lambda_update='mirror',
      optimizers=scalebio.make_optimizers(
          lambda_update='mirror', lr_lambda=lr, inner_optimizer='sgd',
          lr_u=0.1, lr_w=0.1))
  rng = np.random.default_rng(1)
  state = method.init(jnp.asarray(rng.normal(size=3)),
                      _unflat(jnp.asarray(rng.normal(size=4))),
                      _unflat(jnp.asarray(rng.normal(size=4))))
  lam0 = jax.nn.softmax(state.p)
  new_state, _ = jax.jit(method.step)(state, batch, meta)
  lbar = jax.jit(lambda prm: quad_per_source_loss(prm, batch)[0])
  g_lambda = 4.0 * (lbar(state.w) - lbar(state.u))
  expected = lam0 * jnp.exp(-lr * g_lambda)
  expected = expected / expected.sum()
  np.testing.assert_allclose(jax.nn.softmax(new_state.p), expected, rtol=1e-10)
  assert np.abs(np.asarray(expected - lam0)).max() > 1e-3


@pytest.mark.parametrize('update', ['adam', 'mirror'])
def test_weights_stay_on_simplex(update):
  num_sources, dim, rows, num_steps = 5, 4, 6, 300
  method = scalebio.scalebio(
      quad_per_source_loss, quad_meta_loss, alpha=1e3, lambda_update=update,
      optimizers=scalebio.make_optimizers(
          lambda_update=update, lr_lambda=1.0, lr_u=1e-2, lr_w=1e-2))
  state = method.init(num_sources, _unflat(jnp.zeros(dim)))
  # Random batches (drawn outside jit: cheap to compile), with random sources
  # missing from each batch.
  rng = np.random.default_rng(0)
  batches = {
      'A': rng.normal(size=(num_steps, num_sources, rows, dim)),
      'b': 3.0 * rng.normal(size=(num_steps, num_sources, rows)),
      'counts': rng.integers(0, 3, size=(num_steps, num_sources)),
  }
  metas = {'C': rng.normal(size=(num_steps, 2, dim)),
           'd': rng.normal(size=(num_steps, 2))}
  batches, metas = jax.tree.map(lambda x: jnp.asarray(x, x.dtype.name
                                                      .replace('64', '32')),
                                (batches, metas))

  def body(state, xs):
    state, metrics = method.step(state, *xs)
    return state, metrics['lambda']

  state, lams = jax.jit(lambda s, xs: jax.lax.scan(body, s, xs))(
      state, (batches, metas))
  lams = np.asarray(jnp.concatenate([lams, jax.nn.softmax(state.p)[None]]))
  assert np.isfinite(lams).all()
  assert (lams >= 0).all()
  np.testing.assert_allclose(lams.sum(axis=1), 1.0, atol=1e-5)
  assert np.abs(lams[-1] - 1.0 / num_sources).max() > 1e-2  # weights moved


def _reference_optimum(batch, meta):
  def f_and_grad(p):
    _, f, g = closed_form(p, batch, meta)
    return f, g
  res = scipy.optimize.minimize(f_and_grad, np.zeros(3), jac=True,
                                method='BFGS', options={'gtol': 1e-12})
  lam = np.exp(res.x - res.x.max())
  return lam / lam.sum(), res.fun


def _interior_problem():
  """Sources whose mixture can nearly, but not exactly, fit the meta target."""
  rng = np.random.default_rng(7)
  num_sources, dim, rows = 3, 3, 6
  a = np.stack([np.eye(dim)[np.arange(rows) % dim] * 2.0
                + 0.3 * rng.normal(size=(rows, dim))
                for _ in range(num_sources)])
  targets = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0]])
  b = np.einsum('kmd,kd->km', a, targets) + 0.1 * rng.normal(
      size=(num_sources, rows))
  batch = {'A': a, 'b': b, 'counts': np.full((num_sources,), rows)}
  lam_ref = np.array([0.5, 0.3, 0.2])
  g = np.einsum('kmd,kme->kde', a, a) / rows
  c = np.einsum('kmd,km->kd', a, b) / rows
  w_ref = np.linalg.solve(np.einsum('k,kde->de', lam_ref, g),
                          np.einsum('k,kd->d', lam_ref, c))
  meta = {'C': np.eye(dim), 'd': w_ref + np.array([0.05, -0.05, 0.05])}
  return batch, meta


@pytest.mark.parametrize('update', ['adam', 'mirror'])
def test_penalty_method_converges_to_bilevel_optimum(x64, update):
  batch, meta = _interior_problem()
  lam_opt, f_opt = _reference_optimum(batch, meta)
  assert lam_opt.min() > 0.05 and f_opt > 1e-4  # interior, non-trivial optimum
  lip = max(np.linalg.eigvalsh(np.einsum('md,me->de', a, a) / a.shape[0]).max()
            for a in batch['A'])
  if update == 'adam':
    num_steps = 800
    lr_lambda = optax.cosine_decay_schedule(0.05, num_steps, alpha=1e-3)
  else:
    num_steps, lr_lambda = 400, 0.1
  method = scalebio.scalebio(
      quad_per_source_loss, quad_meta_loss, alpha=1e3, lambda_update=update,
      optimizers=scalebio.make_optimizers(
          lambda_update=update, lr_lambda=lr_lambda, inner_optimizer='sgd',
          lr_u=1.0 / lip, lr_w=1.0 / lip),
      normalize_inner=True)
  state = method.init(3, _unflat(jnp.zeros(3)))

  def body(state, _):
    state, metrics = method.step(state, batch, meta)
    return state, metrics['L1']

  state, l1 = jax.jit(lambda s: jax.lax.scan(body, s, None, length=num_steps))(
      state)
  lam = np.asarray(jax.nn.softmax(state.p))
  np.testing.assert_allclose(lam, lam_opt, atol=1e-3)
  assert abs(float(l1[-1]) - f_opt) < 1e-4
  # Uniform weights are far from the optimum, so this is a real test.
  assert np.abs(lam_opt - 1.0 / 3).max() > 0.1


def test_alpha_schedule_and_step_size_decay(x64):
  """Linear losses make every update deterministic: check the F2SA decays."""
  a_src = jnp.array([[1.0, 2.0], [-1.0, 0.5]])

  def per_source(params, batch):
    return a_src @ params['x'], jnp.ones(2)

  def meta_loss(params, meta_batch):
    return jnp.dot(jnp.array([0.3, -0.7]), params['x'])

  method = scalebio.scalebio(
      per_source, meta_loss, alpha=2.0, alpha_exponent=1.0 / 7.0,
      optimizers=scalebio.make_optimizers(
          optimizer_u=optax.sgd(0.1), optimizer_w=optax.sgd(0.2),
          optimizer_p=optax.sgd(0.0), decay_step_sizes=True))
  state = method.init(2, {'x': jnp.zeros(2)})
  lam = jnp.array([0.5, 0.5])
  step = jax.jit(method.step)
  for t in range(4):
    alpha_t = 2.0 * (t + 1) ** (1.0 / 7.0)
    new_state, metrics = step(state, None, None)
    np.testing.assert_allclose(metrics['alpha'], alpha_t, rtol=1e-6)
    du = new_state.u['x'] - state.u['x']
    dw = new_state.w['x'] - state.w['x']
    np.testing.assert_allclose(
        du, -0.1 * (t + 1) ** (-4 / 7) * alpha_t * (lam @ a_src), rtol=1e-5)
    np.testing.assert_allclose(
        dw, -0.2 * (t + 1) ** (-5 / 7)
        * (alpha_t * (lam @ a_src) + jnp.array([0.3, -0.7])), rtol=1e-5)
    state = new_state
  capped = scalebio.make_alpha_fn(10.0, 1.0, alpha_max=25.0)
  np.testing.assert_allclose([capped(0), capped(1), capped(5)],
                             [10.0, 20.0, 25.0])


def _block_params():
  return {'embed': jnp.ones(3), 'b0': {'k': jnp.ones((2, 2))},
          'b1': jnp.ones(2), 'b2': jnp.ones(4), 'b3': jnp.ones(1),
          'head': jnp.ones(2)}


def _block_loss(params, batch):
  total = sum(jnp.sum(x ** 2) for x in jax.tree.leaves(params))
  return jnp.stack([total, 0.5 * total]), jnp.ones(2)


def test_lisa_only_chosen_blocks_change():
  period, num_blocks = 3, 2
  method = scalebio.scalebio(
      _block_loss, lambda prm, _: jnp.sum(prm['head']),
      optimizers=scalebio.make_optimizers(lr_u=0.1, lr_w=0.1,
                                          inner_optimizer='sgd'),
      lisa_period=period, lisa_num_blocks=num_blocks,
      lisa_always_trainable=('embed', 'head'))
  key = jax.random.PRNGKey(3)
  state = method.init(2, _block_params(), key=key)
  step = jax.jit(method.step)
  mask_fn = jax.jit(lambda t, prm: scalebio.lisa_mask(
      key, t, prm, num_blocks, period, ('embed', 'head')))
  chosen_sets = []
  for t in range(4 * period):
    mask = mask_fn(t, state.u)
    active = {name for name, m in mask.items()
              if all(bool(x) for x in jax.tree.leaves(m))}
    assert {'embed', 'head'} <= active
    assert len(active) == num_blocks + 2
    new_state, _ = step(state, None, None)
    for params, new_params in ((state.u, new_state.u), (state.w, new_state.w)):
      changed = {name for name in params
                 if any(np.any(np.asarray(x) != np.asarray(y)) for x, y in zip(
                     jax.tree.leaves(params[name]),
                     jax.tree.leaves(new_params[name])))}
      assert changed == active, (t, changed, active)
    if t % period == 0:
      chosen_sets.append(frozenset(active))
    else:
      assert frozenset(active) == chosen_sets[-1]  # fixed within a window
    state = new_state
  assert len(set(chosen_sets)) > 1  # re-drawn across windows


def test_lisa_unwraps_flax_variables_and_validates():
  params = {'params': {'Dense_0': {'kernel': jnp.ones((2, 2))},
                       'Dense_1': {'kernel': jnp.ones((2, 2))},
                       'Dense_2': {'kernel': jnp.ones((2, 2))}}}
  assert scalebio.top_level_blocks(params) == ['Dense_0', 'Dense_1', 'Dense_2']
  key = jax.random.PRNGKey(0)
  masks = jax.jit(jax.vmap(
      lambda t: scalebio.lisa_mask(key, t, params, 1, 5)))(jnp.arange(50))
  assert jax.tree.structure(masks) == jax.tree.structure(params)
  per_step = np.stack([np.asarray(m) for m in jax.tree.leaves(masks)], 1)
  assert (per_step.sum(axis=1) == 1).all()      # exactly one block each step
  assert (per_step.sum(axis=0) > 0).all()       # every block gets its turn
  with pytest.raises(ValueError, match='lisa_always_trainable'):
    jax.eval_shape(lambda: scalebio.lisa_mask(key, 0, params, 1, 5,
                                              ('embed',)))
  with pytest.raises(ValueError, match='lisa_num_blocks'):
    jax.eval_shape(lambda: scalebio.lisa_mask(key, 0, params, 4, 5))


@pytest.mark.parametrize('factory,kwargs,field', [
    ('scalebio', {'alpha': 0.0}, 'alpha'),
    ('scalebio', {'alpha': -1.0}, 'alpha'),
    ('scalebio', {'lambda_update': 'sgd'}, 'lambda_update'),
    ('scalebio', {'alpha_exponent': -0.1}, 'alpha_exponent'),
    ('scalebio', {'lisa_period': -1}, 'lisa_period'),
    ('make_optimizers', {'lambda_update': 'sgd'}, 'lambda_update'),
    ('make_optimizers', {'lr_lambda': 0.0}, 'lr_lambda'),
    ('make_optimizers', {'lr_u': -1e-3}, 'lr_u'),
    ('make_optimizers', {'inner_optimizer': 'lion'}, 'inner_optimizer'),
    ('make_optimizers', {'weight_decay': -1.0}, 'weight_decay'),
    ('make_optimizers', {'decay_exponents': {'v': 0.5}}, 'decay_exponents'),
])
def test_invalid_options_raise_plain_value_errors(factory, kwargs, field):
  """The math names the argument, never a config field (that is the method's job)."""
  args = (quad_per_source_loss, quad_meta_loss) if factory == 'scalebio' else ()
  with pytest.raises(ValueError) as err:
    getattr(scalebio, factory)(*args, **kwargs)
  message = str(err.value)
  assert message.startswith(field) and '\n' not in message
  assert 'config' not in message and type(err.value) is ValueError


def test_segment_mean_losses_keep_a_step_finite_with_absent_sources():
  """groups.segment_mean as the per-source loss: an absent source is inert, not NaN."""
  ids = jnp.array([0, 0, 2, 2, 0])
  x = jnp.array([[1.0, 0.5], [0.2, -1.0], [2.0, 1.0], [-0.3, 0.4], [1.5, 1.5]])

  def per_source(params, batch):
    losses = (x @ params['w'] - 1.0) ** 2
    return groups.segment_mean(losses, ids, 3)

  method = scalebio.scalebio(
      per_source, lambda prm, _: jnp.sum(prm['w'] ** 2), alpha=5.0,
      optimizers=scalebio.make_optimizers(lr_u=0.1, lr_w=0.1, lr_lambda=0.1,
                                          inner_optimizer='sgd'))
  state = method.init(3, {'w': jnp.array([0.3, -0.2])},
                      {'w': jnp.array([0.1, 0.4])})
  new_state, metrics = jax.jit(method.step)(state, None, None)
  for leaf in jax.tree.leaves((new_state, metrics)):
    assert np.all(np.isfinite(np.asarray(leaf, np.float64)))
  np.testing.assert_array_equal(metrics['present'], [True, False, True])
  assert float(metrics['lbar_w'][1]) == 0 and float(metrics['lbar_u'][1]) == 0
  assert np.abs(np.asarray(metrics['grad_p'])[[0, 2]]).max() > 1e-3
