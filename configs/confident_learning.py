"""Confident learning: out-of-fold scores of every training row, filter, compare with uniform.

Command:
  python -m experiments.train --config=configs/confident_learning.py:dataset=digits --workdir=runs/confident_learning

Arguments after ':' : dataset=digits|mnist|cifar10|npz|<tfds name> (classification),
model=..., smoke.
Method fields (datarater/methods/confident_learning.py):
  method.num_folds         K: fold k's model never trains on fold k's rows
                           (cleanlab's default: 5; 4 here to keep the vmapped
                           ensemble small).
  method.score             'self_confidence' (p_hat(y | x), cleanlab's default)
                           | 'normalized_margin'.
  method.discard_fraction    'auto' (default) or rho in [0, 1): the fraction of candidate
                             rows the filtered retraining discards, keeping the highest
                             score (0 = score only; 'auto': chosen on the score distribution
                             and the validation split; configs/common.py).
  method.filter_mode         'per_batch' (default: each step draws B / (1 - rho)
                             rows and keeps the best B, as DataRater) | 'dataset'
                             (drop the rho lowest-scored rows once).
Outputs besides the scores: oof_pred_probs.npy and summary `confident_learning`.
Phases: 'score' (config.num_steps, K models of batch B each), then with rho > 0
'filtered' and 'uniform' (config.num_steps each, same initial parameters).
Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'confident_learning'
  config.method.num_folds = 4
  config.method.score = 'self_confidence'
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  return config
