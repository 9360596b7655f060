"""Filtered retraining from a score file, paired with uniform at equal steps.

Command (scores from an earlier run on the same dataset and seed):
  python -m experiments.train --config=configs/score_filter.py:dataset=digits --workdir=runs/filter \
      --config.method.scores_path=runs/l2rw/scores_train.npy

Arguments after ':' : dataset=..., model=..., smoke.
Method fields (datarater/methods/score_filter.py):
  method.scores_path       .npy with one score per training row (load order),
                           higher = keep (as every scores_train.npy).
  method.discard_fraction  'auto' (default; configs/common.py) or rho in (0, 1): the
                           fraction of candidates discarded.
  method.filter_mode       'per_batch' (default, DataRater's filter) | 'dataset'
                           (configs/common.py).
Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'score_filter'
  config.method.scores_path = ''
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  return config
