"""KNN-Shapley (method 'knn_shapley'; config: configs/knn_shapley.py).

Jia et al., "Efficient task-specific data valuation for nearest neighbor
algorithms", VLDB 2019; math in datarater/valuation/knn_shapley.py. Phase
'score' trains the model uniformly for `method.score_steps` steps; then every
training row is embedded (`method.embedding`: the trained model's penultimate
features, one forward pass, or the raw inputs; standardised with the training
rows' statistics, datarater/methods/_valuation.py) and valued by the exact
Shapley value of the K-nearest-neighbour classifier's utility (K =
`method.k`), averaged over the validation points: the meta split
(`dataset.meta`, clean or noisy by data.meta_mode), hence
information='meta rows'. Shapley values are already 'higher = more valuable'
(a row whose label agrees with the validation points it is near scores high, a
mislabelled one that pushes the right label out of their K nearest scores
low): scores_train.npy holds them as they are. summary.json adds
`valuation_seconds` / `valuation_flops` (embedding and valuation passes) and
`knn_shapley` {k, efficiency: the values' sum = mean KNN utility on the
validation rows}. With `method.discard_fraction` > 0 the scores drive the
shared filtered retraining (datarater/methods/_filter.py).
"""

from __future__ import annotations

import numpy as np

from datarater.errors import require
from datarater.methods import _filter, _valuation
from datarater.valuation import knn_shapley as knn

DECLARES = dict(family='scorer', label='KNN-Shapley', scores=True, information='meta rows')


def make(config, task, dataset):
  """The scoring phase, with the filtered retraining when rho > 0."""
  m = config.method
  _filter.require_classification(config, dataset)
  _valuation.check_embedding(config, dataset)
  _valuation.check_steps(config)
  _valuation.check_meta(config, dataset)
  n = dataset.train.size
  require(isinstance(m.k, int) and 1 <= m.k <= n, 'method.k', f'an int in [1, {n}]', m.k)
  require(isinstance(m.chunk_size, int) and m.chunk_size >= 1, 'method.chunk_size',
          'an int >= 1', m.chunk_size)

  def score_fn(ctx, train_state, state):
    del state
    cost = _valuation.Cost()
    embed = lambda split: _valuation.embeddings(ctx, task, train_state.params, split,  # noqa: E731
                                                m.embedding, cost)
    train, meta = _valuation.standardize(embed(ctx.dataset.train), embed(ctx.dataset.meta))
    ty, my = ctx.dataset.train.y, ctx.dataset.meta.y
    values = knn.knn_shapley(train, ty, meta, my, m.k, m.chunk_size)
    size = min(m.chunk_size, len(my))
    cost.add(_valuation.program_flops(knn._per_point, train, ty, meta[:size], my[:size], k=m.k)
             * -(-len(my) // size))
    return values, np.ones(n, bool), {
        **cost.info(), 'knn_shapley': {'k': m.k, 'efficiency': float(values.sum())}}

  return _filter.scorer_pipeline(config, task, dataset, _valuation.scoring_phase(
      config, task, dataset), score_fn, f'KNN-Shapley (K={m.k})')
