"""Uniform baseline (plain ERM) on the noisy-sources presets.

Command (about 30 s on 2 CPU cores for digits):
  python -m experiments.train --config=configs/uniform.py:dataset=digits --workdir=runs/uniform

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Expected result (digits, 5 sources with label noise 0/0.2/0.4/0.6/0.8, 1500
steps): `done: test accuracy 0.7604, test loss 0.7480` (the MLP memorises the
wrong labels; its test accuracy peaks near 0.93 around step 100-200).
All shared fields are documented in configs/common.py; this method has no
`config.method.*` hyperparameters.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'uniform'
  return config
