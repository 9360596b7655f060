"""Hypergradient baselines for per-source weighting (implicit and unrolled).

Same problem as :mod:`datarater.bilevel.scalebio`: weights ``lambda =
softmax(p)`` over ``K`` sources, lower level ``L2(lambda, w) = sum_k lambda_k
lbar_k(w)`` (``per_source_loss_fn``, absent sources contribute 0), upper level
``L1(w)`` (``meta_loss_fn``). The hypergradient of ``F(p) = L1(w*(softmax(p)))``
is, by the implicit function theorem at ``grad_w L2(lambda, w*) = 0``,

    dF/dp = - (d/dp grad_w L2(softmax(p), w))^T  H^{-1} grad_w L1(w),
    H = grad^2_w L2(softmax(p), w),

evaluated at a given ``w`` (an approximation of ``w*``). Because ``L2`` is linear
in ``lambda``, the mixed term is ``J_softmax(p)^T (d lbar(w)/dw) v``: one
forward-mode JVP of the per-source losses followed by the softmax VJP.

Estimators (all return a ``[K]`` gradient with respect to ``p``):

* :func:`cg_hypergrad`: ``H v = g`` by conjugate gradient
  (``jax.scipy.sparse.linalg.cg`` over the parameter pytree) on Hessian-vector
  products (forward-over-reverse). Needs ``H`` symmetric positive definite at
  ``w`` (add ``damping`` otherwise).
* :func:`neumann_hypergrad`: ``v = eta sum_{j<N} (I - eta H)^j g``; converges to
  ``H^{-1} g`` when ``0 < eta < 2 / lambda_max(H)`` (error ``(1 - eta
  lambda_min)^N``).
* :func:`unrolled_hypergrad`: backprop through ``T`` steps of gradient descent on
  ``L2`` from ``w0``, with the unroll engine of :mod:`datarater.meta.unroll`
  (reverse mode, memory ``O(T)``).

``damping`` (ridge) solves ``(H + damping I) v = g`` instead; it biases the
hypergradient but regularises ill-conditioned or indefinite Hessians.

The functions are pure; jit them with the two loss functions (and
``num_steps``) static, e.g. ``jax.jit(cg_hypergrad, static_argnums=(0, 1))``.
"""

from collections.abc import Callable
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import optax

from datarater.bilevel.scalebio import softmax_vjp
from datarater.bilevel.scalebio import source_losses
from datarater.bilevel.scalebio import weighted_loss
from datarater.meta import unroll

PyTree = Any
Array = jax.Array
MatVec = Callable[[PyTree], PyTree]


def _is_number(x: Any) -> bool:
  """True for concrete Python numbers (traced values skip validation)."""
  return isinstance(x, numbers.Real)


def _axpy(alpha: Array, x: PyTree, y: PyTree) -> PyTree:
  """``alpha * x + y`` over pytrees."""
  return jax.tree.map(lambda a, b: alpha * a + b, x, y)


def hvp(per_source_loss_fn: Callable[..., Any], p: Array, w: PyTree,
        train_batch: Any, v: PyTree) -> PyTree:
  """Hessian-vector product ``grad^2_w L2(softmax(p), w) v`` (forward-over-reverse).

  Args:
    per_source_loss_fn: ``(params, batch) -> [K]`` or ``([K], counts)``.
    p: ``[K]`` logits.
    w: lower-level parameters.
    train_batch: batch defining ``L2``.
    v: tangent with the structure of ``w``.

  Returns:
    ``H v``, structured like ``w``.
  """
  grad_fn = jax.grad(lambda w_: weighted_loss(per_source_loss_fn, p, w_,
                                              train_batch))
  return jax.jvp(grad_fn, (w,), (v,))[1]


