"""chi^2-DRO per-example weights q_i = (loss_i - eta)_+ / (lam B) (Levy et al. NeurIPS 2020).

Command:
  python -m experiments.train --config=configs/chi2_dro.py:dataset=digits --workdir=runs/chi2
  (penalized form: add --config.method.form=penalized)

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured (seed 0; 2-core CPU shared with other jobs; 'accuracy / loss' on the clean test split):
  digits (1500 steps, about 30 s): test accuracy 0.7409, test loss 0.8035; share of
  batch weight per source (noise 0..0.8) 0.098 0.160 0.192 0.243 0.307.
  stdlib_text (--config.num_steps=500, about 2 min): 0.3219 / 3.2125; weight share
  0.006 0.116 0.203 0.292 0.383.
  uniform on the same presets: digits 0.7604 / 0.7480 (seeds 1, 2: 0.7047 / 0.9190,
  0.7549 / 0.7877); stdlib_text at 500 steps 0.4368 / 2.1906 (seed 1: 0.4162 / 2.2536).

Method fields (datarater/weighting/chi2_dro_method.py), with
D(q || u) = (1/B) sum_i (B q_i - 1)^2 / 2:
  method.form  'constrained': argmax <q, loss> s.t. D(q || u) <= rho;
               'penalized': argmax <q, loss> - lam D(q || u).
  method.rho   radius > 0 of the constrained form (Levy et al. ImageNet: 1).
  method.lam   penalty > 0 of the penalized form (Levy et al. ImageNet: 0.4).
Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'chi2_dro'
  config.method.form = 'constrained'
  config.method.rho = 1.0
  config.method.lam = 0.4
  return config
