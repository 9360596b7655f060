"""Static mixture: fixed per-source weights, as sampling probabilities or loss weights.

Config fields (configs/static_mixture.py):
  method.source_weights  tuple of K non-negative floats (normalized to sum 1);
                         () means uniform over sources.
  method.mode            'sample': each batch example's source is drawn from the
                         weights (then an example of that source uniformly);
                         'loss': batches are drawn uniformly from the train set
                         and example i gets loss weight w[g_i] * N / (N_g * B)
                         (`source_loss_weights`; N_g = source g's rows in the
                         train split, N all rows, B the batch size).
Both modes optimise sum_g w_g * L_g in expectation, L_g the mean loss over
source g's training rows: the objective ScaleBiO's lambda is learned on
(its lower level, sum_g lambda_g x the batch mean of source g's losses) and
DoReMi's domain weights mean, whatever the sources' sizes. 'loss' divides by
the train split's counts, not the batch's (`weighting.simplex.
group_example_weights`, group DRO's online weights): then the batch loss is an
unbiased estimate of that objective even for a source absent from some
batches; with sources present in every batch the two are about equal.
"""

from __future__ import annotations

import copy

import jax.numpy as jnp
import ml_collections
import numpy as np

from datarater.data import sampler
from datarater.errors import require
from datarater.train.state import Method, no_state, weighted_update

DECLARES = dict(family='source', label='static mixture')

MODES = ('sample', 'loss')


def source_weights(config, num_sources: int) -> np.ndarray:
  """`config.method.source_weights` normalized to sum one (uniform if empty).

  Args:
    config: the run config.
    num_sources: K, the dataset's number of sources.

  Returns:
    [K] float64 weights summing to one.

  Raises:
    ConfigError: on a wrong length, a negative entry or a zero sum.
  """
  given = config.method.source_weights
  w = np.asarray(given or [1.0] * num_sources, np.float64)
  require(len(w) == num_sources, 'method.source_weights',
          f'{num_sources} entries (one per source)', given)
  require(not (w < 0).any() and w.sum() > 0, 'method.source_weights',
          'non-negative with a positive sum', given)
  return w / w.sum()


def present_only(weights, dataset) -> np.ndarray:
  """Weights with sources absent from the train split set to 0, renormalized.

  Args:
    weights: [K] non-negative weights.
    dataset: the Dataset (its train split's sources).

  Returns:
    [K] float64 weights summing to one.
  """
  present = np.bincount(dataset.train.source, minlength=dataset.info.num_sources) > 0
  w = np.where(present, np.asarray(weights, np.float64), 0.0)
  return w / w.sum()


def source_loss_weights(weights, source: np.ndarray, batch_size: int) -> np.ndarray:
  """Per-source factor of 'loss' mode: an example of source g gets w_g * N / (N_g * B).

  Over uniform batches of B of the N train rows, E[sum_i factor[g_i] l_i] =
  sum_g w_g * mean_{i in g} l_i: source g carries w_g of the loss, whatever N_g.

  Args:
    weights: [K] source weights summing to one.
    source: [N] the train split's source ids.
    batch_size: B.

  Returns:
    [K] float64 factors (0 for sources with no train rows).
  """
  counts = np.bincount(source, minlength=len(weights)).astype(np.float64)
  scale = len(source) / (np.maximum(counts, 1.0) * batch_size)
  return np.where(counts > 0, np.asarray(weights, np.float64) * scale, 0.0)


def for_weights(config, task, dataset, weights, mode: str) -> Method:
  """The static-mixture Method for learned weights (e.g. ScaleBiO's, DoReMi's).

  Args:
    config: the run config (its method fields are replaced).
    task: the Task.
    dataset: the Dataset.
    weights: [K] learned source weights (sources absent from train get 0).
    mode: 'sample' or 'loss'.

  Returns:
    The Method of `make` for those weights.
  """
  fixed = copy.deepcopy(config)
  with fixed.unlocked():
    fixed.method = ml_collections.ConfigDict({
        'name': 'static_mixture', 'mode': mode,
        'source_weights': tuple(float(w) for w in present_only(weights, dataset))})
  return make(fixed, task, dataset)


def make(config, task, dataset) -> Method:
  """The static-mixture Method (fields in the module docstring).

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset.

  Returns:
    Method whose finalize reports `source_weights`.
  """
  mode = config.method.mode
  require(mode in MODES, 'method.mode', f'one of {MODES}', mode)
  k = dataset.info.num_sources
  w = source_weights(config, k)
  train = dataset.train
  present = np.bincount(train.source, minlength=k) > 0
  require(not (w[~present] > 0).any(), 'method.source_weights',
          'zero on sources with no train examples', config.method.source_weights)

  if mode == 'sample':
    weights_fn = lambda batch: lambda losses: jnp.full_like(losses, 1.0 / losses.shape[0])  # noqa: E731
    members = sampler.source_members(train.source, k)  # once, not every step
    sample = lambda step, state: sampler.mixture_indices(  # noqa: E731
        train.source, w, config.batch_size, config.seed, step, members)
  else:
    factor = jnp.asarray(source_loss_weights(w, train.source, config.batch_size), jnp.float32)

    def weights_fn(batch):
      return lambda losses: factor[batch['source']]
    sample = None

  def step(train_state, method_state, batch, key):
    del key
    train_state, metrics = weighted_update(task, train_state, batch, weights_fn(batch))
    return train_state, method_state, metrics

  def finalize(ctx, train_state, method_state):
    return {'source_weights': w.tolist()}

  return Method(init=no_state, step=step, train_batch_size=config.batch_size, sample=sample,
                finalize=finalize)
