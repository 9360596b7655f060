"""Dataset cartography: score every training row by confidence, filter, compare with uniform.

Command:
  python -m experiments.train --config=configs/cartography.py:dataset=digits --workdir=runs/cartography

Arguments after ':' : dataset=digits|mnist|cifar10|npz|<tfds name> (classification),
model=..., smoke.
Method fields (datarater/methods/cartography.py):
  method.discard_fraction  rho in [0, 1): the filtered retraining draws
                           B / (1 - rho) rows and keeps the B with the highest
                           confidence (as DataRater; 0 = score only).
Outputs besides the scores: plots/data_map.png and summary `cartography`.
Phases: 'score' (config.num_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'cartography'
  config.method.discard_fraction = 0.5
  return config
