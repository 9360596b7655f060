"""Meta-Weight-Net as a training-loop method ('mwn'; config: configs/mwn.py).

Math: datarater/meta/mwn.py. The weight net and its optimizer state are the
method state, with a table of each training example's latest weight V(L_i),
written to `scores_train.npy` at the end.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from datarater.meta.mwn import WeightFn, WeightNet, init_weight_net, mwn_step
from datarater.methods import l2rw
from datarater.train import plots, scoring
from datarater.train.loop import map_split
from datarater.train.state import Method, train_part, weighted_update
from datarater.train.task import make_schedule

PyTree = Any



class MWNState(NamedTuple):
  """Meta-Weight-Net method state (replicated).

  Attributes:
    wnet_params: weight-net variables {'params': ...} (Theta).
    wnet_opt_state: optax state of the weight-net optimizer.
    table: `scoring.ScoreTable` of the latest weight V(L_i; Theta) of every
      training example.
  """
  wnet_params: PyTree
  wnet_opt_state: optax.OptState
  table: scoring.ScoreTable


def make_wnet_optimizer(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
  """Adam with L2 weight decay added to the gradient (PyTorch `Adam(weight_decay=...)`,
  as in the MW-Net code), not decoupled AdamW."""
  return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))


def batch_normalized(apply_fn: WeightFn) -> WeightFn:
  """weight_fn giving n * V_i / sum_j V_j (mean 1 over the global batch).

  The released MW-Net code divides V by its batch sum in both the look-ahead
  and the model update (`v_lambda / norm_c`, `w_new / norm_v`), so the weight
  net can only redistribute weight between examples and cannot act as a
  global step-size knob. Multiplying by n keeps `weighted_loss`'s mean form.
  """
  def fn(wnet_params, losses):
    v = apply_fn(wnet_params, losses)
    total = jnp.sum(v)
    return v * (v.shape[0] / jnp.where(total > 0, total, 1.0))
  return fn


def _check(config) -> None:
  l2rw.check_common(config)
  m = config.method
  if not isinstance(m.wnet_hidden, int) or m.wnet_hidden <= 0:
    raise ValueError(f'config.method.wnet_hidden must be a positive int, got {m.wnet_hidden!r}')
  if not isinstance(m.wnet_learning_rate, (int, float)) or m.wnet_learning_rate <= 0:
    raise ValueError(f'config.method.wnet_learning_rate must be > 0, got {m.wnet_learning_rate!r}')
  if not isinstance(m.wnet_weight_decay, (int, float)) or m.wnet_weight_decay < 0:
    raise ValueError(f'config.method.wnet_weight_decay must be >= 0, got {m.wnet_weight_decay!r}')
  if not isinstance(m.normalize, bool):
    raise ValueError(f'config.method.normalize must be True or False, got {m.normalize!r}')


def make(config, task, dataset) -> Method:
  """Meta-Weight-Net as a training-loop Method (config fields: configs/mwn.py).

  Each step: `mwn_step` (look-ahead SGD step of size config.method.inner_lr,
  or the model's current scheduled learning rate when that is 0, as the MW-Net
  code does; then one weight-net optimizer step on the look-ahead meta loss),
  then one model-optimizer step on (1/n) sum_i w_i L_i (the gradient of
  `weighted_loss`) with w_i = V(L_i; Theta_new), or with
  `batch_normalized` weights n V_i / sum_j V_j in both places when
  config.method.normalize. The table records the raw V(L_i; Theta_new).

  Args:
    config: run config; `config.method` holds wnet_hidden, wnet_learning_rate,
      wnet_weight_decay, normalize, inner_lr, meta_batch_size, mode.
    task: the Task being trained.
    dataset: the Dataset (its train size sizes the score table).

  Returns:
    Method with meta batches; `finalize` writes scores_train.npy and the
    learned weight function.

  Raises:
    ValueError: one line naming the bad `config.method` field.
  """
  _check(config)
  m = config.method
  net = WeightNet(m.wnet_hidden)
  wnet_optimizer = make_wnet_optimizer(m.wnet_learning_rate, m.wnet_weight_decay)
  lr_schedule = make_schedule(config.optimizer, config.num_steps)
  b, bm = config.batch_size, l2rw.meta_batch_size(config)
  num_train = dataset.train.size
  weight_fn = batch_normalized(net.apply) if m.normalize else net.apply

  def init(key, train_state):
    del train_state
    wnet_params = init_weight_net(key, m.wnet_hidden)
    return MWNState(wnet_params, wnet_optimizer.init(wnet_params), scoring.init_score_table(num_train))

  def step(train_state, state, batch, key):
    del key
    train = train_part(batch)
    inner_lr = m.inner_lr if m.inner_lr else lr_schedule(train_state.step)
    weights, wnet_params, wnet_opt_state, meta_loss = mwn_step(
        state.wnet_params, state.wnet_opt_state, train_state.params, train, batch['meta'],
        per_example_loss_fn=task.per_example_loss, wnet_optimizer=wnet_optimizer,
        inner_lr=inner_lr, weight_fn=weight_fn, mode=m.mode)
    # The score is the raw V(L_i; Theta_new), before any batch normalization.
    v = net.apply(wnet_params, jax.lax.stop_gradient(
        task.per_example_loss(train_state.params, train)))
    n = weights.shape[0]
    # (1/n) sum_i weights_i L_i: the gradient of `weighted_loss`.
    train_state, metrics = weighted_update(task, train_state, train, lambda losses: weights / n)
    metrics.update({'mwn/mean_weight': jnp.mean(v),
                    'mwn/min_weight': jnp.min(v),
                    'mwn/max_weight': jnp.max(v),
                    'mwn/meta_loss': meta_loss})
    table = scoring.record_scores(state.table, train['index'], v)
    return train_state, MWNState(wnet_params, wnet_opt_state, table), metrics

  def finalize(ctx, train_state, state):
    out = scoring.report_table(ctx, state.table, 'MW-Net weight V(loss)')
    # The learned weight function V(loss; Theta) on [0, largest final train loss].
    losses = map_split(jax.jit(lambda bt: task.per_example_loss(train_state.params, bt)),
                       ctx.dataset.train, ctx)
    grid = np.linspace(0.0, max(float(losses.max()), 1e-3), 21)
    v = np.asarray(jax.jit(net.apply)(state.wnet_params, jnp.asarray(grid, jnp.float32)))
    out['weight_function'] = {'loss': grid.tolist(), 'weight': v.tolist()}
    plots.weight_function(grid, v, losses, ctx.dataset.train.corrupted,
                          ctx.run.file('plots', 'weight_function.png'))
    print(f'[mwn] score AUROC (low weight = corrupted) {out["score_auroc"]}', flush=True)
    return out

  # Compute ledger: as L2RW (look-ahead B, meta batch, backward through the
  # look-ahead B, model update B).
  return Method(init=init, step=step, train_batch_size=b, meta_batch_size=bm,
                finalize=finalize, grad_evals=3 * b + bm)
