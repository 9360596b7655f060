"""Distributionally robust (DRO) per-example weights: KL, CVaR and chi^2 balls.

Every rule here maps a vector of per-example losses ``losses`` of shape [m]
(already ``stop_gradient``-ed by the caller) to weights ``q`` of shape [m] with
``q >= 0`` and ``sum(q) == 1``; the training loss is then ``sum(q * losses)``.
Each ``q`` is the maximiser over the probability simplex of

    <q, losses> - penalty(q)        (penalized form), or
    <q, losses>  s.t. D(q || u) <= rho   (constrained form),

with ``u`` the uniform distribution over the batch. The uncertainty sets and
their closed forms follow Levy, Carmon, Duchi and Sidford, "Large-Scale
Methods for Distributionally Robust Optimization", NeurIPS 2020 (CVaR and
chi^2), and the standard KL-DRO dual (e.g. Hu and Hong 2013, "Kullback-Leibler
divergence constrained distributionally robust optimization").

All functions are pure and jit-able. Hyperparameters are Python floats,
validated eagerly; the CVaR alpha must be static (it fixes the support size),
the others may also be traced values (then they are not validated). The
heavier rules are jitted internally, so eager calls are fast too. Reductions
are plain ``jnp`` reductions, so a batch sharded across devices under
``jax.jit`` gets global weights (XLA inserts the collectives). Computation is
done in at least float32.

Invalid hyperparameters raise ``ValueError`` naming the argument.
"""

import functools
import math

import jax
import jax.numpy as jnp

from datarater.weighting.checks import as_float_vector as _as_float
from datarater.weighting.checks import check as _check

# Number of bisection steps on log(tau) for the KL-constrained temperature.
# The bracket spans 1e-6 .. 1e6 times the loss range (27.6 nats of log tau), so
# 60 halvings resolve log(tau) to ~2.4e-17, below float32 resolution.
_KL_BISECTION_STEPS = 60
_KL_LOG_TAU_RANGE = (math.log(1e-6), math.log(1e6))


# ----------------------------------------------------------------------------
# KL divergence ball.
# ----------------------------------------------------------------------------


def kl_divergence_to_uniform(q):
  """KL(q || u) = sum_i q_i log(m q_i), with 0 log 0 = 0."""
  q = jnp.asarray(q)
  m = q.shape[0]
  return jnp.sum(jnp.where(q > 0, q * jnp.log(jnp.where(q > 0, q, 1.0) * m),
                           0.0))


def kl_dro_weights(losses, temperature):
  """KL-penalized DRO weights: q = softmax(losses / tau).

  q maximises <q, losses> - tau * KL(q || u) over the simplex (Gibbs
  variational principle; used as instance weights in e.g. Qi et al.,
  NeurIPS 2021, and Sow, Lin, Wang, Liang, ICLR 2024). tau -> inf gives
  uniform weights, tau -> 0 puts all mass on the largest loss.

  Args:
    losses: [m] per-example losses.
    temperature: tau > 0.

  Returns:
    [m] weights, non-negative, summing to one.
  """
  _check('temperature', temperature, lambda t: t > 0, '> 0')
  losses = _as_float(losses)
  return jax.nn.softmax(losses / temperature)


def kl_dro_value(losses, temperature):
  """KL-penalized DRO objective tau * log mean_i exp(loss_i / tau).

  Equals max_q <q, losses> - tau KL(q || u), attained at kl_dro_weights.
  """
  _check('temperature', temperature, lambda t: t > 0, '> 0')
  losses = _as_float(losses)
  m = losses.shape[0]
  return temperature * (jax.nn.logsumexp(losses / temperature) - math.log(m))