def mixed_vjp(per_source_loss_fn: Callable[..., Any], p: Array, w: PyTree,
              train_batch: Any, v: PyTree) -> Array:
  """``(d/dp grad_w L2(softmax(p), w))^T v``, a ``[K]`` vector.

  Computed as ``J_softmax(p)^T jvp(lbar, w, v)`` (exact: ``L2`` is linear in
  ``lambda``); absent sources have a zero tangent.

  Args:
    per_source_loss_fn: per-source losses.
    p: ``[K]`` logits.
    w: lower-level parameters.
    train_batch: batch defining ``L2``.
    v: vector structured like ``w``.

  Returns:
    ``[K]`` mixed second derivative applied to ``v``.
  """
  lbar = lambda w_: source_losses(per_source_loss_fn, w_, train_batch)[0]
  dlbar = jax.jvp(lbar, (w,), (v,))[1]
  return softmax_vjp(p, dlbar)


def neumann_solve(matvec: MatVec, b: PyTree, *, num_terms: int = 100,
                  eta: float = 0.1) -> PyTree:
  """Truncated Neumann series ``x = eta sum_{j<num_terms} (I - eta A)^j b``.

  Args:
    matvec: ``x -> A x`` over pytrees.
    b: right-hand side.
    num_terms: number of series terms (``num_terms - 1`` matvecs).
    eta: step; must satisfy ``0 < eta < 2 / lambda_max(A)``.

  Returns:
    Approximation of ``A^{-1} b``.
  """
  term = jax.tree.map(lambda x: eta * x, b)

  def body(_, carry):
    term, acc = carry
    term = _axpy(-eta, matvec(term), term)
    return term, jax.tree.map(jnp.add, acc, term)

  _, acc = jax.lax.fori_loop(1, num_terms, body, (term, term))
  return acc


def implicit_hypergrad(
    per_source_loss_fn: Callable[..., Any],
    meta_loss_fn: Callable[[PyTree, Any], Array],
    p: Array, w: PyTree, train_batch: Any, meta_batch: Any, *,
    solve: Callable[[MatVec, PyTree], PyTree],
    damping: float = 0.0,
) -> Array:
  """Implicit-function-theorem hypergradient with a pluggable linear solver.

  Args:
    per_source_loss_fn: per-source losses (see :mod:`scalebio`).
    meta_loss_fn: ``(params, meta_batch) -> scalar`` upper-level loss.
    p: ``[K]`` logits.
    w: lower-level parameters, ideally ``argmin_w L2(softmax(p), w)``.
    train_batch: batch defining ``L2``.
    meta_batch: batch defining ``L1``.
    solve: ``(matvec, b) -> x`` approximately solving ``matvec(x) = b``.
    damping: ridge added to the Hessian, ``>= 0``.

  Returns:
    ``[K]`` approximate ``d L1(w*(softmax(p))) / dp``.
  """
  if _is_number(damping) and not damping >= 0:
    raise ValueError(f'damping must be >= 0, got {damping!r}')
  g1 = jax.grad(meta_loss_fn)(w, meta_batch)

  def matvec(v):
    hv = hvp(per_source_loss_fn, p, w, train_batch, v)
    if _is_number(damping) and damping == 0:
      return hv
    return _axpy(damping, v, hv)

  v = solve(matvec, g1)
  return -mixed_vjp(per_source_loss_fn, p, w, train_batch, v)


def cg_hypergrad(
    per_source_loss_fn: Callable[..., Any],
    meta_loss_fn: Callable[[PyTree, Any], Array],
    p: Array, w: PyTree, train_batch: Any, meta_batch: Any, *,
    maxiter: int = 100, tol: float = 1e-6, damping: float = 0.0,
) -> Array:
  """Implicit hypergradient with conjugate gradient (``jax.scipy.sparse.linalg.cg``).

  Args:
    per_source_loss_fn: per-source losses.
    meta_loss_fn: upper-level loss.
    p: ``[K]`` logits.
    w: lower-level parameters (approximate ``w*``).
    train_batch: batch defining ``L2``.
    meta_batch: batch defining ``L1``.
    maxiter: CG iterations at most (each one Hessian-vector product, plus one
      for the initial residual).
    tol: relative residual tolerance, ``||r|| <= tol * ||g||``.
    damping: ridge added to the Hessian.

  Returns:
    ``[K]`` hypergradient with respect to ``p``.
  """
  if _is_number(maxiter) and maxiter < 1:
    raise ValueError(f'maxiter must be >= 1, got {maxiter!r}')
  solve = lambda mv, b: jax.scipy.sparse.linalg.cg(
      mv, b, tol=tol, maxiter=maxiter)[0]
  return implicit_hypergrad(per_source_loss_fn, meta_loss_fn, p, w,
                            train_batch, meta_batch, solve=solve,
                            damping=damping)


