"""Training on the meta split alone (uniform weighting on the meta rows), a reference row.

Command:
  python -m experiments.train --config=configs/meta_only.py:dataset=digits --workdir=runs/meta_only

Arguments after ':' : dataset=digits|mnist1d|stdlib_text|npz|<tfds name>, smoke.
Runtime: that of uniform (same steps, batch size and optimizer). The meta split
holds data.meta_size rows (100 on digits), clean under data.meta_mode='clean'
(the default here, as for L2RW and MW-Net), so the model sees far fewer rows
than uniform, all of them clean. All shared fields are documented in
configs/common.py; this method has no `config.method.*` hyperparameters.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.data.meta_mode = 'clean'
  config.method.name = 'meta_only'
  return config
