"""Uniform weighting (plain ERM): every example in the batch has weight 1/B.

Config: configs/uniform.py. No method hyperparameters. `on_rows` is uniform
training on a subset of the training rows (the oracle's clean rows, a
dataset-level filter's kept rows).
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from datarater.data import sampler
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


def on_rows(config, task, dataset, rows: Callable, init: Callable = no_state) -> Method:
  """Uniform training whose batches of B are drawn from a subset of the training rows only.

  Batches are epoch-wise reshuffled passes over the subset, a pure function of
  (seed, step) (`sampler.sequential_indices`).

  Args:
    config: the run config (batch_size, seed).
    task: the Task.
    dataset: the Dataset.
    rows: () -> int [M] training-row indices, called on the host at every step
      (after `init`, which may compute them).
    init: the Method's init (key, train_state) -> method_state.

  Returns:
    Method.
  """
  b, seed = config.batch_size, int(config.seed)

  def sample(step, method_state):
    del method_state
    subset = rows()
    return subset[sampler.sequential_indices(len(subset), b, seed, step)]

  return make(config, task, dataset)._replace(init=init, sample=sample)
