"""End-of-training domain upsampling: one source mixture, then another for the last steps.

Blakeney, Paul, Larsen, Owen, Frankle, "Does your data spark joy? Performance
gains from domain upsampling at the end of training" (2024, arXiv
2406.03476): a 7B model trains on a base mixture and, for the last fraction f
of training, on a mixture that upsamples the domain-specific (target-like)
sources; in its 5-30% ablation, f = 10-20% was best.

With T steps and end fraction f, the switch step is

    t_s = T - floor(f T + 1/2)            (`switch_step`; f T rounded half up)

and step t draws its batch from the base mixture for t < t_s and from the end
mixture for t >= t_s (`mixture_at`): the last round(f T) steps use the end
mixture (f = 0: never; f = 1: from step 0).

The default end mixture (`similarity_mixture`) is proportional to each
source's similarity to a target, read off DSIR's per-example log importance
weights log w_i (datarater/mixing/dsir.py) as their power mean over the
source's rows,

    s_g(r) = ( mean_{i in g} w_i^r )^(1/r)    for r in (0, 1],
    s_g(0) = exp( mean_{i in g} log w_i )     (the geometric mean, the r -> 0 limit),

end weights pi_g = s_g / sum_h s_h over the sources with rows. r = 1 is the
arithmetic mean importance weight; smaller r lets fewer single rows decide
(hashed n-gram log weights spread over tens of nats, so the arithmetic mean
is the largest w_i of the source: see configs/upsample_end.py for what that
did on stdlib_text). Computed in log space (log-sum-exp), so no w_i
overflows.

Pure numpy; invalid arguments raise ValueError naming the argument.
"""

from __future__ import annotations

import math

import numpy as np


def _check(name: str, ok: bool, requirement: str, value) -> None:
  if not ok:
    raise ValueError(f'{name} must be {requirement}, got {value!r}')


def switch_step(num_steps: int, end_fraction: float) -> int:
  """t_s = T - floor(f T + 1/2): the first step that draws from the end mixture.

  Args:
    num_steps: T >= 0.
    end_fraction: f in [0, 1].

  Returns:
    int in [0, T] (T: the end mixture is never used).
  """
  _check('num_steps', isinstance(num_steps, (int, np.integer)) and num_steps >= 0, 'an int >= 0',
         num_steps)
  _check('end_fraction', 0.0 <= end_fraction <= 1.0, 'in [0, 1]', end_fraction)
  return int(num_steps - math.floor(end_fraction * num_steps + 0.5))


def mixture_at(step: int, switch: int, base, end) -> np.ndarray:
  """The mixture step `step` draws from: `base` before `switch`, `end` from it on."""
  return np.asarray(base if step < switch else end, np.float64)


def similarity_mixture(log_w, source, num_sources: int, power: float = 0.0) -> dict:
  """End weights proportional to each source's power-mean importance weight (module docstring).

  Args:
    log_w: float [N] per-row log importance weights (dsir.log_importance_weights).
    source: int [N] each row's source in [0, K).
    num_sources: K.
    power: r in [0, 1]: 1 = the arithmetic mean of w_i, 0 = the geometric mean.

  Returns:
    {'weights': float64 [K] summing to one (0 for sources without rows),
     'log_similarity': float64 [K] log s_g (-inf for sources without rows)}.
  """
  log_w = np.asarray(log_w, np.float64)
  source = np.asarray(source)
  _check('log_w', log_w.ndim == 1 and np.isfinite(log_w).all() and len(log_w) > 0,
         'a finite non-empty vector', log_w.shape)
  _check('source', source.shape == log_w.shape and ((source >= 0) & (source < num_sources)).all(),
         f'ints in [0, {num_sources}) of the shape of log_w', source.shape)
  _check('power', 0.0 <= power <= 1.0, 'in [0, 1]', power)
  log_s = np.full(num_sources, -np.inf)
  for g in range(num_sources):
    lw = log_w[source == g]
    if not len(lw):
      continue
    if power == 0:
      log_s[g] = lw.mean()
    else:
      a = power * lw
      top = a.max()
      log_s[g] = (top + np.log(np.exp(a - top).mean())) / power
  present = np.isfinite(log_s)
  weights = np.zeros(num_sources)
  weights[present] = np.exp(log_s[present] - log_s[present].max())
  return {'weights': weights / weights.sum(), 'log_similarity': log_s}
