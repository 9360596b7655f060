"""STORM as a training-loop method ('storm'; config: configs/storm.py).

Math and the paper's open choices: datarater/meta/storm.py. No meta split is
used: each step draws B training examples (the same batches as the uniform
baseline, a pure function of (seed, step)) and B validation examples from
the training set on a stream of their own (`sample`). Per step: rescaler
features of the training batch (history from the method state's tables),
weights w = rescaler_weights(omega), one model-optimizer step on
(1/B) sum_i w_i l_i, and one rescaler-optimizer (Adam) step on the gradient
of the rescaled meta loss.

Scores: each training example's latest rescaler output sigmoid(Omega(F)) (the
weight before the batch normalisation, so scores of different batches are
comparable) goes to scores_train.npy; low = corrupted.

The run's result is the rescaled model (the method, STORM's on-the-fly loss
rescaling; its paired baseline is a uniform run of the same seed: same initial
parameters and training batches). With config.method.filter (the 'storm_filter'
variant, row 'STORM filter'), `make` returns a Pipeline: 'storm', then 'filtered'
(the shared filter of datarater/methods/_filter.py on the score table; default
`method.filter_mode='dataset'`: a fresh model trained for num_steps on the
ceil((1 - rho) N) best-scored examples only), then 'uniform'; all three start
from the same initial parameters.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from datarater.data import sampler
from datarater.errors import is_number, require
from datarater.meta import storm, unroll
from datarater.methods import _filter
from datarater.report import scoring
from datarater.train.pipeline import Phase, Pipeline
from datarater.train.state import Method, train_part, weighted_update
from datarater.weighting import tables
from datarater.weighting.normalize import mean_one

DECLARES = dict(family='meta', label='STORM', scores=True,
                variants={'storm': {}, 'storm_filter': {'method.filter': True}},
                variant_labels={'storm_filter': 'STORM filter'})

# Data stream of the validation batches (independent of the training order).
VALIDATION_STREAM = zlib.crc32(b'storm/validation')


class StormState(NamedTuple):
  """STORM's method state (replicated).

  Attributes:
    omega: rescaler parameters.
    opt_state: the rescaler optimizer's state.
    loss: ExampleTable of each example's latest training loss (for the changes).
    confidence: ExampleTable of the latest confidence p_y.
    score: ExampleTable of the latest rescaler output sigmoid(Omega(F)).
  """
  omega: Any
  opt_state: Any
  loss: tables.ExampleTable
  confidence: tables.ExampleTable
  score: tables.ExampleTable


def _check(config) -> None:
  m = config.method
  require(isinstance(m.hidden, int) and m.hidden > 0, 'method.hidden', 'a positive int', m.hidden)
  for name in ('learning_rate', 'lookahead_lr'):
    require(is_number(m[name]) and m[name] > 0, f'method.{name}', '> 0', m[name])
  require(m.mode in unroll.MODES, 'method.mode', f'one of {unroll.MODES}', m.mode)
  _filter.check(config)
  require(isinstance(m.filter, bool), 'method.filter', 'True or False', m.filter)
  n = jax.device_count()
  require(config.batch_size % n == 0, 'batch_size', f'divisible by the {n} devices',
          config.batch_size)


def _history(state: StormState, index: jax.Array):
  """(previous loss, previous confidence, seen) of the examples at `index`."""
  return state.loss.value[index], state.confidence.value[index], state.loss.count[index] > 0


def make_storm(config, task, dataset) -> Method:
  """The STORM phase: the model trains on rescaled losses while the rescaler meta-learns.

  Args:
    config: run config (`config.method` fields: configs/storm.py).
    task: the Task being trained.
    dataset: the Dataset (its train size sizes the tables).

  Returns:
    Method drawing 2B training examples per step (B train + B validation);
    `finalize` writes scores_train.npy.
  """
  m = config.method
  b, n, seed = config.batch_size, dataset.train.size, int(config.seed)
  rescaler_opt = optax.adam(m.learning_rate)
  meta_grad = functools.partial(storm.meta_loss_and_grad, logits_fn=task.logits,
                                lookahead_lr=m.lookahead_lr, mode=m.mode)

  def init(key, train_state):
    del train_state
    omega = storm.rescaler_init(key, m.hidden)
    return StormState(omega, rescaler_opt.init(omega), tables.table_init(n),
                      tables.table_init(n), tables.table_init(n))

  def sample(step, state):
    del state
    return np.concatenate([sampler.sequential_indices(n, b, seed, step),
                           sampler.sequential_indices(n, b, seed, step, VALIDATION_STREAM)])

  def step(train_state, state, batch, key):
    del key
    both = train_part(batch)
    train = jax.tree.map(lambda a: a[:b], both)
    val = jax.tree.map(lambda a: a[b:], both)
    logits = jax.lax.stop_gradient(task.logits(train_state.params, train['x']))
    obs = storm.features(logits, train['y'], *_history(state, train['index']))
    s = storm.rescaler_scores(state.omega, obs.features)
    w = mean_one(s)
    meta_loss, grad, _ = meta_grad(state.omega, train_state.params, train, obs.features,
                                         val, _history(state, val['index']))
    train_state, metrics = weighted_update(task, train_state, train, lambda losses: w / b)
    updates, opt_state = rescaler_opt.update(grad, state.opt_state, state.omega)
    idx = train['index']
    state = StormState(optax.apply_updates(state.omega, updates), opt_state,
                       tables.table_record(state.loss, idx, obs.loss),
                       tables.table_record(state.confidence, idx, obs.confidence),
                       tables.table_record(state.score, idx, s))
    metrics.update({'storm/meta_loss': meta_loss, 'storm/grad_norm': optax.global_norm(grad),
                    'storm/score_mean': s.mean(), 'storm/weight_max': w.max()})
    return train_state, state, metrics

  def finalize(ctx, train_state, state):
    del train_state
    out = scoring.report_table(ctx, state.score, 'STORM rescaler output')
    print(f'[storm] score AUROC (low score = corrupted) {out["score_auroc"]}', flush=True)
    return out

  # Compute ledger: look-ahead gradients (B), the backward through them (B),
  # the validation batch (B) and the model update (B).
  return Method(init=init, step=step, train_batch_size=2 * b, sample=sample, finalize=finalize,
                grad_evals=4 * b)


def filter_table(storm_result) -> np.ndarray:
  """The filter's score table: STORM's latest scores, unscored rows at the mean score.

  Args:
    storm_result: the 'storm' phase's PhaseResult.

  Returns:
    float32 [N], the values of scores_train.npy's training rows.
  """
  score = jax.device_get(storm_result.method_state.score)
  return tables.fill_unscored(score.value, score.count > 0)[0].astype(np.float32)


def make(config, task, dataset) -> Method | Pipeline:
  """STORM (config fields: configs/storm.py), optionally with filtered retraining.

  Args:
    config: run config.
    task: the Task being trained.
    dataset: the Dataset.

  Returns:
    The STORM Method, or with config.method.filter the Pipeline 'storm' ->
    'filtered' -> 'uniform' (result 'filtered', baseline 'uniform').

  Raises:
    ConfigError: one line naming the bad config field.
  """
  _check(config)
  method = make_storm(config, task, dataset)
  if not config.method.filter:
    return method
  return _filter.filter_pipeline(config, task, dataset, (Phase('storm', method, config.num_steps),),
                                 _filter.lookup, lambda r: filter_table(r['storm']))