def kl_constrained_temperature(losses, rho):
  """Dual temperature of the KL-constrained DRO problem.

  max_q <q, losses> s.t. KL(q || u) <= rho has the dual
  min_{tau > 0} tau * logmeanexp(losses / tau) + tau * rho, whose minimiser
  tau* gives q = softmax(losses / tau*). The dual derivative is
  rho - KL(softmax(losses / tau) || u), and the KL term is decreasing in tau,
  so tau* solves KL(q_tau || u) = rho; we bisect on log(tau) in
  [1e-6, 1e6] * (max(losses) - min(losses)) for a fixed number of steps
  (jit-able). When rho >= log(m / #argmax) the constraint never binds and
  tau* -> 0 (clamped to the bracket's lower end: mass on the argmax).

  Args:
    losses: [m] per-example losses.
    rho: KL radius > 0.

  Returns:
    scalar tau* (0 < tau*).
  """
  _check('rho', rho, lambda r: r > 0, '> 0')
  return _kl_constrained_temperature(_as_float(losses), rho)


@jax.jit
def _kl_constrained_temperature(losses, rho):
  m = losses.shape[0]
  spread = jnp.max(losses) - jnp.min(losses)
  # Equal losses: every tau gives uniform weights; any positive scale works.
  scale = jnp.where(spread > 0, spread, 1.0)
  centered = (losses - jnp.max(losses)) / scale  # in [-1, 0]

  def kl_at(log_t):
    logq = jax.nn.log_softmax(centered / jnp.exp(log_t))
    return jnp.sum(jnp.exp(logq) * (logq + math.log(m)))

  def body(_, bracket):
    lo, hi = bracket
    mid = 0.5 * (lo + hi)
    too_peaked = kl_at(mid) > rho  # constraint violated: raise tau.
    return (jnp.where(too_peaked, mid, lo), jnp.where(too_peaked, hi, mid))

  lo0 = jnp.asarray(_KL_LOG_TAU_RANGE[0], losses.dtype)
  hi0 = jnp.asarray(_KL_LOG_TAU_RANGE[1], losses.dtype)
  _, hi = jax.lax.fori_loop(0, _KL_BISECTION_STEPS, body, (lo0, hi0))
  # hi is always feasible (KL <= rho) up to the bracket's resolution.
  return scale * jnp.exp(hi)


def kl_constrained_weights(losses, rho):
  """KL-constrained DRO weights: argmax_{KL(q||u) <= rho} <q, losses>.

  q = softmax(losses / tau*), tau* from kl_constrained_temperature
  (dual of the KL ball; Hu and Hong 2013).

  Args:
    losses: [m] per-example losses.
    rho: KL radius > 0.

  Returns:
    [m] weights, non-negative, summing to one.
  """
  losses = _as_float(losses)
  tau = kl_constrained_temperature(losses, rho)
  return jax.nn.softmax((losses - jnp.max(losses)) / tau)


def kl_constrained_value(losses, rho):
  """Dual value tau* logmeanexp(losses / tau*) + tau* rho (= robust loss)."""
  losses = _as_float(losses)
  tau = kl_constrained_temperature(losses, rho)
  m = losses.shape[0]
  lme = jax.nn.logsumexp(losses / tau) - math.log(m)
  return tau * lme + tau * rho


# ----------------------------------------------------------------------------
# CVaR.
# ----------------------------------------------------------------------------


def _cvar_support(m, alpha):
  """Static (number of full-weight examples, remainder weight)."""
  am = alpha * m
  n_full = min(int(math.floor(am + 1e-9)), m)  # snap float noise, e.g. 0.29*100
  rem = 1.0 - n_full / am
  if rem <= 1e-9:
    rem = 0.0
  return n_full, rem


def cvar_weights(losses, alpha):
  """CVaR_alpha weights (Levy et al., NeurIPS 2020, Sec. 2).

  The maximiser of <q, losses> over {q in simplex : q_i <= 1 / (alpha m)}:
  weight 1/(alpha m) on the floor(alpha m) largest losses, the remainder
  1 - floor(alpha m) / (alpha m) on the next largest, zero elsewhere. So the
  support has floor(alpha m) elements, plus one when alpha m is not an
  integer. Ties are broken deterministically by lower index first
  (``jax.lax.top_k``). alpha = 1 gives uniform weights; alpha < 1/m puts all
  mass on the largest loss.

  Args:
    losses: [m] per-example losses.
    alpha: fraction in (0, 1] (static).

  Returns:
    [m] weights, non-negative, summing to one.
  """
  _check('alpha', alpha, lambda a: 0 < a <= 1, 'in (0, 1]')
  losses = _as_float(losses)
  return _cvar_weights(losses, float(alpha))


