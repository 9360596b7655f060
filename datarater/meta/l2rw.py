"""Learning to Reweight (L2RW; Ren et al., ICML 2018): per-example weights.

For a training batch with per-example losses f_i(theta) and a clean meta batch
with mean loss M(theta) = (1/m) sum_j f^meta_j(theta):

  theta_hat(eps) = theta - alpha * grad_theta sum_i eps_i f_i(theta)
  u_i = -d/d eps_i M(theta_hat(eps)) |_{eps = 0}
  w_i = max(u_i, 0) / (sum_j max(u_j, 0) + [sum_j max(u_j, 0) == 0])

At eps = 0, theta_hat = theta, so by the chain rule exactly
u_i = alpha * <grad f_i(theta), grad M(theta)>: examples whose gradient agrees
with the meta gradient get weight. The look-ahead is computed here as a
one-step unroll of `optax.sgd(alpha)` (see `datarater.meta.unroll`), so the
same code path (and estimator `mode`) serves L2RW and DataRater. The
look-ahead is plain SGD, as in the paper, whatever optimizer trains the model.

The model update uses loss sum_i w_i f_i(theta) with the weights as constants.
The training-loop wiring is datarater/methods/l2rw.py.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from datarater.meta import unroll
from datarater.weighting.normalize import sum_one

PyTree = Any
PerExampleLossFn = Callable[[PyTree, PyTree], jax.Array]


def normalize_nonnegative(u: jax.Array) -> jax.Array:
  """w = max(u, 0) / sum max(u, 0), zeros when no u_i is positive (L2RW's eq. 5 guard).

  The clip is L2RW's own; the normalisation is `datarater.weighting.normalize.sum_one`.

  Args:
    u: array of shape [B] of raw scores.

  Returns:
    Array of shape [B]: non-negative and summing to 1, or all zeros when no
    entry of `u` is positive.
  """
  return sum_one(jnp.maximum(u, 0.0))


def l2rw_scores(
    params: PyTree,
    train_batch: PyTree,
    meta_batch: PyTree,
    *,
    per_example_loss_fn: PerExampleLossFn,
    lookahead_lr: float,
    mode: str = 'reverse',
) -> jax.Array:
  """The unnormalized L2RW scores u_i = -dM(theta_hat(eps))/d eps_i at eps = 0.

  Args:
    params: model parameters theta.
    train_batch: training batch of B examples.
    meta_batch: meta (clean, held-out) batch of m examples.
    per_example_loss_fn: (params, batch) -> per-example losses of shape [B].
    lookahead_lr: look-ahead SGD step size alpha.
    mode: meta-gradient estimator for the one-step look-ahead; any exact
      mode of `datarater.meta.unroll` gives the same numbers.

  Returns:
    Array of shape [B]; u_i = alpha * <grad f_i(theta), grad M(theta)>.
  """
  losses = jax.eval_shape(per_example_loss_fn, params, train_batch)
  eps = jnp.zeros(losses.shape, losses.dtype)

  def inner_loss_fn(p, e, batch):
    return jnp.sum(e * per_example_loss_fn(p, batch))

  _, grad_eps = unroll.lookahead_meta_grad(
      eps, params, train_batch, meta_batch, inner_loss_fn=inner_loss_fn,
      per_example_loss_fn=per_example_loss_fn, lookahead_lr=lookahead_lr, mode=mode)
  return -grad_eps

