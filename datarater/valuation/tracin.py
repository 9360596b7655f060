"""TracIn (TracInCP): training-data influence by tracing gradient descent over checkpoints.

Pruthi, Liu, Kale, Sundararajan, "Estimating Training Data Influence by
Tracing Gradient Descent", NeurIPS 2020 (arXiv 2002.08484), eq. (3):

    TracInCP(z, z') = sum_{c=1}^{C} eta_c  grad l(w_c, z) . grad l(w_c, z'),

over checkpoints w_c saved during training, eta_c the learning rate in force
at checkpoint c (the first-order change of the loss on z' when SGD takes a
step on z: a positive value = a proponent of z', training on z lowered its
loss). The value of a training example for a validation set is the mean over
its M points, which by linearity is one dot product per checkpoint with the
mean validation gradient:

    TracIn(z) = sum_c eta_c  grad l(w_c, z) . (1/M) sum_m grad l(w_c, z'_m).

Higher = more valuable (it helped the validation loss go down). The gradients
are taken with respect to a parameter subset chosen by a *selector*: the last
layer by default (the paper's TracIn-last, cheap and the variant it uses at
scale), all parameters as an option. With an optimizer other than SGD (Adam),
eta_c grad l . grad l' is the paper's first-order approximation, not the
actual change of the loss.

Selectors (shared with datarater.valuation.influence): a selector is
`params -> (subset, merge)` with `merge(subset') ->` the full params with the
subset replaced; gradients are taken through `merge`.

- `last_layer`: the last top-level entry of a params dict, in insertion order
  (flax's `model.init` creates it in call order; a dict rebuilt by
  jax.tree.unflatten has sorted keys, so pass `subtree(path)` with the output
  layer's path there).
- `subtree(path)`: the entry at a tuple of keys.
- `all_params`: the whole pytree.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

PyTree = Any
Selector = Callable[[PyTree], tuple]


def all_params(params):
  """Selector of every parameter."""
  return params, lambda subset: subset


def subtree(path: Sequence) -> Selector:
  """Selector of the entry of a nested params dict at `path` (a tuple of keys)."""
  path = tuple(path)
  if not path:
    return all_params

  def select(params):
    node = params
    for key in path:
      node = node[key]

    def merge(subset):
      def put(tree, keys):
        if not keys:
          return subset
        return {**tree, keys[0]: put(tree[keys[0]], keys[1:])}
      return put(params, path)
    return node, merge
  return select


def last_layer(params):
  """Selector of the last top-level entry of a params dict (insertion order; module docstring)."""
  if not isinstance(params, dict) or not params:
    raise ValueError('last_layer needs a non-empty params dict; use subtree(path) or all_params')
  return subtree((list(params)[-1],))(params)


def tree_dot(a: PyTree, b: PyTree):
  """sum over leaves of the elementwise product (a flat dot product of two pytrees)."""
  return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def per_example_grads(loss_fn: Callable, params, x, y, selector: Selector = last_layer):
  """Gradients of loss_fn(params, x_i, y_i) w.r.t. the selected subset, one per row.

  Args:
    loss_fn: (params, x, y) -> scalar loss of one example.
    params: model parameters.
    x, y: a batch [B, ...].
    selector: the parameter subset (module docstring).

  Returns:
    The subset's pytree with a leading [B] axis.
  """
  subset, merge = selector(params)
  grad = jax.grad(lambda s, xi, yi: loss_fn(merge(s), xi, yi))
  return jax.vmap(grad, in_axes=(None, 0, 0))(subset, x, y)


def mean_grad(loss_fn: Callable, params, x, y, selector: Selector = last_layer):
  """Gradient of the mean loss (1/M) sum_m loss_fn(params, x_m, y_m) w.r.t. the subset."""
  subset, merge = selector(params)

  def mean_loss(s):
    return jnp.mean(jax.vmap(loss_fn, in_axes=(None, 0, 0))(merge(s), x, y))
  return jax.grad(mean_loss)(subset)


def tracin_from_val_grads(loss_fn: Callable, checkpoints: Sequence, val_grads: Sequence, x, y,
                          selector: Selector = last_layer):
  """TracIn of a batch of training rows given each checkpoint's mean validation gradient.

  Args:
    loss_fn: (params, x, y) -> scalar loss of one example.
    checkpoints: C pairs (params_c, eta_c).
    val_grads: C subset gradients of the mean validation loss (`mean_grad` at each
      checkpoint).
    x, y: training rows [B, ...].
    selector: the parameter subset.

  Returns:
    [B] sum_c eta_c grad l(w_c, z_i) . val_grads[c].
  """
  total = 0.0
  for (params, lr), g_val in zip(checkpoints, val_grads, strict=True):
    grads = per_example_grads(loss_fn, params, x, y, selector)
    total = total + lr * jax.vmap(lambda g: tree_dot(g, g_val))(grads)
  return total


def tracin(loss_fn: Callable, checkpoints: Sequence, x, y, val_x, val_y,
           selector: Selector = last_layer):
  """TracInCP values of training rows for the mean loss of validation rows (module docstring).

  Args:
    loss_fn: (params, x, y) -> scalar loss of one example.
    checkpoints: C pairs (params_c, eta_c), C >= 1.
    x, y: training rows [B, ...].
    val_x, val_y: validation rows [M, ...].
    selector: the parameter subset (`last_layer` default, `all_params`, `subtree(path)`).

  Returns:
    [B] TracIn values (higher = more valuable).

  Raises:
    ValueError: no checkpoint.
  """
  checkpoints = list(checkpoints)
  if not checkpoints:
    raise ValueError('checkpoints must hold at least one (params, lr) pair')
  val_grads = [mean_grad(loss_fn, p, val_x, val_y, selector) for p, _ in checkpoints]
  return tracin_from_val_grads(loss_fn, checkpoints, val_grads, x, y, selector)
