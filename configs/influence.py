"""Influence functions: value training rows by their influence on the meta loss, filter, compare.

Command:
  python -m experiments.train --config=configs/influence.py:dataset=digits --workdir=runs/influence

Arguments after ':' : dataset=digits|stdlib_text|mnist|cifar10|npz|<tfds name>, model=..., smoke.
Method fields (datarater/methods/influence.py):
  method.score_steps        steps of uniform training before valuing (influence
                            assumes a minimiser of the training loss: train long).
                            Default: config.num_steps (it follows a --config.num_steps
                            override unless score_steps is set itself).
  method.params             'last' (the output layer's parameters, the rest fixed:
                            a convex problem under cross-entropy) | 'all'.
  method.damping            lambda >= 0 in (H + lambda I)^{-1} (Koh & Liang's
                            damping; needed when H is singular or indefinite).
  method.cg_maxiter         conjugate-gradient iterations at most (one
                            Hessian-vector product over the Hessian's rows each).
  method.cg_tol             CG's relative residual tolerance.
  method.hessian_rows       training rows the Hessian is averaged over, drawn with
                            the seed (0 = all training rows).
  method.discard_fraction   'auto' (default) or rho in [0, 1) (configs/common.py);
                            keeps the rows whose up-weighting lowers the meta loss most.
  method.filter_mode        'per_batch' (default) | 'dataset' (configs/common.py).
Phases: 'score' (score_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'influence'
  config.method.score_steps = config.get_ref('num_steps') + 0  # follows num_steps unless set
  config.method.params = 'last'
  config.method.damping = 0.01
  config.method.cg_maxiter = 100
  config.method.cg_tol = 1e-5
  config.method.hessian_rows = 0
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  if arg.smoke:
    config.method.cg_maxiter = 20
  return config
