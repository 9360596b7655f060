"""Dataset cartography (method 'cartography'; config: configs/cartography.py).

Swayamdipta et al., EMNLP 2020 (arXiv 2009.10795); math in
datarater/dynamics/cartography.py. Phase 'score' trains uniformly for
`config.num_steps` steps; at every presentation of a row, p(y | x) and the
correctness of the training forward pass (before the step's update) are
added to the row's running sums. The paper evaluates every row at the end of
each epoch instead; this per-presentation variant is the common cheap one
(no extra pass over the data) and differs by the drift of the model within
an epoch. Score = confidence, the mean p(y | x) (low = likely mislabelled:
the hard-to-learn region).

Summary extras: `cartography` {mean confidence, variability and correctness
for clean and for corrupted rows}; plots/data_map.png (variability x,
confidence y, coloured by the ground-truth flag). With
`method.discard_fraction` > 0 the confidence drives the shared filtered
retraining (datarater/methods/_filter.py), keeping high confidence.
"""

from __future__ import annotations

import jax
import numpy as np

from datarater.dynamics import cartography
from datarater.methods import _filter
from datarater.report import plots
from datarater.train.pipeline import Phase

DECLARES = dict(family='scorer', label='cartography', scores=True)


def make(config, task, dataset):
  """The cartography scoring phase, with the filtered retraining when rho > 0."""
  _filter.require_classification(config, dataset)

  def score_fn(ctx, train_state, state):
    del train_state
    confidence, variability, correctness = (
        np.asarray(a) for a in jax.device_get(cartography.cartography_scores(state)))
    seen = np.asarray(jax.device_get(state.count)) > 0
    corrupted = dataset.train.corrupted
    plots.data_map(variability[seen], confidence[seen], corrupted[seen],
                   ctx.run.file('plots', 'data_map.png'), 'data map (training dynamics)')
    means = {}
    for flag, mask in (('clean', seen & ~corrupted), ('corrupted', seen & corrupted)):
      means[flag] = {name: float(v[mask].mean()) if mask.any() else None
                     for name, v in (('confidence', confidence), ('variability', variability),
                                     ('correctness', correctness))}
    return confidence, seen, {'cartography': means}

  method = _filter.presentation_method(config, task, dataset, cartography.cartography_init,
                                       cartography.cartography_update)
  return _filter.scorer_pipeline(config, task, dataset, Phase('score', method, config.num_steps),
                                 score_fn, 'cartography confidence')
