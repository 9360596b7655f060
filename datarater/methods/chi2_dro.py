"""chi^2-DRO per-example weighting (method 'chi2_dro'; config: configs/chi2_dro.py).

With D(q || u) = (1/m) sum_i (m q_i - 1)^2 / 2 over the global batch of m
losses (under stop_gradient), Levy, Carmon, Duchi, Sidford (NeurIPS 2020):

  penalized   (form='penalized'):   q = argmax_q <q, loss> - lam D(q || u)
              q_i = (loss_i - eta)_+ / (lam m), eta such that sum q = 1
  constrained (form='constrained'): q = argmax_{D(q || u) <= rho} <q, loss>
              (same shape, lam chosen so that the constraint is tight)

and the model steps on sum_i q_i loss_i. Both are exact (one sort).
Math: datarater/weighting/dro.py.

Config fields:
  method.form  'penalized' | 'constrained'.
  method.lam   penalty lambda > 0 of the penalized form (Levy et al. ImageNet: 0.4).
  method.rho   radius > 0 of the constrained form (Levy et al. ImageNet: 1).
Logs `chi2_dro/divergence` (D of the batch weights to uniform).
"""

from __future__ import annotations

from datarater.errors import require
from datarater.methods import _per_example as per_example
from datarater.weighting import dro

DECLARES = dict(family='rule', label='chi2-DRO', scores=True, loss_scores=True)

FORMS = ('penalized', 'constrained')


def make(config, task, dataset):
  """The chi^2-DRO Method; fields in the module docstring; ConfigError on a bad one."""
  m = config.method
  require(m.form in FORMS, 'method.form', f'one of {FORMS}', m.form)
  if m.form == 'penalized':
    require(m.lam > 0, 'method.lam', '> 0', m.lam)
    lam = float(m.lam)
    weights_fn = lambda losses: dro.chi2_penalized_weights(losses, lam)  # noqa: E731
  else:
    require(m.rho > 0, 'method.rho', '> 0', m.rho)
    rho = float(m.rho)
    weights_fn = lambda losses: dro.chi2_constrained_weights(losses, rho)  # noqa: E731

  def rule(losses, step):
    del step
    q = weights_fn(losses)
    return q, {'chi2_dro/divergence': dro.chi2_divergence_to_uniform(q)}

  return per_example.make_per_example_method(config, task, dataset, rule, f'chi2-DRO ({m.form})')
