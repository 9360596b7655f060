"""Train state and the method interface every weighting method implements.

A method is a `Method` of pure functions, in the spirit of optax's
`init`/`update` pairs:

  init(key, train_state) -> method_state           (a pytree of arrays)
  step(train_state, method_state, batch, key) -> (train_state, method_state, metrics)

`batch` holds `train_batch_size` training examples (`x`, `y`, `source`,
`index`) and, when `meta_batch_size > 0`, a `meta` sub-batch from the meta
split. The loop owns data, logging, checkpoints, evaluation and sharding.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax


class TrainState(NamedTuple):
  step: jax.Array
  params: Any
  opt_state: Any


def init_train_state(task, key, params=None) -> TrainState:
  """Fresh params (or the given `params`) and a fresh optimizer state, at step 0 (one
  compiled program, not op-by-op)."""
  @jax.jit
  def init(key, params):
    params = task.init_params(key) if params is None else params
    return TrainState(jnp.zeros((), jnp.int32), params, task.optimizer.init(params))
  return init(key, params)


class Method(NamedTuple):
  """A weighting method's pure functions and its batch needs.

  Attributes:
    init: (key, train_state) -> method_state.
    step: (train_state, method_state, batch, key) -> (train_state, method_state, metrics).
    train_batch_size: training examples fetched per step.
    meta_batch_size: meta-split examples fetched per step (0: none).
    sample: optional host-side (step, method_state) -> indices into `split`;
      default: epoch-wise reshuffled passes, a pure function of (seed, step).
    finalize: optional (ctx, train_state, method_state) -> dict merged into
      summary.json (and may write extra files such as scores_train.npy).
    grad_evals: per-example gradient evaluations per step (compute ledger).
    adjust_ledger: optional (ledger, method_state) -> ledger at the end of the
      phase (e.g. InfoBatch counts only the steps that computed a gradient).
    split: the dataset split the training examples of a batch come from:
      'train' (default) or 'meta' (a model trained on the meta rows, e.g.
      the meta_only baseline); `batch['index']` indexes that split.
    probe: optional (ctx, method_state) -> dict of metrics, for phases that
      train no model (the loop evaluates nothing there): called every
      config.eval_every steps and at the last step, its metrics logged with
      the step's row (e.g. DataRater's rater AUROC during meta-training).
  """
  init: Callable
  step: Callable
  train_batch_size: int
  meta_batch_size: int = 0
  sample: Optional[Callable] = None
  finalize: Optional[Callable] = None
  grad_evals: Optional[int] = None
  adjust_ledger: Optional[Callable] = None
  split: str = 'train'
  probe: Optional[Callable] = None


def no_state(key, train_state):
  del key, train_state
  return ()


def train_part(batch: dict) -> dict:
  """The training examples of a loop batch (drops the `meta` sub-batch)."""
  return {k: v for k, v in batch.items() if k != 'meta'}


def effective_sample_size(weights: jax.Array) -> jax.Array:
  """(sum w)^2 / sum w^2; 0 when every weight is 0 (no NaN)."""
  sq = jnp.sum(jnp.square(weights))
  return jnp.where(sq > 0, jnp.square(jnp.sum(weights)) / jnp.where(sq > 0, sq, 1.0), 0.0)


def weighted_step(task, train_state: TrainState, batch, weights_fn):
  """One optimizer step on sum_i w_i * loss_i, with (w, aux) = weights_fn(stop_grad(losses)).

  Args:
    task: the Task.
    train_state: current TrainState.
    batch: training batch dict.
    weights_fn: losses [B] -> (weights [B], aux pytree), called on stop-gradient
      losses (so neither carries gradients; e.g. aux = group DRO's updated q).

  Returns:
    (new_train_state, metrics, losses [B], weights [B], aux). Metrics: weighted
    and mean loss, max weight, effective sample size, support size #{w_i > 0}.
  """
  def objective(params):
    losses = task.per_example_loss(params, batch)
    weights, aux = weights_fn(jax.lax.stop_gradient(losses))
    return jnp.sum(weights * losses), (losses, weights, aux)

  (loss, (losses, weights, aux)), grads = jax.value_and_grad(objective, has_aux=True)(
      train_state.params)
  updates, opt_state = task.optimizer.update(grads, train_state.opt_state, train_state.params)
  params = optax.apply_updates(train_state.params, updates)
  metrics = {'train/weighted_loss': loss, 'train/loss': losses.mean(),
             'train/max_weight': weights.max(),
             'train/ess': effective_sample_size(weights),
             'train/weight_support': jnp.sum(weights > 0).astype(jnp.float32)}
  return TrainState(train_state.step + 1, params, opt_state), metrics, losses, weights, aux


def weighted_update(task, train_state: TrainState, batch, weights_fn):
  """`weighted_step` for a weights_fn: losses [B] -> weights [B]; returns (state, metrics)."""
  state, metrics, *_ = weighted_step(task, train_state, batch, lambda l: (weights_fn(l), None))
  return state, metrics
