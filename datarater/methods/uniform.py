"""Uniform weighting (plain ERM): every example in the batch has weight 1/B.

Config: configs/uniform.py. No method hyperparameters.
"""

from __future__ import annotations

import jax.numpy as jnp

from datarater.train.state import Method, no_state, weighted_update

DECLARES = dict(family='baseline', label='uniform')


def make(config, task, dataset) -> Method:
  """The uniform (ERM) Method.

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset.

  Returns:
    Method.
  """
  del dataset

  def step(train_state, method_state, batch, key):
    del key
    train_state, metrics = weighted_update(task, train_state, batch,
                                           lambda losses: jnp.full_like(losses, 1.0 / losses.shape[0]))
    return train_state, method_state, metrics

  return Method(init=no_state, step=step, train_batch_size=config.batch_size)
