"""Area Under the Margin (method 'aum'; config: configs/aum.py).

Pleiss et al., NeurIPS 2020 (arXiv 2001.10528); math in
datarater/dynamics/aum.py. Phase 'score' trains uniformly for
`config.num_steps` steps; at every presentation of a row, the margin
z_y - max_{k != y} z_k of the training forward pass (before the step's
update) is added to its running sum, and AUM = the mean margin over the row's
presentations (low = likely mislabelled). The paper averages once per epoch
over the epoch's logits; here every presentation counts, which is the same
with epoch-wise passes over the data.

Threshold samples (`method.threshold_samples=True`): a random round(N / (C + 1))
rows (fixed by the seed) get the fake label C while scoring, so the scoring
model has C + 1 outputs; the 99th percentile (`method.threshold_percentile`)
of their AUMs is the cut, and summary.json gets `aum_threshold`,
`aum_flagged_fraction` (share of the other rows with AUM below the cut) and
the flags' precision and recall against the ground-truth corruption flag.
The threshold rows themselves get no real-label AUM in this single run (the
paper's second run with a disjoint threshold subset is not done): they are
reported as unscored (excluded from the AUROC, `scored_fraction` < 1) and
hold the mean score in scores_train.npy and in the filter's table.

With `method.discard_fraction` > 0 the AUM table drives the shared filtered
retraining (datarater/methods/_filter.py), keeping high AUM.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from datarater.dynamics import aum
from datarater.errors import is_number, require
from datarater.methods import _filter
from datarater.train.context import phase_key
from datarater.train.pipeline import Phase
from datarater.train.task import make_task

DECLARES = dict(family='scorer', label='AUM', scores=True)


def threshold_labels(config, dataset):
  """The scoring labels with threshold samples: (labels [N] with C on the threshold rows, mask [N]).

  The rows (round(N / (C + 1)), as the paper) are drawn from config.seed.
  """
  labels, is_threshold = aum.assign_threshold_samples(
      dataset.train.y, dataset.info.num_classes, None,
      phase_key(config.seed, 'aum_threshold_samples'))
  return np.asarray(labels), np.asarray(is_threshold)


def make(config, task, dataset):
  """The AUM scoring phase, with the filtered retraining when rho > 0 (see module docstring)."""
  m = config.method
  _filter.require_classification(config, dataset)
  require(is_number(m.threshold_percentile) and 0 <= m.threshold_percentile <= 100,
          'method.threshold_percentile', 'in [0, 100]', m.threshold_percentile)
  c = dataset.info.num_classes
  labels, is_threshold, score_task = None, np.zeros(dataset.train.size, bool), task
  if m.threshold_samples:
    labels, is_threshold = threshold_labels(config, dataset)
    score_task = make_task(config, dataclasses.replace(dataset.info, num_classes=c + 1))

  def score_fn(ctx, train_state, state):
    del ctx, train_state
    scores = np.asarray(jax.device_get(aum.aum_scores(state)))
    seen = np.isfinite(scores) & ~is_threshold
    if not m.threshold_samples:
      return scores, seen, {}
    cut = float(aum.aum_threshold(scores[is_threshold], m.threshold_percentile))
    flagged = seen & (scores < cut)
    corrupted = dataset.train.corrupted
    return scores, seen, {
        'aum_threshold': cut,
        'aum_flagged_fraction': float(flagged.sum() / max(seen.sum(), 1)),
        'aum_flag_precision': float(corrupted[flagged].mean()) if flagged.any() else None,
        'aum_flag_recall': (float(flagged[corrupted & seen].mean())
                            if (corrupted & seen).any() else None)}

  method = _filter.presentation_method(config, score_task, dataset, aum.aum_init, aum.aum_update,
                                       labels)
  phase = Phase('score', method, config.num_steps, task=score_task)
  return _filter.scorer_pipeline(config, task, dataset, phase, score_fn,
                                 'AUM (mean margin)')
