"""Learning to Reweight as a training-loop method ('l2rw'; config: configs/l2rw.py).

Math: datarater/meta/l2rw.py. Each example's latest score u_i is kept in a
table and written to `scores_train.npy` at the end.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from datarater.meta import unroll
from datarater.meta.l2rw import l2rw_scores, normalize_nonnegative
from datarater.train import scoring
from datarater.train.state import Method, train_part, weighted_update

#
# `make(config, task, dataset)` turns the math above into a `Method` for the one
# training loop; `configs/l2rw.py` documents the fields. The per-example score
# table and its `finalize` (scores_train.npy, AUROC, histograms) are shared with
# Meta-Weight-Net (`datarater.meta.mwn` imports them from here).


def check_common(config) -> None:
  """One-line ValueErrors naming the bad field, for the fields L2RW and MW-Net
  share: inner_lr >= 0, meta_batch_size >= 0 and divisible by the devices, mode."""
  m = config.method
  if not isinstance(m.inner_lr, (int, float)) or m.inner_lr < 0:
    raise ValueError(f'config.method.inner_lr must be >= 0 (0: the model learning rate), '
                     f'got {m.inner_lr!r}')
  if not isinstance(m.meta_batch_size, int) or m.meta_batch_size < 0:
    raise ValueError(f'config.method.meta_batch_size must be an int >= 0 (0: config.batch_size), '
                     f'got {m.meta_batch_size!r}')
  n = jax.device_count()
  if meta_batch_size(config) % n:
    raise ValueError(f'config.method.meta_batch_size={meta_batch_size(config)} is not divisible '
                     f'by the {n} devices')
  if m.mode not in unroll.MODES:
    raise ValueError(f'config.method.mode={m.mode!r} is not one of {unroll.MODES}')


def meta_batch_size(config) -> int:
  """config.method.meta_batch_size, or config.batch_size when it is 0."""
  return int(config.method.meta_batch_size or config.batch_size)


def make(config, task, dataset) -> Method:
  """L2RW as a training-loop Method (config fields: configs/l2rw.py).

  Each step: u = `l2rw_scores` of the training batch against a meta batch
  (look-ahead SGD step alpha = config.method.inner_lr, or the model's peak
  learning rate when that is 0; the weights do not depend on alpha, the
  recorded scores scale with it), w = `normalize_nonnegative(u)`, then one
  model-optimizer step on sum_i w_i f_i (`weighted_update`). The method state
  is the per-example `ScoreTable` of the latest u_i.

  Args:
    config: run config; `config.method` holds inner_lr, meta_batch_size, mode.
    task: the Task being trained.
    dataset: the Dataset (its train size sizes the score table).

  Returns:
    Method with meta batches; `finalize` writes scores_train.npy.

  Raises:
    ValueError: one line naming the bad `config.method` field.
  """
  check_common(config)
  alpha = float(config.method.inner_lr or config.optimizer.learning_rate)
  mode = config.method.mode
  b, bm = config.batch_size, meta_batch_size(config)
  num_train = dataset.train.size

  def init(key, train_state):
    del key, train_state
    return scoring.init_score_table(num_train)

  def step(train_state, table, batch, key):
    del key
    train = train_part(batch)
    u = l2rw_scores(train_state.params, train, batch['meta'],
                    per_example_loss_fn=task.per_example_loss, inner_lr=alpha, mode=mode)
    w = jax.lax.stop_gradient(normalize_nonnegative(u))
    train_state, metrics = weighted_update(task, train_state, train, lambda losses: w)
    metrics.update({'l2rw/zero_fraction': jnp.mean((w == 0).astype(jnp.float32)),
                    'l2rw/all_zero': (jnp.sum(w) == 0).astype(jnp.float32),
                    'l2rw/score_mean': jnp.mean(u)})
    return train_state, scoring.record_scores(table, train['index'], u), metrics

  def finalize(ctx, train_state, table):
    del train_state
    out = scoring.report_table(ctx, table, 'L2RW score u_i')
    out['inner_lr'] = alpha
    print(f'[l2rw] score AUROC (low score = corrupted) {out["score_auroc"]}', flush=True)
    return out

  # Compute ledger: look-ahead gradients of the B train examples, gradient of
  # the meta batch, the backward through the look-ahead (B again), the update (B).
  return Method(init=init, step=step, train_batch_size=b, meta_batch_size=bm,
                finalize=finalize, grad_evals=3 * b + bm)
