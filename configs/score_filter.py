"""Filtered retraining from a score file, paired with uniform at equal steps.

Command (scores from an earlier run on the same dataset and seed):
  python -m experiments.train --config=configs/score_filter.py:dataset=digits --workdir=runs/filter \
      --config.method.scores_path=runs/l2rw/scores_train.npy --config.method.higher_is_better=True

Arguments after ':' : dataset=..., model=..., smoke.
Method fields (datarater/methods/score_filter.py):
  method.scores_path       .npy with one score per training row (load order).
  method.higher_is_better  keep the highest (True) or lowest (False) scores.
  method.discard_fraction  rho in (0, 1), as DataRater's filter (default 0.5).
Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'score_filter'
  config.method.scores_path = ''
  config.method.higher_is_better = True
  config.method.discard_fraction = 0.5
  return config
