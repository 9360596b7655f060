"""Online group DRO over sources (method 'group_dro'; config: configs/group_dro.py).

Sagawa, Koh, Hashimoto, Liang, ICLR 2020, Algorithm 1, with groups = data
sources. Each step, with L_g the global batch's mean loss of source g
(stop_gradient) and n_g the source's training-set size,

  q_g <- q_g exp(eta_q (L_g + C / sqrt(n_g))),  q <- q / sum(q)

(sources absent from the batch are not multiplied), then the model steps on
sum_g q_g L_g: example i gets weight q_{g_i} / n_{g_i}^batch, renormalized over
the sources present. Math: datarater/weighting/group_dro.py and simplex.py.

Config fields:
  method.eta_q  adversary step size >= 0 (paper: 0.01).
  method.C      generalization adjustment >= 0 (paper default 0 = off).
Outputs: `source_weights` (final q) and `source_weights_mean` (q averaged over
steps) in summary.json, q over time in plots/source_weights.png, the robust
loss `group_dro/robust_loss` and per-source batch losses `train/source_loss`
(0 for a source absent from the batch) in metrics.jsonl.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from datarater.errors import require
from datarater.methods import _per_example as per_example
from datarater.train.state import Method, weighted_step
from datarater.weighting import group_dro, simplex, tables

DECLARES = dict(family='source', label='group DRO', source_weights=True)


class State(NamedTuple):
  dro: simplex.EGState   # the adversary's q over sources
  average: tables.Mean   # q averaged over steps


def make(config, task, dataset) -> Method:
  """The group DRO Method; fields in the module docstring; ConfigError on a bad one."""
  m = config.method
  require(m.eta_q >= 0, 'method.eta_q', '>= 0', m.eta_q)
  require(m.C >= 0, 'method.C', '>= 0', m.C)
  eta_q, c = float(m.eta_q), float(m.C)
  k = dataset.info.num_sources
  sizes = jnp.asarray(np.bincount(dataset.train.source, minlength=k), jnp.float32)

  def init(key, train_state):
    del key, train_state
    return State(group_dro.group_dro_init(k), tables.mean_init((k,)))

  def weights_fn(state, sources):
    def fn(losses):
      new, weights, robust, means = group_dro.group_dro_step(
          state.dro, losses, sources, k, eta_q, c, sizes)
      return weights, (new, robust, means)
    return fn

  def step(train_state, state, batch, key):
    del key
    train_state, metrics, _, _, (new, robust, means) = weighted_step(
        task, train_state, batch, weights_fn(state, batch['source']))
    metrics.update({'source_weights': new.weights, 'group_dro/robust_loss': robust,
                    'train/source_loss': means})
    return train_state, State(new, tables.mean_update(state.average, new.weights)), metrics

  def finalize(ctx, train_state, state):
    state = jax.device_get(state)
    per_example.plot_source_curve(ctx, 'source_weights', 'source_weights.png',
                                  f'group DRO q (eta_q={eta_q})')
    return {'source_weights': np.asarray(state.dro.weights).tolist(),
            'source_weights_mean': np.asarray(tables.mean_value(state.average)).tolist()}

  return Method(init=init, step=step, train_batch_size=config.batch_size, finalize=finalize)
