"""Static mixture: fixed per-source weights, as sampling probabilities or loss weights.

Config fields (configs/static_mixture.py):
  method.source_weights  tuple of K non-negative floats (normalized to sum 1);
                         () means uniform over sources.
  method.mode            'sample': each batch example's source is drawn from the
                         weights (then an example of that source uniformly);
                         'loss': batches are drawn uniformly from the train set
                         and example i gets loss weight proportional to
                         w[source_i] (normalized over the batch).
"""

from __future__ import annotations

import copy

import jax.numpy as jnp
import ml_collections
import numpy as np

from datarater.data import sampler
from datarater.train.state import Method, no_state, weighted_update

MODES = ('sample', 'loss')


def source_weights(config, num_sources: int) -> np.ndarray:
  w = np.asarray(config.method.source_weights or [1.0] * num_sources, np.float64)
  if len(w) != num_sources:
    raise ValueError(f'config.method.source_weights has {len(w)} entries; the dataset has '
                     f'{num_sources} sources')
  if (w < 0).any() or w.sum() <= 0:
    raise ValueError('config.method.source_weights must be non-negative with a positive sum')
  return w / w.sum()


def present_only(weights, dataset) -> np.ndarray:
  """Weights with sources absent from the train split set to 0, renormalized."""
  present = np.bincount(dataset.train.source, minlength=dataset.info.num_sources) > 0
  w = np.where(present, np.asarray(weights, np.float64), 0.0)
  return w / w.sum()


def for_weights(config, task, dataset, weights, mode: str) -> Method:
  """The static-mixture Method for learned weights (e.g. ScaleBiO's, DoReMi's), in `mode`."""
  fixed = copy.deepcopy(config)
  with fixed.unlocked():
    fixed.method = ml_collections.ConfigDict({
        'name': 'static_mixture', 'mode': mode,
        'source_weights': tuple(float(w) for w in present_only(weights, dataset))})
  return make(fixed, task, dataset)


def make(config, task, dataset) -> Method:
  mode = config.method.mode
  if mode not in MODES:
    raise ValueError(f'config.method.mode={mode!r} is not one of {MODES}')
  k = dataset.info.num_sources
  w = source_weights(config, k)
  train = dataset.train
  present = np.bincount(train.source, minlength=k) > 0
  if (w[~present] > 0).any():
    raise ValueError('config.method.source_weights puts weight on a source with no train examples')
  w_dev = jnp.asarray(w, jnp.float32)

  if mode == 'sample':
    weights_fn = lambda batch: lambda losses: jnp.full_like(losses, 1.0 / losses.shape[0])  # noqa: E731
    members = sampler.source_members(train.source, k)  # once, not every step
    sample = lambda step, state: sampler.mixture_indices(  # noqa: E731
        train.source, w, config.batch_size, config.seed, step, members)
  else:
    def weights_fn(batch):
      def fn(losses):
        raw = w_dev[batch['source']]
        return raw / jnp.maximum(raw.sum(), 1e-12)
      return fn
    sample = None

  def step(train_state, method_state, batch, key):
    del key
    train_state, metrics = weighted_update(task, train_state, batch, weights_fn(batch))
    return train_state, method_state, metrics

  def finalize(ctx, train_state, method_state):
    return {'source_weights': w.tolist()}

  return Method(init=no_state, step=step, train_batch_size=config.batch_size, sample=sample,
                finalize=finalize)
