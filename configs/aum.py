"""AUM (area under the margin): score every training row, filter, compare with uniform.

Command:
  python -m experiments.train --config=configs/aum.py:dataset=digits --workdir=runs/aum

Arguments after ':' : dataset=digits|mnist|cifar10|npz|<tfds name> (classification),
model=..., smoke.
Method fields (datarater/methods/aum.py):
  method.threshold_samples     bool: relabel a random 1/(C + 1) of the rows to a
                               fake class C while scoring and flag the rows whose
                               AUM is below the threshold rows' percentile
                               (Pleiss et al. 2020); the threshold rows get no score.
  method.threshold_percentile  the percentile of the threshold rows' AUMs used
                               as the cut (paper: 99).
  method.discard_fraction        'auto' (default) or rho in [0, 1): the fraction of
                                 candidate rows the filtered retraining discards, keeping
                                 the highest AUM (0 = score only; 'auto': chosen on the
                                 score distribution and the validation split;
                                 configs/common.py).
  method.filter_mode             'per_batch' (default: each step draws B / (1 - rho)
                                 rows and keeps the best B, as DataRater) | 'dataset'
                                 (drop the rho lowest-scored rows once).
Phases: 'score' (config.num_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'aum'
  config.method.threshold_samples = False
  config.method.threshold_percentile = 99.0
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  return config