@functools.partial(jax.jit, static_argnums=1)
def _cvar_weights(losses, alpha):
  m = losses.shape[0]
  n_full, rem = _cvar_support(m, alpha)
  values = [1.0 / (alpha * m)] * n_full + ([rem] if rem > 0 else [])
  _, idx = jax.lax.top_k(losses, len(values))
  return jnp.zeros_like(losses).at[idx].set(
      jnp.asarray(values, losses.dtype))


def cvar_value(losses, alpha):
  """CVaR_alpha(losses) = <cvar_weights, losses>.

  Equals the dual min_eta eta + mean((losses - eta)_+) / alpha (Rockafellar
  and Uryasev 2000; Levy et al. 2020, eq. (3)).
  """
  losses = _as_float(losses)
  return jnp.sum(cvar_weights(losses, alpha) * losses)


# ----------------------------------------------------------------------------
# chi^2 divergence ball (Levy et al. 2020 definition).
# ----------------------------------------------------------------------------


def chi2_divergence_to_uniform(q):
  """D_chi2(q || u) = (1/m) sum_i (m q_i - 1)^2 / 2 (Levy et al. 2020).

  The f-divergence with f(t) = (t - 1)^2 / 2. Maximum over the simplex is
  (m - 1) / 2 (at a vertex).
  """
  q = jnp.asarray(q)
  m = q.shape[0]
  return 0.5 * jnp.mean((m * q - 1.0) ** 2)


def _project_simplex(v):
  """Euclidean projection onto the simplex by sorting (Held et al. 1974).

  Returns max(v - theta, 0) with theta such that the result sums to one.
  """
  m = v.shape[0]
  u = jnp.sort(v)[::-1]
  css = jnp.cumsum(u) - 1.0
  ks = jnp.arange(1, m + 1, dtype=v.dtype)
  n_pos = jnp.sum(u - css / ks > 0)  # condition holds on a prefix
  theta = css[n_pos - 1] / n_pos.astype(v.dtype)
  return jnp.maximum(v - theta, 0.0)


def chi2_penalized_weights(losses, lam):
  """Penalized chi^2-DRO weights (Levy et al., NeurIPS 2020, Sec. 2).

  q maximises <q, losses> - lam * D_chi2(q || u) over the simplex, with
  D_chi2(q || u) = (1/m) sum (m q_i - 1)^2 / 2. The KKT conditions give
  q_i = (loss_i - eta)_+ / (lam m) with eta such that sum q = 1, i.e. q is the
  Euclidean projection of losses / (lam m) onto the simplex; computed exactly
  by sorting.

  Args:
    losses: [m] per-example losses.
    lam: penalty lambda > 0.

  Returns:
    [m] weights, non-negative, summing to one.
  """
  _check('lam', lam, lambda x: x > 0, '> 0')
  return _chi2_penalized_weights(_as_float(losses), lam)


@jax.jit
def _chi2_penalized_weights(losses, lam):
  m = losses.shape[0]
  # Shift by the max for conditioning; a constant shift does not change q.
  return _project_simplex((losses - jnp.max(losses)) / (lam * m))


def chi2_penalized_value(losses, lam):
  """max_q <q, losses> - lam * D_chi2(q || u), at chi2_penalized_weights."""
  losses = _as_float(losses)
  q = chi2_penalized_weights(losses, lam)
  return jnp.sum(q * losses) - lam * chi2_divergence_to_uniform(q)


