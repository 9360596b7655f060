"""TracIn: value training rows by TracInCP against the meta split, filter, compare.

Command:
  python -m experiments.train --config=configs/tracin.py:dataset=digits --workdir=runs/tracin
  (all parameters instead of the output layer: --config.method.params=all)

Arguments after ':' : dataset=digits|stdlib_text|mnist|cifar10|npz|<tfds name>, model=..., smoke.
Method fields (datarater/methods/tracin.py):
  method.score_steps        steps of uniform training traced (>= 1).
                            Default: config.num_steps (it follows a --config.num_steps
                            override unless score_steps is set itself).
  method.num_checkpoints    C, parameter snapshots kept, evenly spaced over the
                            score steps, the last at the end (the paper: a few
                            checkpoints; memory C x the model's parameters).
  method.params             'last' (gradients of the output layer only: TracIn-last,
                            the paper's choice at scale) | 'all' (every parameter).
  method.discard_fraction   'auto' (default) or rho in [0, 1) (configs/common.py);
                            keeps the highest TracIn.
  method.filter_mode        'per_batch' (default) | 'dataset' (configs/common.py).
Phases: 'score' (score_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'tracin'
  config.method.score_steps = config.get_ref('num_steps') + 0  # follows num_steps unless set
  config.method.num_checkpoints = 5
  config.method.params = 'last'
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  if arg.smoke:
    config.method.num_checkpoints = 3
  return config
