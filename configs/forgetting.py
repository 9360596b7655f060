"""Forgetting events: score every training row, filter, compare with uniform.

Command:
  python -m experiments.train --config=configs/forgetting.py:dataset=digits --workdir=runs/forgetting

Arguments after ':' : dataset=digits|mnist|cifar10|npz|<tfds name> (classification),
model=..., smoke.
Method fields (datarater/methods/forgetting.py):
  method.discard_fraction  rho in [0, 1): the filtered retraining draws
                           B / (1 - rho) rows and keeps the B with the fewest
                           forgetting events (as DataRater; 0 = score only).
Phases: 'score' (config.num_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'forgetting'
  config.method.discard_fraction = 0.5
  return config
