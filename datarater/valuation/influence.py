"""Influence functions: the effect of up-weighting one training example on the validation loss.

Koh & Liang, "Understanding Black-box Predictions via Influence Functions",
ICML 2017 (arXiv 1703.04730), eq. (2) with Cook & Weisberg's up-weighting.

Let w* minimise the training loss R(w) = (1/N) sum_j l(w, z_j) and up-weight
example z_i by epsilon: w*(eps) = argmin R(w) + eps l(w, z_i). By the implicit
function theorem, dw*/deps = -H^{-1} grad l(w*, z_i) with H = grad^2 R(w*),
so the first-order change of the validation loss L_val(w) (the mean loss over
the validation rows) is

    I(z_i) = d L_val(w*(eps)) / d eps |_{eps=0}
           = -grad L_val(w*)^T (H + damping I)^{-1} grad l(w*, z_i),

computed here with damping (Koh & Liang's damping term) and on a parameter
subset (a selector of datarater.valuation.tracin: the last layer by default,
the rest held fixed).

Approximations, stated: (1) w is the trained parameters, not an exact
minimiser, so grad R(w) != 0 is ignored; (2) H is the Hessian of the training
loss at w restricted to the selected subset (for the last layer of a network
under cross-entropy this is convex: the logits are linear in it), regularised
by `damping` (needed when H is singular or indefinite; it biases I toward the
TracIn-like -grad L_val . grad l / damping as damping grows); (3) the solve
(H + damping I) s = grad L_val is iterative: conjugate gradient on
Hessian-vector products (forward-over-reverse, never forming H), stopped at
`tol` or `maxiter`, or a truncated Neumann series. The solvers are the ones of
datarater.bilevel.implicit (`jax.scipy.sparse.linalg.cg`, as its
cg_hypergrad, and its `neumann_solve`). H is symmetric, so
-grad L_val^T H^{-1} grad l_i = -s . grad l_i with one solve for all i.

Sign: I > 0 means up-weighting z_i raises the validation loss (a harmful
example); -I is the estimated drop of the validation loss per unit of extra
weight, i.e. 'higher = more valuable' (what a method keeps).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from datarater.bilevel.implicit import neumann_solve
from datarater.valuation.tracin import (Selector, last_layer, mean_grad, per_example_grads,
                                        tree_dot)

SOLVERS = ('cg', 'neumann')


def hvp(loss_fn: Callable, subset, v):
  """Hessian-vector product grad^2 loss_fn(subset) v (forward-over-reverse)."""
  return jax.jvp(jax.grad(loss_fn), (subset,), (v,))[1]


def inverse_hvp(train_loss: Callable, params, g, *, selector: Selector = last_layer,
                damping: float = 0.0, solver: str = 'cg', maxiter: int = 100,
                tol: float = 1e-6, neumann_eta: float = 0.1):
  """s ~ (H + damping I)^{-1} g with H = grad^2 train_loss on the selected subset.

  Args:
    train_loss: params -> scalar, the training loss R (mean over the rows the
      Hessian is taken on).
    params: where H is taken (the trained parameters).
    g: a pytree shaped like the selected subset.
    selector: the parameter subset.
    damping: >= 0, added to H's diagonal.
    solver: 'cg' (conjugate gradient, `jax.scipy.sparse.linalg.cg`; H + damping I
      must be positive definite) or 'neumann' (`bilevel.implicit.neumann_solve`:
      `maxiter` terms of step `neumann_eta` < 2 / lambda_max).
    maxiter: CG iterations or Neumann terms.
    tol: CG's relative residual tolerance.
    neumann_eta: Neumann step.

  Returns:
    s, shaped like the subset.

  Raises:
    ValueError: bad solver, damping or maxiter (concrete values only).
  """
  if solver not in SOLVERS:
    raise ValueError(f'solver must be one of {SOLVERS}, got {solver!r}')
  if isinstance(damping, (int, float)) and not damping >= 0:
    raise ValueError(f'damping must be >= 0, got {damping!r}')
  if isinstance(maxiter, int) and maxiter < 1:
    raise ValueError(f'maxiter must be >= 1, got {maxiter!r}')
  subset, merge = selector(params)
  loss = lambda s: train_loss(merge(s))  # noqa: E731

  def matvec(v):
    return jax.tree.map(lambda hv, vi: hv + damping * vi, hvp(loss, subset, v), v)

  if solver == 'cg':
    return jax.scipy.sparse.linalg.cg(matvec, g, tol=tol, maxiter=maxiter)[0]
  return neumann_solve(matvec, g, num_terms=maxiter, eta=neumann_eta)


def influence_from_ihvp(loss_fn: Callable, params, s, x, y, selector: Selector = last_layer):
  """I(z_i) = -s . grad l(w, z_i) for a batch of rows, s = (H + damping I)^{-1} grad L_val.

  Args:
    loss_fn: (params, x, y) -> scalar loss of one example.
    params: the trained parameters.
    s: `inverse_hvp` of the validation gradient.
    x, y: training rows [B, ...].
    selector: the same subset as `s`.

  Returns:
    [B] influences on the validation loss (positive = harmful).
  """
  grads = per_example_grads(loss_fn, params, x, y, selector)
  return -jax.vmap(lambda gi: tree_dot(gi, s))(grads)


def influence(loss_fn: Callable, params, x, y, val_x, val_y, *, train_loss: Callable | None = None,
              selector: Selector = last_layer, damping: float = 0.0, solver: str = 'cg',
              maxiter: int = 100, tol: float = 1e-6, neumann_eta: float = 0.1):
  """Influence of up-weighting each training row on the mean validation loss (module docstring).

  Args:
    loss_fn: (params, x, y) -> scalar loss of one example.
    params: the trained parameters (approximately argmin of the training loss).
    x, y: the training rows [N, ...] scored.
    val_x, val_y: the validation rows [M, ...].
    train_loss: params -> scalar training loss whose Hessian is used; default:
      the mean of loss_fn over (x, y).
    selector, damping, solver, maxiter, tol, neumann_eta: as `inverse_hvp`.

  Returns:
    [N] I(z_i) = -grad L_val^T (H + damping I)^{-1} grad l(z_i) (positive = harmful;
    negate for 'higher = more valuable').
  """
  if train_loss is None:
    train_loss = lambda p: jnp.mean(jax.vmap(loss_fn, in_axes=(None, 0, 0))(p, x, y))  # noqa: E731
  g_val = mean_grad(loss_fn, params, val_x, val_y, selector)
  s = inverse_hvp(train_loss, params, g_val, selector=selector, damping=damping, solver=solver,
                  maxiter=maxiter, tol=tol, neumann_eta=neumann_eta)
  return influence_from_ihvp(loss_fn, params, s, x, y, selector)
