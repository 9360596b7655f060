"""Confident learning: out-of-fold bookkeeping, confident joint, label quality.

Northcutt, Jiang, Chuang, "Confident Learning: Estimating Uncertainty in
Dataset Labels", JAIR 2021 (arXiv 1911.00068); label-quality scores as
defined by the cleanlab library (``cleanlab.rank``, version 2.x).

pred_probs must be out-of-sample: with K folds, fold k's model trains on every
example outside fold k and predicts the examples in it. Then, with noisy
labels y~:

    t_j = mean of p_hat(j | x) over the examples with y~ = j
    j*(x) = argmax_{j : p_hat(j | x) >= t_j} p_hat(j | x)   (none if empty)
    C[i][j] = #{x : y~(x) = i, j*(x) = j}                   (confident joint)

and x is a label issue when j*(x) exists and differs from y~(x) (the
off-diagonal of C; cleanlab's ``filter_by='confident_learning'``; the
prune-by-noise-rate refinement is not implemented). The joint here is the raw
count of the paper's definition: cleanlab's ``compute_confident_joint``
additionally clips the diagonal to >= 1, calibrates the rows by default, and
when two or more classes pass their threshold takes the unrestricted argmax.

Label-quality scores (lower = more likely mislabelled, all in [0, 1]):

    self_confidence   = p_hat(y~ | x)
    normalized_margin = (p_hat(y~ | x) - max_{j != y~} p_hat(j | x) + 1) / 2

With ``adjust_pred_probs=True`` (off by default, as in cleanlab) the rows are
first replaced by (p_hat - t + max_j t_j) / sum(...), which corrects for class
imbalance.
"""

import jax
import jax.numpy as jnp

# Threshold of a class that no example is labelled with: above any probability,
# so nothing is ever confidently assigned to it (cleanlab uses the same value).
_MISSING_CLASS_THRESHOLD = 2.0


def fold_assignment(n, k, rng):
  """Balanced random folds: fold sizes differ by at most one.

  Args:
    n: number of examples.
    k: number of folds, 2 <= k <= n.
    rng: a jax PRNG key.

  Returns:
    [n] int32 fold ids in [0, k).
  """
  if not 2 <= k <= n:
    raise ValueError(f'need 2 <= k <= n folds, got k={k}, n={n}')
  return jax.random.permutation(rng, jnp.arange(n, dtype=jnp.int32) % k)


def out_of_fold_mask(folds, k):
  """Which examples each fold's model may train on.

  Args:
    folds: [N] int fold ids in [0, k).
    k: number of folds.

  Returns:
    [k, N] bool; row f is True exactly for the examples outside fold f.
  """
  folds = jnp.asarray(folds)
  return folds[None, :] != jnp.arange(k, dtype=folds.dtype)[:, None]


def gather_out_of_fold(pred_probs_per_fold, folds):
  """Picks each example's prediction from the model that did not train on it.

  Args:
    pred_probs_per_fold: [k, N, C] predictions of each fold's model on all N.
    folds: [N] int fold ids.

  Returns:
    [N, C] out-of-fold predictions: row i from model ``folds[i]``.
  """
  pred_probs_per_fold = jnp.asarray(pred_probs_per_fold)
  folds = jnp.asarray(folds)
  return pred_probs_per_fold[folds, jnp.arange(folds.shape[0])]


def _check(pred_probs, labels):
  pred_probs = jnp.asarray(pred_probs, jnp.float32)
  labels = jnp.asarray(labels)
  if pred_probs.ndim != 2 or labels.shape != pred_probs.shape[:1]:
    raise ValueError('expected pred_probs [N, C] and labels [N]; got '
                     f'{pred_probs.shape} and {labels.shape}')
  return pred_probs, labels


def per_class_thresholds(pred_probs, labels, num_classes):
  """t_j = mean p_hat(j | x) over the examples labelled j (Northcutt et al.).

  Args:
    pred_probs: [N, C] out-of-fold predicted probabilities.
    labels: [N] int noisy labels in [0, C).
    num_classes: C.

  Returns:
    [C] float32 thresholds; 2.0 (never reached) for a class with no example.
  """
  pred_probs, labels = _check(pred_probs, labels)
  if pred_probs.shape[1] != num_classes:
    raise ValueError(f'pred_probs has {pred_probs.shape[1]} columns, expected '
                     f'num_classes={num_classes}')
  onehot = jax.nn.one_hot(labels, num_classes)
  counts = jnp.sum(onehot, axis=0)
  sums = jnp.sum(onehot * pred_probs, axis=0)
  return jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0),
                   _MISSING_CLASS_THRESHOLD)


