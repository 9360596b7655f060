"""Dynamic loss-based reweighting (method 'loss_reweight'; config: configs/loss_reweight.py).

Sow et al., "Dynamic Loss-Based Sample Reweighting for Improved Large Language
Model Pretraining", ICLR 2025. Over the global batch (min and max are global
across devices), with stop_gradient losses:

  h_i = delta (2 loss_i - max - min) / max(max - min, 1e-6)      in [-delta, delta]
  f = min(h + delta, delta) (linupper) | 1 - h^2 / delta^2 (quadratic) | |h| (extremes)
  w = softmax(f / r)

and uniform weights for the first `warmup_steps` steps. The model steps on
sum_i w_i loss_i. Math: datarater/weighting/loss_reweight.py.

Config fields:
  method.strategy      'linupper' | 'quadratic' | 'extremes'.
  method.delta         delta > 0 (paper: 1).
  method.r             softmax temperature r > 0 (paper: 1.0 with quadratic for
                       the 124M model, 0.4 with extremes/linupper for larger ones).
  method.warmup_steps  int >= 0: steps with uniform weights (paper: 1000).
Logs `loss_reweight/active` (1 once reweighting is on).
"""

from __future__ import annotations

import jax.numpy as jnp

from datarater.errors import require
from datarater.methods import _per_example as per_example
from datarater.weighting import loss_reweight

DECLARES = dict(family='rule', label='loss reweighting', scores=True, loss_scores=True)


def make(config, task, dataset):
  """The loss-reweighting Method; fields in the module docstring; ConfigError on a bad one."""
  m = config.method
  strategies = tuple(sorted(loss_reweight.STRATEGIES))
  require(m.strategy in strategies, 'method.strategy', f'one of {strategies}', m.strategy)
  require(m.delta > 0, 'method.delta', '> 0', m.delta)
  require(m.r > 0, 'method.r', '> 0', m.r)
  require(isinstance(m.warmup_steps, int) and m.warmup_steps >= 0, 'method.warmup_steps',
                'an integer >= 0', m.warmup_steps)
  strategy, delta, r, warmup = m.strategy, float(m.delta), float(m.r), int(m.warmup_steps)

  def rule(losses, step):
    w = loss_reweight.loss_reweight_weights(losses, strategy, delta, r)
    return (loss_reweight.warmup_weights(w, step, warmup),
            {'loss_reweight/active': (step >= warmup).astype(jnp.float32)})

  return per_example.make_per_example_method(config, task, dataset, rule,
                                       f'loss reweighting ({strategy})')
