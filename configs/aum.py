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
  method.discard_fraction      rho in [0, 1): the filtered retraining draws
                               B / (1 - rho) rows and keeps the B with the
                               highest AUM (as DataRater; 0 = score only).
Phases: 'score' (config.num_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'aum'
  config.method.threshold_samples = False
  config.method.threshold_percentile = 99.0
  config.method.discard_fraction = 0.5
  return config