def confident_class(pred_probs, thresholds):
  """j*(x): the most probable class among those at or above their threshold.

  Args:
    pred_probs: [N, C] predicted probabilities.
    thresholds: [C] per-class thresholds.

  Returns:
    [N] int32 class ids; -1 where no class reaches its threshold.
  """
  pred_probs = jnp.asarray(pred_probs, jnp.float32)
  above = pred_probs >= jnp.asarray(thresholds, jnp.float32)[None, :]
  best = jnp.argmax(jnp.where(above, pred_probs, -jnp.inf), axis=1)
  return jnp.where(jnp.any(above, axis=1), best, -1).astype(jnp.int32)


def confident_joint(pred_probs, labels, thresholds):
  """Confident joint C[i][j]: examples labelled i confidently in class j.

  Args:
    pred_probs: [N, C] out-of-fold predicted probabilities.
    labels: [N] int noisy labels.
    thresholds: [C] per-class thresholds (``per_class_thresholds``).

  Returns:
    [C, C] int32 counts; rows are given labels, columns confident classes.
    Examples with no confident class are not counted.
  """
  pred_probs, labels = _check(pred_probs, labels)
  c = pred_probs.shape[1]
  guess = confident_class(pred_probs, thresholds)
  cell = jnp.where(guess >= 0, labels * c + guess, c * c)  # c*c: dropped
  counts = jnp.zeros((c * c,), jnp.int32).at[cell].add(1, mode='drop')
  return counts.reshape(c, c)


def label_issue_mask(pred_probs, labels, thresholds):
  """Off-diagonal of the confident joint, per example.

  Args:
    pred_probs: [N, C] out-of-fold predicted probabilities.
    labels: [N] int noisy labels.
    thresholds: [C] per-class thresholds.

  Returns:
    [N] bool, True where a confident class exists and differs from the label.
  """
  pred_probs, labels = _check(pred_probs, labels)
  guess = confident_class(pred_probs, thresholds)
  return (guess >= 0) & (guess != labels)


def subtract_confident_thresholds(pred_probs, labels, thresholds=None):
  """Class-imbalance adjustment: (p - t + max(t)) renormalised per row.

  Args:
    pred_probs: [N, C] predicted probabilities.
    labels: [N] int noisy labels (used when thresholds is None).
    thresholds: optional [C] thresholds; default ``per_class_thresholds``.

  Returns:
    [N, C] float32 adjusted probabilities (rows sum to one, entries >= 0).
  """
  pred_probs, labels = _check(pred_probs, labels)
  if thresholds is None:
    thresholds = per_class_thresholds(pred_probs, labels, pred_probs.shape[1])
  shifted = pred_probs - thresholds[None, :] + jnp.max(thresholds)
  return shifted / jnp.sum(shifted, axis=1, keepdims=True)


def self_confidence(pred_probs, labels, adjust_pred_probs=False):
  """cleanlab's 'self_confidence' label quality: p_hat(y~ | x).

  Args:
    pred_probs: [N, C] out-of-fold predicted probabilities.
    labels: [N] int noisy labels.
    adjust_pred_probs: apply ``subtract_confident_thresholds`` first.

  Returns:
    [N] float32 scores in [0, 1]; low means likely mislabelled.
  """
  pred_probs, labels = _check(pred_probs, labels)
  if adjust_pred_probs:
    pred_probs = subtract_confident_thresholds(pred_probs, labels)
  return jnp.take_along_axis(pred_probs, labels[:, None], axis=1)[:, 0]


def normalized_margin(pred_probs, labels, adjust_pred_probs=False):
  """cleanlab's 'normalized_margin': (p_hat(y~) - max_{j != y~} p_hat(j) + 1) / 2.

  Args:
    pred_probs: [N, C] out-of-fold predicted probabilities, C >= 2.
    labels: [N] int noisy labels.
    adjust_pred_probs: apply ``subtract_confident_thresholds`` first.

  Returns:
    [N] float32 scores in [0, 1]; low means likely mislabelled.
  """
  pred_probs, labels = _check(pred_probs, labels)
  if pred_probs.shape[1] < 2:
    raise ValueError(f'the margin needs at least 2 classes, got '
                     f'{pred_probs.shape[1]}')
  if adjust_pred_probs:
    pred_probs = subtract_confident_thresholds(pred_probs, labels)
  own = jnp.take_along_axis(pred_probs, labels[:, None], axis=1)[:, 0]
  is_label = jax.nn.one_hot(labels, pred_probs.shape[1], dtype=bool)
  other = jnp.max(jnp.where(is_label, -jnp.inf, pred_probs), axis=1)
  return (own - other + 1.0) / 2.0
