"""Small-loss selection: train on the (1 - r) lowest-loss fraction of each batch.

Command:
  python -m experiments.train --config=configs/small_loss.py:dataset=digits --workdir=runs/small_loss

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, model=..., smoke.
Method fields (datarater/methods/small_loss.py):
  method.forget_rate  r in [0, 1): fraction of each batch dropped once the ramp
                      is over. Co-teaching (Han et al. 2018) sets it to the
                      noise rate, assumed known: 0.4 is the mean corruption
                      rate of the noisy-sources presets (0, .2, .4, .6, .8).
  method.ramp_steps   steps over which the forget rate rises linearly from 0
                      to r (co-teaching: 10 epochs; about 200 steps on digits).
Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'small_loss'
  config.method.forget_rate = 0.4
  config.method.ramp_steps = 200
  if arg.smoke:
    config.method.ramp_steps = 2
  return config
