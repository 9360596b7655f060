"""Correctness tests for unrolled meta-gradients (datarater.meta.unroll).

XLA compilation dominates the runtime here, so the tests share a few cached
jitted programs: one per (inner optimizer, T) that computes every mode at
once, and one finite-difference program per (optimizer, T).
"""

import functools
from unittest import mock

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from datarater.meta import unroll


def _flat(tree):
  """Concatenated leaves as one float64 numpy vector (numpy: compiles nothing)."""
  return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


@functools.lru_cache(maxsize=None)
def _optimizer(name):
  if name == 'sgd':
    return optax.sgd(0.3)
  # Hyperparameters live in the optimizer state (inject_hyperparams), so one
  # compiled program serves several eps_root values. eps is large-ish so the
  # first Adam step is not ~lr * sign(g), whose derivative in eta is ~0.
  return optax.inject_hyperparams(optax.adam)(
      learning_rate=0.05, b2=0.99, eps=0.1, eps_root=1e-8)


def _mlp_loss(p, x, y):
  """Per-example squared error of a 3-4-1 tanh MLP."""
  return (jnp.tanh(x @ p['w1'] + p['b1']) @ p['w2'] - y) ** 2


def inner_loss_fn(p, eta, batch):
  """DataRater inner loss: sum_x softmax_B(rater(x)) * loss(x), linear rater."""
  x, y = batch
  weights = jax.nn.softmax(x @ eta['w'] + eta['b'])
  return jnp.sum(weights * _mlp_loss(p, x, y))


def outer_loss_fn(p, batch):
  return jnp.mean(_mlp_loss(p, *batch))


def _problem(num_steps, seed=0, batch=6, dim=3, hidden=4, zero_feature=False):
  """Tiny problem; numpy RNG so that building it compiles nothing."""
  rng = np.random.default_rng(seed)
  params = {
      'w1': rng.normal(size=(dim, hidden)),
      'b1': 0.1 * rng.normal(size=hidden),
      'w2': rng.normal(size=hidden) / 2,
  }
  eta = {'w': rng.normal(size=dim), 'b': np.asarray(0.3)}
  xs = rng.normal(size=(num_steps, batch, dim))
  ys = np.sin(xs[..., 0]) + 0.5 * rng.normal(size=(num_steps, batch))
  if zero_feature:
    xs[..., 0] = 0.0
  mx = rng.normal(size=(8, dim))
  my = np.sin(mx[:, 0])
  # jnp.asarray picks float64 under x64 and float32 otherwise.
  return jax.tree.map(jnp.asarray, (eta, params, (xs, ys), (mx, my)))


def _kwargs(opt_name):
  return dict(inner_loss_fn=inner_loss_fn, outer_loss_fn=outer_loss_fn,
              optimizer=_optimizer(opt_name))


@functools.lru_cache(maxsize=None)
def _all_modes(opt_name, dtype_name, modes):
  """Jitted fn -> {mode: (meta_loss, grad_eta, (params_T, opt_state_T))}.

  Cached per optimizer and dtype; jit re-specialises per T (input shapes).
  """
  del dtype_name  # Only part of the cache key.

  def f(eta, params, opt_state, train, meta):
    return {m: unroll.meta_loss_and_grad(eta, params, opt_state, train, meta,
                                         mode=m, **_kwargs(opt_name))
            for m in modes}
  return jax.jit(f)


def _run(opt_name, eta, params, opt_state, train, meta, modes=unroll.MODES):
  dtype_name = jnp.asarray(1.0).dtype.name
  return _all_modes(opt_name, dtype_name, modes)(eta, params, opt_state, train, meta)


@functools.lru_cache(maxsize=None)
def _fd_reference(opt_name, num_steps, h=1e-5):
  """Central finite differences of the meta loss in every eta coordinate."""
  eta, params, train, meta = _problem(num_steps)
  opt_state = _optimizer(opt_name).init(params)
  flat, unravel = ravel_pytree(eta)

  def f(v):
    return unroll.meta_loss(unravel(v), params, opt_state, train, meta,
                            mode='reverse', **_kwargs(opt_name))[0]

  flat = np.asarray(flat)
  eye = np.eye(flat.size, dtype=flat.dtype)
  points = np.concatenate([flat + h * eye, flat - h * eye])
  vals = np.asarray(jax.jit(jax.vmap(f))(points))
  return (vals[:flat.size] - vals[flat.size:]) / (2 * h)


