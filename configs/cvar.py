"""CVaR per-example weights: train on the mean of the worst alpha-fraction of each batch.

Command:
  python -m experiments.train --config=configs/cvar.py:dataset=digits --workdir=runs/cvar

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured (seed 0; 2-core CPU shared with other jobs; 'accuracy / loss' on the clean test split):
  digits (1500 steps, about 35 s): test accuracy 0.6685, test loss 1.4232; share of
  batch weight per source (noise 0..0.8) 0.070 0.143 0.196 0.261 0.331.
  stdlib_text (--config.num_steps=500, about 2 min): 0.3088 / 3.4026; weight share
  0.000 0.123 0.209 0.273 0.396.
  uniform on the same presets: digits 0.7604 / 0.7480 (seeds 1, 2: 0.7047 / 0.9190,
  0.7549 / 0.7877); stdlib_text at 500 steps 0.4368 / 2.1906 (seed 1: 0.4162 / 2.2536).

Method fields (datarater/weighting/cvar_method.py):
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
