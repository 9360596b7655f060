"""Class-balanced loss (Cui et al., CVPR 2019): the long-tail baseline ('class_balanced').

Config: configs/class_balanced.py. Each example's loss is multiplied by its
class's weight w_y from the effective number of samples of the TRAIN split's
class counts (datarater/weighting/class_balanced.py; weights with mean one
over the classes that occur), and the model trains on (1/B) sum_i w_{y_i} l_i:
uniform training otherwise (same batches, same compute). Information: the
training rows' labels only. summary.json gets `class_counts` and
`class_weights`.
"""

from __future__ import annotations

import jax.numpy as jnp

from datarater.errors import is_number, require
from datarater.methods import _filter
from datarater.train.state import Method, no_state, weighted_update
from datarater.weighting.class_balanced import class_counts, effective_number_weights

DECLARES = dict(family='imbalance', label='class-balanced loss')


def make(config, task, dataset) -> Method:
  """The class-balanced Method.

  Args:
    config: the run config (method.beta in [0, 1)).
    task: the Task (classification).
    dataset: the Dataset (its train labels give the class counts).

  Returns:
    Method.

  Raises:
    ConfigError: beta outside [0, 1), or a dataset that is not classification.
  """
  beta = config.method.beta
  require(is_number(beta) and 0 <= beta < 1, 'method.beta', 'in [0, 1)', beta)
  _filter.require_classification(config, dataset)
  counts = class_counts(dataset.train.y, dataset.info.num_classes)
  weights = effective_number_weights(counts, float(beta))
  table = jnp.asarray(weights, jnp.float32)

  def step(train_state, method_state, batch, key):
    del key
    w = table[batch['y']] / batch['y'].shape[0]
    train_state, metrics = weighted_update(task, train_state, batch, lambda losses: w)
    return train_state, method_state, metrics

  def finalize(ctx, train_state, method_state):
    del ctx, train_state, method_state
    return {'class_counts': counts.tolist(), 'class_weights': weights.tolist()}

  return Method(init=no_state, step=step, train_batch_size=config.batch_size,
                finalize=finalize)