def neumann_hypergrad(
    per_source_loss_fn: Callable[..., Any],
    meta_loss_fn: Callable[[PyTree, Any], Array],
    p: Array, w: PyTree, train_batch: Any, meta_batch: Any, *,
    num_terms: int = 100, eta: float = 0.1, damping: float = 0.0,
) -> Array:
  """Implicit hypergradient with a truncated Neumann series.

  Args:
    per_source_loss_fn: per-source losses.
    meta_loss_fn: upper-level loss.
    p: ``[K]`` logits.
    w: lower-level parameters (approximate ``w*``).
    train_batch: batch defining ``L2``.
    meta_batch: batch defining ``L1``.
    num_terms: series terms (``num_terms - 1`` Hessian-vector products).
    eta: series step, ``0 < eta < 2 / lambda_max(H + damping I)``.
    damping: ridge added to the Hessian.

  Returns:
    ``[K]`` hypergradient with respect to ``p``.
  """
  if _is_number(num_terms) and num_terms < 1:
    raise ValueError(f'num_terms must be >= 1, got {num_terms!r}')
  if _is_number(eta) and not eta > 0:
    raise ValueError(f'eta must be > 0, got {eta!r}')
  solve = lambda mv, b: neumann_solve(mv, b, num_terms=num_terms, eta=eta)
  return implicit_hypergrad(per_source_loss_fn, meta_loss_fn, p, w,
                            train_batch, meta_batch, solve=solve,
                            damping=damping)


def unrolled_hypergrad(
    per_source_loss_fn: Callable[..., Any],
    meta_loss_fn: Callable[[PyTree, Any], Array],
    p: Array, w0: PyTree, train_batch: Any, meta_batch: Any, *,
    num_steps: int, lr: float,
) -> Array:
  """Hypergradient by backprop through ``num_steps`` steps of gradient descent.

  ``w_{t+1} = w_t - lr * grad_w L2(softmax(p), w_t)`` on the fixed
  ``train_batch``, then the gradient of ``L1(w_T)`` with respect to ``p``
  (:func:`datarater.meta.unroll.meta_loss_and_grad` with ``optax.sgd(lr)``,
  exact reverse mode). For a strongly convex ``L2`` and ``lr < 2 / L`` this
  converges to the implicit hypergradient as ``num_steps`` grows.

  Args:
    per_source_loss_fn: per-source losses.
    meta_loss_fn: upper-level loss.
    p: ``[K]`` logits.
    w0: initial lower-level parameters (not differentiated).
    train_batch: batch defining ``L2`` (reused every step).
    meta_batch: batch defining ``L1``.
    num_steps: ``T >= 1`` (static; a rolled scan over the steps).
    lr: inner step size.

  Returns:
    ``[K]`` gradient of ``L1(w_T(p))`` with respect to ``p``.
  """
  if num_steps < 1:
    raise ValueError(f'num_steps must be >= 1, got {num_steps!r}')
  inner_loss = lambda w, p_, batch: weighted_loss(per_source_loss_fn, p_, w,
                                                  batch)
  batches = jax.tree.map(
      lambda x: jnp.broadcast_to(x, (num_steps,) + jnp.shape(x)), train_batch)
  optimizer = optax.sgd(lr)
  _, grad_p, _ = unroll.meta_loss_and_grad(
      p, w0, optimizer.init(w0), batches, meta_batch, inner_loss_fn=inner_loss,
      outer_loss_fn=meta_loss_fn, optimizer=optimizer, mode='reverse')
  return grad_p
