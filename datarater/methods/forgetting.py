"""Forgetting events (method 'forgetting'; config: configs/forgetting.py).

Toneva et al., ICLR 2019 (arXiv 1812.05159); math in
datarater/dynamics/forgetting.py. Phase 'score' trains uniformly for
`config.num_steps` steps and records, at every presentation of a row, whether
the training forward pass (before the step's update) classifies it
correctly, as the paper does on its mini-batches. The score is the number of
forgetting events (correct -> wrong between consecutive presentations);
rows never classified correctly count as forgotten more often than any other
row (max count + 1). High = likely mislabelled, so scores_train.npy holds
the negated count (higher = keep) and raw_scores_train.npy the count. A batch
that spans two
epochs can hold a row twice; that step then records one of its two outcomes.

With `method.discard_fraction` > 0 the counts drive the shared filtered
retraining (datarater/methods/_filter.py), keeping low counts; ties (e.g.
the many unforgettable rows at 0) are broken by position in the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from datarater.dynamics import forgetting
from datarater.methods import _filter
from datarater.train.pipeline import Phase

DECLARES = dict(family='scorer', label='forgetting', scores=True)


def update(state, index, logits, labels):
  """Records whether each row of a batch is classified correctly at this presentation."""
  return forgetting.forgetting_update(state, index, jnp.argmax(logits, -1) == labels)


def make(config, task, dataset):
  """The forgetting scoring phase, with the filtered retraining when rho > 0."""
  _filter.require_classification(config, dataset)

  def score_fn(ctx, train_state, state):
    del ctx, train_state
    state = jax.device_get(state)
    scores = np.asarray(forgetting.forgetting_scores(state))
    seen = np.asarray(state.seen) > 0
    never = seen & ~np.asarray(state.ever_learned)
    return -scores, seen, {'never_learned_fraction': float(never.sum() / max(seen.sum(), 1))}

  method = _filter.presentation_method(config, task, dataset, forgetting.forgetting_init, update)
  return _filter.scorer_pipeline(config, task, dataset, Phase('score', method, config.num_steps),
                                 score_fn, 'forgetting events', raw='forgetting events')
