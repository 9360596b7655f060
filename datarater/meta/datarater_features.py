"""Loss features and a noise-tolerant outer loss for DataRater without clean data.

With a meta split drawn from the same noisy distribution as the training data,
the paper's outer loss (mean cross-entropy on the meta batch) stops rewarding
clean examples once the inner model is confident: the cross-entropy of the
noisy labels is lowest for a model that spreads probability over wrong labels,
which training on wrong labels does. Two remedies live here:

* `loss_features`: per-example features of the inner model's losses that say
  where each loss sits in the batch's empirical loss distribution (the 2026
  paper "On the Difficulty of Learning a Meta-network for Training Data
  Selection": features that encode an example's position in its empirical
  distribution correlate with quality). The rater sees them next to the
  example itself.
* `mae_loss`: 1 - p_y, the mean absolute error between the softmax and the
  one-hot label, a symmetric loss: under symmetric label noise at rate
  r < (C - 1) / C its noisy expectation is an increasing affine function of
  the clean one (Ghosh et al. 2017), so a meta split with symmetric noise
  still ranks inner models as clean data would.
* `trimmed_mean`: the meta batch's cross-entropy over its lower-loss rows only.
  On text, a corrupted meta row (random bytes) has a far higher loss than a
  clean one, and the cross-entropy of the corrupted meta rows asks the rater to
  up-weight corrupted training rows (it rewards a model that predicts noise);
  leaving the highest-loss meta rows out removes that pull
  (`experiments/meta_signal.py` measures it by model age).

Pure jax; no config.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

FEATURES = ('loss', 'loss_rank', 'loss_z')


def loss_rank(losses: jax.Array, real: jax.Array | None = None) -> jax.Array:
  """Position of each loss in the batch's empirical distribution, in [0, 1].

  Args:
    losses: [B] per-example losses.
    real: optional bool [B]: the batch's real rows (False: padding, ranked after every real
      row and left out of the real rows' ranks).

  Returns:
    [B]: rank / (n - 1) among the n real rows, 0 for the smallest loss and 1 for the
    largest (ties broken by position); 0.5 for a batch of one real row.
  """
  if real is not None:
    losses = jnp.where(real, losses, jnp.inf)
  n = losses.shape[0] if real is None else real.sum()
  ranks = jnp.argsort(jnp.argsort(losses, stable=True), stable=True)
  return jnp.where(n > 1, ranks / jnp.maximum(n - 1, 1), 0.5)


def loss_features(losses: jax.Array, names: tuple[str, ...],
                  real: jax.Array | None = None) -> jax.Array:
  """Per-example features of a batch of losses, treated as constants (no gradient).

  Under `stop_gradient`, the meta-gradient of a rater that sees them is exact for the
  surrogate in which the features are inputs, like the example itself: it leaves out the
  path inner parameters -> losses -> features -> weights.

  Args:
    losses: [B] per-example losses of the model being trained.
    names: features to stack, each one of FEATURES: 'loss' (the loss
      itself), 'loss_rank' (`loss_rank`), 'loss_z' (the loss standardised
      within the batch, (l - mean) / (std + 1e-6)).
    real: optional bool [B] of the batch's real rows (an evaluation batch's padding is
      False): ranks, mean and std are taken over the real rows only.

  Returns:
    [B, len(names)] array under `stop_gradient`.

  Raises:
    ValueError: if a name is not one of FEATURES.
  """
  unknown = [n for n in names if n not in FEATURES]
  if unknown:
    raise ValueError(f'unknown loss features {unknown}; expected names from {FEATURES}.')
  losses = jax.lax.stop_gradient(losses)
  w = jnp.ones_like(losses) if real is None else real.astype(losses.dtype)
  mean = jnp.sum(w * losses) / jnp.sum(w)
  std = jnp.sqrt(jnp.sum(w * (losses - mean) ** 2) / jnp.sum(w))
  columns = {'loss': lambda: losses,
             'loss_rank': lambda: loss_rank(losses, real),
             'loss_z': lambda: (losses - mean) / (std + 1e-6)}
  return jnp.stack([columns[n]() for n in names], axis=1)


def mae_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """1 - p_y per example (mean over positions for sequence outputs).

  Args:
    logits: [B, C] or [B, T, C].
    labels: [B] or [B, T] integer labels.

  Returns:
    [B] losses in [0, 1].
  """
  p = jax.nn.softmax(logits, axis=-1)
  p_y = jnp.take_along_axis(p, labels[..., None], axis=-1)[..., 0]
  return (1.0 - p_y).reshape(p_y.shape[0], -1).mean(axis=1)


def kept_rows(losses: jax.Array, trim: float, trim_low: float = 0.0) -> jax.Array:
  """Indices of the rows a trimmed meta loss keeps: the B losses ranked (under
  `stop_gradient`), the round(trim_low * B) lowest and the round(trim * B) highest left out,
  at least one row kept.

  Args:
    losses: [B] per-example losses (B static).
    trim: fraction of the highest losses left out, in [0, 1).
    trim_low: fraction of the lowest losses left out, in [0, 1 - trim).

  Returns:
    [k] int indices, k = max(1, B - round(trim * B) - round(trim_low * B)).
  """
  b = losses.shape[0]
  low = int(round(trim_low * b))
  k = max(1, b - int(round(trim * b)) - low)
  low = min(low, b - k)
  return jnp.argsort(jax.lax.stop_gradient(losses), stable=True)[low:low + k]


def trimmed_mean(losses: jax.Array, trim: float, trim_low: float = 0.0) -> jax.Array:
  """Mean of the losses `kept_rows` keeps (the outer loss 'trimmed_ce'); the gradient flows
  through the kept losses, not through the choice.

  Args:
    losses: [B] per-example losses (B static).
    trim: fraction of the highest losses left out, in [0, 1).
    trim_low: fraction of the lowest losses left out (0: one-sided).

  Returns:
    Scalar.
  """
  return losses[kept_rows(losses, trim, trim_low)].mean()


def rated_trimmed_mean(losses: jax.Array, scores: jax.Array, trim: float, trim_low: float = 0.0,
                       temperature: float = 1.0) -> jax.Array:
  """The outer loss 'rated_ce': the losses of the rows `trimmed_mean` keeps, weighted by the
  softmax of the rater's scores over those rows (the weights the rater would give them as an
  inner batch), instead of equally.

  The scores are data (the rater's current scores of the meta rows, computed before the
  unroll); no gradient flows through them or through the choice of rows, so the
  meta-gradient asks only which *training* rows lower the loss on the meta rows the rater
  currently trusts.

  Args:
    losses: [B] per-example losses (B static).
    scores: [B] rater scores of the same rows.
    trim: fraction of the highest losses left out, in [0, 1).
    trim_low: fraction of the lowest losses left out.
    temperature: softmax temperature (method.temperature).

  Returns:
    Scalar.
  """
  keep = kept_rows(losses, trim, trim_low)
  w = jax.nn.softmax(jax.lax.stop_gradient(scores[keep]) / temperature)
  return jnp.sum(w * losses[keep])
