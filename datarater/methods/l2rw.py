"""Learning to Reweight as a training-loop method ('l2rw'; config: configs/l2rw.py).

Math: datarater/meta/l2rw.py. Each example's latest score u_i is kept in an
`ExampleTable` and written to `scores_train.npy` at the end. The config
checks and the look-ahead step size below are shared with Meta-Weight-Net
(datarater/methods/mwn.py), which looks ahead the same way.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from datarater.errors import is_number, require
from datarater.meta import unroll
from datarater.meta.l2rw import l2rw_scores, normalize_nonnegative
from datarater.report import scoring
from datarater.train.state import Method, train_part, weighted_update
from datarater.train.task import make_schedule
from datarater.weighting import tables

DECLARES = dict(family='meta', label='L2RW', scores=True, information='meta rows')

LOOKAHEAD_NAMED = ('scheduled', 'peak')


def _fixed_lr(value):
  """A positive float given as a number or as its string (e.g. '0.1'), else None."""
  try:
    lr = float(value) if isinstance(value, str) or is_number(value) else None
  except ValueError:
    return None
  return lr if lr is not None and lr > 0 else None


def check_common(config) -> None:
  """ConfigErrors for the fields L2RW and MW-Net share: lookahead_lr, meta_batch_size, mode."""
  m = config.method
  require(m.lookahead_lr in LOOKAHEAD_NAMED or _fixed_lr(m.lookahead_lr) is not None,
          'method.lookahead_lr', "'scheduled', 'peak' or a positive float such as '0.1'",
          m.lookahead_lr)
  require(isinstance(m.meta_batch_size, int) and m.meta_batch_size >= 0, 'method.meta_batch_size',
          'an int >= 0 (0: config.batch_size)', m.meta_batch_size)
  n = jax.device_count()
  require(meta_batch_size(config) % n == 0, 'method.meta_batch_size',
          f'divisible by the {n} devices', meta_batch_size(config))
  require(m.mode in unroll.MODES, 'method.mode', f'one of {unroll.MODES}', m.mode)


def meta_batch_size(config) -> int:
  """config.method.meta_batch_size, or config.batch_size when it is 0."""
  return int(config.method.meta_batch_size or config.batch_size)


def lookahead_schedule(config) -> Callable[[jax.Array], jax.Array]:
  """The look-ahead SGD step size as a function of the model's step.

  config.method.lookahead_lr: 'scheduled' (the model optimizer's current
  learning rate, config.optimizer.schedule at this step), 'peak'
  (config.optimizer.learning_rate) or a fixed positive float.
  """
  value = config.method.lookahead_lr
  if value == 'scheduled':
    return make_schedule(config.optimizer, config.num_steps)
  lr = config.optimizer.learning_rate if value == 'peak' else _fixed_lr(value)
  return optax.constant_schedule(lr)


def make(config, task, dataset) -> Method:
  """L2RW as a training-loop Method (config fields: configs/l2rw.py).

  Each step: u = `l2rw_scores` of the training batch against a meta batch
  (look-ahead SGD step alpha from `lookahead_schedule`; the weights do not
  depend on alpha > 0, the recorded scores scale with it),
  w = `normalize_nonnegative(u)`, then one model-optimizer step on
  sum_i w_i f_i. The method state is the `ExampleTable` of the latest u_i.

  Args:
    config: run config; `config.method` holds lookahead_lr, meta_batch_size, mode.
    task: the Task being trained.
    dataset: the Dataset (its train size sizes the score table).

  Returns:
    Method with meta batches; `finalize` writes scores_train.npy.

  Raises:
    ConfigError: one line naming the bad `config.method` field.
  """
  check_common(config)
  alpha = lookahead_schedule(config)
  mode = config.method.mode
  b, bm = config.batch_size, meta_batch_size(config)
  num_train = dataset.train.size

  def init(key, train_state):
    del key, train_state
    return tables.table_init(num_train)

  def step(train_state, table, batch, key):
    del key
    train = train_part(batch)
    u = l2rw_scores(train_state.params, train, batch['meta'],
                    per_example_loss_fn=task.per_example_loss,
                    lookahead_lr=alpha(train_state.step), mode=mode)
    w = jax.lax.stop_gradient(normalize_nonnegative(u))
    train_state, metrics = weighted_update(task, train_state, train, lambda losses: w)
    metrics.update({'l2rw/zero_fraction': jnp.mean((w == 0).astype(jnp.float32)),
                    'l2rw/all_zero': (jnp.sum(w) == 0).astype(jnp.float32),
                    'l2rw/score_mean': jnp.mean(u)})
    return train_state, tables.table_record(table, train['index'], u), metrics

  def finalize(ctx, train_state, table):
    del train_state
    out = scoring.report_table(ctx, table, 'L2RW score u_i')
    print(f'[l2rw] score AUROC (low score = corrupted) {out["score_auroc"]}', flush=True)
    return out

  # Compute ledger: look-ahead gradients of the B train examples, gradient of
  # the meta batch, the backward through the look-ahead (B again), the update (B).
  return Method(init=init, step=step, train_batch_size=b, meta_batch_size=bm,
                finalize=finalize, grad_evals=3 * b + bm)
