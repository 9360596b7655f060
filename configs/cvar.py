"""CVaR per-example weights: train on the mean of the worst alpha-fraction of each batch.

Command:
  python -m experiments.train --config=configs/cvar.py:dataset=digits --workdir=runs/cvar

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured results: README.md.

Method fields (datarater/methods/cvar.py):
  method.alpha  fraction in (0, 1]: weight 1/(alpha B) on the floor(alpha B)
                largest batch losses, the remainder on the next one (Levy et
                al. NeurIPS 2020; their ImageNet setting 0.1). alpha = 1 is ERM.
chi^2-DRO (penalized / constrained) has its own config: configs/chi2_dro.py.
Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'cvar'
  config.method.alpha = 0.1
  return config
