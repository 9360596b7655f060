"""Area Under the Margin (AUM) ranking of mislabelled examples.

Pleiss, Zhang, Elenberg, Weinberger, "Identifying Mislabeled Data using the
Area Under the Margin Ranking", NeurIPS 2020 (arXiv 2001.10528).

At every presentation t of example x with assigned label y, the margin is

    M_t(x, y) = z_y(t) - max_{k != y} z_k(t)

on the logits z(t) of the training forward pass, and

    AUM(x, y) = (1 / T) sum_{t=1}^T M_t(x, y)

averages it over the T presentations (epochs) seen. Mislabelled examples have
low (negative) AUM. The cut is calibrated with threshold samples: a random
subset of about N / (C + 1) examples is relabelled to a fake extra class C
(0-based), so the model must have C + 1 outputs; the threshold samples are
mislabelled by construction, and the 99th percentile of their AUMs is the cut:
examples with ``aum < threshold`` are flagged. (The paper repeats the run with
a second, disjoint threshold subset so every example gets a real-label AUM.)

State updates take an optional ``valid`` [B] mask; invalid entries (e.g. the
padding of a last batch) are skipped.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class AUMState(NamedTuple):
  """Running margin sums over the N training examples.

  margin_sum: [N] float32, sum of the margins seen so far.
  count: [N] int32, number of presentations seen so far.
  """
  margin_sum: jax.Array
  count: jax.Array


def _check_batch(index, logits, labels):
  if logits.ndim != 2:
    raise ValueError(f'logits must be [B, C], got shape {logits.shape}')
  if logits.shape[1] < 2:
    raise ValueError(f'the margin needs at least 2 classes, got {logits.shape[1]}')
  b = logits.shape[0]
  if labels.shape != (b,) or index.shape != (b,):
    raise ValueError(f'index and labels must be [{b}], got shapes '
                     f'{index.shape} and {labels.shape}')


def margins(logits, labels):
  """Margin z_y - max_{k != y} z_k of each row (Pleiss et al. 2020).

  Args:
    logits: [B, C] logits.
    labels: [B] int assigned labels in [0, C).

  Returns:
    [B] float32 margins; positive iff the assigned label is the unique argmax.
  """
  logits = jnp.asarray(logits, jnp.float32)
  labels = jnp.asarray(labels)
  assigned = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
  is_label = jax.nn.one_hot(labels, logits.shape[1], dtype=bool)
  largest_other = jnp.max(jnp.where(is_label, -jnp.inf, logits), axis=1)
  return assigned - largest_other


def aum_init(num_examples):
  """Empty AUM state for ``num_examples`` examples."""
  return AUMState(margin_sum=jnp.zeros((num_examples,), jnp.float32),
                  count=jnp.zeros((num_examples,), jnp.int32))


def aum_update(state, index, logits, labels, valid=None):
  """Adds one presentation of a batch to the running margin sums.

  Args:
    state: AUMState.
    index: [B] int example ids in [0, N). A repeated id counts twice.
    logits: [B, C] logits of the training forward pass.
    labels: [B] int assigned labels (threshold samples carry the fake class).
    valid: optional [B] bool; False entries are ignored.

  Returns:
    The updated AUMState.
  """
  index, logits, labels = (jnp.asarray(a) for a in (index, logits, labels))
  _check_batch(index, logits, labels)
  n = state.count.shape[0]
  if valid is not None:
    index = jnp.where(jnp.asarray(valid, bool), index, n)  # n: dropped
  return AUMState(
      margin_sum=state.margin_sum.at[index].add(margins(logits, labels),
                                                mode='drop'),
      count=state.count.at[index].add(1, mode='drop'))


def aum_scores(state):
  """AUM = mean margin over the presentations seen.

  Args:
    state: AUMState.

  Returns:
    [N] float32 AUM; NaN for examples never seen.
  """
  seen = state.count > 0
  return jnp.where(seen, state.margin_sum / jnp.maximum(state.count, 1),
                   jnp.nan)


def assign_threshold_samples(labels, num_classes, fraction, rng):
  """Relabels a random subset of examples to the fake class ``num_classes``.

  Exactly ``round(fraction * N)`` examples, drawn uniformly without
  replacement, get label C = ``num_classes``; the model trained on the new
  labels needs C + 1 outputs.

  Args:
    labels: [N] int labels in [0, C).
    num_classes: C, the number of real classes.
    fraction: share of threshold samples, in (0, 1); None for 1 / (C + 1) as
      in the paper (the fake class is then as large as an average real one).
    rng: a jax PRNG key.

  Returns:
    (new_labels [N] int32, is_threshold [N] bool).
  """
  if num_classes < 1:
    raise ValueError(f'num_classes must be >= 1, got {num_classes}')
  if fraction is None:
    fraction = 1.0 / (num_classes + 1)
  if not 0.0 < fraction < 1.0:
    raise ValueError(f'fraction must be in (0, 1), got {fraction}')
  labels = jnp.asarray(labels, jnp.int32)
  if labels.ndim != 1:
    raise ValueError(f'labels must be [N], got shape {labels.shape}')
  n = labels.shape[0]
  chosen = jax.random.permutation(rng, n)[:round(fraction * n)]
  is_threshold = jnp.zeros((n,), bool).at[chosen].set(True)
  return jnp.where(is_threshold, num_classes, labels), is_threshold


def aum_threshold(threshold_aums, percentile=99.0):
  """The AUM cut: a percentile of the threshold samples' AUMs.

  Examples whose AUM is strictly below the returned value are flagged as
  mislabelled (Pleiss et al. 2020: alpha = 99th percentile).

  Args:
    threshold_aums: [M] AUMs of the threshold samples (NaNs, i.e. samples
      never seen, are ignored).
    percentile: in [0, 100]; linear interpolation as ``np.percentile``.

  Returns:
    Scalar float32 threshold.
  """
  if not 0.0 <= percentile <= 100.0:
    raise ValueError(f'percentile must be in [0, 100], got {percentile}')
  return jnp.nanpercentile(jnp.asarray(threshold_aums, jnp.float32),
                           percentile)
