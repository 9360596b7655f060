"""EL2N and GraNd early-training scores (method 'el2n'; config: configs/el2n.py).

Paul, Ganguli, Dziugaite, NeurIPS 2021 (arXiv 2107.07075); math in
datarater/dynamics/data_diet.py. Phase 'score' trains `method.num_models`
independently initialised models (a vmapped ensemble, datarater/methods/
_ensemble.py; each model sees its own data order) uniformly for
`method.score_steps` steps, early in training (paper: EL2N at epoch 20 of 200,
i.e. ~10% of training; GraNd at initialisation, `score_steps=0`). Then every
training row is scored by the ensemble:

  method.score='el2n':  mean over models of ||softmax(f(x)) - onehot(y)||_2
  method.score='grand': mean over models of ||grad_w loss(x, y)||_2

High = hard / likely mislabelled, so scores_train.npy holds the negated score
(higher = keep) and raw_scores_train.npy the score itself. The phase's test
metrics are those of the ensemble's averaged prediction. With
`method.discard_fraction` > 0 the scores drive the shared filtered retraining
(datarater/methods/_filter.py), keeping low EL2N / GraNd: here the goal is to
drop mislabelled rows, whereas the paper prunes the easy (low-score) rows of
clean data.
"""

from __future__ import annotations

import jax
import numpy as np

from datarater.dynamics import data_diet
from datarater.errors import require
from datarater.methods import _ensemble, _filter
from datarater.train.evaluation import map_split
from datarater.train.pipeline import Phase

DECLARES = dict(family='scorer', label='EL2N', scores=True,
                variants={'el2n': {'method.score': 'el2n'},
                          'grand': {'method.score': 'grand'}},
                variant_labels={'grand': 'GraNd'})

SCORES = ('el2n', 'grand')


def make(config, task, dataset):
  """The ensemble scoring phase, with the filtered retraining when rho > 0."""
  m = config.method
  require(m.score in SCORES, 'method.score', f'one of {SCORES}', m.score)
  require(isinstance(m.num_models, int) and m.num_models >= 1, 'method.num_models',
          'an int >= 1', m.num_models)
  require(isinstance(m.score_steps, int) and m.score_steps >= 0, 'method.score_steps',
          'an int >= 0', m.score_steps)
  size, b, n = m.num_models, config.batch_size, dataset.train.size

  def per_example_loss(params, x, y):
    return task.per_example_loss(params, {'x': x[None], 'y': y[None]})[0]

  def score_fn(ctx, train_state, state):
    del state
    params = train_state.params
    if m.score == 'el2n':
      fn = jax.jit(lambda bt: data_diet.ensemble_el2n(task.logits, params, bt['x'], bt['y']))
      scores = map_split(fn, ctx.dataset.train, ctx)
    else:  # per-example gradients: score in training-size batches to bound memory
      fn = jax.jit(lambda bt: data_diet.ensemble_grand(per_example_loss, params, bt['x'], bt['y']))
      scores = map_split(fn, ctx.dataset.train, ctx, batch_size=b)
    return -np.asarray(scores), np.ones(n, bool), {'score_steps': m.score_steps}

  method = _ensemble.ensemble_method(config, task, [np.arange(n)] * size)
  phase = Phase('score', method, m.score_steps, task=_ensemble.ensemble_task(task, size))
  # High EL2N / GraNd = hard or mislabelled: scores_train.npy holds its negation.
  return _filter.scorer_pipeline(config, task, dataset, phase, score_fn, m.score.upper(),
                                 raw=m.score.upper())
