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

from datarater.errors import is_number, require
from datarater.meta.mwn import mwn_step
from datarater.methods import l2rw
from datarater.models.weight_net import WeightNet
from datarater.report import plots, scoring
from datarater.train.evaluation import map_split
from datarater.train.state import Method, train_part, weighted_step
from datarater.weighting import tables
from datarater.weighting.normalize import mean_one

DECLARES = dict(family='meta', label='MW-Net', scores=True, information='meta rows')

PyTree = Any


class MWNState(NamedTuple):
  """Meta-Weight-Net method state (replicated).

  Attributes:
    wnet_params: weight-net variables {'params': ...} (Theta).
    wnet_opt_state: optax state of the weight-net optimizer.
    table: `ExampleTable` of the latest weight V(L_i; Theta) of every training example.
  """
  wnet_params: PyTree
  wnet_opt_state: optax.OptState
  table: tables.ExampleTable


WNET_OPTIMIZERS = ('nesterov', 'adam')
WNET_INITS = ('flat', 'torch')


def make_wnet_optimizer(learning_rate: float, weight_decay: float,
                        name: str) -> optax.GradientTransformation:
  """The weight net's optimizer, with L2 weight decay added to the gradient (PyTorch's
  `weight_decay=`), not decoupled.

  Args:
    learning_rate: its learning rate.
    weight_decay: coefficient of the L2 term added to the gradient.
    name: 'nesterov' (the 2019 script train_WRN-28-10_Meta_PGC.py: `SGD(lr=1e-3,
      momentum=0.9, nesterov=True, weight_decay=5e-4)`) or 'adam' (MW-Net.py:
      `Adam(lr=1e-3, weight_decay=1e-4)`).

  Returns:
    The optax optimizer of the weight net.
  """
  core = optax.adam(learning_rate) if name == 'adam' else optax.sgd(
      learning_rate, momentum=0.9, nesterov=True)
  return optax.chain(optax.add_decayed_weights(weight_decay), core)


def _check(config) -> None:
  l2rw.check_common(config)
  m = config.method
  require(isinstance(m.wnet_hidden, int) and m.wnet_hidden > 0, 'method.wnet_hidden',
          'a positive int', m.wnet_hidden)
  require(is_number(m.wnet_learning_rate) and m.wnet_learning_rate > 0,
          'method.wnet_learning_rate', '> 0', m.wnet_learning_rate)
  require(is_number(m.wnet_weight_decay) and m.wnet_weight_decay >= 0,
          'method.wnet_weight_decay', '>= 0', m.wnet_weight_decay)
  require(isinstance(m.normalize, bool), 'method.normalize', 'True or False', m.normalize)
  require(m.wnet_optimizer in WNET_OPTIMIZERS, 'method.wnet_optimizer',
          f'one of {WNET_OPTIMIZERS}', m.wnet_optimizer)
  require(m.wnet_init in WNET_INITS, 'method.wnet_init', f'one of {WNET_INITS}', m.wnet_init)


def make(config, task, dataset) -> Method:
  """Meta-Weight-Net as a training-loop Method (config fields: configs/mwn.py).

  Each step: `mwn_step` (look-ahead SGD step of the size given by
  config.method.lookahead_lr, see `l2rw.lookahead_schedule`; then one
  weight-net optimizer step on the look-ahead meta loss), then one
  model-optimizer step on (1/n) sum_i V(L_i; Theta_new) L_i, with V
  batch-normalized (n V_i / sum_j V_j, in the look-ahead too) when
  config.method.normalize. The model update's forward pass gives the losses
  that V, the score table and the update itself use; only the look-ahead
  runs its own, differentiable, forward. The table records the raw
  V(L_i; Theta_new).

  Args:
    config: run config; `config.method` holds wnet_hidden, wnet_init, wnet_optimizer,
      wnet_learning_rate, wnet_weight_decay, normalize, lookahead_lr, meta_batch_size, mode.
    task: the Task being trained.
    dataset: the Dataset (its train size sizes the score table).

  Returns:
    Method with meta batches; `finalize` writes scores_train.npy and the
    learned weight function.

  Raises:
    ConfigError: one line naming the bad `config.method` field.
  """
  _check(config)
  m = config.method
  net = WeightNet(m.wnet_hidden, flat=m.wnet_init == 'flat')
  wnet_optimizer = make_wnet_optimizer(m.wnet_learning_rate, m.wnet_weight_decay,
                                       m.wnet_optimizer)
  lookahead_lr = l2rw.lookahead_schedule(config)
  b, bm = config.batch_size, l2rw.meta_batch_size(config)
  num_train = dataset.train.size
  post = mean_one if m.normalize else (lambda v: v)

  def weight_fn(wnet_params, losses):
    return post(net.apply(wnet_params, losses))

  def init(key, train_state):
    del train_state
    wnet_params = net.init(key, jnp.zeros((1,), jnp.float32))
    return MWNState(wnet_params, wnet_optimizer.init(wnet_params), tables.table_init(num_train))

  def step(train_state, state, batch, key):
    del key
    train = train_part(batch)
    wnet_params, wnet_opt_state, meta_loss = mwn_step(
        state.wnet_params, state.wnet_opt_state, train_state.params, train, batch['meta'],
        per_example_loss_fn=task.per_example_loss, weight_fn=weight_fn,
        wnet_optimizer=wnet_optimizer, lookahead_lr=lookahead_lr(train_state.step), mode=m.mode)

    def weights_fn(losses):
      """(1/n) post(V(L_i; Theta_new)) for the update; the raw V as aux for the table."""
      v = net.apply(wnet_params, losses)
      return post(v) / v.shape[0], v

    train_state, metrics, _, _, v = weighted_step(task, train_state, train, weights_fn)
    metrics.update({'mwn/mean_weight': jnp.mean(v),
                    'mwn/min_weight': jnp.min(v),
                    'mwn/max_weight': jnp.max(v),
                    'mwn/meta_loss': meta_loss})
    table = tables.table_record(state.table, train['index'], v)
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
