"""Uniform baseline (plain ERM) on the noisy-sources presets.

Command:
  python -m experiments.train --config=configs/uniform.py:dataset=digits --workdir=runs/uniform

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
The default digits preset has 5 sources with label noise 0/0.2/0.4/0.6/0.8;
measured results: README.md.
All shared fields are documented in configs/common.py; this method has no
`config.method.*` hyperparameters.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'uniform'
  return config
