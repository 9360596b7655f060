"""Filtered retraining: the one filter of DataRater, STORM, score_filter and every data scorer.

One meaning of `method.discard_fraction` rho in [0, 1): the fraction of the
candidate examples that is discarded (the lowest-scored ones); the filtered
model trains uniformly on the rest, for `config.num_steps` steps of batch B.
`'auto'` (the default of every filtering method) chooses rho without the test
set and without ground truth (`filter_pipeline`, `auto_choice`): the score
distribution of the training rows gives an estimated fraction f of low-scored
rows (`weighting.scores.mixture_discard_fraction`: the weight of the low
component of a two-Gaussian fit); two filtered arms train, 'filtered' aiming
to drop f and 'filtered_half' f / 2 (`AUTO_ARMS`; with filter_mode='per_batch'
each raised by `per_batch_fraction` so that nearly every batch, not only the
average one, drops its share); after training, the arm with the best final
validation accuracy among them and the paired uniform arm is the run's result
(ties: the one that discards less, so uniform unless a filtered arm beats it).
summary.json records the estimate, each arm's fraction and validation
accuracy, the choice and why (`discard_fraction_auto`); every arm is charged
to the method's compute (all were needed to decide).
Scores follow the direction of scores_train.npy: higher = more worth keeping.
Two options, `method.filter_mode`:

  'per_batch'  DataRater's online filter (Calian et al. 2025): every step
               draws ceil(B / (1 - rho)) candidates (`oversampled_batch_size`),
               scores them and trains on the top B. A candidate competes only
               with its batch, and the scores may change as the model trains
               (a live rater).
  'dataset'    a one-off prune: score every training row once (when the phase
               starts, with the initial parameters of the model to be
               trained), drop the lowest-scored rho fraction of the rows, keep
               the ceil((1 - rho) N) best (`weighting.scores.best_rows`; ties:
               lower row first) and draw batches of B uniformly from them
               (reshuffled passes, a pure function of (seed, step)). The
               one-off scoring pass is not in the compute ledger (free for a
               score table; N forward passes for a live rater).

`make_filter(config, task, dataset, score_fn, state)` builds either option
from a score function `score_fn(train_state, state, batch) -> [b] scores`:
a fixed table looked up by `batch['index']` (`lookup`: the data scorers,
STORM, score_filter) and DataRater's live rater are two score functions.
`filter_pipeline` appends the 'filtered' phase and its paired 'uniform' arm
(same initial parameters, same steps) to a method's own phases.

Shared plumbing of the data scorers (aum, el2n, forgetting, cartography,
confident_learning) lives here too: `scorer_pipeline` reports a scoring
phase's scores (datarater.report.scoring) and, with rho > 0, adds the filtered
retraining on them; `presentation_method` is the scoring phase of the
training-dynamics scorers (AUM, forgetting, cartography): plain uniform
training whose per-example state is updated with each batch's logits at
presentation, i.e. the logits of the training forward pass, before that
step's update.
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
from datarater.train import sharding
from datarater.train.context import Context
from datarater.train.evaluation import map_split
from datarater.train.pipeline import Phase, Pipeline, eval_rows
from datarater.train.state import Method, TrainState, weighted_update
from datarater.weighting import scores as score_ops
from datarater.weighting import tables


def check(config, allow_zero: bool = True) -> None:
  """ConfigError (one line naming the field) for a bad discard_fraction or filter_mode.

  Args:
    config: run config (method.discard_fraction, method.filter_mode).
    allow_zero: whether rho = 0 (no filtered retraining) is allowed.
  """
  rho, mode = config.method.discard_fraction, config.method.get('filter_mode')
  require(rho == AUTO or (is_number(rho) and (rho >= 0 if allow_zero else rho > 0) and rho < 1),
          'method.discard_fraction', f"{AUTO!r} or a number in {'[0, 1)' if allow_zero else '(0, 1)'}",
          rho)
  require(mode in MODES, 'method.filter_mode', f'one of {MODES}', mode)


AUTO = 'auto'  # method.discard_fraction chosen on the score distribution and validation split
# auto's filtered arms: (phase, share of the estimated fraction of low-scored rows it drops).
# Two shares because the estimate is only as good as the scores: on digits at 40% noise
# DataRater's rater estimated 0.44 and 0.40 (seeds 0, 1), and its filtered models were best
# at discard 0.25 (seed 0: 0.844 vs 0.802 at 0.5) and at 0.5 (seed 1: 0.866 vs 0.852).
AUTO_ARMS = (('filtered', 1.0), ('filtered_half', 0.5))


# Scorers whose filtered phase, in runs recorded before every score became
# "higher = keep", checkpointed a score table of raw statistics (higher = corrupted).
RAW_TABLE_FILTERS = ('el2n', 'forgetting')


def recorded_mode(method: dict) -> str:
  """The filter_mode that a method config recorded before the field existed filtered with.

  Older versions filtered per batch everywhere except STORM, which pruned the
  dataset; `datarater.run.changed_fields` fills recorded configs with this,
  so runs made then are still recognised as the same run.

  Args:
    method: a recorded `config.method` dict.

  Returns:
    'dataset' for STORM, else 'per_batch'.
  """
  return 'dataset' if method.get('name') == 'storm' else 'per_batch'


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


def kept_count(num_rows: int, discard_fraction: float) -> int:
  """ceil((1 - rho) N): the rows a dataset-level prune keeps."""
  return int(np.ceil((1.0 - discard_fraction) * num_rows - 1e-9))


def lookup(train_state, table, batch):
  """The score function of a fixed per-row score table: table[batch['index']]."""
  del train_state
  return table[batch['index']]


def score_split(score_fn: Callable, train_state, state, config, split) -> np.ndarray:
  """score_fn over every row of `split`: float64 [N] on the host, by the loop's own
  `map_split` (sharded over the data axis; each process gathers its rows)."""
  fn = jax.jit(score_fn)
  ctx = Context(config, None, None, sharding.make_mesh())
  return map_split(lambda batch: fn(train_state, state, batch), split, ctx,
                   config.eval_batch_size).astype(np.float64)


def per_batch(config, task, dataset, score_fn: Callable, state, rho: float) -> Method:
  """filter_mode='per_batch' of `make_filter`: top B of ceil(B / (1 - rho)) candidates per step."""
  del dataset
  b = config.batch_size
  big = oversampled_batch_size(b, rho)

  def step(train_state, state, batch, key):
    del key
    s = score_fn(train_state, state, batch)
    keep = score_ops.top_k_indices(s, b)
    kept = jax.tree.map(lambda a: a[keep], batch)
    new_state, metrics = weighted_update(task, train_state, kept,
                                         lambda l: jnp.full_like(l, 1.0 / b))
    dropped = jnp.ones((big,), bool).at[keep].set(False)
    metrics['filter/kept_score_mean'] = s[keep].mean()
    metrics['filter/dropped_score_mean'] = (jnp.sum(jnp.where(dropped, s, 0.0))
                                            / jnp.maximum(dropped.sum(), 1))
    metrics['filter/all_score_mean'] = s.mean()
    return new_state, state, metrics

  return Method(init=lambda key, train_state: state, step=step, train_batch_size=big,
                grad_evals=b)


def dataset_prune(config, task, dataset, score_fn: Callable, state, rho: float) -> Method:
  """filter_mode='dataset' of `make_filter`: uniform training on the best-scored rows only."""
  n = dataset.train.size
  kept = {}  # filled by init (which also runs before a resumed phase restores its state)

  def init(key, train_state):
    scores = score_split(score_fn, train_state, state, config, dataset.train)
    kept['rows'] = score_ops.best_rows(scores, kept_count(n, rho))
    print(f'[filter] dataset-level prune keeps {len(kept["rows"])} of {n} training rows',
          flush=True)
    return ()

  return uniform.on_rows(config, task, dataset, lambda: kept['rows'], init)


# method.filter_mode -> the function building that filter.
FILTERS = {'per_batch': per_batch, 'dataset': dataset_prune}
MODES = tuple(FILTERS)


def make_filter(config, task, dataset, score_fn: Callable, state, rho: float | None = None
                ) -> Method:
  """The filtered-training Method of `config.method.filter_mode` (module docstring).

  Args:
    config: run config (batch_size, seed, eval_batch_size,
      method.discard_fraction, method.filter_mode).
    task: the Task trained.
    dataset: the Dataset (its train split).
    score_fn: (train_state, state, batch) -> [b] scores, higher = keep;
      jit-able (e.g. `lookup`, or a rater network applied to the batch).
    state: what score_fn reads (a score table, a rater's parameters); the
      per-batch Method's state, never updated.
    rho: the discard fraction in [0, 1) (default: config.method.discard_fraction,
      a number).

  Returns:
    'per_batch': a Method drawing `oversampled_batch_size(B, rho)` rows per
    step, training uniformly on the B best-scored; metrics
    'filter/kept_score_mean', 'filter/dropped_score_mean',
    'filter/all_score_mean' (in the score's units). 'dataset': uniform
    training whose batches come from the ceil((1 - rho) N) best-scored rows.
  """
  rho = config.method.discard_fraction if rho is None else rho
  return FILTERS[config.method.filter_mode](config, task, dataset, score_fn, state, rho)


def filter_pipeline(config, task, dataset, phases: tuple, score_fn: Callable,
                    state_fn: Callable, baseline: bool = True, report: dict | None = None,
                    train_scores: Callable | None = None) -> Pipeline:
  """`phases`, then 'filtered' (result) and, with `baseline`, 'uniform' (its paired arm).

  Args:
    config: run config (num_steps, method.discard_fraction, method.filter_mode).
    task: the Task the filtered and uniform arms train.
    dataset: the Dataset.
    phases: the method's own phases (their cost is charged to the method).
    score_fn: the filter's score function (`make_filter`).
    state_fn: {phase name: PhaseResult} -> the state score_fn reads (called
      when 'filtered' starts).
    baseline: add the 'uniform' arm (config.num_steps, same initial parameters).
    report: extras for summary.json, besides discard_fraction and filter_mode.
    train_scores: {phase name: PhaseResult} -> [N] scores of the training rows
      (higher = keep), the score distribution discard_fraction='auto' reads;
      default: state_fn (a score table).

  Returns:
    The Pipeline (result 'filtered', baseline 'uniform' or None; with 'auto',
    the result is chosen on validation, `auto_choice`).

  Raises:
    ConfigError: discard_fraction='auto' without the uniform arm or without a
      validation split (config.data.valid_size=0).
  """
  m, steps = config.method, config.num_steps
  auto = m.discard_fraction == AUTO
  estimate, rhos = {}, {}  # auto: the score distribution's estimate and each arm's rho

  def arm(name, share):
    def filtered_method(results):
      rho = m.discard_fraction
      if auto:
        if not estimate:
          estimate.update(score_ops.mixture_discard_fraction(
              (train_scores or state_fn)(results)))
          print(f'[filter] discard_fraction=auto: estimated fraction '
                f'{estimate["estimated_fraction"]} of low-scored rows (separation '
                f'{estimate["separation"]:.2f})', flush=True)
        rho = rhos[name] = candidate_fraction(estimate['estimated_fraction'] * share, config)
        print(f'[filter] discard_fraction=auto: arm {name!r} discards {rho}', flush=True)
      return make_filter(config, task, dataset, score_fn, state_fn(results), rho)
    return filtered_method

  filtered = tuple(Phase(name, arm(name, share), steps)
                   for name, share in (AUTO_ARMS if auto else (('filtered', 1.0),)))
  arms = filtered + ((Phase('uniform', uniform.make(config, task, dataset), steps),)
                     if baseline else ())
  extras = {'filter_mode': m.filter_mode, **(report or {})}
  if not auto:
    extras['discard_fraction'] = m.discard_fraction
    choose = None
  else:
    require(baseline, 'method.baseline', "True for method.discard_fraction='auto' (a filtered "
            'model is kept only if it beats the uniform arm on validation)', baseline)
    require(dataset.valid.size > 0, 'data.valid_size',
            "> 0 for method.discard_fraction='auto' (it is chosen on the validation split)",
            config.data.get('valid_size', 0))
    choose = lambda results, rows: auto_choice(estimate, rhos, rows)  # noqa: E731
  return Pipeline(tuple(phases) + arms, result='filtered',
                  baseline='uniform' if baseline else None,
                  extra_cost=tuple(p.name for p in phases), report=lambda ctx, r: extras,
                  choose=choose)


def candidate_fraction(fraction: float, config) -> float:
  """The discard fraction of an auto arm that aims to drop `fraction` of the rows: itself
  (rounded to 0.01) in filter_mode 'dataset'; in 'per_batch', `per_batch_fraction`."""
  if config.method.filter_mode == 'per_batch':
    return per_batch_fraction(fraction, config.batch_size)
  return round(min(fraction, score_ops.MAX_DISCARD), 2)


def per_batch_fraction(fraction: float, batch_size: int, z: float = 2.0) -> float:
  """The per-batch discard fraction that drops an estimated `fraction` of low-scored rows
  from (nearly) every batch, not only on average.

  The per-batch filter keeps the top B of m = ceil(B / (1 - rho)) candidates; the share
  of low-scored rows in a batch varies around `fraction` with standard deviation
  sqrt(f (1 - f) / m). Returns the smallest rho (on a 0.01 grid, at most
  weighting.scores.MAX_DISCARD) with rho >= f + z sqrt(f (1 - f) / m(rho)), i.e. rho
  covers the batch's share z standard deviations above the mean (z = 2: about 98% of the
  batches); 0 stays 0.

  Args:
    fraction: f, the estimated fraction of low-scored rows.
    batch_size: B, the rows kept per step.
    z: standard deviations of margin.
  """
  if fraction <= 0:
    return 0.0
  for rho in np.arange(round(fraction, 2), score_ops.MAX_DISCARD + 1e-9, 0.01):
    m = oversampled_batch_size(batch_size, rho)
    if rho >= fraction + z * math.sqrt(fraction * (1 - fraction) / m):
      return round(float(rho), 2)
  return score_ops.MAX_DISCARD


def auto_choice(estimate: dict, rhos: dict, rows) -> tuple:
  """discard_fraction='auto', after training: the arm with the best final validation
  accuracy among the uniform arm and the filtered arms (AUTO_ARMS); ties go to the arm
  that discards less, so a filtered model is kept only if it beats uniform strictly.

  The final evaluations are compared because the run reports the final models: an arm's
  best validation accuracy is no guide to its last step (the uniform arm peaks early and
  then memorises noisy labels; measured on digits at 40% noise, comparing best accuracies
  kept a memorised uniform arm where the filtered model was 14 points better on test).

  Args:
    estimate: `weighting.scores.mixture_discard_fraction`'s output for the train scores.
    rhos: {filtered arm: its discard fraction}.
    rows: metrics.jsonl rows of the run (the filtered arms and 'uniform').

  Returns:
    (result phase, {'discard_fraction': the fraction of the result, 'discard_fraction_auto':
    the estimate, each arm's fraction and final validation accuracy, the choice and why}).
  """
  arms = ['uniform', *sorted(rhos, key=rhos.get)]  # least discard first
  acc = {p: eval_rows(rows, p)[-1]['valid/accuracy'] for p in arms}
  result = max(arms, key=acc.get)  # the first of equals: the one that discards least
  rho = rhos.get(result, 0.0)
  seen = ', '.join(f'{p} {acc[p]:.4f}' for p in arms)
  why = (f'{result} (discard {rho}) has the best final validation accuracy ({seen}); ties go '
         'to the arm that discards less')
  print(f'[filter] discard_fraction=auto: result {result!r}: {why}', flush=True)
  return result, {'discard_fraction': rho, 'discard_fraction_auto': {
      **estimate, 'arms': dict(rhos), 'valid_accuracy': acc, 'chosen': rho,
      'result_phase': result, 'why': why}}


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


def scorer_pipeline(config, task, dataset, phase: Phase, score_fn: Callable, what: str,
                    raw: str | None = None) -> Pipeline:
  """The scoring phase, its report and (rho > 0) the paired filtered retraining.

  Args:
    config: run config (method.name, method.discard_fraction,
      method.filter_mode, num_steps).
    task: the run's Task (the filtered and uniform arms train it).
    dataset: the Dataset.
    phase: the scoring Phase; its method's `finalize` is set here.
    score_fn: (ctx, train_state, method_state) -> (scores [N], seen [N] bool,
      summary extras dict); scores higher = more worth keeping. Rows not seen
      are reported as unscored and get the mean score
      (`weighting.tables.fill_unscored`) in scores_train.npy and in the
      filter's table.
    what: what a score is, for plot titles.
    raw: for a loss-like statistic that score_fn negates, its name
      (raw_scores_train.npy; `report.scoring.report_scores`).

  Returns:
    Pipeline: (phase,) alone when rho = 0; else (rho > 0 or 'auto') (phase,
    'filtered', 'uniform') with result 'filtered' (or, with 'auto', the arm
    chosen on validation) and baseline 'uniform'.

  Raises:
    ConfigError: for a bad method.discard_fraction or method.filter_mode.
  """
  check(config)
  table = {}  # filled by the scoring phase's finalize, read when 'filtered' starts

  def finalize(ctx, train_state, method_state):
    scores, seen, extras = score_fn(ctx, train_state, method_state)
    out = scoring.report_scores(ctx, scores, what, seen, raw=raw)
    table['scores'] = tables.fill_unscored(scores, seen)[0].astype(np.float32)
    print(f'[{config.method.name}] score AUROC {out["score_auroc"]}', flush=True)
    return {**out, **extras}

  phase = phase._replace(method=phase.method._replace(finalize=finalize))
  if config.method.discard_fraction == 0:  # 'auto' filters (its candidate may be 0)
    return Pipeline((phase,), result=phase.name)
  return filter_pipeline(config, task, dataset, (phase,), lookup, lambda r: table['scores'])
