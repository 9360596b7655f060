"""Learning to Reweight (L2RW; Ren et al., ICML 2018): per-example weights.

For a training batch with per-example losses f_i(theta) and a clean meta batch
with mean loss M(theta) = (1/m) sum_j f^meta_j(theta):

  theta_hat(eps) = theta - alpha * grad_theta sum_i eps_i f_i(theta)
  u_i = -d/d eps_i M(theta_hat(eps)) |_{eps = 0}
  w_i = max(u_i, 0) / (sum_j max(u_j, 0) + [sum_j max(u_j, 0) == 0])

At eps = 0, theta_hat = theta, so by the chain rule exactly
u_i = alpha * <grad f_i(theta), grad M(theta)>: examples whose gradient agrees
with the meta gradient get weight. The look-ahead is computed here as a
one-step unroll of `optax.sgd(alpha)` (see `datarater.meta.unroll`), so the
same code path (and estimator `mode`) serves L2RW and DataRater.

The model update uses loss sum_i w_i f_i(theta) (weights under
`stop_gradient`). `make` wires this into the training loop as the method
'l2rw' (configs/l2rw.py): per step, scores and weights of the training batch
against a batch of the (clean) meta split, then that weighted update; each
example's latest score u_i is kept in a table and written to
`scores_train.npy` at the end. The table and its report (datarater.train.scoring) are shared
with Meta-Weight-Net.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from datarater.meta import unroll
from datarater.train import scoring
from datarater.train.state import Method, train_part, weighted_update

PyTree = Any
PerExampleLossFn = Callable[[PyTree, PyTree], jax.Array]


def normalize_nonnegative(u: jax.Array) -> jax.Array:
  """w = max(u, 0) / (sum max(u, 0) + [sum == 0]) (L2RW's zero-sum guard).

  Args:
    u: array of shape [B] of raw scores.

  Returns:
    Array of shape [B]: non-negative and summing to 1, or all zeros when no
    entry of `u` is positive.
  """
  pos = jnp.maximum(u, 0.0)
  total = jnp.sum(pos)
  return pos / (total + (total == 0).astype(pos.dtype))


def l2rw_scores(
    params: PyTree,
    train_batch: PyTree,
    meta_batch: PyTree,
    *,
    per_example_loss_fn: PerExampleLossFn,
    inner_lr: float,
    mode: str = 'reverse',
) -> jax.Array:
  """The unnormalized L2RW scores u_i = -dM(theta_hat(eps))/d eps_i at eps = 0.

  Args:
    params: model parameters theta.
    train_batch: training batch of B examples.
    meta_batch: meta (clean, held-out) batch of m examples.
    per_example_loss_fn: (params, batch) -> per-example losses of shape [B].
    inner_lr: look-ahead SGD step size alpha.
    mode: meta-gradient estimator for the one-step look-ahead; any exact
      mode of `datarater.meta.unroll` gives the same numbers.

  Returns:
    Array of shape [B]; u_i = alpha * <grad f_i(theta), grad M(theta)>.
  """
  losses = jax.eval_shape(per_example_loss_fn, params, train_batch)
  eps = jnp.zeros(losses.shape, losses.dtype)

  def inner_loss_fn(p, e, batch):
    return jnp.sum(e * per_example_loss_fn(p, batch))

  def outer_loss_fn(p, batch):
    return jnp.mean(per_example_loss_fn(p, batch))

  optimizer = optax.sgd(inner_lr)
  _, grad_eps, _ = unroll.meta_loss_and_grad(
      eps, params, optimizer.init(params),
      jax.tree.map(lambda x: x[None], train_batch), meta_batch,
      inner_loss_fn=inner_loss_fn, outer_loss_fn=outer_loss_fn,
      optimizer=optimizer, mode=mode)
  return -grad_eps


def l2rw_weights(
    params: PyTree,
    train_batch: PyTree,
    meta_batch: PyTree,
    *,
    per_example_loss_fn: PerExampleLossFn,
    inner_lr: float,
    mode: str = 'reverse',
) -> jax.Array:
  """L2RW example weights for one training batch (Ren et al. 2018, Alg. 1).

  Args:
    params: model parameters theta.
    train_batch: training batch of B examples.
    meta_batch: meta (clean, held-out) batch.
    per_example_loss_fn: (params, batch) -> per-example losses of shape [B].
    inner_lr: look-ahead SGD step size alpha (only the scale of u depends on
      it; after normalization the weights do not, for alpha > 0).
    mode: meta-gradient estimator of the one-step look-ahead.

  Returns:
    Weights of shape [B] under `stop_gradient`: non-negative and summing to 1,
    or all zeros if no example's gradient aligns with the meta gradient.
  """
  u = l2rw_scores(params, train_batch, meta_batch,
                  per_example_loss_fn=per_example_loss_fn, inner_lr=inner_lr, mode=mode)
  return jax.lax.stop_gradient(normalize_nonnegative(u))


# ----------------------------------------------------------------------------- training-loop wiring
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
