"""EL2N / GraNd: score every training row with an early-trained ensemble, filter, compare.

Command:
  python -m experiments.train --config=configs/el2n.py:dataset=digits --workdir=runs/el2n
  (GraNd: add --config.method.score=grand; at initialisation: --config.method.score_steps=0)

Arguments after ':' : dataset=digits|stdlib_text|mnist|cifar10|npz|<tfds name>, model=..., smoke.
Method fields (datarater/methods/el2n.py):
  method.score             'el2n' (error-vector norm) | 'grand' (gradient norm).
  method.num_models        independently initialised models averaged over
                           (vmapped; paper: 10 on CIFAR-10).
  method.score_steps       steps each model trains before scoring: early
                           training (paper: ~10% of training for EL2N, 0 for
                           GraNd at initialisation). Follows num_steps:
                           num_steps // 10 of the run as launched (a
                           --config.num_steps flag moves it too) unless set
                           itself.
  method.discard_fraction    'auto' (default) or rho in [0, 1): the fraction of candidate
                             rows the filtered retraining discards, keeping the lowest EL2N
                             / GraNd (0 = score only; 'auto': chosen on the score
                             distribution and the validation split; configs/common.py).
  method.filter_mode         'per_batch' (default: each step draws B / (1 - rho)
                             rows and keeps the best B, as DataRater) | 'dataset'
                             (drop the rho lowest-scored rows once).
Phases: 'score' (score_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'el2n'
  config.method.score = 'el2n'
  config.method.num_models = 4
  config.method.score_steps = config.get_ref('num_steps') // 10  # follows num_steps unless set
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  if arg.smoke:
    config.method.num_models = 2
    config.method.score_steps = 1   # not 6 // 10 = 0 (scoring at initialisation, GraNd's)
  return config
