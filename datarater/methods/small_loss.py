"""Small-loss selection (method 'small_loss'; config: configs/small_loss.py).

The sample-selection trick of co-teaching (Han et al., NeurIPS 2018, arXiv
1804.06872), with one network: deep networks fit clean labels before noisy
ones, so early in training the examples with the smallest loss are likely
clean. Each step keeps the ceil((1 - r_t) B) lowest-loss examples of the
global batch and trains on their mean loss; the forget rate ramps linearly,
r_t = r * min(t / ramp_steps, 1) (the paper's R(T) = 1 - min(T tau / T_k, tau),
tau = r, T_k = ramp_steps). Co-teaching assumes the noise rate is known and
sets r to it. Co-teaching's second network (each network picks the
examples its peer trains on) is not part of this module.

This module is the README's worked example of "Add a method": one rule, one
module, one config file.

Config fields:
  method.forget_rate  r in [0, 1): fraction of each batch dropped after the ramp.
  method.ramp_steps   int >= 0: steps over which the forget rate rises from 0 to r.
Outputs: the shared per-example outputs (`scores_train.npy` = minus the latest
training loss, higher = keep; `raw_scores_train.npy` = the loss; the share of
weight per source) of
`methods._per_example.make_per_example_method`.
"""

from __future__ import annotations

import jax.numpy as jnp

from datarater.errors import is_number, require
from datarater.methods import _per_example as per_example
from datarater.weighting.normalize import sum_one


def small_loss_weights(losses, forget_rate):
  """Weight 1/k on the k = ceil((1 - forget_rate) B) smallest losses, 0 elsewhere.

  Args:
    losses: [B] per-example losses (stop-gradient).
    forget_rate: scalar in [0, 1) (may be traced).

  Returns:
    [B] weights summing to one; ties are broken by position.
  """
  b = losses.shape[0]
  k = jnp.maximum(jnp.ceil((1.0 - forget_rate) * b), 1.0)
  ranks = jnp.argsort(jnp.argsort(losses))  # 0 = smallest loss
  return sum_one((ranks < k).astype(losses.dtype))


def make(config, task, dataset):
  m = config.method
  require(is_number(m.forget_rate) and 0 <= m.forget_rate < 1, 'method.forget_rate',
          'in [0, 1)', m.forget_rate)
  require(isinstance(m.ramp_steps, int) and m.ramp_steps >= 0, 'method.ramp_steps',
          'an int >= 0', m.ramp_steps)
  r, ramp = float(m.forget_rate), int(m.ramp_steps)

  def rule(losses, step):
    rate = r * jnp.minimum(step / max(ramp, 1), 1.0) if ramp else jnp.asarray(r)
    return small_loss_weights(losses, rate), {'small_loss/forget_rate': rate}

  return per_example.make_per_example_method(config, task, dataset, rule,
                                             f'small-loss selection (r={r})')
