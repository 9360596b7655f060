"""Continual pre-training for the Mixing Agent (method.pretrain_sources; issue #21).

The Data Mixing Agent paper's setting: a model pre-trained on a *source field* is continued on
a *target field*, and the mixture of the continued training must balance both (learn the
target field without forgetting the source field). Here the fields are sets of the
dataset's sources: `method.pretrain_sources` is the source field; every other source with
training rows is the target field. With it set, `mixing_agent` runs

  pretrain        the task's model, method.pretrain_steps steps of uniform batches over the
                  source field's training rows (config.optimizer, its schedule over those
                  steps): the given pre-trained model every arm continues from. Not charged
                  to the method (it is the starting point of every arm, as a released
                  checkpoint would be);
  proxy_pretrain  the proxy model pre-trained the same way (the agent's proxies continue from
                  it, so they read like the target run); charged to the method;
  agent           RL on proxy trajectories, each continuing the pre-trained proxy;
  train           the result: the pre-trained model continued for config.num_steps steps on
                  the mixture the policy decides (fresh optimizer state);
  target_only     the same start, continued on the target field's rows only (the forgetting
                  reference);
  all_sources     the same start, continued on uniform batches of every training row (the
                  paired baseline).

Reward and the policy's mean loss become field-balanced (`field_weights`): the mean over the
two fields of each field's row-count-weighted mean meta loss, so a field with fewer meta rows
counts as much as the other. summary.json's `continual` reports, for each arm and for the
pre-trained model, each field's test and validation loss and their mean.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from datarater.errors import require
from datarater.methods import uniform
from datarater.train.pipeline import Phase
from datarater.train.task import make_optimizer

PRETRAIN, PROXY_PRETRAIN = 'pretrain', 'proxy_pretrain'
ARMS = ('train', 'target_only', 'all_sources')  # continued from PRETRAIN; 'train' is the agent's
FIELDS = ('source_field', 'target_field')
REWARD = ('minus the mean over the source and target fields of each field\'s mean meta-split '
          'loss of the proxy after its last step')


def fields(config, present, meta_source) -> np.ndarray | None:
  """int [m] field of each present source (0: source field, 1: target field), or None when
  method.pretrain_sources is empty (no continual pre-training).

  Args:
    config: the run config.
    present: int [m] ids of the sources with training rows.
    meta_source: int [M] the meta split's source ids (each field needs meta rows: the
      reward averages the two fields' meta losses).

  Raises:
    ConfigError: naming method.pretrain_sources (not a tuple of distinct ids of sources with
      training rows and meta rows, or leaving no such source for the target field) or
      method.pretrain_steps (not an int >= 1 with pretrain_sources, not 0 without).
  """
  m = config.method
  given, steps = m.pretrain_sources, m.pretrain_steps
  whole = lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)  # noqa: E731
  require(isinstance(given, (tuple, list)) and all(whole(k) for k in given)
          and len(set(given)) == len(given), 'method.pretrain_sources',
          'a tuple of distinct source ids (() = no continual pre-training)', given)
  if not given:
    require(whole(steps) and steps == 0, 'method.pretrain_steps',
            '0 without method.pretrain_sources', steps)
    return None
  require(whole(steps) and steps >= 1, 'method.pretrain_steps',
          'an int >= 1 with method.pretrain_sources', steps)
  field_of = np.where(np.isin(present, np.asarray(given, np.int64)), 0, 1)
  with_meta = np.isin(present, meta_source)
  require(set(int(k) for k in given) <= set(present.tolist())
          and all(with_meta[field_of == f].any() for f in (0, 1)), 'method.pretrain_sources',
          f'ids of sources with training rows ({present.tolist()}), leaving at least one for '
          'the target field, each field with meta rows', tuple(given))
  return field_of


def field_weights(counts, field_of) -> np.ndarray:
  """[m] weights summing to one with sum_j w_j L_j = the mean over the fields of each field's
  `counts`-weighted mean of L: w_j = c_j / (sum of c over j's field) / (number of fields).
  A field whose counts are all zero weighs its sources equally."""
  counts = np.asarray(counts, np.float64)
  field_of = np.asarray(field_of)
  out = np.zeros(len(counts))
  ids = np.unique(field_of)
  for f in ids:
    members = field_of == f
    c = counts[members] if counts[members].sum() > 0 else np.ones(members.sum())
    out[members] = c / c.sum() / len(ids)
  return out


def _rows_of(dataset, sources) -> np.ndarray:
  return np.flatnonzero(np.isin(dataset.train.source, sources))


def pretrain_phases(config, task, proxy, dataset, present, field_of, with_proxy: bool) -> tuple:
  """The PRETRAIN phase (the task's model) and, with `with_proxy`, the PROXY_PRETRAIN phase
  (the proxy Task `proxy`, its own initial parameters): uniform batches of the source field."""
  steps = int(config.method.pretrain_steps)
  rows = _rows_of(dataset, present[field_of == 0])
  out = []
  models = ((PRETRAIN, task, 'model'), (PROXY_PRETRAIN, proxy, 'proxy'))
  for name, t, init in models[:2 if with_proxy else 1]:
    t = dataclasses.replace(t, optimizer=make_optimizer(config.optimizer, steps))
    out.append(Phase(name, uniform.on_rows(config, t, dataset, lambda: rows), steps, init=init,
                     task=t))
  return tuple(out)


def arm_phases(config, task, dataset, present, field_of) -> tuple:
  """The reference arms continued from PRETRAIN: target_only and all_sources."""
  rows = _rows_of(dataset, present[field_of == 1])
  return (Phase('target_only', uniform.on_rows(config, task, dataset, lambda: rows),
                config.num_steps, start_from=PRETRAIN),
          Phase('all_sources', uniform.make(config, task, dataset), config.num_steps,
                start_from=PRETRAIN))


def report(dataset, present, field_of):
  """(ctx, results) -> {'continual': {...}}: each field's test and validation loss (the
  row-count-weighted mean of `<split>/source_loss` over its sources) and the two fields' mean,
  for the pre-trained model and every arm."""
  def field_losses(source_loss, split):
    if source_loss is None:
      return None
    counts = np.bincount(split.source[split.source >= 0], minlength=dataset.info.num_sources)
    out = {}
    for f, name in enumerate(FIELDS):
      k = present[field_of == f]
      c = counts[k].astype(np.float64)
      out[name] = float(np.dot(c, np.asarray(source_loss)[k]) / c.sum()) if c.sum() else None
    values = [v for v in out.values() if v is not None]
    out['mean'] = float(np.mean(values)) if len(values) == len(FIELDS) else None
    return out

  def build(ctx, results):
    del ctx
    out = {'source_field': present[field_of == 0].tolist(),
           'target_field': present[field_of == 1].tolist()}
    for phase in (PRETRAIN,) + ARMS:
      e = results[phase].eval
      out[phase] = {'test': field_losses(e.get('test/source_loss'), dataset.test),
                    'valid': field_losses(e.get('valid/source_loss'), dataset.valid)}
    return {'continual': out}
  return build
