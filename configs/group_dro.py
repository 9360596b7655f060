"""Online group DRO over data sources (Sagawa et al. ICLR 2020): loss = sum_g q_g L_g.

Command:
  python -m experiments.train --config=configs/group_dro.py:dataset=digits --workdir=runs/gdro

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured (seed 0; 2-core CPU shared with other jobs; 'accuracy / loss' on the clean test split):
  digits (1500 steps, about 30 s): test accuracy 0.6462, test loss 0.9727; final q
  (noise 0..0.8) 0.041 0.274 0.233 0.213 0.240, time-averaged q 0.028 0.144 0.218
  0.274 0.335.
  stdlib_text (--config.num_steps=500, about 1.5 min): 0.3642 / 2.5439; final q
  0.000 0.004 0.019 0.168 0.808.
  uniform on the same presets: digits 0.7604 / 0.7480 (seeds 1, 2: 0.7047 / 0.9190,
  0.7549 / 0.7877); stdlib_text at 500 steps 0.4368 / 2.1906 (seed 1: 0.4162 / 2.2536).

Method fields (datarater/weighting/group_dro_method.py):
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
