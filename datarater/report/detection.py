"""Detection metrics: how well per-example scores find the corrupted examples.

sklearn is imported inside each function, so a run that reports no metric
never loads it.
"""

from __future__ import annotations

import numpy as np


def auroc(corrupted: np.ndarray, scores: np.ndarray, higher_is_corrupted: bool = False):
  """AUROC of 'low score = corrupted' (or 'high', e.g. for losses); None if one class only."""
  from sklearn.metrics import roc_auc_score
  corrupted = np.asarray(corrupted, bool)
  if corrupted.all() or not corrupted.any():
    return None
  scores = np.asarray(scores, np.float64)
  return float(roc_auc_score(corrupted, scores if higher_is_corrupted else -scores))


def detection_metrics(scores: np.ndarray, corrupted: np.ndarray, higher_is_corrupted: bool) -> dict:
  """AUROC, average precision and precision at the true corruption rate (k = #corrupted).

  Args:
    scores: [N] per-example scores.
    corrupted: [N] bool ground truth.
    higher_is_corrupted: whether a high score flags a corrupted example.

  Returns:
    {'auroc', 'average_precision', 'precision_at_rate'}; None values when
    every or no example is corrupted.
  """
  from sklearn.metrics import average_precision_score, roc_auc_score
  suspicion = scores if higher_is_corrupted else -scores
  if corrupted.all() or not corrupted.any():
    return {'auroc': None, 'average_precision': None, 'precision_at_rate': None}
  k = int(corrupted.sum())
  top = np.argsort(-suspicion, kind='stable')[:k]
  return {'auroc': float(roc_auc_score(corrupted, suspicion)),
          'average_precision': float(average_precision_score(corrupted, suspicion)),
          'precision_at_rate': float(corrupted[top].mean())}