@pytest.mark.parametrize('num_steps', [1, 3])
@pytest.mark.parametrize('opt_name', ['sgd', 'adam'])
def test_meta_grad_matches_finite_differences(x64, opt_name, num_steps):
  eta, params, train, meta = _problem(num_steps)
  out = _run(opt_name, eta, params, _optimizer(opt_name).init(params), train, meta)
  fd = _fd_reference(opt_name, num_steps)
  assert np.linalg.norm(fd) > 1e-3  # A non-trivial meta-gradient.
  for mode in unroll.EXACT_MODES:
    loss, grad, _ = out[mode]
    assert loss.dtype == jnp.float64
    np.testing.assert_allclose(_flat(grad), fd, rtol=1e-6, atol=1e-9, err_msg=mode)
    # The rater's bias cancels in the batch softmax: its meta-gradient is zero.
    assert abs(float(grad['b'])) < 1e-12, mode
    # The three exact modes agree to float64 rounding.
    np.testing.assert_allclose(_flat(grad), _flat(out['reverse'][1]), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(float(loss), float(out['reverse'][0]), rtol=1e-13)


def test_closed_form_weighted_linear_regression_one_sgd_step(x64):
  """One SGD step on softmax-weighted least squares, by hand.

  theta1 = theta0 - a sum_i w_i r_i x_i,  r_i = x_i.theta0 - y_i,
  w = softmax(X eta),  M = (1/2m) |Z theta1 - t|^2,  gM = Z^T (Z theta1 - t) / m
  dM/dw_i = -a r_i <x_i, gM>,  dw_i/deta = w_i (x_i - sum_k w_k x_k)
  => dM/deta = sum_i (-a r_i <x_i, gM>) w_i (x_i - xbar_w).
  """
  rng = np.random.default_rng(1)
  n, m, d, a = 7, 5, 3, 0.1
  x, y = rng.normal(size=(n, d)), rng.normal(size=n)
  z, t = rng.normal(size=(m, d)), rng.normal(size=m)
  theta0, eta = rng.normal(size=d), rng.normal(size=d)

  def inner(theta, e, batch):
    bx, by = batch
    return jnp.sum(jax.nn.softmax(bx @ e) * 0.5 * (bx @ theta - by) ** 2)

  def outer(theta, batch):
    bz, bt = batch
    return 0.5 * jnp.mean((bz @ theta - bt) ** 2)

  opt = optax.sgd(a)

  @jax.jit
  def all_modes(eta, theta0):
    return {mode: unroll.meta_loss_and_grad(
        eta, theta0, opt.init(theta0), (x[None], y[None]), (z, t),
        inner_loss_fn=inner, outer_loss_fn=outer, optimizer=opt, mode=mode)
            for mode in unroll.MODES}

  s = x @ eta
  w = np.exp(s - s.max())
  w /= w.sum()
  r = x @ theta0 - y
  theta1_cf = theta0 - a * (w * r) @ x
  g_meta = z.T @ (z @ theta1_cf - t) / m
  dm_dw = -a * r * (x @ g_meta)
  xbar = w @ x
  grad_cf = ((dm_dw * w)[:, None] * (x - xbar)).sum(0)
  assert np.linalg.norm(grad_cf) > 1e-3

  for mode, (loss, grad, (theta1, _)) in all_modes(jnp.asarray(eta), jnp.asarray(theta0)).items():
    np.testing.assert_allclose(np.asarray(theta1), theta1_cf, rtol=1e-12, err_msg=mode)
    np.testing.assert_allclose(float(loss), 0.5 * np.mean((z @ theta1_cf - t) ** 2), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grad), grad_cf, rtol=1e-9, atol=1e-14, err_msg=mode)


def test_exact_modes_agree_float32():
  eta, params, train, meta = _problem(1, seed=2)
  out = _run('sgd', eta, params, _optimizer('sgd').init(params), train, meta,
             modes=unroll.EXACT_MODES)
  assert out['reverse'][1]['w'].dtype == jnp.float32
  assert np.linalg.norm(_flat(out['reverse'][1])) > 1e-3
  for m in ('remat', 'mixed'):
    np.testing.assert_allclose(_flat(out[m][1]), _flat(out['reverse'][1]), rtol=1e-4, atol=1e-6)


