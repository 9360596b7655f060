"""Prototype pruning score (method 'prototypes'; config: configs/prototypes.py).

Sorscher et al., "Beyond neural scaling laws: beating power law scaling via
data pruning", NeurIPS 2022; math in datarater/valuation/prototypes.py. Phase
'score' trains the model uniformly for `method.score_steps` steps; the
training rows are embedded (`method.embedding`: the trained model's
penultimate features, or the raw inputs: datarater/methods/_valuation.py),
L2-normalised, and clustered by spherical k-means (`method.num_clusters`
prototypes, `method.kmeans_iterations` Lloyd steps from a seeded
`method.init` = 'kmeans++' | 'random' start). A row's difficulty is its cosine
distance to the nearest prototype. The metric is label-free given the
embeddings (the paper's are self-supervised; 'penultimate' ones come from the
supervised model of phase 'score', so labels shaped them; 'raw' is label-free
throughout) and reads no meta rows (information='none').

Sign (`method.keep`): 'hard' keeps the far rows (scores_train.npy = +distance;
the paper's choice when data is plentiful); 'easy' keeps the near, prototypical
rows (scores_train.npy = -distance; the paper's choice when data is scarce).
raw_scores_train.npy holds the distance for 'easy'. summary.json adds
`valuation_seconds` / `valuation_flops` (embedding and k-means) and
`prototypes` {num_clusters, keep, cluster sizes}. With
`method.discard_fraction` > 0 the scores drive the shared filtered retraining
(datarater/methods/_filter.py).
"""

from __future__ import annotations

import numpy as np

from datarater.errors import require
from datarater.methods import _filter, _valuation
from datarater.train.context import phase_key
from datarater.valuation import prototypes as proto

DECLARES = dict(family='scorer', label='prototypes', scores=True)


def make(config, task, dataset):
  """The scoring phase, with the filtered retraining when rho > 0."""
  m = config.method
  _filter.require_classification(config, dataset)
  _valuation.check_embedding(config, dataset)
  _valuation.check_steps(config)
  n = dataset.train.size
  require(isinstance(m.num_clusters, int) and 1 <= m.num_clusters <= n, 'method.num_clusters',
          f'an int in [1, {n}] (the training rows)', m.num_clusters)
  require(isinstance(m.kmeans_iterations, int) and m.kmeans_iterations >= 0,
          'method.kmeans_iterations', 'an int >= 0', m.kmeans_iterations)
  require(m.init in proto.INITS, 'method.init', f'one of {proto.INITS}', m.init)
  require(m.keep in proto.KEEP, 'method.keep', f'one of {proto.KEEP}', m.keep)

  def score_fn(ctx, train_state, state):
    del state
    cost = _valuation.Cost()
    e = _valuation.embeddings(ctx, task, train_state.params, ctx.dataset.train, m.embedding, cost)
    cluster = cost.wrap(lambda e, key: proto.kmeans(e, m.num_clusters, key, m.kmeans_iterations,
                                                    m.init))
    centroids, assign = cluster(e, phase_key(config.seed, 'prototypes_kmeans'))
    distances = np.asarray(cost.wrap(proto.prototype_distances)(e, centroids), np.float64)
    sizes = np.bincount(np.asarray(assign), minlength=m.num_clusters)
    return np.asarray(proto.keep_scores(distances, m.keep)), np.ones(n, bool), {
        **cost.info(), 'prototypes': {'num_clusters': m.num_clusters, 'keep': m.keep,
                                      'cluster_sizes': sizes.tolist()}}

  return _filter.scorer_pipeline(
      config, task, dataset, _valuation.scoring_phase(config, task, dataset), score_fn,
      f'prototype distance (keep {m.keep})', raw='prototype distance' if m.keep == 'easy' else None)
