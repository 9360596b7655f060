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
