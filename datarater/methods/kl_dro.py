"""KL-DRO per-example weighting (method 'kl_dro'; config: configs/kl_dro.py).

Each step the global batch's losses (under stop_gradient) give weights

  penalized   (form='penalized'):   q = softmax(loss / tau)
              = argmax_q <q, loss> - tau KL(q || uniform)
  constrained (form='constrained'): q = argmax_{KL(q || uniform) <= rho} <q, loss>
              = softmax(loss / tau*), tau* by bisection on the dual

and the model steps on sum_i q_i loss_i. The KL-penalized form is the
instance weighting of Sow, Lin, Wang, Liang (ICLR 2024, doubly robust
instance-reweighted adversarial training) with the mini-batch plug-in
normalizer (biased for small batches; they use a running average instead).
Math: datarater/weighting/dro.py.

Config fields:
  method.form         'penalized' | 'constrained'.
  method.temperature  tau > 0 of the penalized form (loss units).
  method.rho          KL radius > 0 of the constrained form (nats; at most log B binds).
Logs `kl_dro/kl_to_uniform` (KL of the batch weights to uniform) besides the
shared per-example outputs of `per_example.make_per_example_method`.
"""

from __future__ import annotations

from datarater.errors import require
from datarater.methods import _per_example as per_example
from datarater.weighting import dro

DECLARES = dict(family='rule', label='KL-DRO', scores=True, loss_scores=True)

FORMS = ('penalized', 'constrained')


def make(config, task, dataset):
  """The KL-DRO Method; fields in the module docstring; ConfigError on a bad one."""
  m = config.method
  require(m.form in FORMS, 'method.form', f'one of {FORMS}', m.form)
  if m.form == 'penalized':
    require(m.temperature > 0, 'method.temperature', '> 0', m.temperature)
    tau = float(m.temperature)
    weights_fn = lambda losses: dro.kl_dro_weights(losses, tau)  # noqa: E731
  else:
    require(m.rho > 0, 'method.rho', '> 0', m.rho)
    rho = float(m.rho)
    weights_fn = lambda losses: dro.kl_constrained_weights(losses, rho)  # noqa: E731

  def rule(losses, step):
    del step
    q = weights_fn(losses)
    return q, {'kl_dro/kl_to_uniform': dro.kl_divergence_to_uniform(q)}

  return per_example.make_per_example_method(config, task, dataset, rule, f'KL-DRO ({m.form})')
