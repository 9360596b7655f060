"""Detection metrics: how well per-example scores find the corrupted examples.

Scores follow the one direction of scores_train.npy: higher = more worth
keeping, so a low score flags a suspect (corrupted) example. A training run
reports `auroc` and `rate_spearman`, closed forms on ranks in numpy (importing
sklearn and scipy for them took 1.4 s of a 10 s L2RW run); the detection
report's `detection_metrics` imports sklearn inside the function.
"""

from __future__ import annotations

import numpy as np


def midranks(x) -> np.ndarray:
  """1-based ranks of x, tied values sharing the mean of their ranks (scipy's 'average')."""
  x = np.asarray(x, np.float64)
  if not np.isfinite(x).all():
    raise ValueError('ranks of non-finite values')
  order = np.argsort(x, kind='stable')
  first = np.r_[True, x[order][1:] != x[order][:-1]]   # first element of each tie group
  starts = np.flatnonzero(first)
  ends = np.r_[starts[1:], len(x)]
  ranks = np.empty(len(x))
  ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]
  return ranks


def auroc(corrupted: np.ndarray, scores: np.ndarray):
  """AUROC of 'low score = corrupted' (higher = keep); None if one class only.

  The Mann-Whitney form: the probability that a corrupted row scores below a
  clean one, ties counting one half, (R - P (P + 1) / 2) / (P N) with R the
  sum of the corrupted rows' ranks of -score, P and N the class sizes (what
  sklearn's roc_auc_score computes; tests/test_detection_metrics.py).
  """
  corrupted = np.asarray(corrupted, bool)
  if corrupted.all() or not corrupted.any():
    return None
  p, n = int(corrupted.sum()), int((~corrupted).sum())
  r = midranks(-np.asarray(scores, np.float64))[corrupted].sum()
  return float((r - p * (p + 1) / 2) / (p * n))


def spearman(a, b):
  """Spearman rank correlation of two equally long arrays (Pearson of their `midranks`);
  None when either is constant or shorter than 2."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if len(a) != len(b):
    raise ValueError(f'spearman of arrays of lengths {len(a)} and {len(b)}')
  if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
    return None
  return float(np.corrcoef(midranks(a), midranks(b))[0, 1])


def rate_spearman(values, rates):
  """Spearman correlation of per-source values (weights, mean scores) with the sources' corruption
  rates; None when undefined (fewer than two sources, constant values or rates, a missing value)."""
  if values is None or any(v is None for v in values):
    return None
  if len(rates) != len(values):
    return None
  return spearman(values, rates)


def detection_metrics(scores: np.ndarray, corrupted: np.ndarray) -> dict:
  """AUROC, average precision and precision at the true corruption rate (k = #corrupted).

  Args:
    scores: [N] per-example scores, higher = more worth keeping (the k
      lowest-scored examples are the ones flagged).
    corrupted: [N] bool ground truth.

  Returns:
    {'auroc', 'average_precision', 'precision_at_rate'}; None values when
    every or no example is corrupted.
  """
  from sklearn.metrics import average_precision_score, roc_auc_score
  corrupted = np.asarray(corrupted, bool)
  if corrupted.all() or not corrupted.any():
    return {'auroc': None, 'average_precision': None, 'precision_at_rate': None}
  suspicion = -np.asarray(scores, np.float64)
  k = int(corrupted.sum())
  top = np.argsort(-suspicion, kind='stable')[:k]
  return {'auroc': float(roc_auc_score(corrupted, suspicion)),
          'average_precision': float(average_precision_score(corrupted, suspicion)),
          'precision_at_rate': float(corrupted[top].mean())}
