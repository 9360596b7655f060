"""Distributions over groups: the exponentiated-gradient step, and example weights from it.

`exponentiated_gradient` is an optax-style pair of pure functions on a
`EGState` holding a distribution w over G groups:

    w <- softmax(log w + step_size * gains * present)        (mirror ascent)
    w <- (1 - smoothing) w + smoothing / G                   (optional mixing)

Group DRO's adversary (Sagawa et al. 2020, Alg. 1: gains = per-group losses,
no smoothing) and DoReMi's domain weights (Xie et al. 2023, Alg. 1: gains =
clipped excess losses, smoothing c) are both this step. `group_example_weights`
turns a group distribution into per-example weights for the batch loss.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from datarater.weighting.checks import check as _check
from datarater.weighting.normalize import sum_one


class EGState(NamedTuple):
  """weights: [G] distribution over groups (non-negative, sums to one)."""
  weights: jax.Array


class EGTransform(NamedTuple):
  """init(num_groups, initial=None) -> EGState; update(gains, state, present=None) -> EGState."""
  init: Callable
  update: Callable


def exponentiated_gradient(step_size, smoothing=0.0) -> EGTransform:
  """The exponentiated-gradient (multiplicative-weights) ascent step on the simplex.

  Args:
    step_size: eta >= 0 (a Python float is validated; a traced one is not).
    smoothing: c in [0, 1]: after the step, w <- (1 - c) w + c / G.

  Returns:
    EGTransform. `init(num_groups, initial=None)`: uniform weights, or
    `initial` normalized to sum one. `update(gains, state, present=None)`:
    gains [G] (the ascent direction, e.g. per-group losses); groups with
    present False get exponent 0 (their weight changes only through the
    renormalization and the smoothing); returns the new EGState.
  """
  _check('step_size', step_size, lambda x: x >= 0, '>= 0')
  _check('smoothing', smoothing, lambda x: 0 <= x <= 1, 'in [0, 1]')

  def init(num_groups, initial=None):
    if num_groups < 1:
      raise ValueError(f'num_groups must be >= 1, got {num_groups}')
    if initial is None:
      return EGState(jnp.full((num_groups,), 1.0 / num_groups, jnp.float32))
    w = jnp.asarray(initial, jnp.float32)
    return EGState(w / jnp.sum(w))

  def update(gains, state, present=None):
    step = step_size * jnp.asarray(gains)
    if present is not None:
      step = jnp.where(present, step, 0.0)
    w = jax.nn.softmax(jnp.log(state.weights) + step)
    return EGState((1.0 - smoothing) * w + smoothing / w.shape[0])

  return EGTransform(init, update)


def group_example_weights(q, groups, counts):
  """Per-source weights -> per-example weights: w_i = q_{g_i} / n_{g_i}, renormalised.

  The one such map of the codebase (group DRO, DoReMi). sum_i w_i loss_i =
  sum_g q_g L_g / sum_{g present} q_g: the q-weighted mean of the per-group
  mean losses, restricted to the groups present in the batch (a missing
  group's mass is spread over the present ones), i.e. the batch estimate of
  the loss that drawing each example's group from q would give. Two methods
  weight sources differently on purpose: ScaleBiO's lower level is
  sum_g lambda_g L_g without the renormalisation (its penalty objective,
  datarater/bilevel/scalebio.py), and a static mixture in 'loss' mode divides
  by the train split's counts instead of the batch's (an unbiased estimate of
  sum_g q_g L_g, datarater/methods/static_mixture.py).

  Args:
    q: [G] non-negative group weights (e.g. a distribution).
    groups: [B] int group ids in [0, G).
    counts: [G] examples per group in this batch (e.g. from groups.segment_mean).

  Returns:
    [B] weights, non-negative, summing to one (zeros if q is 0 on every
    group present).
  """
  return sum_one(q[groups] / jnp.maximum(jnp.asarray(counts)[groups], 1.0))
