"""Online group DRO over data sources (Sagawa et al. ICLR 2020): loss = sum_g q_g L_g.

Command:
  python -m experiments.train --config=configs/group_dro.py:dataset=digits --workdir=runs/gdro

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured results: README.md.

Method fields (datarater/methods/group_dro.py):
  method.eta_q  step size >= 0 of q_g <- q_g exp(eta_q (L_g + C / sqrt(n_g)))
                (paper: 0.01).
  method.C      generalization adjustment >= 0, n_g = the source's training
                size (paper default 0 = off).
Writes `source_weights` (final q) and `source_weights_mean` to summary.json and
plots/source_weights.png. Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'group_dro'
  config.method.eta_q = 0.01
  config.method.C = 0.0
  return config
