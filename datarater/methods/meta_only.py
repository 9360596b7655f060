"""Training on the meta split alone: the reference "just train on the trusted rows".

Config: configs/meta_only.py. Uniform training (same steps, batch size and
optimizer as uniform) whose batches come from the meta split instead of the
training split (`Method.split='meta'`): epoch-wise reshuffled passes over the
meta rows, a pure function of (seed, step). It never reads a training row.
Information: the meta rows only (clean under data.meta_mode='clean'), the
rows the meta-learned methods (L2RW, MW-Net, DataRater) measure their outer
loss on; a method that does not beat this row gains nothing from the noisy
training rows.
"""

from __future__ import annotations

from datarater.methods import uniform
from datarater.train.state import Method

DECLARES = dict(family='baseline', label='meta rows only', information='meta rows')


def make(config, task, dataset) -> Method:
  """Uniform training on the meta split.

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset (its meta split is trained on).

  Returns:
    Method with split='meta'.
  """
  return uniform.make(config, task, dataset)._replace(split='meta')
