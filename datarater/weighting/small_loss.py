"""Small-loss selection: train on the lowest-loss fraction of each batch.

The sample-selection rule of co-teaching (Han et al., "Co-teaching: Robust
Training of Deep Neural Networks with Extremely Noisy Labels", NeurIPS 2018,
arXiv 1804.06872): deep networks fit clean labels before noisy ones, so early
in training the examples with the smallest loss are likely clean. A step keeps
the k = ceil((1 - r_t) B) lowest of its B losses, each with weight 1/k, and
drops the rest; the forget rate ramps up linearly,

    r_t = r min(t / T_k, 1)

(the paper's R(T) = 1 - min(T tau / T_k, tau) with tau = r). Co-teaching
assumes the noise rate is known and sets r to it; its second network (each
network picks the examples its peer trains on) is not part of this rule.

Pure and jit-able; the forget rate may be traced (then it is not validated).
Reductions are plain ``jnp``, so under ``jax.jit`` with a sharded batch the
ranking is over the global batch. Invalid arguments raise ``ValueError``
naming the argument.
"""

import jax.numpy as jnp

from datarater.weighting.checks import as_float_vector as _as_float
from datarater.weighting.checks import check as _check
from datarater.weighting.normalize import sum_one


def small_loss_weights(losses, forget_rate):
  """Weight 1/k on the k = ceil((1 - forget_rate) B) smallest losses, 0 elsewhere.

  Args:
    losses: [B] per-example losses (stop_gradient'ed by the caller).
    forget_rate: scalar in [0, 1), the fraction of the batch dropped (may be traced).

  Returns:
    [B] weights summing to one (at least one example kept); ties are broken by position.
  """
  _check('forget_rate', forget_rate, lambda r: 0 <= r < 1, 'in [0, 1)')
  losses = _as_float(losses)
  b = losses.shape[0]
  k = jnp.maximum(jnp.ceil((1.0 - forget_rate) * b), 1.0)
  ranks = jnp.argsort(jnp.argsort(losses))  # 0 = smallest loss
  return sum_one((ranks < k).astype(losses.dtype))


def forget_rate_schedule(step, forget_rate, ramp_steps: int):
  """The forget rate at `step`: r min(t / T_k, 1), or r from the start when T_k = 0.

  Args:
    step: the training step t (may be traced).
    forget_rate: r in [0, 1), the rate once the ramp is over.
    ramp_steps: T_k >= 0, the steps over which the rate rises linearly from 0 to r (static).

  Returns:
    A scalar array.
  """
  _check('forget_rate', forget_rate, lambda r: 0 <= r < 1, 'in [0, 1)')
  _check('ramp_steps', ramp_steps, lambda t: t >= 0 and t == int(t), 'an integer >= 0')
  if not ramp_steps:
    return jnp.asarray(forget_rate)
  return forget_rate * jnp.minimum(step / ramp_steps, 1.0)
