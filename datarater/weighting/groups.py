"""Per-group (per-source) reductions: the one segment mean every method uses.

Groups are integer ids in [0, G). Reductions are plain `jnp`, so under
`jax.jit` with a batch sharded over devices the per-group sums are global.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from datarater.weighting.normalize import sum_one


def segment_mean(values: jax.Array, groups: jax.Array, num_groups: int,
                 weights: jax.Array | None = None):
  """Per-group (weighted) mean of `values` over a batch.

  mean_g = sum_{i: g_i = g} w_i v_i / sum_{i: g_i = g} w_i  (w = 1 by default).

  Args:
    values: [B] per-example values (e.g. losses).
    groups: [B] int group ids in [0, num_groups).
    num_groups: G (static).
    weights: optional [B] non-negative example weights.

  Returns:
    (means [G], counts [G]): counts are the per-group sums of the weights
    (example counts when unweighted); an absent group has mean 0, count 0.
  """
  values = jnp.asarray(values)
  values = values.astype(jnp.promote_types(values.dtype, jnp.float32))
  w = jnp.ones_like(values) if weights is None else jnp.asarray(weights, values.dtype)
  sums = jax.ops.segment_sum(w * values, groups, num_segments=num_groups)
  counts = jax.ops.segment_sum(w, groups, num_segments=num_groups)
  return sums / jnp.where(counts > 0, counts, 1.0), counts


def group_share(weights: jax.Array, groups: jax.Array, num_groups: int) -> jax.Array:
  """Share of the total weight that falls on each group: [G], summing to one (zeros if none)."""
  return sum_one(jax.ops.segment_sum(weights, groups, num_segments=num_groups))