def chi2_constrained_weights(losses, rho):
  """Constrained chi^2-DRO weights (Levy et al., NeurIPS 2020, Sec. 2).

  q = argmax <q, losses> over {q in simplex : D_chi2(q || u) <= rho} with
  D_chi2(q || u) = (1/m) sum (m q_i - 1)^2 / 2. Solved exactly: the solution
  is the penalized one, q_i = (loss_i - eta)_+ / (lam m), for the multiplier
  lam* >= 0 making the constraint tight. For a support of the k largest
  losses (sum of squared deviations V_k from their mean mu_k),
      q_i = 1/k + (loss_i - mu_k) / (lam m),
      D = (V_k / lam^2 + m^2 / k - m) / (2 m),
  so lam* = sqrt(V_k / (2 m rho + m - m^2 / k)). The support grows with lam;
  the (j+1)-th largest loss enters at lam = sum_{i<=j} (l_(i) - l_(j+1)) / m,
  and D is decreasing in lam, so the support size is 1 + #{breakpoints where
  D > rho}. If rho >= (m / k0 - 1) / 2, with k0 the number of losses tied at
  the maximum, the constraint does not bind and q is uniform over the argmax.
  Cost: one sort, O(m log m).

  Args:
    losses: [m] per-example losses.
    rho: chi^2 radius > 0.

  Returns:
    [m] weights, non-negative, summing to one.
  """
  _check('rho', rho, lambda r: r > 0, '> 0')
  return _chi2_constrained_weights(_as_float(losses), rho)


@jax.jit
def _chi2_constrained_weights(losses, rho):
  m = losses.shape[0]
  dt = losses.dtype
  order = jnp.argsort(-losses, stable=True)
  xs = losses[order] - jnp.max(losses)  # descending, xs[0] = 0
  ks = jnp.arange(1, m + 1, dtype=dt)
  s1 = jnp.cumsum(xs)
  s2 = jnp.cumsum(xs * xs)
  mean_k = s1 / ks
  var_k = jnp.maximum(s2 - s1 * s1 / ks, 0.0)  # V_k, sum of squared devs
  # Breakpoints b[j-1] at which sorted element j (0-based, j >= 1) enters;
  # cumulative sums of non-negative terms, so non-decreasing.
  gaps = xs[:-1] - xs[1:]
  b = jnp.cumsum(ks[:-1] * gaps) / m
  kk = ks[:-1]  # support size just before element j enters
  b_safe = jnp.where(b > 0, b, 1.0)
  d_at_b = (var_k[:-1] / b_safe**2 + m * m / kk - m) / (2 * m)
  include = (b <= 0) | (d_at_b > rho)
  k_star = 1 + jnp.sum(include)
  k0 = 1 + jnp.sum(b <= 0)  # ties at the maximum
  v = var_k[k_star - 1]
  mu = mean_k[k_star - 1]
  kf = k_star.astype(dt)
  den = 2 * m * rho + m - m * m / kf
  lam = jnp.sqrt(v / jnp.maximum(den, jnp.finfo(dt).tiny))
  unconstrained = (rho >= (m / k0.astype(dt) - 1.0) / 2) | ~(lam > 0)
  lam_safe = jnp.where(unconstrained, 1.0, lam)
  eta = mu - lam_safe * m / kf
  in_support = jnp.arange(m) < k_star
  q_sorted = jnp.where(in_support, jnp.maximum(xs - eta, 0.0), 0.0) / (
      lam_safe * m)
  q_top = (jnp.arange(m) < k0).astype(dt) / k0.astype(dt)
  q_sorted = jnp.where(unconstrained, q_top, q_sorted)
  q_sorted = q_sorted / jnp.sum(q_sorted)  # remove rounding drift
  return jnp.zeros_like(losses).at[order].set(q_sorted)


def chi2_constrained_value(losses, rho):
  """Robust loss max_{D_chi2(q||u) <= rho} <q, losses>."""
  losses = _as_float(losses)
  return jnp.sum(chi2_constrained_weights(losses, rho) * losses)
