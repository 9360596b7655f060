"""EL2N and GraNd data-pruning scores.

Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet: Finding Important
Examples Early in Training", NeurIPS 2021 (arXiv 2107.07075).

    EL2N(x, y)  = E_w || softmax(f_w(x)) - onehot(y) ||_2
    GraNd(x, y) = E_w || grad_w loss(f_w(x), y) ||_2

The expectation is over independently initialised models w, taken early in
training (EL2N: e.g. epoch 20 of 200 on CIFAR-10, 10 models) or at / near
initialisation (GraNd). High scores are kept when pruning; under label noise
the very highest scores are dominated by the mislabelled examples.

For sequence targets (labels [B, L], logits [B, L, V]) EL2N is the per-token
error norm averaged over the (unmasked) tokens of each sequence.
"""

import jax
import jax.numpy as jnp


def el2n_scores(logits, labels, mask=None):
  """EL2N = ||softmax(logits) - onehot(label)||_2 for one model.

  Args:
    logits: [B, C] class logits, or [B, L, V] token logits.
    labels: [B] int labels, or [B, L] int token targets.
    mask: optional [B, L] weights (1 for real tokens, 0 for padding); sequence
      targets only. Default: every token counts.

  Returns:
    [B] float32 scores (for sequences: the mean over tokens of each token's
    error norm; 0 for a sequence with no unmasked token).
  """
  logits = jnp.asarray(logits, jnp.float32)
  labels = jnp.asarray(labels)
  if logits.ndim not in (2, 3) or labels.shape != logits.shape[:-1]:
    raise ValueError('logits must be [B, C] with labels [B], or [B, L, V] with '
                     f'labels [B, L]; got {logits.shape} and {labels.shape}')
  error = jax.nn.softmax(logits) - jax.nn.one_hot(labels, logits.shape[-1])
  norms = jnp.linalg.norm(error, axis=-1)
  if logits.ndim == 2:
    if mask is not None:
      raise ValueError('mask is only for sequence targets [B, L]')
    return norms
  if mask is None:
    return jnp.mean(norms, axis=1)
  mask = jnp.asarray(mask, jnp.float32)
  if mask.shape != labels.shape:
    raise ValueError(f'mask must have shape {labels.shape}, got {mask.shape}')
  return jnp.sum(norms * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)


def grand_scores(loss_fn, params, x, y):
  """GraNd = ||grad_params loss_fn(params, x_i, y_i)||_2 per example, one model.

  The per-example gradients come from ``jax.vmap(jax.grad(loss_fn))`` over the
  leading axis of ``x`` and ``y``; the norm is over all parameter leaves.

  Args:
    loss_fn: loss_fn(params, x, y) -> scalar loss of ONE example (x, y without
      the batch axis). For a model that wants a batch, wrap it, e.g.
      ``lambda p, x, y: batched_loss(p, x[None], y[None])``.
    params: parameter pytree.
    x: [B, ...] inputs.
    y: [B, ...] targets.

  Returns:
    [B] float32 gradient norms.
  """
  grads = jax.vmap(jax.grad(loss_fn), in_axes=(None, 0, 0))(params, x, y)
  squares = [jnp.sum(jnp.square(g.astype(jnp.float32)).reshape(g.shape[0], -1),
                     axis=1)
             for g in jax.tree_util.tree_leaves(grads)]
  return jnp.sqrt(sum(squares))


def _mean_over_models(score_fn, stacked_params):
  per_model = jax.vmap(score_fn)(stacked_params)  # [M, B]
  return jnp.mean(per_model, axis=0)


def ensemble_el2n(apply_fn, stacked_params, x, y, mask=None):
  """EL2N averaged over independently initialised models.

  Args:
    apply_fn: apply_fn(params, x) -> logits [B, C] or [B, L, V].
    stacked_params: parameter pytree whose leaves carry a leading model axis
      [M, ...] (e.g. ``jax.vmap(init)(keys)``); vmapped over.
    x: [B, ...] inputs.
    y: [B] or [B, L] int targets.
    mask: optional [B, L] token mask (see ``el2n_scores``).

  Returns:
    [B] float32 mean EL2N over the M models.
  """
  return _mean_over_models(
      lambda p: el2n_scores(apply_fn(p, x), y, mask), stacked_params)


def ensemble_grand(loss_fn, stacked_params, x, y):
  """GraNd averaged over independently initialised models.

  Args:
    loss_fn: per-example loss, as in ``grand_scores``.
    stacked_params: parameter pytree with a leading model axis [M, ...].
    x: [B, ...] inputs.
    y: [B, ...] targets.

  Returns:
    [B] float32 mean gradient norm over the M models.
  """
  return _mean_over_models(lambda p: grand_scores(loss_fn, p, x, y),
                           stacked_params)
