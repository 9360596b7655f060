"""Per-example scores: the report every scoring method writes.

Methods keep their scores in a `datarater.weighting.tables.ExampleTable`
(method state). Methods that score training examples (DataRater's rater,
L2RW's u_i, MW-Net's V(loss), STORM's rescaler, the latest loss of the DRO
rules, InfoBatch's table, the data scorers) write, through `report_scores`:

  scores_train.npy      float32, one score per ROW OF THE USER'S TRAINING DATA
                        (info.num_rows, in the data's own order), also for
                        rows carved into the meta split or dropped by
                        `data.imbalance`. One direction for every method:
                        HIGHER = MORE WORTH KEEPING (a low score flags a
                        suspect row). Loss-like statistics (a latest loss,
                        EL2N, forgetting counts) are negated before writing;
  raw_scores_train.npy  only for those: the statistic itself (higher = more
                        suspect), named in summary.json's `raw_score`;
  scored_rows.npy       bool per row: the row has a real score (others hold
                        the mean score, so they rank in the middle);
  meta_rows.npy         bool per row: the row was carved into the meta split;

score histograms by source and by ground-truth corruption flag, and the AUROC
of "low score = corrupted" over the scored training rows.
"""

from __future__ import annotations

import jax
import numpy as np

from datarater.data.core import meta_row_mask, per_row
from datarater.report import plots
from datarater.report.detection import auroc, rate_spearman
from datarater.weighting.tables import ExampleTable, fill_unscored


def score_quality(dataset, scores: np.ndarray, seen: np.ndarray | None = None) -> dict:
  """How well training-split scores (higher = keep) find the corrupted rows and sources.

  Returns:
    {'score_auroc': AUROC of "low score = corrupted" over the `seen` rows,
     'source_mean_score': mean score per source (None for a source with no seen row),
     'source_score_spearman': Spearman of those means with data.corruption_rates (None when
     the rates are unknown; -1 = the most corrupted source has the lowest mean score)},
    and, when the data records each source's corruption kind (info.source_corruption),
    'kind_mean_score': {kind: mean score of the seen corrupted rows of that kind,
    'clean': of the seen uncorrupted rows; 'unknown': of flagged rows of a source with no
    kind, e.g. an npz's own corrupted_train} (kinds with no seen row left out) and
    'kind_auroc': {kind: AUROC of "low score = corrupted" over that kind's corrupted rows
    and the clean rows}.
  """
  train, info = dataset.train, dataset.info
  seen = np.ones(len(scores), bool) if seen is None else seen
  means = [float(scores[seen & (train.source == s)].mean())
           if (seen & (train.source == s)).any() else None
           for s in range(info.num_sources)]
  out = {'score_auroc': auroc(train.corrupted[seen], scores[seen]),
         'source_mean_score': means,
         'source_score_spearman': rate_spearman(means, info.corruption_rates)}
  if info.source_corruption:
    kinds = tuple(k or 'unknown' for k in info.source_corruption)  # a flag the data brought
    kind = np.where(train.corrupted, np.array(kinds, object)[train.source], 'clean')
    rows = {k: seen & (kind == k) for k in dict.fromkeys(('clean', *kinds))}
    out['kind_mean_score'] = {k: float(scores[r].mean()) for k, r in rows.items() if r.any()}
    # Each kind's corrupted rows against the clean rows: how well that kind is found.
    out['kind_auroc'] = {k: auroc(kind[r | rows['clean']] == k, scores[r | rows['clean']])
                         for k, r in rows.items() if k != 'clean' and r.any()}
  return out


def report_scores(ctx, scores: np.ndarray, what: str, seen: np.ndarray | None = None,
                  meta_scores: np.ndarray | None = None, raw: str | None = None) -> dict:
  """Writes scores_train.npy (one score per user row), row masks and histograms.

  Rows with no score (training examples never scored, `seen` False; meta or
  dropped rows without `meta_scores`) get the mean score of the scored
  training examples (0 if none; `weighting.tables.fill_unscored`), so the
  file is finite and an unscored row ranks in the middle; AUROC and
  per-source means use scored training examples only.

  Args:
    ctx: the loop's Context (dataset, run directory).
    scores: float [N], one per example of the train split, in split order;
      higher = more worth keeping.
    what: what a score is, for plot titles (e.g. 'L2RW score u_i').
    seen: bool [N] of examples that have a score (default: all).
    meta_scores: optional float [M], one per meta-split example (methods
      that can score any example, e.g. a rater network), same direction.
    raw: for a loss-like statistic, its name (e.g. 'latest training loss'):
      `scores` is then its negation, and the statistic itself (-scores) is
      written to raw_scores_train.npy and plotted.

  Returns:
    `score_quality`'s {'score_auroc', 'source_mean_score', 'source_score_spearman'[,
    'kind_mean_score', 'kind_auroc']},
    'scored_fraction', 'score_fill_value' (in scores_train.npy's units, as the
    means), and 'raw_score': `raw` when given.
  """
  train = ctx.dataset.train
  seen = np.ones(len(scores), bool) if seen is None else np.asarray(seen, bool)
  scores, fill = fill_unscored(scores, seen)
  rows, _ = per_row(ctx.dataset, scores, meta_scores, fill)
  scored, _ = per_row(ctx.dataset, seen, None if meta_scores is None
                      else np.ones(len(meta_scores)), 0.0)
  np.save(ctx.run.file('scores_train.npy'), rows.astype(np.float32))
  if raw is not None:
    np.save(ctx.run.file('raw_scores_train.npy'), -rows.astype(np.float32))
  np.save(ctx.run.file('scored_rows.npy'), scored.astype(bool))
  np.save(ctx.run.file('meta_rows.npy'), meta_row_mask(ctx.dataset))
  corrupted = train.corrupted
  shown = scores if raw is None else -scores
  plots.histograms({'clean': shown[seen & ~corrupted], 'corrupted': shown[seen & corrupted]},
                   ctx.run.file('plots', 'scores_by_corruption.png'),
                   f'{what} by ground-truth corruption flag')
  names, k = ctx.dataset.info.source_names, ctx.dataset.info.num_sources
  plots.histograms({names[s]: shown[seen & (train.source == s)] for s in range(k)},
                   ctx.run.file('plots', 'scores_by_source.png'), f'{what} by source')
  out = {**score_quality(ctx.dataset, scores, seen), 'scored_fraction': float(seen.mean()),
         'score_fill_value': fill}
  if raw is not None:
    out['raw_score'] = raw
  return out


def report_table(ctx, table: ExampleTable, what: str, raw: str | None = None) -> dict:
  """`report_scores` of an ExampleTable: examples with count 0 are unscored.

  Args:
    ctx: the loop's Context.
    table: the ExampleTable of scores (higher = keep), one row per training example.
    what: what a score is, for plot titles.
    raw: the name of the loss-like statistic the table's values negate (see
      `report_scores`), or None.

  Returns:
    The summary extras of `report_scores`.
  """
  table = jax.device_get(table)
  return report_scores(ctx, table.value, what, seen=np.asarray(table.count) > 0, raw=raw)
