"""CVaR per-example weighting (method 'cvar'; config: configs/cvar.py).

Each step the global batch's m losses (under stop_gradient) give the CVaR_alpha
weights (Levy, Carmon, Duchi, Sidford, NeurIPS 2020): 1 / (alpha m) on the
floor(alpha m) largest losses, the remainder 1 - floor(alpha m) / (alpha m) on
the next one, 0 elsewhere; the model steps on sum_i q_i loss_i, i.e. on the
mean of the worst alpha-fraction of the batch. The top-k is over the global
batch (XLA gathers across devices). Math: datarater/weighting/dro.py.

Config fields:
  method.alpha  fraction in (0, 1] (Levy et al.'s ImageNet setting: 0.1; 1 = ERM).
"""

from __future__ import annotations

from datarater.errors import require
from datarater.methods import _per_example as per_example
from datarater.weighting import dro

DECLARES = dict(family='rule', label='CVaR', scores=True, loss_scores=True)


def make(config, task, dataset):
  """The CVaR Method; fields in the module docstring; ConfigError on a bad one."""
  alpha = config.method.alpha
  require(isinstance(alpha, (int, float)) and 0 < alpha <= 1, 'method.alpha', 'in (0, 1]', alpha)
  alpha = float(alpha)

  def rule(losses, step):
    del step
    return dro.cvar_weights(losses, alpha), {}

  return per_example.make_per_example_method(config, task, dataset, rule, f'CVaR (alpha={alpha})')
