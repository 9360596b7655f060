"""Dataset cartography: score every training row by confidence, filter, compare with uniform.

Command:
  python -m experiments.train --config=configs/cartography.py:dataset=digits --workdir=runs/cartography

Arguments after ':' : dataset=digits|mnist|cifar10|npz|<tfds name> (classification),
model=..., smoke.
Method fields (datarater/methods/cartography.py):
  method.discard_fraction    'auto' (default) or rho in [0, 1): the fraction of candidate
                             rows the filtered retraining discards, keeping the highest
                             confidence (0 = score only; 'auto': chosen on the score
                             distribution and the validation split; configs/common.py).
  method.filter_mode         'per_batch' (default: each step draws B / (1 - rho)
                             rows and keeps the best B, as DataRater) | 'dataset'
                             (drop the rho lowest-scored rows once).
Outputs besides the scores: plots/data_map.png and summary `cartography`.
Phases: 'score' (config.num_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'cartography'
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  return config