def test_mixed_mode_grad_vjp_matches_reverse(x64):
  """The custom-VJP inner gradient's cotangents are v^T H_pp and v^T H_pe."""
  eta, params, (xs, ys), _ = _problem(1, seed=3)
  batch = (xs[0], ys[0])
  v = jax.tree.map(lambda p: jnp.cos(jnp.arange(p.size, dtype=p.dtype)).reshape(p.shape), params)
  mixed = unroll.mixed_mode_grad(inner_loss_fn)
  plain = jax.grad(inner_loss_fn)

  @jax.jit
  def both(params, eta, v):
    out_m, vjp_m = jax.vjp(lambda p, e: mixed(p, e, batch), params, eta)
    out_r, vjp_r = jax.vjp(lambda p, e: plain(p, e, batch), params, eta)
    return out_m, vjp_m(v), out_r, vjp_r(v)

  out_m, ct_m, out_r, ct_r = both(params, eta, v)
  np.testing.assert_allclose(_flat(out_m), _flat(out_r), rtol=1e-14)
  assert np.linalg.norm(_flat(ct_r[1])) > 1e-3
  np.testing.assert_allclose(_flat(ct_m), _flat(ct_r), rtol=1e-10, atol=1e-14)
  # The mixed mode really goes through the custom-VJP primitive.
  opt = optax.sgd(0.1)
  jaxpr = jax.make_jaxpr(functools.partial(
      unroll.unroll, inner_loss_fn=inner_loss_fn, optimizer=opt, mode='mixed'))(
          eta, params, opt.init(params), (xs, ys))
  assert 'custom_vjp_call' in str(jaxpr)


def _window(opt_name, eta, params, opt_state, xs, ys, meta, t):
  """The T = 1 programs run on step t's batch."""
  xs, ys = np.asarray(xs), np.asarray(ys)
  return _run(opt_name, eta, params, opt_state, (xs[t:t + 1], ys[t:t + 1]), meta)


@pytest.mark.parametrize('opt_name', ['sgd', 'adam'])
def test_first_order_is_last_step_only(x64, opt_name):
  eta, params, (xs, ys), meta = _problem(3)
  state0 = _optimizer(opt_name).init(params)
  out = _run(opt_name, eta, params, state0, (xs, ys), meta)
  g_exact, g_fo = _flat(out['reverse'][1]), _flat(out['first_order'][1])
  np.testing.assert_allclose(float(out['first_order'][0]), float(out['reverse'][0]), rtol=1e-13)

  # It drops real terms: clearly different from the exact meta-gradient.
  rel = np.linalg.norm(g_fo - g_exact) / np.linalg.norm(g_exact)
  assert rel > 1e-2
  if opt_name == 'sgd':
    # With SGD every step contributes a similar term (propagated through
    # I - lr * H), so the last one alone points roughly the same way. Not so
    # with Adam, whose moments carry the earlier steps' eta-dependence
    # (here the cosine is negative), hence no such check for Adam.
    cos = float(g_fo @ g_exact / (np.linalg.norm(g_fo) * np.linalg.norm(g_exact)))
    assert cos > 0.3

  # It is exactly the meta-gradient of the last step alone, started from the
  # (constant) state after the first T-1 steps.
  p, s = params, state0
  for t in range(2):
    _, _, (p, s) = _window(opt_name, eta, p, s, xs, ys, meta, t)['reverse']
  g_last = _window(opt_name, eta, p, s, xs, ys, meta, 2)['reverse'][1]
  np.testing.assert_allclose(g_fo, _flat(g_last), rtol=1e-10, atol=1e-14)

  # For T = 1 nothing is dropped.
  out1 = _window(opt_name, eta, params, state0, xs, ys, meta, 0)
  np.testing.assert_allclose(_flat(out1['first_order'][1]), _flat(out1['reverse'][1]),
                             rtol=1e-10, atol=1e-14)


def test_returned_state_and_truncated_windows(x64):
  opt_name = 'adam'
  opt = _optimizer(opt_name)
  eta, params, (xs, ys), meta = _problem(3)
  state0 = opt.init(params)

  # Reference: a plain Python loop of optimizer updates.
  @jax.jit
  def plain_step(p, s, batch):
    u, s = opt.update(jax.grad(inner_loss_fn)(p, eta, batch), s, p)
    return optax.apply_updates(p, u), s

  p_ref, s_ref = params, state0
  for t in range(3):
    p_ref, s_ref = plain_step(p_ref, s_ref, (xs[t], ys[t]))

  full = _run(opt_name, eta, params, state0, (xs, ys), meta)
  for mode in unroll.MODES:
    # One window of T = 3 ...
    loss, _, (p3, s3) = full[mode]
    np.testing.assert_allclose(_flat(p3), _flat(p_ref), rtol=1e-12, err_msg=mode)
    np.testing.assert_allclose(_flat(s3), _flat(s_ref), rtol=1e-12, err_msg=mode)
    np.testing.assert_allclose(float(loss), float(outer_loss_fn(p_ref, meta)), rtol=1e-12)
    # ... equals three truncated windows of T = 1 continuing from the carried state.
    p, s = params, state0
    for t in range(3):
      _, _, (p, s) = _window(opt_name, eta, p, s, xs, ys, meta, t)[mode]
    np.testing.assert_allclose(_flat(p), _flat(p_ref), rtol=1e-12, err_msg=mode)
    assert int(s.count) == 3


