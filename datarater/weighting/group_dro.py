"""Online group DRO (Sagawa, Koh, Hashimoto, Liang, ICLR 2020).

"Distributionally Robust Neural Networks for Group Shifts: On the Importance
of Regularization for Worst-Case Generalization", ICLR 2020, Algorithm 1.
The adversary keeps a distribution q over G groups and plays exponentiated
gradient ascent on the per-group batch losses L_g:

    q_g <- q_g * exp(eta_q * (L_g + C / sqrt(n_g))),   q <- q / sum(q),

with C >= 0 the generalization adjustment and n_g the group's training-set
size (C = 0 turns it off). The model then minimises the robust loss
sum_g q_g L_g with the updated q. Defaults in the paper: eta_q = 0.01, C = 0.

Absent groups (our choice, documented): a group with no example in the
batch has no loss estimate, so its entry is *not* multiplied this step; it
only changes through the renormalization. (Treating its loss as 0 instead,
as a naive segment mean would, shrinks the weight of every group that
happens to be missing from a batch.) With every group present this is the
paper's update.

Groups are integer ids in [0, G). Reductions are plain ``jnp``, so under
``jax.jit`` with a sharded batch the per-group sums are global.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from datarater.weighting.checks import check as _check


class GroupDROState(NamedTuple):
  """Adversary state: q, [G] distribution over groups (sums to one)."""
  q: jax.Array


def group_dro_init(num_groups):
  """Uniform q over ``num_groups`` groups (Sagawa et al. 2020, Alg. 1)."""
  if num_groups < 1:
    raise ValueError(
        f'config.method.num_groups must be >= 1, got {num_groups}')
  return GroupDROState(q=jnp.full((num_groups,), 1.0 / num_groups,
                                  jnp.float32))


def per_group_mean_loss(losses, groups, num_groups):
  """Per-group mean loss over a batch via segment sums.

  L_g = sum_{i: g_i = g} loss_i / n_g^batch, n_g^batch = #{i : g_i = g}.

  Args:
    losses: [B] per-example losses.
    groups: [B] int group ids in [0, num_groups).
    num_groups: G (static).

  Returns:
    (means [G], counts [G]); an absent group has mean 0 and count 0.
  """
  return _per_group_mean_loss(jnp.asarray(losses), jnp.asarray(groups),
                              num_groups)


@functools.partial(jax.jit, static_argnums=2)
def _per_group_mean_loss(losses, groups, num_groups):
  losses = losses.astype(jnp.promote_types(losses.dtype, jnp.float32))
  sums = jax.ops.segment_sum(losses, groups, num_segments=num_groups)
  counts = jax.ops.segment_sum(jnp.ones_like(losses), groups,
                               num_segments=num_groups)
  return sums / jnp.maximum(counts, 1.0), counts


def group_dro_update(q, group_losses, group_counts, eta_q=0.01, C=0.0,
                     group_sizes=None):
  """One exponentiated-gradient step on q (Sagawa et al. 2020, Alg. 1).

  q_g <- q_g exp(eta_q (L_g + C / sqrt(n_g))) for groups with
  group_counts > 0; groups absent from the batch get exponent 0 (see module
  docstring); then q <- q / sum(q). Computed in log space.

  Args:
    q: [G] current group distribution.
    group_losses: [G] per-group mean batch losses L_g.
    group_counts: [G] number of batch examples per group.
    eta_q: adversary step size >= 0 (paper default 0.01).
    C: generalization adjustment >= 0 (paper default 0).
    group_sizes: [G] training-set group sizes n_g; required when C > 0.

  Returns:
    [G] updated q, summing to one.
  """
  _check('eta_q', eta_q, lambda x: x >= 0, '>= 0')
  _check('C', C, lambda x: x >= 0, '>= 0')
  group_losses = jnp.asarray(group_losses)
  if group_sizes is None:
    if not (isinstance(C, (int, float)) and C == 0):
      raise ValueError('config.method.C > 0 needs group_sizes (training-set '
                       'group sizes n_g)')
    group_sizes = jnp.ones_like(group_losses)  # unused: C = 0
  return _group_dro_update(jnp.asarray(q), group_losses,
                           jnp.asarray(group_counts), eta_q, C,
                           jnp.asarray(group_sizes, group_losses.dtype))


@jax.jit
def _group_dro_update(q, group_losses, group_counts, eta_q, C, group_sizes):
  adjusted = group_losses + C / jnp.sqrt(jnp.maximum(group_sizes, 1.0))
  logits = jnp.log(q) + jnp.where(group_counts > 0, eta_q * adjusted, 0.0)
  return jax.nn.softmax(logits)


def group_dro_robust_loss(q, group_losses):
  """Robust loss sum_g q_g L_g (Sagawa et al. 2020, Alg. 1)."""
  return jnp.sum(q * group_losses)


def group_dro_example_weights(q, groups, group_counts):
  """Per-example weights w_i = q_{g_i} / n_{g_i}^batch, renormalized.

  sum_i w_i loss_i = sum_g q_g L_g / sum_{g present} q_g: the robust loss
  restricted to the groups present in the batch, normalized so that the
  weights sum to one (a missing group's mass is spread over the present ones).

  Args:
    q: [G] group distribution.
    groups: [B] int group ids.
    group_counts: [G] batch counts from per_group_mean_loss.

  Returns:
    [B] weights, non-negative, summing to one.
  """
  w = q[groups] / jnp.maximum(jnp.asarray(group_counts)[groups], 1.0)
  return w / jnp.sum(w)


def group_dro_step(state, losses, groups, num_groups, eta_q=0.01, C=0.0,
                   group_sizes=None):
  """Group DRO for one batch: update q, then weight the batch with new q.

  Args:
    state: GroupDROState.
    losses: [B] per-example losses (stop_gradient'ed by the caller).
    groups: [B] int group ids in [0, num_groups).
    num_groups: G (static).
    eta_q, C, group_sizes: as in group_dro_update.

  Returns:
    (new_state, example_weights [B], robust_loss scalar, group_losses [G]).
  """
  means, counts = per_group_mean_loss(losses, groups, num_groups)
  q = group_dro_update(state.q, means, counts, eta_q, C, group_sizes)
  weights = group_dro_example_weights(q, groups, counts)
  return GroupDROState(q=q), weights, group_dro_robust_loss(q, means), means
