"""DoReMi domain reweighting (Xie et al., NeurIPS 2023, Algorithm 1).

"DoReMi: Optimizing Data Mixtures Speeds Up Language Model Pretraining".
A proxy model is trained with group DRO over k domains against a fixed
reference model. Each step:

    lambda_g = mean over domain-g examples (or tokens) in the batch of
               max(loss_proxy - loss_ref, 0)          (clipped excess loss)
    log alpha <- log alpha + eta * lambda
    alpha <- softmax(log alpha)
    alpha <- (1 - c) alpha + c / k                    (smoothing)

and the output mixture is the time average of alpha over all steps. The
smoothed alpha is what the next step's multiplicative update starts from.
Paper: eta = 1.0, c = 1e-3.

Domains missing from a batch reuse their last excess (zero before first
seen), so their weight keeps moving with its last estimate. Losses are flat
vectors: pass per-example losses, or per-token losses flattened together with
each token's domain id (the mean is then over the domain's tokens, as in the
paper). Reductions are plain ``jnp``, global under ``jax.jit``.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from datarater.weighting.checks import check as _check


class DoReMiState(NamedTuple):
  """DoReMi state.

  alpha: [k] current (smoothed) domain weights, summing to one.
  last_excess: [k] most recent clipped excess loss per domain.
  alpha_sum: [k] running sum of alpha over completed updates.
  num_updates: int32 scalar, number of completed updates.
  """
  alpha: jax.Array
  last_excess: jax.Array
  alpha_sum: jax.Array
  num_updates: jax.Array


def doremi_init(num_domains, initial_alpha=None):
  """Initial state: alpha uniform (or ``initial_alpha``), excess zero."""
  if num_domains < 1:
    raise ValueError(
        f'config.method.num_domains must be >= 1, got {num_domains}')
  if initial_alpha is None:
    alpha = jnp.full((num_domains,), 1.0 / num_domains, jnp.float32)
  else:
    alpha = jnp.asarray(initial_alpha, jnp.float32)
    alpha = alpha / jnp.sum(alpha)
  # Separate buffers per field: a jitted step may donate each of them.
  return DoReMiState(alpha=alpha, last_excess=jnp.zeros((num_domains,), jnp.float32),
                     alpha_sum=jnp.zeros((num_domains,), jnp.float32),
                     num_updates=jnp.zeros((), jnp.int32))


def per_domain_excess(proxy_losses, ref_losses, groups, num_domains):
  """Per-domain mean of max(loss_proxy - loss_ref, 0) over the batch.

  Args:
    proxy_losses: [N] proxy losses (examples or flattened tokens).
    ref_losses: [N] reference-model losses, same layout.
    groups: [N] int domain ids in [0, num_domains).
    num_domains: k (static).

  Returns:
    (excess [k], counts [k]); an absent domain has excess 0 and count 0.
  """
  return _per_domain_excess(jnp.asarray(proxy_losses), jnp.asarray(ref_losses),
                            jnp.asarray(groups), num_domains)


@functools.partial(jax.jit, static_argnums=3)
def _per_domain_excess(proxy_losses, ref_losses, groups, num_domains):
  excess = jnp.maximum(jnp.asarray(proxy_losses, jnp.float32) -
                       jnp.asarray(ref_losses, jnp.float32), 0.0)
  sums = jax.ops.segment_sum(excess, groups, num_segments=num_domains)
  counts = jax.ops.segment_sum(jnp.ones_like(excess), groups,
                               num_segments=num_domains)
  return sums / jnp.maximum(counts, 1.0), counts


def doremi_update(state, proxy_losses, ref_losses, groups, num_groups,
                  eta=1.0, smoothing=1e-3):
  """One DoReMi domain-weight update (Xie et al. 2023, Algorithm 1).

  lambda_g = batch mean over domain g of max(l_proxy - l_ref, 0), or the last
  value for domains absent from the batch; alpha' = softmax(log alpha +
  eta * lambda); alpha <- (1 - c) alpha' + c / k; the running sum for the time
  average is incremented by the new alpha.

  Args:
    state: DoReMiState.
    proxy_losses: [N] proxy-model losses (stop_gradient'ed).
    ref_losses: [N] reference-model losses.
    groups: [N] int domain ids in [0, num_groups).
    num_groups: number of domains k (static).
    eta: step size > 0 (paper: 1.0).
    smoothing: c in [0, 1] (paper: 1e-3).

  Returns:
    New DoReMiState.
  """
  _check('eta', eta, lambda x: x > 0, '> 0')
  _check('smoothing', smoothing, lambda x: 0 <= x <= 1, 'in [0, 1]')
  return _doremi_update(state, jnp.asarray(proxy_losses),
                        jnp.asarray(ref_losses), jnp.asarray(groups),
                        num_groups, eta, smoothing)


@functools.partial(jax.jit, static_argnums=4)
def _doremi_update(state, proxy_losses, ref_losses, groups, num_groups, eta,
                   smoothing):
  excess, counts = per_domain_excess(proxy_losses, ref_losses, groups,
                                     num_groups)
  excess = jnp.where(counts > 0, excess, state.last_excess)
  alpha = jax.nn.softmax(jnp.log(state.alpha) + eta * excess)
  alpha = (1.0 - smoothing) * alpha + smoothing / num_groups
  return DoReMiState(alpha=alpha, last_excess=excess,
                     alpha_sum=state.alpha_sum + alpha,
                     num_updates=state.num_updates + 1)


def doremi_average_weights(state):
  """Time-averaged domain weights (1/T) sum_t alpha_t: DoReMi's output.

  Before any update, returns the current alpha.
  """
  n = state.num_updates.astype(state.alpha_sum.dtype)
  return jnp.where(n > 0, state.alpha_sum / jnp.maximum(n, 1.0), state.alpha)


def doremi_example_weights(alpha, groups, num_groups):
  """Per-example weights for the proxy's alpha-weighted loss.

  w_i = alpha_{g_i} / n_{g_i}^batch, renormalized over the domains present,
  so sum_i w_i loss_i = sum_g alpha_g L_g / sum_{g present} alpha_g
  (Xie et al. 2023, Alg. 1, proxy update; clipping of the loss to the excess
  is left to the caller).

  Returns:
    [N] weights, non-negative, summing to one.
  """
  counts = jax.ops.segment_sum(jnp.ones(groups.shape, jnp.float32), groups,
                               num_segments=num_groups)
  w = alpha[groups] / jnp.maximum(counts[groups], 1.0)
  return w / jnp.sum(w)
