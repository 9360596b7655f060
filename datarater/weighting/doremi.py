"""DoReMi domain reweighting (Xie et al., NeurIPS 2023, Algorithm 1).

"DoReMi: Optimizing Data Mixtures Speeds Up Language Model Pretraining".
A proxy model is trained with group DRO over k domains against a fixed
reference model. Each step:

    lambda_g = mean over domain-g tokens (or examples) in the batch of
               max(loss_proxy - loss_ref, 0)          (clipped excess loss)
    log alpha <- log alpha + eta * lambda
    alpha <- softmax(log alpha)
    alpha <- (1 - c) alpha + c / k                    (smoothing)

(the exponentiated-gradient step of `simplex.exponentiated_gradient`), and
the output mixture is the time average of alpha over all steps. The smoothed
alpha is what the next step's multiplicative update starts from. Paper:
eta = 1.0, c = 1e-3.

The clipping is per token, as in the paper: pass per-token losses [N, L]
(language models) and each token takes its sequence's domain; per-example
losses [N] (classification) are clipped per example. Clipping per-sequence
mean losses instead would let a sequence's better-than-reference tokens
cancel its worse ones.

Domains missing from a batch reuse their last excess (zero before first
seen), so their weight keeps moving with its last estimate. Reductions are
plain ``jnp``, global under ``jax.jit``.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from datarater.weighting import groups as groups_lib
from datarater.weighting import simplex
from datarater.weighting import tables
from datarater.weighting.checks import check as _check


class DoReMiState(NamedTuple):
  """DoReMi state.

  alpha: EGState: the current (smoothed) domain weights, [k] summing to one.
  last_excess: [k] most recent clipped excess loss per domain.
  average: tables.Mean of alpha over completed updates (DoReMi's output).
  """
  alpha: simplex.EGState
  last_excess: jax.Array
  average: tables.Mean


def doremi_init(num_domains, initial_alpha=None):
  """Initial state: alpha uniform (or ``initial_alpha``, normalized), excess zero.

  Args:
    num_domains: k >= 1.
    initial_alpha: optional [k] non-negative initial weights.

  Returns:
    DoReMiState.
  """
  alpha = simplex.exponentiated_gradient(0.0).init(num_domains, initial_alpha)
  return DoReMiState(alpha=alpha, last_excess=jnp.zeros((num_domains,), jnp.float32),
                     average=tables.mean_init((num_domains,)))


def clipped_excess(proxy_losses, ref_losses, groups, num_domains):
  """Per-domain mean of max(loss_proxy - loss_ref, 0) over a batch's tokens or examples.

  Args:
    proxy_losses: [N, L] per-token or [N] per-example proxy losses.
    ref_losses: reference-model losses, same shape.
    groups: [N] int domain ids in [0, num_domains) (a token takes its
      sequence's domain).
    num_domains: k (static).

  Returns:
    (excess [k], counts [k]): counts are tokens (or examples) per domain; an
    absent domain has excess 0 and count 0.
  """
  proxy_losses, ref_losses = jnp.asarray(proxy_losses), jnp.asarray(ref_losses)
  if proxy_losses.shape != ref_losses.shape or proxy_losses.ndim not in (1, 2):
    raise ValueError(f'proxy and reference losses must share a shape [N] or [N, L], got '
                     f'{proxy_losses.shape} and {ref_losses.shape}')
  excess = jnp.maximum(proxy_losses.astype(jnp.float32) - ref_losses.astype(jnp.float32), 0.0)
  groups = jnp.broadcast_to(jnp.asarray(groups).reshape(-1, *([1] * (excess.ndim - 1))),
                            excess.shape)
  return groups_lib.segment_mean(excess.ravel(), groups.ravel(), num_domains)


def doremi_update(state, proxy_losses, ref_losses, groups, num_groups,
                  eta=1.0, smoothing=1e-3):
  """One DoReMi domain-weight update (Xie et al. 2023, Algorithm 1).

  lambda = clipped_excess(...), with the last value for domains absent from
  the batch; alpha' = softmax(log alpha + eta * lambda);
  alpha <- (1 - c) alpha' + c / k; the new alpha enters the time average.

  Args:
    state: DoReMiState.
    proxy_losses: [N, L] per-token or [N] per-example proxy losses (stop_gradient'ed).
    ref_losses: reference-model losses, same shape.
    groups: [N] int domain ids in [0, num_groups).
    num_groups: number of domains k (static).
    eta: step size > 0 (paper: 1.0).
    smoothing: c in [0, 1] (paper: 1e-3).

  Returns:
    New DoReMiState.
  """
  _check('eta', eta, lambda x: x > 0, '> 0')
  step = simplex.exponentiated_gradient(eta, smoothing)
  excess, counts = clipped_excess(proxy_losses, ref_losses, groups, num_groups)
  excess = jnp.where(counts > 0, excess, state.last_excess)
  alpha = step.update(excess, state.alpha)
  return DoReMiState(alpha=alpha, last_excess=excess,
                     average=tables.mean_update(state.average, alpha.weights))


def doremi_average_weights(state):
  """Time-averaged domain weights (1/T) sum_t alpha_t: DoReMi's output.

  Args:
    state: DoReMiState.

  Returns:
    [k] weights; the current alpha before any update.
  """
  return jnp.where(state.average.count > 0, tables.mean_value(state.average),
                   state.alpha.weights)
