"""TMC-Shapley (method 'tmc_shapley'; config: configs/tmc_shapley.py).

Ghorbani & Zou, "Data Shapley", ICML 2019; math in
datarater/valuation/tmc_shapley.py. Phase 'score' trains the model uniformly
for `method.score_steps` steps; the training rows are embedded
(`method.embedding`: penultimate features or raw inputs, standardised,
datarater/methods/_valuation.py) and valued by truncated Monte Carlo Shapley:
`method.num_permutations` random orderings, each prefix's value the
validation performance (`method.metric`, on the meta split `dataset.meta`:
information='meta rows') of a multinomial logistic regression on the
embeddings trained by `method.learner_steps` full-batch gradient steps of size
`method.learner_lr` (L2 `method.learner_l2`), truncated once within
`method.tolerance` of the full-data performance. The valuation costs up to
permutations x rows learner fits, so `method.max_rows` > 0 values a random
subset of that many training rows (fixed by the seed; the game is played on
that subset); the other rows are reported as unscored and get the mean value
in scores_train.npy and the filter (`weighting.tables.fill_unscored`).
Shapley values are 'higher = more valuable' as they are. summary.json adds
`valuation_seconds` / `valuation_flops` (embedding and every learner block)
and `tmc_shapley` (the convergence report: permutations, mean relative change
over the last chunk, converged, fits done vs without truncation, V({}) and
V(D)). With `method.discard_fraction` > 0 the scores drive the shared filtered
retraining (datarater/methods/_filter.py).
"""

from __future__ import annotations

import numpy as np

from datarater.errors import is_number, require
from datarater.methods import _filter, _valuation
from datarater.valuation import tmc_shapley as tmc

DECLARES = dict(family='scorer', label='TMC-Shapley', scores=True, information='meta rows')

# The rows valued when method.max_rows > 0: numpy stream of this offset from the seed.
ROWS_STREAM = 7919


def valued_rows(config, num_rows: int) -> np.ndarray:
  """The sorted training rows valued: all, or method.max_rows of them drawn with the seed."""
  k = config.method.max_rows
  if not k or k >= num_rows:
    return np.arange(num_rows)
  rng = np.random.default_rng([int(config.seed), ROWS_STREAM])
  return np.sort(rng.choice(num_rows, k, replace=False))


def make(config, task, dataset):
  """The scoring phase, with the filtered retraining when rho > 0."""
  m = config.method
  _filter.require_classification(config, dataset)
  _valuation.check_embedding(config, dataset)
  _valuation.check_steps(config)
  _valuation.check_meta(config, dataset)
  for field in ('num_permutations', 'chunk', 'block', 'learner_steps'):
    require(isinstance(m[field], int) and m[field] >= 1, f'method.{field}', 'an int >= 1',
            m[field])
  require(isinstance(m.max_rows, int) and (m.max_rows == 0 or m.max_rows >= 2),
          'method.max_rows', 'an int: 0 (all rows) or >= 2', m.max_rows)
  require(m.metric in tmc.METRICS, 'method.metric', f'one of {tmc.METRICS}', m.metric)
  require(is_number(m.tolerance) and m.tolerance >= 0, 'method.tolerance', 'a number >= 0',
          m.tolerance)
  require(is_number(m.learner_lr) and m.learner_lr > 0, 'method.learner_lr', 'a number > 0',
          m.learner_lr)
  require(is_number(m.learner_l2) and m.learner_l2 >= 0, 'method.learner_l2', 'a number >= 0',
          m.learner_l2)
  n = dataset.train.size
  rows = valued_rows(config, n)
  learner = tmc.Learner(dataset.info.num_classes, m.learner_steps, float(m.learner_lr),
                        float(m.learner_l2), m.metric)

  def score_fn(ctx, train_state, state):
    del state
    cost = _valuation.Cost()
    train = _valuation.embeddings(ctx, task, train_state.params, ctx.dataset.train.take(rows),
                                  m.embedding, cost)
    meta = _valuation.embeddings(ctx, task, train_state.params, ctx.dataset.meta, m.embedding,
                                 cost)
    train, meta = _valuation.standardize(train, meta)
    ty, my = ctx.dataset.train.y[rows], ctx.dataset.meta.y
    values, report = tmc.tmc_shapley(train, ty, meta, my, learner,
                                     num_permutations=m.num_permutations, tolerance=m.tolerance,
                                     chunk=m.chunk, block=m.block, seed=int(config.seed))
    ranks = np.tile(np.arange(len(rows)), (m.chunk, 1))
    cost.add(report['blocks'] * _valuation.program_flops(
        tmc._block, train, ty, meta, my, ranks, 1, learner=learner, block=m.block))
    scores = np.zeros(n)
    scores[rows] = values
    seen = np.zeros(n, bool)
    seen[rows] = True
    print(f'[tmc_shapley] {report["permutations"]} permutations, mean relative change over the '
          f'last chunk {report["mean_relative_change"]}, {report["fits"]} of '
          f'{report["fits_without_truncation"]} fits', flush=True)
    return scores, seen, {**cost.info(), 'tmc_shapley': {**report, 'rows_valued': len(rows)}}

  return _filter.scorer_pipeline(config, task, dataset, _valuation.scoring_phase(
      config, task, dataset), score_fn, 'TMC-Shapley')
