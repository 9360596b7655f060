"""Oracle: uniform training on the clean training rows only (uses the ground truth).

Command:
  python -m experiments.train --config=configs/oracle.py:dataset=digits --workdir=runs/oracle

Arguments after ':' : dataset=digits|mnist1d|stdlib_text|npz|<tfds name>, smoke.
Runtime: that of uniform (same steps, batch size and optimizer); batches are
drawn from the rows whose ground-truth corrupted flag is False. An upper
reference for the noisy-label and filtering tables, not a method: no method
may read that flag. All shared fields are documented in configs/common.py;
this method has no `config.method.*` hyperparameters.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'oracle'
  return config
