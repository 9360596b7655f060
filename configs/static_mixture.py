"""Static mixture: fixed per-source weights as sampling probabilities or loss weights.

Command:
  python -m experiments.train --config=configs/static_mixture.py:dataset=digits \
      --workdir=runs/mixture --config.method.source_weights='(1,1,1,0,0)'

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.

Method fields:
  method.source_weights  tuple of K non-negative floats, normalized; () = uniform.
  method.mode            'sample' (draw each example's source from the weights)
                         or 'loss' (uniform batches; an example of source g
                         gets loss weight w_g * N / (N_g * B), N_g its source's
                         train rows): both give each source w_g of the loss,
                         whatever its size (the objective sum_g w_g * mean loss
                         of g that ScaleBiO learns its weights on).
Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'static_mixture'
  config.method.source_weights = ()
  config.method.mode = 'sample'
  return config
