"""Detection metrics: how well per-example scores find the corrupted examples.

Scores follow the one direction of scores_train.npy: higher = more worth
keeping, so a low score flags a suspect (corrupted) example. sklearn is
imported inside each function, so a run that reports no metric never loads it.
"""

from __future__ import annotations

import numpy as np


def auroc(corrupted: np.ndarray, scores: np.ndarray):
  """AUROC of 'low score = corrupted' (higher = keep); None if one class only."""
  from sklearn.metrics import roc_auc_score
  corrupted = np.asarray(corrupted, bool)
  if corrupted.all() or not corrupted.any():
    return None
  return float(roc_auc_score(corrupted, -np.asarray(scores, np.float64)))


def rate_spearman(values, rates):
  """Spearman correlation of per-source values (weights, mean scores) with the sources' corruption
  rates; None when undefined (fewer than two sources, constant values or rates, a missing value)."""
  import scipy.stats
  if values is None or any(v is None for v in values):
    return None
  values, rates = np.asarray(values, np.float64), np.asarray(rates, np.float64)
  if len(rates) != len(values) or len(rates) < 2 or np.ptp(rates) == 0 or np.ptp(values) == 0:
    return None
  return float(scipy.stats.spearmanr(values, rates).statistic)


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