def test_returned_state_is_stop_gradient():
  eta, params, (xs, ys), meta = _problem(1)
  kwargs = _kwargs('sgd')
  opt_state = kwargs['optimizer'].init(params)

  def through_state(e):
    _, _, (pt, _) = unroll.meta_loss_and_grad(
        e, params, opt_state, (xs, ys), meta, mode='mixed', **kwargs)
    return jnp.sum(pt['w2'])

  def through_unroll(e):
    return jnp.sum(unroll.unroll(e, params, opt_state, (xs, ys),
                                 inner_loss_fn=inner_loss_fn,
                                 optimizer=kwargs['optimizer'])[0]['w2'])

  g_state, g_unroll = jax.jit(
      lambda e: (jax.grad(through_state)(e), jax.grad(through_unroll)(e)))(eta)
  assert np.all(_flat(g_state) == 0)
  assert np.linalg.norm(_flat(g_unroll)) > 1e-4  # `unroll` itself is differentiable.


def test_eps_root_needed_for_adam(x64):
  """A feature that is zero in every training batch gives a parameter with zero
  gradient and zero second moment: d sqrt(v)/dv = inf at v = 0 makes the
  meta-gradient NaN unless eps_root > 0."""
  eta, params, (xs, ys), meta = _problem(1, zero_feature=True)
  state = _optimizer('adam').init(params)
  for eps_root, finite in ((0.0, False), (1e-8, True)):
    hp = dict(state.hyperparams, eps_root=jnp.full_like(state.hyperparams['eps_root'], eps_root))
    out = _run('adam', eta, params, state._replace(hyperparams=hp), (xs, ys), meta)
    for mode in unroll.MODES:
      assert bool(np.all(np.isfinite(_flat(out[mode][1])))) == finite, (eps_root, mode)


def test_bad_arguments():
  eta, params, train, meta = _problem(1)
  kwargs = _kwargs('sgd')
  opt_state = kwargs['optimizer'].init(params)
  with pytest.raises(ValueError, match='forward_mode'):
    unroll.meta_loss_and_grad(eta, params, opt_state, train, meta, mode='forward_mode', **kwargs)
  empty = jax.tree.map(lambda x: x[:0], train)
  with pytest.raises(ValueError, match='T >= 1'):
    unroll.meta_loss_and_grad(eta, params, opt_state, empty, meta, mode='reverse', **kwargs)
  ragged = (train[0], jnp.concatenate([train[1], train[1]]))
  with pytest.raises(ValueError, match='leading'):
    unroll.meta_loss_and_grad(eta, params, opt_state, ragged, meta, mode='reverse', **kwargs)


@functools.lru_cache(maxsize=None)
def _reverse_and_checkpointed(opt_name):
  def f(eta, params, opt_state, train, meta):
    return [unroll.meta_loss_and_grad(eta, params, opt_state, train, meta, mode=m,
                                      **_kwargs(opt_name))
            for m in ('reverse', 'checkpointed')]
  return jax.jit(f)


@pytest.mark.parametrize('num_steps', [2, 7, 9])
def test_checkpointed_equals_reverse_over_segments(x64, num_steps):
  """Segments of ceil(sqrt T) steps: T=2 is one segment, T=7 two of 3 plus a
  rest of 1, T=9 three of 3. Gradient and returned state equal reverse's."""
  eta, params, train, meta = _problem(num_steps, seed=4)
  opt = _optimizer('adam')
  (loss_r, g_r, (p_r, s_r)), (loss_c, g_c, (p_c, s_c)) = _reverse_and_checkpointed('adam')(
      eta, params, opt.init(params), train, meta)
  assert np.linalg.norm(_flat(g_r)) > 1e-3
  np.testing.assert_allclose(_flat(g_c), _flat(g_r), rtol=1e-10, atol=1e-14)
  np.testing.assert_allclose(float(loss_c), float(loss_r), rtol=1e-13)
  np.testing.assert_allclose(_flat(p_c), _flat(p_r), rtol=1e-13)
  assert int(s_c.count) == int(s_r.count) == num_steps


