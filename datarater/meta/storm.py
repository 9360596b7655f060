"""STORM (Heck et al., AAAI 2025, arXiv 2412.12955): self-taught on-the-fly meta loss rescaling.

A small rescaler Omega_omega maps features of the model being trained to one
weight per example. The model trains on rescaled losses; omega is meta-learned
online, one outer step per training step, against a validation batch that is
drawn from the same noisy training set and whose losses Omega rescales too
("meta loss rescaling"; no clean data anywhere):

  w(omega; F) = s / mean_batch(s),  s = sigmoid(Omega_omega(F))      (mean-one weights)
  theta'(omega) = theta - alpha * grad_theta mean_i w_i(omega; F_i) l_i(theta)
  M(omega) = mean_j v_j(omega; F'_j) l_j(theta'(omega))              (validation batch)

with F_i the features of training example i under theta (constants) and
F'_j those of validation example j under the look-ahead model theta'(omega)
(Algorithm 1 of the paper). M is differentiated as the function of omega it
is: through the look-ahead theta'(omega), through the weights v and through
the validation features F'_j(theta'(omega)).

Features (`features`, one row per example): the loss l, the confidence p_y
of the given label, the margin p_y - max_{c != y} p_c, the change of loss and
of confidence since the example's previous observation (0 when it has none),
and the loss standardised within its batch. For sequence outputs each
per-position quantity is averaged over positions.

Trivial solution: rescaling the meta loss lets omega lower M by shrinking
every weight toward 0. The mean-one normalisation forbids it: sum_j v_j = n
for every omega (the weights are a redistribution, never a global scale), so
M = sum_j (v_j / n) l_j is a convex combination of the validation losses and
is bounded below by the smallest of them.

Sources: the paper's abstract and Algorithm 1, and the authors' README
(storm-public: the loss is rescaled in the inner loop and the meta loss in the
outer loop; features come from sample losses and prediction probabilities,
not gradients).

Choices the paper leaves open, made here:
  * Feature set and scaling: the five model-derived quantities above plus the
    within-batch standardised loss (so the rescaler sees where a loss sits
    in the current loss distribution while the overall loss level drifts).
    One deterministic forward pass (G = 1): the project's models have no
    dropout to make G passes differ.
  * "Changes" are taken between consecutive observations of the same example
    as a training example (the method keeps them in per-example tables).
  * The rescaler: an MLP with one tanh hidden layer and a sigmoid output; its
    last layer starts at zero, so training starts from uniform weights (ERM).
  * Normalisation against the all-zero solution: mean-one over the batch,
    the same in the inner update and in the meta loss.
  * Look-ahead: one plain SGD step of size alpha (as in L2RW / Meta-Weight-Net)
    whatever optimizer trains the model; the real model update uses w(omega)
    before the outer step (Algorithm 1: inner step, then outer step).
  * The validation features are not detached: the meta-gradient also flows
    through F'_j(theta'(omega)) (an O(alpha) term), so `meta_loss_and_grad`
    is the exact gradient of `meta_loss`.
  * Validation batches: drawn uniformly from the training set (another
    stream than the training batches); Omega enters the meta loss through the
    weights v, not through the sampling.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import optax

from datarater.meta import unroll
from datarater.weighting.normalize import mean_one

PyTree = Any
LogitsFn = Callable[[PyTree, jax.Array], jax.Array]

FEATURE_NAMES = ('loss', 'confidence', 'margin', 'loss_change', 'confidence_change',
                 'batch_loss_z')
NUM_FEATURES = len(FEATURE_NAMES)


class Observation(NamedTuple):
  """Per-example statistics of one forward pass, and the rescaler features built from them.

  Attributes:
    loss: [B] cross-entropy of the given label.
    confidence: [B] probability of the given label.
    features: [B, NUM_FEATURES] in the order of FEATURE_NAMES.
  """
  loss: jax.Array
  confidence: jax.Array
  features: jax.Array


def features(logits: jax.Array, labels: jax.Array, prev_loss: jax.Array,
             prev_confidence: jax.Array, seen: jax.Array) -> Observation:
  """Rescaler features of a batch from the model's logits and each example's history.

  Args:
    logits: [B, C] or [B, T, C] (sequence outputs are averaged over T).
    labels: [B] or [B, T] integer labels.
    prev_loss: [B] loss at the example's previous observation.
    prev_confidence: [B] confidence at the previous observation.
    seen: [B] bool, whether there is a previous observation (changes are 0 if not).

  Returns:
    Observation with loss, confidence and the [B, NUM_FEATURES] features.
  """
  logp = jax.nn.log_softmax(logits, axis=-1)
  logp_y = jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
  p = jnp.exp(logp)
  p_y = jnp.exp(logp_y)
  p_other = jnp.max(jnp.where(jax.nn.one_hot(labels, logits.shape[-1], dtype=bool), -1.0, p), -1)
  per_example = lambda a: a.reshape(a.shape[0], -1).mean(axis=1)  # noqa: E731
  loss, conf, margin = per_example(-logp_y), per_example(p_y), per_example(p_y - p_other)
  seen = jnp.asarray(seen, bool)
  d_loss = jnp.where(seen, loss - prev_loss, 0.0)
  d_conf = jnp.where(seen, conf - prev_confidence, 0.0)
  z = (loss - loss.mean()) / (loss.std() + 1e-6)
  return Observation(loss, conf, jnp.stack([loss, conf, margin, d_loss, d_conf, z], axis=1))


def rescaler_init(key: jax.Array, hidden: int, num_features: int = NUM_FEATURES) -> dict:
  """Rescaler parameters: {'w1' [F, H], 'b1' [H], 'w2' [H], 'b2' []}; w2 = 0 (uniform start).

  Args:
    key: PRNG key.
    hidden: H, hidden units.
    num_features: F.

  Returns:
    The parameter dict.
  """
  if hidden < 1:
    raise ValueError(f'hidden must be >= 1, got {hidden}.')
  return {'w1': jax.random.normal(key, (num_features, hidden)) / jnp.sqrt(num_features),
          'b1': jnp.zeros((hidden,)), 'w2': jnp.zeros((hidden,)), 'b2': jnp.zeros(())}


def rescaler_scores(omega: dict, feats: jax.Array) -> jax.Array:
  """s = sigmoid(Omega_omega(F)) in (0, 1): [B, F] -> [B] (the unnormalised rescaling)."""
  h = jnp.tanh(feats @ omega['w1'] + omega['b1'])
  return jax.nn.sigmoid(h @ omega['w2'] + omega['b2'])


def rescaler_weights(omega: dict, feats: jax.Array) -> jax.Array:
  """Mean-one weights s_i / mean_j s_j of s = rescaler_scores(omega, feats) (sum = batch size
  whatever omega; `datarater.weighting.normalize.mean_one`): the weights the losses are
  multiplied by."""
  return mean_one(rescaler_scores(omega, feats))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example cross-entropy [B] (mean over positions for sequence outputs)."""
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return ce.reshape(ce.shape[0], -1).mean(axis=1)


