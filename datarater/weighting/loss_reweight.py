"""Dynamic loss-based sample reweighting (Sow et al., ICLR 2025).

Sow et al., "Dynamic Loss-Based Sample Reweighting for Improved Large
Language Model Pretraining", ICLR 2025, arXiv 2502.06733. Per-example losses
over the (global) batch are mapped to normalized offsets

    h_i = delta (2 loss_i - max - min) / max(max - min, 1e-6)

(so h lies in [-delta, delta]), then through a strategy f and a softmax
with temperature r:

    LinUpper:  f(h) = min(h + delta, delta)   (down-weights low losses)
    Quadratic: f(h) = 1 - h^2 / delta^2       (down-weights both extremes)
    Extremes:  f(h) = |h|                     (up-weights both extremes)
    w = softmax(f(h) / r).

The paper leaves the first steps unweighted (1000 steps); ``warmup_weights``
returns uniform weights before ``warmup_steps`` via ``jnp.where`` on the step,
so it stays jit-able with a traced step.

Weights are non-negative and sum to one. Reductions are plain ``jnp``, so
under ``jax.jit`` with a sharded batch the max/min/softmax are global.
"""

import functools

import jax
import jax.numpy as jnp

from datarater.weighting.checks import as_float_vector as _as_float
from datarater.weighting.checks import check as _check

_RANGE_FLOOR = 1e-6


def normalized_loss_offsets(losses, delta):
  """h = delta (2 loss - max - min) / max(max - min, 1e-6) (Sow et al. 2025).

  Args:
    losses: [B] per-example losses.
    delta: half-width delta > 0 of the range of h (static).

  Returns:
    [B] offsets in [-delta, delta].
  """
  _check('delta', delta, lambda d: d > 0, '> 0')
  losses = _as_float(losses)
  hi = jnp.max(losses)
  lo = jnp.min(losses)
  return delta * (2.0 * losses - hi - lo) / jnp.maximum(hi - lo, _RANGE_FLOOR)


def linupper(h, delta):
  """LinUpper strategy f(h) = min(h + delta, delta) (Sow et al. 2025)."""
  return jnp.minimum(h + delta, delta)


def quadratic(h, delta):
  """Quadratic strategy f(h) = 1 - h^2 / delta^2 (Sow et al. 2025)."""
  return 1.0 - (h / delta) ** 2


def extremes(h, delta):
  """Extremes strategy f(h) = |h| (Sow et al. 2025)."""
  del delta
  return jnp.abs(h)


STRATEGIES = {
    'linupper': linupper,
    'quadratic': quadratic,
    'extremes': extremes,
}


def loss_reweight_weights(losses, strategy, delta=1.0, r=1.0):
  """Dynamic loss-based weights w = softmax(f(h) / r) (Sow et al. 2025).

  Args:
    losses: [B] per-example losses (stop_gradient'ed by the caller).
    strategy: one of STRATEGIES ('linupper', 'quadratic', 'extremes').
    delta: offset half-width delta > 0 (paper: 1).
    r: softmax temperature r > 0 (paper: 1.0 for the 124M Quadratic run,
      0.4 for larger models with Extremes/LinUpper).

  Returns:
    [B] weights, non-negative, summing to one.
  """
  if strategy not in STRATEGIES:
    raise ValueError(
        f'strategy must be one of {sorted(STRATEGIES)}, got {strategy!r}')
  _check('r', r, lambda x: x > 0, '> 0')
  _check('delta', delta, lambda d: d > 0, '> 0')
  return _loss_reweight_weights(_as_float(losses), strategy, delta, r)


@functools.partial(jax.jit, static_argnums=1)
def _loss_reweight_weights(losses, strategy, delta, r):
  h = normalized_loss_offsets(losses, delta)
  return jax.nn.softmax(STRATEGIES[strategy](h, delta) / r)


def warmup_weights(weights, step, warmup_steps):
  """Uniform weights while step < warmup_steps, else ``weights``.

  A ``jnp.where`` on ``step``, so ``step`` may be traced (jit-able). Sow et al.
  (2025) apply no reweighting for the first 1000 steps.

  Args:
    weights: [B] weights summing to one.
    step: current (0-based) training step, int scalar.
    warmup_steps: number of unweighted steps, >= 0 (static).

  Returns:
    [B] weights.
  """
  _check('warmup_steps', warmup_steps, lambda s: s >= 0 and s == int(s),
         'a non-negative integer')
  weights = jnp.asarray(weights)
  uniform = jnp.full_like(weights, 1.0 / weights.shape[0])
  return jnp.where(jnp.asarray(step) < warmup_steps, uniform, weights)