def _meta_program(mode, num_steps, hidden=64, batch=32, dim=32):
  """Compiled meta-gradient of a small problem with T = num_steps (memory and FLOPs tests)."""
  eta, params, train, meta = _problem(num_steps, batch=batch, dim=dim, hidden=hidden)
  opt = optax.adam(1e-2, eps_root=1e-8)
  fn = functools.partial(unroll.meta_loss_and_grad, inner_loss_fn=inner_loss_fn,
                         outer_loss_fn=outer_loss_fn, optimizer=opt, mode=mode)
  return jax.jit(fn).lower(eta, params, opt.init(params), train, meta).compile()


def test_checkpointed_memory_grows_like_sqrt_t():
  """XLA temp memory at T=16: checkpointed keeps ~sqrt(T) carried states, reverse all T."""
  temp = lambda mode, t: _meta_program(mode, t).memory_analysis().temp_size_in_bytes
  rev_growth = temp('reverse', 16) / temp('reverse', 1)
  ckpt_growth = temp('checkpointed', 16) / temp('checkpointed', 1)
  assert rev_growth > 6
  assert ckpt_growth < rev_growth / 2, (ckpt_growth, rev_growth)


def test_compiled_flops_scales_loop_bodies_by_trip_count():
  """A rolled scan costs T bodies, like its unrolled twin; nested loops multiply."""
  from datarater.train import flops

  c, xs = jnp.ones((64, 64)), jnp.ones((8, 64, 64))
  body = lambda c, x: (jnp.tanh(c @ x), None)
  compile_ = lambda f: jax.jit(f).lower(c, xs).compile()
  rolled = compile_(lambda c, xs: jax.lax.scan(body, c, xs)[0])
  unrolled = compile_(lambda c, xs: jax.lax.scan(body, c, xs, unroll=True)[0])
  matmul = 2 * 64 ** 3
  assert flops.while_loops(rolled) == [(mock.ANY, 8)] and not flops.while_loops(unrolled)
  np.testing.assert_allclose(unrolled.cost_analysis()['flops'], 8 * matmul, rtol=1e-4)
  np.testing.assert_allclose(flops.compiled_flops(rolled), 8 * matmul, rtol=1e-4)
  assert rolled.cost_analysis()['flops'] < 1.1 * matmul  # XLA alone: the body once

  def nested(c, xs):
    inner = lambda c, x: jax.lax.fori_loop(0, 3, lambda i, c: jnp.tanh(c @ x), c)
    return jax.lax.scan(lambda c, x: (inner(c, x), None), c, xs)[0]
  program = compile_(nested)
  assert sorted(t for _, t in flops.while_loops(program)) == [3, 8]
  np.testing.assert_allclose(flops.compiled_flops(program), 24 * matmul, rtol=1e-4)


def test_compiled_flops_of_a_rolled_meta_gradient():
  """The rolled T=8 meta-gradient: compiled_flops ~ XLA's count of the same
  meta-gradient written as a Python loop (XLA optimises the two programs a
  little differently: ~10% apart on this tiny problem, ~3% at B=512), and
  8 x the per-step increment; XLA's own count of the rolled loop is far below."""
  from datarater.train import flops

  one, eight = _meta_program('reverse', 1), _meta_program('reverse', 8)
  assert [t for _, t in flops.while_loops(eight)] == [8, 8]  # forward and backward scans
  eta, params, train, meta = _problem(8, batch=32, dim=32, hidden=64)
  opt = optax.adam(1e-2, eps_root=1e-8)

  def python_loop(eta, params, opt_state):
    def loss(eta):
      p, s = params, opt_state
      for t in range(8):
        p, s = unroll.inner_step(p, s, eta, (train[0][t], train[1][t]),
                                 grad_fn=jax.grad(inner_loss_fn), optimizer=opt)
      return outer_loss_fn(p, meta)
    return jax.value_and_grad(loss)(eta)

  unrolled = jax.jit(python_loop).lower(eta, params, opt.init(params)).compile()
  expected = unrolled.cost_analysis()['flops']
  assert not flops.while_loops(unrolled)
  np.testing.assert_allclose(flops.compiled_flops(unrolled), expected, rtol=1e-12)
  np.testing.assert_allclose(flops.compiled_flops(eight), expected, rtol=0.12)
  per_step = (flops.compiled_flops(eight) - flops.compiled_flops(one)) / 7
  np.testing.assert_allclose(8 * per_step, flops.compiled_flops(eight), rtol=0.1)
  assert eight.cost_analysis()['flops'] < 0.5 * expected  # what XLA alone reports
