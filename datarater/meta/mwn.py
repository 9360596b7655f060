"""Meta-Weight-Net (MW-Net; Shu et al., NeurIPS 2019): loss -> weight MLP.

A small network V(loss; Theta) (1-100-1 MLP, ReLU, sigmoid output) maps each
training example's loss to a weight in (0, 1). One MW-Net iteration on a
training batch (losses L_i(w), i = 1..n) and a meta batch:

  1. look-ahead:  w_hat(Theta) = w - a * grad_w (1/n) sum_i V(L_i(w); Theta) L_i(w)
  2. weight net:  Theta <- optimizer step on grad_Theta (1/m) sum_j L^meta_j(w_hat(Theta))
  3. model:       w <- model optimizer step on (1/n) sum_i V(L_i(w); Theta_new) L_i(w)

The input of V is the loss value under `stop_gradient` (as in the reference
code, which feeds `cost.data`), so V(L_i) acts as a constant weight in the
model gradient. Steps 1-2 are `mwn_meta_loss_and_grad` / `mwn_step`; the
look-ahead is a one-step unroll of `optax.sgd(a)` from `datarater.meta.unroll`.
Step 3 uses `weighted_loss` as its loss. `make` wires the three steps into
the training loop as the method 'mwn' (configs/mwn.py); the weight net and its
optimizer state are the method state, with a table of each training example's
latest weight V(L_i), written to `scores_train.npy` at the end. The released
MW-Net code also divides V by its batch sum in steps 1 and 3
(`batch_normalized`); configs/mwn.py does so by default (`method.normalize`).

Reference settings (from the paper's code): weight net Adam lr 1e-3 with
weight decay 1e-4; classifier SGD lr 0.1, momentum 0.9, Nesterov, wd 5e-4; the
look-ahead uses plain SGD at the classifier's current learning rate.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from datarater.meta import l2rw
from datarater.meta import unroll
from datarater.train import scoring
from datarater.train.loop import map_split
from datarater.train.state import Method, train_part, weighted_update
from datarater.train.task import make_schedule

PyTree = Any
PerExampleLossFn = Callable[[PyTree, PyTree], jax.Array]
WeightFn = Callable[[PyTree, jax.Array], jax.Array]


class WeightNet(nn.Module):
  """V(loss; Theta): per-example loss -> weight in (0, 1).

  Attributes:
    hidden: width of the single hidden layer (100 in MW-Net).
  """
  hidden: int = 100

  @nn.compact
  def __call__(self, losses: jax.Array) -> jax.Array:
    """Maps losses of shape [B] to weights of shape [B]."""
    h = nn.relu(nn.Dense(self.hidden)(losses[:, None]))
    return nn.sigmoid(nn.Dense(1)(h))[:, 0]


def init_weight_net(key: jax.Array, hidden: int = 100, dtype=jnp.float32) -> PyTree:
  """Initial weight-net parameters.

  Args:
    key: PRNG key.
    hidden: hidden width; must match the `WeightNet` used to apply them.
    dtype: dtype of the dummy input that fixes the parameter dtype.

  Returns:
    Flax variables dict {'params': ...} for `WeightNet(hidden).apply`.
  """
  return WeightNet(hidden).init(key, jnp.zeros((1,), dtype))


_DEFAULT_NET = WeightNet()


def _weights(weight_fn: Optional[WeightFn], wnet_params: PyTree, losses: jax.Array):
  fn = _DEFAULT_NET.apply if weight_fn is None else weight_fn
  return fn(wnet_params, jax.lax.stop_gradient(losses))


def weighted_loss(
    params: PyTree,
    batch: PyTree,
    weights: jax.Array,
    *,
    per_example_loss_fn: PerExampleLossFn,
) -> jax.Array:
  """(1/n) sum_i weights_i * L_i(params): the MW-Net model-update loss.

  Args:
    params: model parameters.
    batch: training batch of n examples.
    weights: shape [n], treated as constants (`stop_gradient`).
    per_example_loss_fn: (params, batch) -> per-example losses, shape [n].

  Returns:
    Scalar loss.
  """
  losses = per_example_loss_fn(params, batch)
  return jnp.mean(jax.lax.stop_gradient(weights) * losses)


def mwn_meta_loss_and_grad(
    wnet_params: PyTree,
    params: PyTree,
    train_batch: PyTree,
    meta_batch: PyTree,
    *,
    per_example_loss_fn: PerExampleLossFn,
    inner_lr: float,
    weight_fn: Optional[WeightFn] = None,
    mode: str = 'reverse',
) -> Tuple[jax.Array, PyTree]:
  """Look-ahead meta loss (1/m) sum_j L^meta_j(w_hat(Theta)) and its Theta-gradient.

  Args:
    wnet_params: weight-net parameters Theta.
    params: model parameters w.
    train_batch: training batch of n examples.
    meta_batch: meta (clean) batch.
    per_example_loss_fn: (params, batch) -> per-example losses.
    inner_lr: look-ahead SGD step size a.
    weight_fn: (wnet_params, losses [n]) -> weights [n]; defaults to
      `WeightNet().apply` (hidden width 100).
    mode: meta-gradient estimator (`datarater.meta.unroll.MODES`); all exact
      modes coincide for this one-step look-ahead.

  Returns:
    (meta_loss, grad_wnet_params).
  """
  def inner_loss_fn(p, theta, batch):
    losses = per_example_loss_fn(p, batch)
    return jnp.mean(_weights(weight_fn, theta, losses) * losses)

  def outer_loss_fn(p, batch):
    return jnp.mean(per_example_loss_fn(p, batch))

  optimizer = optax.sgd(inner_lr)
  loss, grad, _ = unroll.meta_loss_and_grad(
      wnet_params, params, optimizer.init(params),
      jax.tree.map(lambda x: x[None], train_batch), meta_batch,
      inner_loss_fn=inner_loss_fn, outer_loss_fn=outer_loss_fn,
      optimizer=optimizer, mode=mode)
  return loss, grad


def mwn_step(
    wnet_params: PyTree,
    wnet_opt_state: optax.OptState,
    params: PyTree,
    train_batch: PyTree,
    meta_batch: PyTree,
    *,
    per_example_loss_fn: PerExampleLossFn,
    wnet_optimizer: optax.GradientTransformation,
    inner_lr: float,
    weight_fn: Optional[WeightFn] = None,
    mode: str = 'reverse',
) -> Tuple[jax.Array, PyTree, optax.OptState, jax.Array]:
  """One MW-Net meta step: update Theta, return the new example weights.

  Args:
    wnet_params: weight-net parameters Theta.
    wnet_opt_state: `wnet_optimizer` state for Theta.
    params: model parameters w (not updated here).
    train_batch: training batch of n examples.
    meta_batch: meta (clean) batch.
    per_example_loss_fn: (params, batch) -> per-example losses, shape [n].
    wnet_optimizer: optax optimizer for Theta (MW-Net: Adam lr 1e-3, wd 1e-4).
    inner_lr: look-ahead SGD step size a (the classifier's current lr).
    weight_fn: as in `mwn_meta_loss_and_grad`.
    mode: as in `mwn_meta_loss_and_grad`.

  Returns:
    (weights, new_wnet_params, new_wnet_opt_state, meta_loss) where
    weights = V(L_i(w); Theta_new), shape [n], under `stop_gradient`, to be
    used with `weighted_loss` for the model update; meta_loss is the look-ahead
    meta loss at the old Theta.
  """
  meta_loss, grad = mwn_meta_loss_and_grad(
      wnet_params, params, train_batch, meta_batch,
      per_example_loss_fn=per_example_loss_fn, inner_lr=inner_lr,
      weight_fn=weight_fn, mode=mode)
  updates, wnet_opt_state = wnet_optimizer.update(grad, wnet_opt_state, wnet_params)
  wnet_params = optax.apply_updates(wnet_params, updates)
  losses = per_example_loss_fn(params, train_batch)
  weights = jax.lax.stop_gradient(_weights(weight_fn, wnet_params, losses))
  return weights, wnet_params, wnet_opt_state, meta_loss


# ----------------------------------------------------------------------------- training-loop wiring


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
    plot_weight_function(grid, v, losses, ctx.dataset.train.corrupted,
                         ctx.run.file('plots', 'weight_function.png'))
    print(f'[mwn] score AUROC (low weight = corrupted) {out["score_auroc"]}', flush=True)
    return out

  # Compute ledger: as L2RW (look-ahead B, meta batch, backward through the
  # look-ahead B, model update B).
  return Method(init=init, step=step, train_batch_size=b, meta_batch_size=bm,
                finalize=finalize, grad_evals=3 * b + bm)


def plot_weight_function(grid, weights, losses, corrupted, path) -> None:
  """V(loss) over a loss grid, above histograms of final train losses by corruption flag."""
  from datarater.train.plots import plt  # Agg backend selected there

  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(grid, weights, color='k', label='V(loss)')
  ax.set_xlabel('per-example loss')
  ax.set_ylabel('weight')
  ax.set_ylim(0, 1)
  twin = ax.twinx()
  for name, mask in (('clean', ~corrupted), ('corrupted', corrupted)):
    if mask.any():
      twin.hist(losses[mask], bins=grid, alpha=0.3, density=True, label=f'final train loss, {name}')
  twin.set_ylabel('density')
  fig.legend(fontsize=8, loc='upper right')
  ax.set_title('learned MW-Net weight function')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
