"""Normalising non-negative weights: the two normalisers every weighting method shares.

* `mean_one(v)`: v / mean(v), weights with mean one over the batch (sum = B):
  a method that multiplies the per-example losses of the mean loss
  (1/B) sum_i w_i l_i (STORM's rescaled loss, MW-Net's normalised V).
* `sum_one(v)`: v / sum(v), weights summing to one: a method that takes the
  weighted sum sum_i w_i l_i (L2RW, group DRO, DoReMi, static mixtures,
  shares of weight per source).

Both return v unchanged (all zeros, for non-negative v) when v sums to zero,
instead of dividing by zero; neither adds an epsilon, so a tiny positive sum
is still normalised exactly. Both are differentiable (the guard is a select,
not a clip) and jit-able.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mean_one(v: jax.Array) -> jax.Array:
  """v_i / mean_j v_j: weights with mean one over axis 0 (v itself if the mean is 0).

  Args:
    v: [B] non-negative weights.

  Returns:
    [B] weights summing to B (or v when sum v = 0).
  """
  mean = jnp.mean(v)
  return v / jnp.where(mean > 0, mean, 1.0)


def sum_one(v: jax.Array) -> jax.Array:
  """v_i / sum_j v_j: weights summing to one over axis 0 (v itself if the sum is 0).

  Args:
    v: [B] non-negative weights.

  Returns:
    [B] weights summing to 1 (or v when sum v = 0).
  """
  total = jnp.sum(v)
  return v / jnp.where(total > 0, total, 1.0)
