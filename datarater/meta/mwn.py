"""Meta-Weight-Net (MW-Net; Shu et al., NeurIPS 2019): loss -> weight network.

A small network V(loss; Theta) maps each training example's loss to a weight
(datarater/models/weight_net.py: 1-100-1 MLP, sigmoid output). One MW-Net
iteration on a training batch (losses L_i(w), i = 1..n) and a meta batch:

  1. look-ahead:  w_hat(Theta) = w - a * grad_w (1/n) sum_i V(L_i(w); Theta) L_i(w)
  2. weight net:  Theta <- optimizer step on grad_Theta (1/m) sum_j L^meta_j(w_hat(Theta))
  3. model:       w <- model optimizer step on (1/n) sum_i V(L_i(w); Theta_new) L_i(w)

The input of V is the loss value under `stop_gradient` (as in the noisy-label
scripts, which feed `cost.data`; the class-imbalance script's look-ahead feeds
`cost_v` itself, not followed here), so V(L_i) acts as a constant weight in the
model gradient. Steps 1-2 are `mwn_meta_loss_and_grad` / `mwn_step`; the
look-ahead is a one-step unroll of `optax.sgd(a)` from `datarater.meta.unroll`
(plain SGD, as in the paper, whatever optimizer trains the model). Step 3 is
the training loop's weighted update (datarater/methods/mwn.py). The authors'
train_WRN-28-10_Meta_PGC.py and class-imbalance script also divide V by its batch
sum in steps 1 and 3 (`v_lambda / norm_c`, `w_new / norm_v`; their MW-Net.py does
not), so the weight net can only redistribute weight between examples and cannot
act as a global step-size knob; here that is `config.method.normalize`, with
`datarater.weighting.normalize.mean_one` (n V_i / sum_j V_j: the factor n keeps
the (1/n) sum_i form).

Reference settings (the authors' scripts; configs/mwn.py says which one the default
follows): weight net Adam lr 1e-3, wd 1e-4 (MW-Net.py) or SGD-Nesterov lr 1e-3, wd
5e-4 (train_WRN-28-10_Meta_PGC.py); classifier SGD lr 0.1, momentum 0.9 (Nesterov
in the WRN script, plain in MW-Net.py), wd 5e-4; the look-ahead uses plain SGD at
the classifier's current learning rate.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

import jax
import jax.numpy as jnp
import optax

from datarater.meta import unroll

PyTree = Any
PerExampleLossFn = Callable[[PyTree, PyTree], jax.Array]
WeightFn = Callable[[PyTree, jax.Array], jax.Array]


def mwn_meta_loss_and_grad(
    wnet_params: PyTree,
    params: PyTree,
    train_batch: PyTree,
    meta_batch: PyTree,
    *,
    per_example_loss_fn: PerExampleLossFn,
    weight_fn: WeightFn,
    lookahead_lr: float,
    mode: str = 'reverse',
) -> Tuple[jax.Array, PyTree]:
  """Look-ahead meta loss (1/m) sum_j L^meta_j(w_hat(Theta)) and its Theta-gradient.

  Args:
    wnet_params: weight-net parameters Theta.
    params: model parameters w.
    train_batch: training batch of n examples.
    meta_batch: meta (clean) batch.
    per_example_loss_fn: (params, batch) -> per-example losses.
    weight_fn: (wnet_params, losses [n]) -> weights [n], e.g. `WeightNet.apply`
      (optionally followed by `mean_one`); it is given the losses under
      `stop_gradient`.
    lookahead_lr: look-ahead SGD step size a.
    mode: meta-gradient estimator (`datarater.meta.unroll.MODES`); all exact
      modes coincide for this one-step look-ahead.

  Returns:
    (meta_loss, grad_wnet_params).
  """
  def inner_loss_fn(p, theta, batch):
    losses = per_example_loss_fn(p, batch)
    return jnp.mean(weight_fn(theta, jax.lax.stop_gradient(losses)) * losses)

  return unroll.lookahead_meta_grad(
      wnet_params, params, train_batch, meta_batch, inner_loss_fn=inner_loss_fn,
      per_example_loss_fn=per_example_loss_fn, lookahead_lr=lookahead_lr, mode=mode)


def mwn_step(
    wnet_params: PyTree,
    wnet_opt_state: optax.OptState,
    params: PyTree,
    train_batch: PyTree,
    meta_batch: PyTree,
    *,
    per_example_loss_fn: PerExampleLossFn,
    weight_fn: WeightFn,
    wnet_optimizer: optax.GradientTransformation,
    lookahead_lr: float,
    mode: str = 'reverse',
) -> Tuple[PyTree, optax.OptState, jax.Array]:
  """Steps 1-2 of an MW-Net iteration: one optimizer step of Theta on the look-ahead meta loss.

  Args:
    wnet_params: weight-net parameters Theta.
    wnet_opt_state: `wnet_optimizer` state for Theta.
    params: model parameters w (not updated here).
    train_batch: training batch of n examples.
    meta_batch: meta (clean) batch.
    per_example_loss_fn: (params, batch) -> per-example losses, shape [n].
    weight_fn: as in `mwn_meta_loss_and_grad`.
    wnet_optimizer: optax optimizer for Theta (MW-Net: Adam lr 1e-3, wd 1e-4).
    lookahead_lr: look-ahead SGD step size a.
    mode: as in `mwn_meta_loss_and_grad`.

  Returns:
    (new_wnet_params, new_wnet_opt_state, meta_loss), meta_loss being the
    look-ahead meta loss at the old Theta. The model update (step 3) weighs
    its losses with weight_fn(new_wnet_params, losses).
  """
  meta_loss, grad = mwn_meta_loss_and_grad(
      wnet_params, params, train_batch, meta_batch, per_example_loss_fn=per_example_loss_fn,
      weight_fn=weight_fn, lookahead_lr=lookahead_lr, mode=mode)
  updates, wnet_opt_state = wnet_optimizer.update(grad, wnet_opt_state, wnet_params)
  return optax.apply_updates(wnet_params, updates), wnet_opt_state, meta_loss
