"""Dataset cartography: confidence, variability and correctness.

Swayamdipta, Schwartz, Lourie, Wang, Hajishirzi, Smith, Choi, "Dataset
Cartography: Mapping and Diagnosing Datasets with Training Dynamics",
EMNLP 2020 (arXiv 2009.10795).

With p_e = p_theta(e)(y* | x) the model's probability of the gold label after
epoch e = 1..E,

    confidence  mu  = (1 / E) sum_e p_e
    variability sig = sqrt((1 / E) sum_e (p_e - mu)^2)   (population std)
    correctness     = (1 / E) sum_e [argmax p_theta(e)(. | x) == y*]

Easy-to-learn examples have high confidence and low variability, ambiguous
ones high variability, and hard-to-learn ones (where mislabelled examples
sit) low confidence and low variability.

The state keeps running float32 sums of p, p^2 and correctness, so
sig^2 = E[p^2] - E[p]^2 (clamped at 0). The subtraction cancels: a constant
sequence can read sig ~ 1e-3 instead of 0 (measured up to 2e-3 after 100
epochs), while a real spread sig is off by only about 2e-6 / sig. Both are far
below the spread that separates the map's regions.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class CartographyState(NamedTuple):
  """Running sums over the N training examples.

  prob_sum: [N] float32, sum of p(y* | x) over the recorded epochs.
  prob_sq_sum: [N] float32, sum of p(y* | x)^2.
  correct_sum: [N] float32, number of epochs predicted correctly.
  count: [N] int32, number of recorded epochs.
  """
  prob_sum: jax.Array
  prob_sq_sum: jax.Array
  correct_sum: jax.Array
  count: jax.Array


def cartography_init(num_examples):
  """Empty cartography state for ``num_examples`` examples."""
  zeros = jnp.zeros((num_examples,), jnp.float32)
  return CartographyState(prob_sum=zeros, prob_sq_sum=zeros, correct_sum=zeros,
                          count=jnp.zeros((num_examples,), jnp.int32))


def cartography_update(state, index, logits, labels, valid=None):
  """Records one epoch's predictions on a batch.

  Args:
    state: CartographyState.
    index: [B] int example ids in [0, N).
    logits: [B, C] logits of the model at this epoch.
    labels: [B] int gold labels y*.
    valid: optional [B] bool; False entries are ignored.

  Returns:
    The updated CartographyState.
  """
  index, logits, labels = (jnp.asarray(a) for a in (index, logits, labels))
  if logits.ndim != 2 or labels.shape != logits.shape[:1] or (
      index.shape != labels.shape):
    raise ValueError('expected index [B], logits [B, C], labels [B]; got '
                     f'{index.shape}, {logits.shape}, {labels.shape}')
  probs = jax.nn.softmax(logits.astype(jnp.float32))
  p = jnp.take_along_axis(probs, labels[:, None], axis=1)[:, 0]
  correct = (jnp.argmax(logits, axis=1) == labels).astype(jnp.float32)
  n = state.count.shape[0]
  if valid is not None:
    index = jnp.where(jnp.asarray(valid, bool), index, n)  # n: dropped
  return CartographyState(
      prob_sum=state.prob_sum.at[index].add(p, mode='drop'),
      prob_sq_sum=state.prob_sq_sum.at[index].add(p * p, mode='drop'),
      correct_sum=state.correct_sum.at[index].add(correct, mode='drop'),
      count=state.count.at[index].add(1, mode='drop'))


def cartography_scores(state):
  """The three cartography coordinates of every example.

  Args:
    state: CartographyState.

  Returns:
    (confidence, variability, correctness), each [N] float32; NaN for
    examples never recorded.
  """
  count = state.count.astype(jnp.float32)
  count = jnp.where(state.count > 0, count, jnp.nan)
  confidence = state.prob_sum / count
  variance = jnp.maximum(state.prob_sq_sum / count - confidence**2, 0.0)
  return confidence, jnp.sqrt(variance), state.correct_sum / count
