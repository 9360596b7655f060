"""Shared plumbing of the data scorers (aum, el2n, forgetting, cartography, confident_learning).

A scorer trains one phase ('score') that ends with one score per training
row. `scorer_pipeline` reports the scores (datarater.report.scoring:
scores_train.npy, histograms, AUROC against the ground-truth flag) and, with
`method.discard_fraction` rho > 0, adds DataRater's top-K filtered retraining:
'filtered' draws ceil(B / (1 - rho)) rows per step, looks their scores up in
the finished score table by `batch['index']`, and trains uniformly on the B
best; 'uniform' trains uniformly for the same steps from the same initial
parameters (paired arms). The scoring phase is charged as the method's extra
cost in the compute gain.

`presentation_method` is the scoring phase of the training-dynamics scorers
(AUM, forgetting, cartography): plain uniform training whose per-example
state is updated with each batch's logits at presentation, i.e. the logits of
the training forward pass, before that step's update.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from datarater.errors import is_number, require
from datarater.methods import uniform
from datarater.report import scoring
from datarater.train.pipeline import Phase, Pipeline
from datarater.train.state import Method, TrainState, weighted_update
from datarater.weighting import scores as score_ops


def oversampled_batch_size(batch_size: int, discard_fraction: float) -> int:
  """ceil(B / (1 - rho)), rounded up to a multiple of the device count.

  Args:
    batch_size: B, the examples kept per step.
    discard_fraction: rho in [0, 1).

  Returns:
    The number of examples drawn per filtered step.
  """
  n = jax.device_count()
  size = math.ceil(batch_size / (1.0 - discard_fraction) - 1e-9)
  return -(-size // n) * n


def require_classification(config, dataset) -> None:
  """ConfigError unless the dataset is a classification task (margins need class logits)."""
  require(dataset.info.task == 'classification', 'data.name',
          f'a classification dataset for method {config.method.name!r}', config.data.name)


def presentation_method(config, task, dataset, init_fn: Callable, update_fn: Callable,
                        labels=None) -> Method:
  """Uniform training that records each batch's logits at presentation.

  Args:
    config: run config (batch_size).
    task: the Task trained (classification).
    dataset: the Dataset (train size).
    init_fn: N -> per-example state (e.g. `dynamics.aum.aum_init`).
    update_fn: (state, index [B], logits [B, C], labels [B]) -> state.
    labels: optional [N] int labels that replace `batch['y']` in training and
      in the update (AUM's threshold samples); default: the batch's labels.

  Returns:
    Method whose state is the per-example state.
  """
  n, b = dataset.train.size, config.batch_size
  labels = None if labels is None else jnp.asarray(labels, jnp.int32)

  def step(train_state, state, batch, key):
    del key
    y = batch['y'] if labels is None else labels[batch['index']]

    def objective(params):
      logits = task.logits(params, batch['x'])
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

    (loss, logits), grads = jax.value_and_grad(objective, has_aux=True)(train_state.params)
    updates, opt_state = task.optimizer.update(grads, train_state.opt_state, train_state.params)
    params = optax.apply_updates(train_state.params, updates)
    state = update_fn(state, batch['index'], jax.lax.stop_gradient(logits), y)
    metrics = {'train/loss': loss,
               'train/batch_accuracy': jnp.mean(jnp.argmax(logits, -1) == y)}
    return TrainState(train_state.step + 1, params, opt_state), state, metrics

  return Method(init=lambda key, train_state: init_fn(n), step=step, train_batch_size=b)


def table_filter(config, task, scores, higher_is_better: bool) -> Method:
  """Top-K filtered training on a fixed score table.

  Args:
    config: run config (batch_size, method.discard_fraction rho in (0, 1)).
    task: the Task trained.
    scores: [N] finite scores, one per training row.
    higher_is_better: keep the highest scores (True) or the lowest (False).

  Returns:
    Method drawing `oversampled_batch_size(B, rho)` rows per step and training
    uniformly on the B best; its state is the score table. Metrics
    'filter/kept_score_mean' and 'filter/dropped_score_mean' (in the score's
    own units).
  """
  b = config.batch_size
  big = oversampled_batch_size(b, config.method.discard_fraction)
  sign = 1.0 if higher_is_better else -1.0

  def step(train_state, table, batch, key):
    del key
    s = table[batch['index']]
    keep = score_ops.top_k_indices(sign * s, b)
    kept = jax.tree.map(lambda a: a[keep], batch)
    train_state, metrics = weighted_update(task, train_state, kept,
                                           lambda l: jnp.full_like(l, 1.0 / b))
    dropped = jnp.ones((big,), bool).at[keep].set(False)
    metrics['filter/kept_score_mean'] = s[keep].mean()
    metrics['filter/dropped_score_mean'] = (jnp.sum(jnp.where(dropped, s, 0.0))
                                            / jnp.maximum(dropped.sum(), 1))
    return train_state, table, metrics

  table = jnp.asarray(scores, jnp.float32)
  return Method(init=lambda key, train_state: table, step=step, train_batch_size=big,
                grad_evals=b)


def scorer_pipeline(config, task, dataset, phase: Phase, score_fn: Callable, what: str,
                    higher_is_corrupted: bool) -> Pipeline:
  """The scoring phase, its report and (rho > 0) the paired filtered retraining.

  Args:
    config: run config (method.name, method.discard_fraction, num_steps).
    task: the run's Task (the filtered and uniform arms train it).
    dataset: the Dataset.
    phase: the scoring Phase; its method's `finalize` is set here.
    score_fn: (ctx, train_state, method_state) -> (scores [N], seen [N] bool,
      summary extras dict); rows not seen are reported as unscored and get
      the mean score in scores_train.npy and in the filter's table.
    what: what a score is, for plot titles.
    higher_is_corrupted: the score's direction (AUROC, and which rows the
      filter keeps: the other end).

  Returns:
    Pipeline: (phase,) alone when rho = 0; else (phase, 'filtered',
    'uniform') with result 'filtered' and baseline 'uniform'.

  Raises:
    ConfigError: for a bad method.discard_fraction.
  """
  rho = config.method.discard_fraction
  require(is_number(rho) and 0.0 <= rho < 1.0, 'method.discard_fraction', 'in [0, 1)', rho)
  table = {}  # filled by the scoring phase's finalize, read when 'filtered' starts

  def finalize(ctx, train_state, method_state):
    scores, seen, extras = score_fn(ctx, train_state, method_state)
    out = scoring.report_scores(ctx, scores, what, seen, higher_is_corrupted)
    table['scores'] = np.where(seen, scores, out['score_fill_value'])
    print(f'[{config.method.name}] score AUROC {out["score_auroc"]}', flush=True)
    return {**out, **extras, 'score_higher_is_corrupted': higher_is_corrupted}

  phase = phase._replace(method=phase.method._replace(finalize=finalize))
  if rho == 0:
    return Pipeline((phase,), result=phase.name)
  filtered = Phase('filtered', lambda results: table_filter(config, task, table['scores'],
                                                            not higher_is_corrupted),
                   config.num_steps)
  baseline = Phase('uniform', uniform.make(config, task, dataset), config.num_steps)
  return Pipeline((phase, filtered, baseline), result='filtered', baseline='uniform',
                  extra_cost=(phase.name,), report=lambda ctx, r: {'discard_fraction': rho})
