"""Per-example scores: the report every scoring method writes.

Methods keep their scores in a `datarater.weighting.tables.ExampleTable`
(method state). Methods that score training examples (DataRater's rater,
L2RW's u_i, MW-Net's V(loss), the latest loss of DRO rules, InfoBatch's
table) write
`scores_train.npy` (one float per training example, in load order), score
histograms by source and by ground-truth corruption flag, and the AUROC of the
score against that flag ("low score = corrupted" for raters and weights, "high
score = corrupted" for losses).
"""

from __future__ import annotations

import jax
import numpy as np

from datarater.train import plots
from datarater.weighting.tables import ExampleTable


def auroc(corrupted: np.ndarray, scores: np.ndarray, higher_is_corrupted: bool = False):
  """AUROC of 'low score = corrupted' (or 'high', e.g. for losses); None if one class only."""
  from sklearn.metrics import roc_auc_score
  corrupted = np.asarray(corrupted, bool)
  if corrupted.all() or not corrupted.any():
    return None
  scores = np.asarray(scores, np.float64)
  return float(roc_auc_score(corrupted, scores if higher_is_corrupted else -scores))


def report_scores(ctx, scores: np.ndarray, what: str, seen: np.ndarray | None = None,
                  higher_is_corrupted: bool = False) -> dict:
  """Writes scores_train.npy and score histograms; returns summary extras.

  Examples never scored (`seen` False) get the mean score of the scored ones
  (0 if none), so the file is finite and an unscored example ranks in the
  middle; AUROC and per-source means use scored examples only.

  Args:
    ctx: the loop's Context (dataset, run directory).
    scores: float [N], one per training example in load order.
    what: what a score is, for plot titles (e.g. 'L2RW score u_i').
    seen: bool [N] of examples that have a score (default: all).
    higher_is_corrupted: the AUROC's direction (True for loss-like scores).

  Returns:
    {'score_auroc', 'scored_fraction', 'score_fill_value', 'source_mean_score'}.
  """
  train = ctx.dataset.train
  scores = np.asarray(scores, np.float64)
  seen = np.ones(len(scores), bool) if seen is None else np.asarray(seen, bool)
  fill = float(scores[seen].mean()) if seen.any() else 0.0
  scores = np.where(seen, scores, fill)
  np.save(ctx.run.file('scores_train.npy'), scores.astype(np.float32))
  corrupted = train.corrupted
  plots.histograms({'clean': scores[seen & ~corrupted], 'corrupted': scores[seen & corrupted]},
                   ctx.run.file('plots', 'scores_by_corruption.png'),
                   f'{what} by ground-truth corruption flag')
  names, k = ctx.dataset.info.source_names, ctx.dataset.info.num_sources
  plots.histograms({names[s]: scores[seen & (train.source == s)] for s in range(k)},
                   ctx.run.file('plots', 'scores_by_source.png'), f'{what} by source')
  return {
      'score_auroc': auroc(corrupted[seen], scores[seen], higher_is_corrupted),
      'scored_fraction': float(seen.mean()),
      'score_fill_value': fill,
      'source_mean_score': [float(scores[seen & (train.source == s)].mean())
                            if (seen & (train.source == s)).any() else None for s in range(k)],
  }


def report_table(ctx, table: ExampleTable, what: str, higher_is_corrupted: bool = False) -> dict:
  """`report_scores` of an ExampleTable: examples with count 0 are unscored.

  Args:
    ctx: the loop's Context.
    table: the ExampleTable of scores, one row per training example.
    what: what a score is, for plot titles.
    higher_is_corrupted: the AUROC's direction (True for loss-like scores).

  Returns:
    The summary extras of `report_scores`.
  """
  table = jax.device_get(table)
  return report_scores(ctx, table.value, what, seen=np.asarray(table.count) > 0,
                       higher_is_corrupted=higher_is_corrupted)
