"""InfoBatch: unbiased dynamic data pruning (Qin et al., ICLR 2024).

"InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data Pruning".
Each training example keeps a score, its latest loss (a `tables.ExampleTable`).
At the start of each epoch, examples whose score is below the mean score are
pruned at random with probability r (``prune_ratio``); the kept below-mean
examples get loss weight 1 / (1 - r), everything else weight 1, so the
epoch's summed (weighted) loss and gradient equal the full-data ones in
expectation:

    E[sum_i w_i keep_i loss_i] = sum_i loss_i.

Pruning stops for the last (1 - delta) fraction of epochs ("annealing"): epoch
e (0-based) prunes iff e < delta * num_epochs. Paper defaults r = 0.5,
delta = 0.875; only below-mean examples are candidates, so the pruned
fraction is below r (about 35% by default in the paper).

Examples never trained on (count 0 in the table) are never pruned and are
left out of the mean, so the first epoch trains on everything. Scores are
updated (`tables.table_record`) from the losses of the examples actually
trained on; pruned examples keep their old score.

The plan is jnp (jit-able, ``epoch`` may be traced). Cutting the kept set into
fixed-shape batches is data-dependent in size and done host-side in numpy
(``infobatch_batches``): the last batch is padded with repeated kept indices
marked invalid (give them weight 0, skip their score update, and average the
batch loss over the valid slots only).
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from datarater.weighting.checks import check as _check


class InfoBatchPlan(NamedTuple):
  """One epoch's pruning plan over the N training examples.

  keep_mask: [N] bool, True for examples trained on this epoch.
  weights: [N] float loss weights: 1 / (1 - r) for kept below-mean
    examples (while pruning is active), 1 for other kept ones, 0 for pruned.
  num_kept: int32 scalar, sum(keep_mask).
  pruning_active: bool scalar, epoch < delta * num_epochs.
  """
  keep_mask: jax.Array
  weights: jax.Array
  num_kept: jax.Array
  pruning_active: jax.Array


def infobatch_epoch_plan(key, scores, prune_ratio=0.5, epoch=0, num_epochs=1,
                         delta=0.875):
  """Random pruning of below-mean-score examples (Qin et al. 2024).

  candidates = {i : i seen, score_i < mean score of the seen examples};
  each candidate is pruned independently with probability r while
  epoch < delta * num_epochs; kept candidates are weighted 1 / (1 - r).

  Args:
    key: PRNG key for this epoch.
    scores: tables.ExampleTable of the latest loss per example (count 0: unseen).
    prune_ratio: r in [0, 1) (paper: 0.5).
    epoch: 0-based epoch index (int, may be traced).
    num_epochs: total number of epochs >= 1 (static).
    delta: fraction of epochs in [0, 1] during which to prune (paper: 0.875).

  Returns:
    InfoBatchPlan.
  """
  _check('prune_ratio', prune_ratio, lambda r: 0 <= r < 1, 'in [0, 1)')
  _check('delta', delta, lambda d: 0 <= d <= 1, 'in [0, 1]')
  _check('num_epochs', num_epochs, lambda e: e >= 1 and e == int(e),
         'an integer >= 1')
  return _infobatch_epoch_plan(key, scores.value, scores.count > 0, prune_ratio, epoch,
                               num_epochs, delta)


@jax.jit
def _infobatch_epoch_plan(key, scores, seen, prune_ratio, epoch, num_epochs, delta):
  n_seen = jnp.sum(seen)
  mean = jnp.sum(jnp.where(seen, scores, 0.0)) / jnp.maximum(n_seen, 1)
  active = epoch < delta * num_epochs
  candidate = seen & (scores < mean) & active
  pruned = candidate & (jax.random.uniform(key, scores.shape) < prune_ratio)
  keep = ~pruned
  weights = jnp.where(pruned, 0.0,
                      jnp.where(candidate, 1.0 / (1.0 - prune_ratio), 1.0))
  return InfoBatchPlan(keep_mask=keep, weights=weights,
                       num_kept=jnp.sum(keep).astype(jnp.int32),
                       pruning_active=active)


@jax.jit
def infobatch_epoch_order(key, keep_mask):
  """Epoch index order: kept examples shuffled first, then the pruned ones.

  Fixed shape [N] (jit-able); the first ``sum(keep_mask)`` entries are this
  epoch's training order.

  Returns:
    (order [N] int32, num_kept int32 scalar).
  """
  keep_mask = jnp.asarray(keep_mask)
  perm = jax.random.permutation(key, keep_mask.shape[0])
  order = perm[jnp.argsort(~keep_mask[perm], stable=True)]
  return order.astype(jnp.int32), jnp.sum(keep_mask).astype(jnp.int32)


def infobatch_batches(order, num_kept, batch_size):
  """Host-side: cut the kept prefix of ``order`` into fixed-shape batches.

  ceil(num_kept / batch_size) batches; the last is padded by repeating kept
  indices from the start of the order, with valid = False there.

  Returns:
    (indices [num_batches, batch_size] int64, valid same shape bool), numpy.
  """
  _check('batch_size', batch_size, lambda b: b >= 1 and b == int(b),
         'an integer >= 1')
  kept = np.asarray(order)[:int(num_kept)]
  if kept.size == 0:
    return (np.zeros((0, batch_size), np.int64),
            np.zeros((0, batch_size), bool))
  num_batches = math.ceil(kept.size / batch_size)
  total = num_batches * batch_size
  idx = np.resize(kept, total)  # np.resize repeats from the start
  valid = np.arange(total) < kept.size
  return (idx.reshape(num_batches, batch_size).astype(np.int64),
          valid.reshape(num_batches, batch_size))


def infobatch_saved_fraction(num_kept_per_epoch, num_examples,
                             batch_size=None):
  """Fraction of per-example gradient computations saved by pruning.

  1 - sum_e kept_e / (N * E). With ``batch_size``, counts the padded
  fixed-shape slots actually computed: 1 - sum_e ceil(kept_e / bs) /
  (E * ceil(N / bs)).
  """
  kept = np.asarray(num_kept_per_epoch, np.float64)
  if batch_size is None:
    return float(1.0 - kept.sum() / (num_examples * kept.size))
  batches = np.ceil(kept / batch_size).sum()
  return float(1.0 - batches / (kept.size * math.ceil(num_examples /
                                                      batch_size)))
