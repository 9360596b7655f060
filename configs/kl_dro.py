"""KL-DRO per-example weights: q = softmax(loss / tau) over the batch (or the KL-ball form).

Command:
  python -m experiments.train --config=configs/kl_dro.py:dataset=digits --workdir=runs/kl_dro
  (KL-constrained form: add --config.method.form=constrained --config.method.rho=1.0)

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured results: README.md.

Method fields (datarater/methods/kl_dro.py):
  method.form         'penalized': q = softmax(loss / tau), the maximiser of
                      <q, loss> - tau KL(q || uniform) (Sow et al. ICLR 2024's
                      instance weights); 'constrained': the maximiser of
                      <q, loss> subject to KL(q || uniform) <= rho.
  method.temperature  tau > 0, in loss units (nats). No paper value transfers to
                      this scale; 1.0 keeps weights within a factor e^(loss gap).
  method.rho          KL radius > 0 of the constrained form, in nats (<= log B;
                      larger does not bind). 1.0, by analogy with Levy et al.'s
                      chi^2 radius 1.
Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'kl_dro'
  config.method.form = 'penalized'
  config.method.temperature = 1.0
  config.method.rho = 1.0
  return config
