"""End-of-training upsampling: a base source mixture, then an end mixture for the last steps.

Blakeney et al. 2024, "Does your data spark joy? Performance gains from domain
upsampling at the end of training" (arXiv 2406.03476; math in
datarater/mixing/upsample.py, config in configs/upsample_end.py): switching to
a mixture that upsamples target-like sources for the last 10-20% of training
was best in its 5-30% ablation.

Each batch example's source is drawn from the mixture in force at that step,
then a row of that source uniformly (`data.sampler.mixture_indices`, as
static_mixture's 'sample' mode; a batch may repeat a row): steps
t < t_s = T - round(f T) draw from `method.base_weights` (() = uniform over
the sources), steps t >= t_s from `method.end_weights`, f =
`method.end_fraction` (default 0.2). A batch is a pure function of (seed,
step), so a resumed run draws the same batches. The loss is the batch mean.

`method.end_weights` = () (default): the end mixture is proportional to each
source's similarity to the meta split, computed once before training from
DSIR's log importance weights of the training rows against the meta split
(datarater/methods/dsir.py, with this config's featurisation fields) as the
power mean of w_i over the source's rows with power `method.similarity_power`
(0 = geometric mean, 1 = arithmetic mean importance weight;
`mixing.upsample.similarity_mixture`). Sources with no training rows get 0.

summary.json: `source_weights` (the end mixture), `source_weights_schedule`
([[from_step, weights], ...], the mixtures in the order they take effect),
`upsample_switch_step` (t_s), `end_weights_from`, and with the DSIR default
`source_log_similarity` (log s_g per source). Metric `upsample/end_mixture`:
the share of a logging window's steps drawn from the end mixture.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from datarater.data import sampler
from datarater.errors import is_number, require
from datarater.methods import dsir
from datarater.mixing import upsample
from datarater.train.state import Method, no_state, weighted_update

DECLARES = dict(family='source', label='end-of-training upsampling', information='meta rows')


def given_weights(config, field: str, given, dataset) -> np.ndarray:
  """A `method.<field>` tuple of K non-negative weights normalized to sum one (() = uniform).

  Raises:
    ConfigError: a wrong length, a negative or non-number entry, a zero sum, or weight on a
      source with no training rows.
  """
  k = dataset.info.num_sources
  values = tuple(given) if isinstance(given, (tuple, list)) else given
  require(isinstance(values, tuple) and all(is_number(v) for v in values), f'method.{field}',
          f'a tuple of {k} numbers (one per source) or ()', given)
  w = np.asarray(values or (1.0,) * k, np.float64)
  require(len(w) == k, f'method.{field}', f'{k} entries (one per source) or ()', given)
  require(np.isfinite(w).all() and not (w < 0).any() and w.sum() > 0, f'method.{field}',
          'finite, non-negative, with a positive sum', given)
  present = np.bincount(dataset.train.source, minlength=k) > 0
  if not values:  # uniform over the sources that have rows
    w = present.astype(np.float64)
  require(not (w[~present] > 0).any(), f'method.{field}',
          'zero on sources with no train examples', given)
  return w / w.sum()


def make(config, task, dataset) -> Method:
  """The end-of-training upsampling Method (module docstring)."""
  m = config.method
  f = m.end_fraction
  require(is_number(f) and 0 <= f <= 1, 'method.end_fraction', 'a number in [0, 1]', f)
  p = m.similarity_power
  require(is_number(p) and 0 <= p <= 1, 'method.similarity_power', 'a number in [0, 1]', p)
  base = given_weights(config, 'base_weights', m.base_weights, dataset)
  report = {}
  if m.end_weights:
    end = given_weights(config, 'end_weights', m.end_weights, dataset)
    report['end_weights_from'] = 'method.end_weights'
  else:
    dsir.check(config, dataset)
    require(dataset.meta.size > 0, 'data.meta_size',
            '> 0 (the default end mixture is the sources\' similarity to the meta split)',
            config.data.get('meta_size'))
    log_w = dsir.log_weights(config, dataset)['log_w']
    sim = upsample.similarity_mixture(log_w, dataset.train.source, dataset.info.num_sources,
                                      float(p))
    end = sim['weights']
    report['end_weights_from'] = (f'DSIR similarity to the meta split (power mean of the '
                                  f'importance weights, power {p})')
    report['source_log_similarity'] = [float(v) if np.isfinite(v) else None
                                       for v in sim['log_similarity']]
  switch = upsample.switch_step(int(config.num_steps), float(f))
  schedule = [[t, w.tolist()] for t, w in ((0, base), (switch, end)) if t < config.num_steps]
  if switch == 0:
    schedule = [[0, end.tolist()]]
  print(f'[upsample_end] base {np.round(base, 3).tolist()} until step {switch}, then end '
        f'{np.round(end, 3).tolist()} ({report["end_weights_from"]})', flush=True)

  train, b, seed = dataset.train, config.batch_size, int(config.seed)
  members = sampler.source_members(train.source, dataset.info.num_sources)  # once

  def sample(step, state):
    del state
    weights = upsample.mixture_at(step, switch, base, end)
    return sampler.mixture_indices(train.source, weights, b, seed, step, members)

  def step(train_state, method_state, batch, key):
    del key
    end_now = (train_state.step >= switch).astype(jnp.float32)
    train_state, metrics = weighted_update(
        task, train_state, batch, lambda losses: jnp.full_like(losses, 1.0 / losses.shape[0]))
    metrics['upsample/end_mixture'] = end_now
    return train_state, method_state, metrics

  def finalize(ctx, train_state, method_state):
    return {'source_weights': end.tolist(), 'source_weights_schedule': schedule,
            'upsample_switch_step': switch, **report}

  return Method(init=no_state, step=step, train_batch_size=b, sample=sample, finalize=finalize)
