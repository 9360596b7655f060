"""chi^2-DRO per-example weights q_i = (loss_i - eta)_+ / (lam B) (Levy et al. NeurIPS 2020).

Command:
  python -m experiments.train --config=configs/chi2_dro.py:dataset=digits --workdir=runs/chi2
  (penalized form: add --config.method.form=penalized)

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured results: README.md.

Method fields (datarater/methods/chi2_dro.py), with
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