def meta_loss(omega: dict, params: PyTree, train: dict, train_feats: jax.Array, val: dict,
              val_history: Tuple[jax.Array, jax.Array, jax.Array], *, logits_fn: LogitsFn,
              lookahead_lr: float, mode: str = 'reverse') -> Tuple[jax.Array, Observation]:
  """The rescaled meta loss M(omega) after a rescaled look-ahead step.

  Args:
    omega: rescaler parameters (differentiated).
    params: model parameters theta (held fixed).
    train: training batch with 'x', 'y'.
    train_feats: [B, F] features of the training batch under theta (constants).
    val: validation batch with 'x', 'y' (drawn from the training set).
    val_history: (prev_loss, prev_confidence, seen) of the validation examples.
    logits_fn: (params, x) -> logits.
    lookahead_lr: alpha, the look-ahead SGD step.
    mode: meta-gradient estimator of `datarater.meta.unroll` (exact modes agree).

  Returns:
    (M, Observation of the validation batch under theta').
  """
  def inner_loss(p, om, batch):
    w = rescaler_weights(om, train_feats)
    return jnp.mean(w * cross_entropy(logits_fn(p, batch['x']), batch['y']))

  sgd = optax.sgd(lookahead_lr)
  stacked = jax.tree.map(lambda a: a[None], {'x': train['x'], 'y': train['y']})
  params_la, _ = unroll.unroll(omega, params, sgd.init(params), stacked,
                               inner_loss_fn=inner_loss, optimizer=sgd, mode=mode)
  logits = logits_fn(params_la, val['x'])
  obs = features(logits, val['y'], *val_history)
  v = rescaler_weights(omega, obs.features)
  return jnp.mean(v * cross_entropy(logits, val['y'])), obs


def meta_loss_and_grad(omega: dict, params: PyTree, train: dict, train_feats: jax.Array,
                       val: dict, val_history, **kwargs) -> Tuple[jax.Array, dict, Observation]:
  """`meta_loss` and its gradient in omega.

  Args:
    omega, params, train, train_feats, val, val_history: as in `meta_loss`.
    **kwargs: logits_fn, lookahead_lr, mode (keyword-only arguments of `meta_loss`).

  Returns:
    (M, grad_omega, Observation of the validation batch).
  """
  (loss, obs), grad = jax.value_and_grad(meta_loss, has_aux=True)(
      omega, params, train, train_feats, val, val_history, **kwargs)
  return loss, grad, obs
