"""Per-example scores: the report every scoring method writes.

Methods keep their scores in a `datarater.weighting.tables.ExampleTable`
(method state). Methods that score training examples (DataRater's rater,
L2RW's u_i, MW-Net's V(loss), the latest loss of DRO rules, InfoBatch's
table, the data scorers) write, through `report_scores`:

  scores_train.npy   float32, one score per ROW OF THE USER'S TRAINING DATA
                     (info.num_rows, in the data's own order), also for rows
                     carved into the meta split or dropped by `data.imbalance`;
  scored_rows.npy    bool per row: the row has a real score (others hold the
                     mean score, so they rank in the middle);
  meta_rows.npy      bool per row: the row was carved into the meta split;

score histograms by source and by ground-truth corruption flag, and the AUROC
of the score against that flag over the scored training rows ("low score =
corrupted" for raters and weights, "high score = corrupted" for losses).
"""

from __future__ import annotations

import jax
import numpy as np

from datarater.data.core import meta_row_mask, per_row
from datarater.report import plots
from datarater.report.detection import auroc
from datarater.weighting.tables import ExampleTable


def report_scores(ctx, scores: np.ndarray, what: str, seen: np.ndarray | None = None,
                  higher_is_corrupted: bool = False, meta_scores: np.ndarray | None = None
                  ) -> dict:
  """Writes scores_train.npy (one score per user row), row masks and histograms.

  Rows with no score (training examples never scored, `seen` False; meta or
  dropped rows without `meta_scores`) get the mean score of the scored
  training examples (0 if none), so the file is finite and an unscored row
  ranks in the middle; AUROC and per-source means use scored training
  examples only.

  Args:
    ctx: the loop's Context (dataset, run directory).
    scores: float [N], one per example of the train split, in split order.
    what: what a score is, for plot titles (e.g. 'L2RW score u_i').
    seen: bool [N] of examples that have a score (default: all).
    higher_is_corrupted: the score's direction (True for loss-like scores).
    meta_scores: optional float [M], one per meta-split example (methods
      that can score any example, e.g. a rater network).

  Returns:
    {'score_auroc', 'scored_fraction', 'score_fill_value', 'source_mean_score',
     'score_higher_is_corrupted'}.
  """
  train = ctx.dataset.train
  scores = np.asarray(scores, np.float64)
  seen = np.ones(len(scores), bool) if seen is None else np.asarray(seen, bool)
  fill = float(scores[seen].mean()) if seen.any() else 0.0
  scores = np.where(seen, scores, fill)
  rows, _ = per_row(ctx.dataset, scores, meta_scores, fill)
  scored, _ = per_row(ctx.dataset, seen, None if meta_scores is None
                      else np.ones(len(meta_scores)), 0.0)
  np.save(ctx.run.file('scores_train.npy'), rows.astype(np.float32))
  np.save(ctx.run.file('scored_rows.npy'), scored.astype(bool))
  np.save(ctx.run.file('meta_rows.npy'), meta_row_mask(ctx.dataset))
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
      'score_higher_is_corrupted': bool(higher_is_corrupted),
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
