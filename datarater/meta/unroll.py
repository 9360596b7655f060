"""Unrolled meta-gradients through T inner updates of an optax optimizer.

The bilevel problem (DataRater, Calian et al. 2025; L2RW and Meta-Weight-Net
are one-step special cases):

  theta_{t+1}, s_{t+1} = step(theta_t, s_t, eta, x_t),   t = 0 .. T-1
    where step applies `optimizer` to g_t = grad_theta L_in(theta_t, eta, x_t)
  meta_loss(eta) = L_out(theta_T, x_meta)

and we want d meta_loss / d eta. Backpropagating through `step` needs the
vector-Jacobian product of the inner gradient g(theta, eta) = grad_theta L_in,
i.e. the second-order terms v^T d2L/dtheta2 and v^T d2L/dtheta deta.

Gradient estimators (`mode`):

* 'reverse': plain reverse-over-reverse: `jax.value_and_grad` through a
  `jax.lax.scan` over the T steps. The backward pass stores every inner step's
  residuals, including the activations of the inner backward pass.
* 'remat': the same computation with `jax.checkpoint` around each inner step
  (only the named inner gradient g_t is saved; everything else in a step is
  recomputed during the backward pass). Same numbers, less memory.
* 'mixed': MixFlow-MG (Kemaev et al. 2025). The inner gradient is a
  `jax.custom_vjp` primitive whose backward pass, for an incoming cotangent v,
  computes both v^T d2L/dtheta2 and v^T d2L/dtheta deta with one
  forward-over-reverse product: the JVP of grad_{(theta, eta)} L in direction
  (v, 0) equals (H_tt v, H_et v), which by symmetry of the Hessian are exactly
  the two cotangents. Combined with the per-step remat of 'remat'. Same
  numbers as 'reverse' (to float rounding).
* 'checkpointed': exact, with memory O(sqrt T) instead of O(T). The T steps
  are cut into segments of S = ceil(sqrt T) steps (a nested `lax.scan`: an
  outer scan over segments, each a `jax.checkpoint` of an inner scan over its
  S steps). The backward pass keeps only the carried (params, optimizer state)
  at each segment's start, recomputes the segment's forward pass, then
  backpropagates through it step by step as 'mixed' does. Costs one extra
  forward pass (one inner gradient) per step; same numbers as 'reverse'.
* 'first_order': an ablation. theta_{T-1} and s_{T-1} are treated as constants
  (computed with eta under `stop_gradient`); only the last step's direct
  dependence on eta is differentiated (through g_{T-1} and through how the
  optimizer turns g_{T-1} into the update, e.g. Adam's moments). It drops
  (a) every contribution of steps 0..T-2, i.e. d theta_{t+1}/d eta and
  d s_{t+1}/d eta for t < T-1, and (b) with it the propagation of those through
  the Jacobians d(theta, s)_{t+1}/d(theta, s)_t (the H_tt terms). It still uses
  the mixed second derivative d2L/dtheta deta at theta_{T-1}. Exact for T = 1.

Differentiating through Adam: optax's Adam update is
m_hat / (sqrt(v_hat + eps_root) + eps). With the default eps_root = 0 the
derivative of sqrt at v_hat = 0 is infinite, so any parameter whose gradient
(hence second moment) is exactly zero, e.g. an unused embedding row, turns the
meta-gradient into inf/NaN (0 * inf). Use `optax.adam(lr, eps_root=1e-8)`
(or similar small positive value) for inner optimizers you differentiate
through. It changes the inner trajectory only negligibly.

Every loop is a rolled `lax.scan` (compile time independent of T); count a
compiled program's FLOPs with `datarater.train.flops.compiled_flops`, which
multiplies each loop body by its trip count.

Truncated windows: `meta_loss_and_grad` returns the inner state after the T
updates (under `stop_gradient`), so the next window continues from it, as in
learned_optimization's truncated unrolls.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Tuple

import jax
from jax.ad_checkpoint import checkpoint_name
import jax.numpy as jnp
import numpy as np
import optax

PyTree = Any
InnerLossFn = Callable[[PyTree, PyTree, PyTree], jax.Array]
OuterLossFn = Callable[[PyTree, PyTree], jax.Array]

MODES = ('reverse', 'remat', 'mixed', 'checkpointed', 'first_order')
EXACT_MODES = ('reverse', 'remat', 'mixed', 'checkpointed')

# Name under which each inner step's gradient is saved by the per-step remat
# policy ('remat', 'mixed'): it is the output of the expensive inner backward
# pass, so saving it means the optimizer update's backward needs no recompute
# of g, while the inner forward/backward activations are rematerialised.
INNER_GRAD_NAME = 'datarater_inner_grad'


def _check_mode(mode: str) -> None:
  if mode not in MODES:
    raise ValueError(f'unknown meta-gradient mode {mode!r}; expected one of {MODES}.')


def _zero_cotangent(x):
  x = jnp.asarray(x)
  if jnp.issubdtype(x.dtype, jnp.inexact):
    return jnp.zeros_like(x)
  return np.zeros(x.shape, dtype=jax.dtypes.float0)


def mixed_mode_grad(inner_loss_fn: InnerLossFn) -> Callable[[PyTree, PyTree, PyTree], PyTree]:
  """grad_params of `inner_loss_fn` as a custom-VJP primitive (MixFlow-MG).

  The returned function g(params, eta, batch) computes
  grad_params inner_loss_fn(params, eta, batch). Its VJP, for a cotangent v
  (structured like params), is computed forward-over-reverse:

    (H_pp v, H_ep v) = jvp(p -> grad_{(p, eta)} L(p, eta, batch), (params,), (v,))

  returning H_pp v as the params cotangent (= v^T d2L/dparams2 by symmetry) and
  H_ep v as the eta cotangent (= v^T d2L/dparams deta). The cotangent for
  `batch` is returned as zero: this primitive is meant for differentiating with
  respect to params and eta, with the training data held constant.

  Args:
    inner_loss_fn: (params, eta, batch) -> scalar, twice differentiable in
      (params, eta).

  Returns:
    A function (params, eta, batch) -> gradient pytree shaped like params.
  """
  grad_p = jax.grad(inner_loss_fn, argnums=0)
  grad_pe = jax.grad(inner_loss_fn, argnums=(0, 1))

  @jax.custom_vjp
  def g(params, eta, batch):
    return grad_p(params, eta, batch)

  def g_fwd(params, eta, batch):
    return grad_p(params, eta, batch), (params, eta, batch)

  def g_bwd(res, v):
    params, eta, batch = res
    _, (ct_params, ct_eta) = jax.jvp(
        lambda p: grad_pe(p, eta, batch), (params,), (v,))
    return ct_params, ct_eta, jax.tree.map(_zero_cotangent, batch)

  g.defvjp(g_fwd, g_bwd)
  return g


def inner_step(
    params: PyTree,
    opt_state: optax.OptState,
    eta: PyTree,
    batch: PyTree,
    *,
    grad_fn: Callable[[PyTree, PyTree, PyTree], PyTree],
    optimizer: optax.GradientTransformation,
) -> Tuple[PyTree, optax.OptState]:
  """One inner update: params <- params + optimizer.update(grad_fn(...)).

  Args:
    params: inner model parameters.
    opt_state: the inner optimizer's state.
    eta: meta-parameters (e.g. rater parameters).
    batch: one training batch.
    grad_fn: (params, eta, batch) -> gradient pytree shaped like params.
    optimizer: optax optimizer of the inner model.

  Returns:
    (new_params, new_opt_state).
  """
  grads = grad_fn(params, eta, batch)
  grads = jax.tree.map(lambda x: checkpoint_name(x, INNER_GRAD_NAME), grads)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def _leading_size(train_batches: PyTree) -> int:
  sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(train_batches)}
  if len(sizes) != 1 or None in sizes:
    raise ValueError(
        f'train_batches leaves must share one leading (time) axis, got sizes {sizes}.')
  (size,) = sizes
  if size < 1:
    raise ValueError('train_batches must hold at least one batch (T >= 1).')
  return size


def unroll(
    eta: PyTree,
    params: PyTree,
    opt_state: optax.OptState,
    train_batches: PyTree,
    *,
    inner_loss_fn: InnerLossFn,
    optimizer: optax.GradientTransformation,
    mode: str = 'mixed',
) -> Tuple[PyTree, optax.OptState]:
  """Runs T inner updates, differentiably in eta (how depends on `mode`).

  Args:
    eta: meta-parameters.
    params: inner parameters at the start of the window.
    opt_state: inner optimizer state at the start of the window.
    train_batches: pytree whose leaves have a leading axis of size T (stacked
      batches), scanned over with `jax.lax.scan`.
    inner_loss_fn: (params, eta, batch) -> scalar, e.g.
      sum_x softmax_B(phi_eta(x)) * loss(x; params).
    optimizer: optax optimizer of the inner model.
    mode: one of `MODES`; see the module docstring.

  Returns:
    (params_T, opt_state_T): differentiable in eta (only through the last step
    for 'first_order').

  Raises:
    ValueError: on an unknown mode or malformed `train_batches`.
  """
  _check_mode(mode)
  num_steps = _leading_size(train_batches)

  if mode == 'first_order':
    plain = jax.grad(inner_loss_fn)
    def const_step(carry, batch):
      p, s = inner_step(*carry, jax.lax.stop_gradient(eta), batch,
                        grad_fn=plain, optimizer=optimizer)
      return (p, s), None
    head = jax.tree.map(lambda x: x[:num_steps - 1], train_batches)
    last = jax.tree.map(lambda x: x[num_steps - 1], train_batches)
    carry, _ = jax.lax.scan(const_step, (params, opt_state), head)
    carry = jax.lax.stop_gradient(carry)
    return inner_step(*carry, eta, last, grad_fn=plain, optimizer=optimizer)

  grad_fn = (mixed_mode_grad(inner_loss_fn) if mode in ('mixed', 'checkpointed')
             else jax.grad(inner_loss_fn))

  def step(carry, batch):
    return inner_step(*carry, eta, batch, grad_fn=grad_fn, optimizer=optimizer), None

  if mode in ('remat', 'mixed', 'checkpointed'):
    step = jax.checkpoint(
        step, policy=jax.checkpoint_policies.save_only_these_names(INNER_GRAD_NAME))
  if mode != 'checkpointed':
    return jax.lax.scan(step, (params, opt_state), train_batches)[0]

  @jax.checkpoint
  def segment(carry, batches):
    return jax.lax.scan(step, carry, batches)[0], None

  size = math.isqrt(num_steps - 1) + 1  # ceil(sqrt(T)): segments of S steps, then the rest
  count, rest = divmod(num_steps, size)
  head = jax.tree.map(lambda x: x[:count * size].reshape((count, size) + x.shape[1:]),
                      train_batches)
  carry, _ = jax.lax.scan(segment, (params, opt_state), head)
  if rest:
    carry, _ = segment(carry, jax.tree.map(lambda x: x[count * size:], train_batches))
  return carry


def meta_loss(
    eta: PyTree,
    params: PyTree,
    opt_state: optax.OptState,
    train_batches: PyTree,
    meta_batch: PyTree,
    *,
    inner_loss_fn: InnerLossFn,
    outer_loss_fn: OuterLossFn,
    optimizer: optax.GradientTransformation,
    mode: str = 'mixed',
) -> Tuple[jax.Array, Tuple[PyTree, optax.OptState]]:
  """Outer loss after T inner updates, with the inner state as auxiliary output.

  Args:
    eta, params, opt_state, train_batches, inner_loss_fn, optimizer, mode: as
      in `unroll`.
    meta_batch: the held-out batch the outer loss is measured on.
    outer_loss_fn: (params, batch) -> scalar.

  Returns:
    (outer_loss_fn(params_T, meta_batch), (params_T, opt_state_T)).
  """
  params_t, opt_state_t = unroll(
      eta, params, opt_state, train_batches,
      inner_loss_fn=inner_loss_fn, optimizer=optimizer, mode=mode)
  return outer_loss_fn(params_t, meta_batch), (params_t, opt_state_t)


def meta_loss_and_grad(
    eta: PyTree,
    params: PyTree,
    opt_state: optax.OptState,
    train_batches: PyTree,
    meta_batch: PyTree,
    *,
    inner_loss_fn: InnerLossFn,
    outer_loss_fn: OuterLossFn,
    optimizer: optax.GradientTransformation,
    mode: str = 'mixed',
) -> Tuple[jax.Array, PyTree, Tuple[PyTree, optax.OptState]]:
  """Meta-loss and its gradient in eta through T unrolled inner updates.

  Jit with the keyword-only arguments bound, e.g.
  `jax.jit(functools.partial(meta_loss_and_grad, inner_loss_fn=..., ...))`.

  Args:
    eta: meta-parameters (e.g. rater parameters); the gradient is taken here.
    params: inner parameters at the start of the window (not differentiated).
    opt_state: inner optimizer state at the start of the window.
    train_batches: pytree of T stacked training batches (leading axis T).
    meta_batch: held-out batch for the outer loss.
    inner_loss_fn: (params, eta, batch) -> scalar.
    outer_loss_fn: (params, batch) -> scalar.
    optimizer: optax optimizer of the inner model. For Adam-family optimizers
      set `eps_root > 0` (see module docstring).
    mode: 'reverse' | 'remat' | 'mixed' | 'checkpointed' (exact, same numbers) or
      'first_order' (ablation; see module docstring).

  Returns:
    (meta_loss, grad_eta, (params_T, opt_state_T)), where the inner state
    after the T updates is wrapped in `stop_gradient`, ready to continue the
    next truncated window.

  Raises:
    ValueError: on an unknown mode or malformed `train_batches`.
  """
  _check_mode(mode)
  (loss, state), grad_eta = jax.value_and_grad(meta_loss, has_aux=True)(
      eta, params, opt_state, train_batches, meta_batch,
      inner_loss_fn=inner_loss_fn, outer_loss_fn=outer_loss_fn,
      optimizer=optimizer, mode=mode)
  return loss, grad_eta, jax.lax.stop_gradient(state)


def lookahead_meta_grad(
    eta: PyTree,
    params: PyTree,
    train_batch: PyTree,
    meta_batch: PyTree,
    *,
    inner_loss_fn: InnerLossFn,
    per_example_loss_fn: Callable[[PyTree, PyTree], jax.Array],
    lookahead_lr: float,
    mode: str = 'reverse',
) -> Tuple[jax.Array, PyTree]:
  """The one-step look-ahead of L2RW and Meta-Weight-Net.

  One SGD step of size `lookahead_lr` on inner_loss_fn(params, eta,
  train_batch), then the mean per-example loss on `meta_batch`; its gradient
  in eta through the step (T = 1 of `meta_loss_and_grad`).

  Args:
    eta: what the meta-gradient is taken in (per-example weights, a weight net).
    params: model parameters at the step (not differentiated).
    train_batch: one training batch.
    meta_batch: the held-out batch.
    inner_loss_fn: (params, eta, batch) -> scalar.
    per_example_loss_fn: (params, batch) -> per-example losses (the meta loss
      is their mean on `meta_batch`).
    lookahead_lr: the look-ahead step size.
    mode: as in `unroll`; every exact mode gives the same numbers here.

  Returns:
    (meta_loss, grad_eta).
  """
  optimizer = optax.sgd(lookahead_lr)
  loss, grad, _ = meta_loss_and_grad(
      eta, params, optimizer.init(params), jax.tree.map(lambda x: x[None], train_batch),
      meta_batch, inner_loss_fn=inner_loss_fn,
      outer_loss_fn=lambda p, batch: jnp.mean(per_example_loss_fn(p, batch)),
      optimizer=optimizer, mode=mode)
  return loss, grad
