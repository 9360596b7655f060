"""DRO closed forms vs generic convex solvers (scipy SLSQP / linprog)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize
from scipy import special

from datarater.weighting import dro


def _slsqp(objective, grad, x0, constraints=(), bounds=None, eq=()):
  """Generic SLSQP solve; constraints are (fun, jac) pairs with fun(x) >= 0,
  eq are (fun, jac) pairs with fun(x) == 0."""
  cons = [{'type': 'ineq', 'fun': f, 'jac': j} for f, j in constraints]
  cons += [{'type': 'eq', 'fun': f, 'jac': j} for f, j in eq]
  res = optimize.minimize(objective, x0, jac=grad, method='SLSQP',
                          bounds=bounds, constraints=cons,
                          options={'ftol': 1e-12, 'maxiter': 2000})
  # Status 8 ("positive directional derivative in line search") is SLSQP
  # stalling at machine precision, typical at sparse maximisers. Accept it only
  # with a feasible point; a stalled suboptimal point would then fail the
  # comparison against the closed form, never pass it by accident.
  assert res.status in (0, 8), res.message
  for f, _ in constraints:
    assert f(res.x) >= -1e-6
  for f, _ in eq:
    assert abs(f(res.x)) <= 1e-6
  return res.x


def _solve_on_simplex(objective, grad, m, constraints=()):
  """max-form problems over the simplex, parameterised directly by q.

  Starts off-centre: at the uniform point the chi^2 gradient vanishes and
  SLSQP can stall.
  """
  eq = (lambda q: np.sum(q) - 1.0, lambda q: np.ones_like(q))
  x0 = np.linspace(1.0, 2.0, m)
  x0 /= x0.sum()
  return _slsqp(objective, grad, x0, constraints, bounds=[(0.0, 1.0)] * m,
                eq=[eq])


def _solve_on_softmax(objective, grad, m, constraints=()):
  """Problems over the open simplex, parameterised as q = softmax(z).

  objective/grad/constraints take q (and return d/dq); the chain rule through
  the softmax is applied here. Avoids SLSQP's trouble with log q near 0.
  """
  def pull(g):  # d/dz from d/dq
    def f(z):
      q = special.softmax(z)
      v = g(q)
      return q * (v - q @ v)
    return f

  wrap = lambda f: (lambda z: f(special.softmax(z)))
  cons = [(wrap(f), pull(j)) for f, j in constraints]
  z = _slsqp(wrap(objective), pull(grad), np.zeros(m), cons)
  return special.softmax(z)


def _kl(q):
  m = q.shape[0]
  q = np.maximum(q, 1e-300)
  return float(np.sum(q * np.log(q * m)))


def _kl_grad(q):
  return np.log(np.maximum(q, 1e-300) * q.shape[0]) + 1.0


def _chi2(q):
  m = q.shape[0]
  return float(0.5 * np.mean((m * q - 1.0) ** 2))


def _chi2_grad(q):
  return q.shape[0] * q - 1.0


def _random_losses(seed, m):
  """Float64 losses exactly representable in float32."""
  rng = np.random.default_rng(seed)
  return rng.gamma(2.0, 1.0, size=m).astype(np.float32).astype(np.float64)


def _assert_simplex(q):
  q = np.asarray(q)
  assert np.all(q >= 0)
  np.testing.assert_allclose(q.sum(), 1.0, atol=1e-5)


# One batch size for the solver cross-checks keeps jit compilations few.
M = 12
CASES = [(0, M), (1, M), (2, M)]


@pytest.mark.parametrize('seed,m', CASES)
@pytest.mark.parametrize('tau', [0.3, 1.0, 5.0])
def test_kl_penalized_matches_slsqp(seed, m, tau):
  l = _random_losses(seed, m)
  q_ref = _solve_on_softmax(lambda q: -(q @ l - tau * _kl(q)),
                            lambda q: -(l - tau * _kl_grad(q)), m)
  q = np.asarray(dro.kl_dro_weights(l, tau))
  _assert_simplex(q)
  np.testing.assert_allclose(q, q_ref, atol=2e-4)
  value_ref = q_ref @ l - tau * _kl(q_ref)
  np.testing.assert_allclose(dro.kl_dro_value(l, tau), value_ref, rtol=1e-5,
                             atol=1e-5)


@pytest.mark.parametrize('seed,m', CASES)
@pytest.mark.parametrize('rho', [0.02, 0.2, 1.0])
def test_kl_constrained_matches_slsqp(seed, m, rho):
  l = _random_losses(seed, m)
  con = (lambda q: rho - _kl(q), lambda q: -_kl_grad(q))
  q_ref = _solve_on_softmax(lambda q: -(q @ l), lambda q: -l, m, [con])
  q = np.asarray(dro.kl_constrained_weights(l, rho))
  _assert_simplex(q)
  np.testing.assert_allclose(q, q_ref, atol=5e-4)
  # Constraint is active (rho < log m here) and the dual value is the primal.
  np.testing.assert_allclose(_kl(q.astype(np.float64)), rho, rtol=2e-3)
  np.testing.assert_allclose(dro.kl_constrained_value(l, rho), q_ref @ l,
                             rtol=1e-4)


def test_kl_constrained_large_radius_goes_to_argmax():
  l = np.array([0.1, 2.0, 0.5, 1.9], np.float32)
  q = np.asarray(dro.kl_constrained_weights(l, 10.0))  # > log 4
  assert q[1] > 0.999


def test_kl_limits():
  l = np.array([0.3, 1.2, 0.7, 2.5, 0.1], np.float32)
  np.testing.assert_allclose(dro.kl_dro_weights(l, 1e4), np.full(5, 0.2),
                             atol=1e-4)
  q = np.asarray(dro.kl_dro_weights(l, 1e-2))
  assert np.argmax(q) == 3 and q[3] > 1 - 1e-6
  # Monotone: the max weight shrinks as the temperature grows.
  peaks = [float(dro.kl_dro_weights(l, t).max()) for t in (0.1, 0.5, 2, 10)]
  assert all(a > b for a, b in zip(peaks, peaks[1:]))


@pytest.mark.parametrize('seed,m', CASES + [(3, 40)])
@pytest.mark.parametrize('alpha', [0.05, 0.1, 0.25, 0.5, 0.77, 1.0])
def test_cvar_matches_linprog(seed, m, alpha):
  l = _random_losses(seed, m)
  res = optimize.linprog(-l, A_eq=np.ones((1, m)), b_eq=[1.0],
                         bounds=[(0.0, 1.0 / (alpha * m))] * m,
                         method='highs')
  assert res.status == 0
  q = np.asarray(dro.cvar_weights(l, alpha))
  _assert_simplex(q)
  # Distinct random losses: the LP maximiser is unique.
  np.testing.assert_allclose(q, res.x, atol=1e-6)
  np.testing.assert_allclose(dro.cvar_value(l, alpha),
                             -res.fun, rtol=1e-5)
  # Rockafellar-Uryasev dual, minimised over eta at the loss values.
  dual = min(e + np.mean(np.maximum(l - e, 0)) / alpha for e in l)
  np.testing.assert_allclose(-res.fun, dual, rtol=1e-9)


@pytest.mark.parametrize('m,alpha,support', [
    (10, 0.25, 3),  # floor(2.5) = 2, plus the remainder
    (10, 0.3, 3),  # alpha m = 3.0000000000000004
    (100, 0.29, 29),  # alpha m = 28.999999999999996
    (10, 0.05, 1),  # alpha m < 1: all on the max
    (7, 1.0, 7),
])
def test_cvar_support_size(m, alpha, support):
  l = _random_losses(m, m)
  q = np.asarray(dro.cvar_weights(l, alpha))
  assert np.count_nonzero(q) == support
  top = np.argsort(-l)[:support]
  assert set(np.flatnonzero(q)) == set(top)
  n_full = math.floor(alpha * m + 1e-9)
  np.testing.assert_allclose(np.sort(q)[::-1][:n_full], 1 / (alpha * m),
                             rtol=1e-6)


def test_cvar_ties_are_deterministic():
  l = np.array([1.0, 3.0, 3.0, 3.0, 0.0], np.float32)
  q = np.asarray(dro.cvar_weights(l, 0.3))  # alpha m = 1.5
  np.testing.assert_allclose(q, [0, 1 / 1.5, 1 - 1 / 1.5, 0, 0], atol=1e-7)
  q_jit = jax.jit(functools.partial(dro.cvar_weights, alpha=0.3))(l)
  np.testing.assert_array_equal(q, q_jit)


@pytest.mark.parametrize('seed,m', CASES)
@pytest.mark.parametrize('lam', [0.05, 0.4, 3.0])
def test_chi2_penalized_matches_slsqp(seed, m, lam):
  l = _random_losses(seed, m)
  q_ref = _solve_on_simplex(lambda q: -(q @ l - lam * _chi2(q)),
                            lambda q: -(l - lam * _chi2_grad(q)), m)
  q = np.asarray(dro.chi2_penalized_weights(l, lam))
  _assert_simplex(q)
  np.testing.assert_allclose(q, q_ref, atol=1e-4)
  # KKT form: q_i = (l_i - eta)_+ / (lam m) with a single eta.
  support = q > 1e-6
  eta = l[support] - q[support] * lam * m
  np.testing.assert_allclose(eta, eta.mean(), atol=1e-4 * max(1, lam * m))
  assert np.all(l[~support] <= eta.mean() + 1e-4)


@pytest.mark.parametrize('seed,m', CASES)
@pytest.mark.parametrize('rho', [0.01, 0.3, 1.0, 4.0])
def test_chi2_constrained_matches_slsqp(seed, m, rho):
  l = _random_losses(seed, m)
  con = (lambda q: rho - _chi2(q), lambda q: -_chi2_grad(q))
  q_ref = _solve_on_simplex(lambda q: -(q @ l), lambda q: -l, m, [con])
  q = np.asarray(dro.chi2_constrained_weights(l, rho))
  _assert_simplex(q)
  np.testing.assert_allclose(q, q_ref, atol=2e-4)
  assert _chi2(q.astype(np.float64)) <= rho * (1 + 1e-4) + 1e-6
  np.testing.assert_allclose(dro.chi2_constrained_value(l, rho), q_ref @ l,
                             rtol=1e-5)


def test_chi2_constrained_unbinding_radius_and_ties():
  l = np.array([0.2, 1.0, 0.5, 1.0, 0.9], np.float32)
  # Uniform over the two tied maxima has D = (5/2 - 1)/2 = 0.75.
  q = np.asarray(dro.chi2_constrained_weights(l, 0.75))
  np.testing.assert_allclose(q, [0, 0.5, 0, 0.5, 0], atol=1e-6)
  q = np.asarray(dro.chi2_constrained_weights(l, 0.5))
  assert q[2] < q[4] < q[1]
  np.testing.assert_allclose(q[1], q[3], atol=1e-7)
  np.testing.assert_allclose(_chi2(q.astype(np.float64)), 0.5, rtol=1e-4)
  # Equal losses: uniform for any radius.
  np.testing.assert_allclose(
      dro.chi2_constrained_weights(jnp.ones(4), 0.1), np.full(4, 0.25))
  np.testing.assert_allclose(
      dro.kl_constrained_weights(jnp.ones(4), 0.1), np.full(4, 0.25))


def test_all_rules_jit_and_simplex():
  l = jnp.asarray(_random_losses(7, M))
  rules = [
      functools.partial(dro.kl_dro_weights, temperature=0.5),
      functools.partial(dro.kl_constrained_weights, rho=0.3),
      functools.partial(dro.cvar_weights, alpha=0.1),
      functools.partial(dro.chi2_penalized_weights, lam=0.4),
      functools.partial(dro.chi2_constrained_weights, rho=1.0),
  ]
  for rule in rules:
    q_eager = np.asarray(rule(l))
    q_jit = np.asarray(jax.jit(rule)(l))
    _assert_simplex(q_jit)
    np.testing.assert_allclose(q_eager, q_jit, atol=1e-6)
    # Higher loss never gets less weight.
    order = np.argsort(np.asarray(l))
    assert np.all(np.diff(q_jit[order]) >= -1e-7)


@pytest.mark.parametrize('fn,kwargs,field', [
    (dro.kl_dro_weights, {'temperature': -1.0}, 'temperature'),
    (dro.kl_dro_weights, {'temperature': 0.0}, 'temperature'),
    (dro.kl_dro_value, {'temperature': float('nan')}, 'temperature'),
    (dro.kl_constrained_weights, {'rho': 0.0}, 'rho'),
    (dro.cvar_weights, {'alpha': 0.0}, 'alpha'),
    (dro.cvar_weights, {'alpha': 1.5}, 'alpha'),
    (dro.chi2_penalized_weights, {'lam': -0.4}, 'lam'),
    (dro.chi2_constrained_weights, {'rho': -1.0}, 'rho'),
])
def test_invalid_hyperparameters(fn, kwargs, field):
  with pytest.raises(ValueError, match=rf'^{field} must be') as e:
    fn(jnp.ones(4), **kwargs)
  assert 'config.' not in str(e.value)   # the math names its argument, not a config field
