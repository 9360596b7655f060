"""Online group DRO (Sagawa, Koh, Hashimoto, Liang, ICLR 2020).

"Distributionally Robust Neural Networks for Group Shifts: On the Importance
of Regularization for Worst-Case Generalization", ICLR 2020, Algorithm 1.
The adversary keeps a distribution q over G groups and plays exponentiated
gradient ascent (`simplex.exponentiated_gradient`) on the per-group batch
losses L_g:

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

import jax.numpy as jnp

from datarater.weighting import groups as groups_lib
from datarater.weighting import simplex
from datarater.weighting.checks import check as _check


def group_dro_init(num_groups):
  """Uniform q over ``num_groups`` groups (Sagawa et al. 2020, Alg. 1): an EGState."""
  return simplex.exponentiated_gradient(0.0).init(num_groups)


def group_dro_step(state, losses, groups, num_groups, eta_q=0.01, C=0.0,
                   group_sizes=None):
  """Group DRO for one batch: update q, then weight the batch with the new q.

  Args:
    state: EGState holding q [G].
    losses: [B] per-example losses (stop_gradient'ed by the caller).
    groups: [B] int group ids in [0, num_groups).
    num_groups: G (static).
    eta_q: adversary step size >= 0 (paper default 0.01).
    C: generalization adjustment >= 0 (paper default 0).
    group_sizes: [G] training-set group sizes n_g; required when C > 0.

  Returns:
    (new_state, example_weights [B] summing to one, robust loss
    sum_g q_g L_g, per-group mean losses L_g [G] (0 for an absent group)).
  """
  _check('C', C, lambda x: x >= 0, '>= 0')
  means, counts = groups_lib.segment_mean(losses, groups, num_groups)
  gains = means
  if group_sizes is not None:
    gains = means + C / jnp.sqrt(jnp.maximum(jnp.asarray(group_sizes, means.dtype), 1.0))
  elif not (isinstance(C, (int, float)) and C == 0):
    raise ValueError('C > 0 needs group_sizes (training-set group sizes n_g)')
  state = simplex.exponentiated_gradient(eta_q).update(gains, state, present=counts > 0)
  q = state.weights
  weights = simplex.group_example_weights(q, groups, counts)
  return state, weights, jnp.sum(q * means), means
