"""Small-loss selection (method 'small_loss'; config: configs/small_loss.py).

Co-teaching's sample selection with one network (Han et al., NeurIPS 2018,
arXiv 1804.06872): each step trains on the mean loss of the ceil((1 - r_t) B)
lowest-loss examples of the global batch, the forget rate r_t rising linearly
from 0 to r over `ramp_steps`. Math: datarater/weighting/small_loss.py.

This module is the README's worked example of "Add a method": the rule lives
in the maths package, this module only checks the config, declares what the
method produces (DECLARES) and wires the rule into the loop.

Config fields:
  method.forget_rate  r in [0, 1): fraction of each batch dropped after the ramp.
  method.ramp_steps   int >= 0: steps over which the forget rate rises from 0 to r.
Outputs: the shared per-example outputs (`scores_train.npy` = minus the latest
training loss, higher = keep; `raw_scores_train.npy` = the loss; the share of
weight per source) of
`methods._per_example.make_per_example_method`.
"""

from __future__ import annotations

from datarater.errors import is_number, require
from datarater.methods import _per_example as per_example
from datarater.weighting import small_loss

DECLARES = dict(family='rule', label='small-loss', scores=True, loss_scores=True)


def make(config, task, dataset):
  """The small-loss Method; fields in the module docstring; ConfigError on a bad one."""
  m = config.method
  require(is_number(m.forget_rate) and 0 <= m.forget_rate < 1, 'method.forget_rate',
          'in [0, 1)', m.forget_rate)
  require(isinstance(m.ramp_steps, int) and m.ramp_steps >= 0, 'method.ramp_steps',
          'an int >= 0', m.ramp_steps)
  r, ramp = float(m.forget_rate), int(m.ramp_steps)

  def rule(losses, step):
    rate = small_loss.forget_rate_schedule(step, r, ramp)
    return small_loss.small_loss_weights(losses, rate), {'small_loss/forget_rate': rate}

  return per_example.make_per_example_method(config, task, dataset, rule,
                                             f'small-loss selection (r={r})')
