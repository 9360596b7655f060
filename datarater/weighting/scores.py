"""Scores -> weights: batch softmax, top-K filtering, streaming acceptance.

A data rater maps each example x to a scalar score phi(x). This module turns a
batch of scores into what a training step consumes:

* `batch_softmax`: continuous weights sigma_B(phi(x)) summing to one over the
  batch (DataRater's inner-loop weighting; Calian et al. 2025, no temperature).
* `top_k_mask` / `filter_top_k`: keep the K best-scored examples of a batch
  (DataRater's filtering at deployment: draw N/(1-rho), score, drop bottom rho).
* `p_accept`: the probability that an example whose score has CDF value p
  lands in the top K of a batch of B i.i.d. examples, for filtering a stream
  one example at a time.
* `best_rows`: the K best-scored rows of a whole score table (host numpy:
  pruning a dataset once, curating a file).

All jax functions are pure and jit-able; sizes (`k`, `batch_size`) are static
Python ints and are validated eagerly.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np


def _check_static_int(name: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise ValueError(f'{name} must be a static Python int, got {value!r}.')
  return int(value)


def batch_softmax(scores: jax.Array, temperature: float = 1.0) -> jax.Array:
  """Softmax of scores over the batch axis (axis 0).

  Args:
    scores: array of shape [B, ...]; the softmax is taken over axis 0, so each
      trailing index (e.g. several raters) gets its own distribution.
    temperature: positive scalar; weights are softmax(scores / temperature).
      DataRater uses 1.0.

  Returns:
    Array of the same shape and dtype as `scores`, non-negative, summing to 1
    over axis 0.

  Raises:
    ValueError: if `temperature` is a static number <= 0.
  """
  if isinstance(temperature, numbers.Real) and not temperature > 0:
    raise ValueError(f'temperature must be > 0, got {temperature!r}.')
  scores = jnp.asarray(scores)
  return jax.nn.softmax(scores / temperature, axis=0)


def _check_k(k, batch_size: int) -> int:
  k = _check_static_int('k', k)
  if not 1 <= k <= batch_size:
    raise ValueError(f'k must be in [1, {batch_size}] (batch size), got {k}.')
  return k


def top_k_indices(scores: jax.Array, k: int) -> jax.Array:
  """Indices of the k highest scores, best first.

  Ties are broken deterministically in favour of the lower index (this is
  `jax.lax.top_k`'s documented behaviour).

  Args:
    scores: array of shape [B].
    k: static int in [1, B].

  Returns:
    int32 array of shape [k].

  Raises:
    ValueError: if `scores` is not 1-D or `k` is out of range.
  """
  scores = jnp.asarray(scores)
  if scores.ndim != 1:
    raise ValueError(f'scores must have shape [B], got {scores.shape}.')
  k = _check_k(k, scores.shape[0])
  _, idx = jax.lax.top_k(scores, k)
  return idx


def top_k_mask(scores: jax.Array, k: int, dtype=jnp.bool_) -> jax.Array:
  """Mask keeping exactly the k highest scores of a batch.

  Ties are broken in favour of the lower index, so exactly k entries are kept
  even when scores are equal.

  Args:
    scores: array of shape [B].
    k: static int in [1, B].
    dtype: dtype of the mask (bool by default; use a float dtype to multiply
      per-example losses directly).

  Returns:
    Array of shape [B] and `dtype`, with exactly k ones (True).

  Raises:
    ValueError: if `scores` is not 1-D or `k` is out of range.
  """
  idx = top_k_indices(scores, k)
  mask = jnp.zeros(jnp.shape(scores), dtype=jnp.bool_).at[idx].set(True)
  return mask.astype(dtype)


def keep_count(batch_size: int, keep_fraction: float) -> int:
  """Number of examples kept when keeping a fraction of a batch.

  Args:
    batch_size: static int B >= 1.
    keep_fraction: float in (0, 1]; DataRater's 1 - rho.

  Returns:
    max(1, round(keep_fraction * batch_size)).

  Raises:
    ValueError: on a non-positive batch size or a fraction outside (0, 1].
  """
  batch_size = _check_static_int('batch_size', batch_size)
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
  if not 0.0 < keep_fraction <= 1.0:
    raise ValueError(f'keep_fraction must be in (0, 1], got {keep_fraction!r}.')
  return max(1, int(round(keep_fraction * batch_size)))


def filter_top_k(
    scores: jax.Array,
    *,
    k: int | None = None,
    keep_fraction: float | None = None,
) -> jax.Array:
  """Indices of the examples kept by top-K filtering, best first.

  Give exactly one of `k` or `keep_fraction`. With `keep_fraction`,
  k = max(1, round(keep_fraction * B)): to keep N examples after dropping the
  bottom rho, draw B = N / (1 - rho) and use keep_fraction = 1 - rho.

  Args:
    scores: array of shape [B].
    k: static int in [1, B].
    keep_fraction: static float in (0, 1].

  Returns:
    int32 array of shape [k]; gather the batch with
    `jax.tree.map(lambda x: x[idx], batch)`.

  Raises:
    ValueError: if neither or both of `k`, `keep_fraction` are given, or either
      is out of range.
  """
  if (k is None) == (keep_fraction is None):
    raise ValueError('give exactly one of k or keep_fraction.')
  if k is None:
    k = keep_count(jnp.shape(scores)[0], keep_fraction)
  return top_k_indices(scores, k)


def p_accept(cdf_value: jax.Array, batch_size: int, k: int) -> jax.Array:
  """Streaming acceptance probability for top-K-of-B filtering.

  P_accept(p) = sum_{s=0}^{K-1} C(B-1, s) (1-p)^s p^(B-1-s)  (DataRater).

  If the example's score has CDF value p = F(phi(x)) and the other B-1
  examples of a batch are i.i.d. from the same score distribution, each of them
  scores higher with probability 1-p, so the number S of higher-scoring others
  is Binomial(B-1, 1-p) and the example is in the top K iff S <= K-1. This is a
  binomial CDF, computed stably as a regularized incomplete beta function:

    P(S <= K-1) = I_p(B-K, K)      (K < B),      and 1 when K = B.

  Accuracy: exact to ~1e-12 in float64 (enable x64 and pass float64 values).
  In float32 the log-gamma normaliser loses digits as B grows: absolute error
  about 4e-5 at B = 128 and 1e-3 at B = 4096.

  Args:
    cdf_value: array of CDF values p in [0, 1] (any shape; values are clipped
      to [0, 1]).
    batch_size: static int B >= 1.
    k: static int K in [1, B].

  Returns:
    Array of the same shape as `cdf_value` with values in [0, 1],
    non-decreasing in p. Its mean over p ~ U(0, 1) is K / B.

  Raises:
    ValueError: if `batch_size` < 1 or `k` is not in [1, batch_size].
  """
  batch_size = _check_static_int('batch_size', batch_size)
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
  k = _check_k(k, batch_size)
  p = jnp.asarray(cdf_value)
  if not jnp.issubdtype(p.dtype, jnp.floating):
    p = p.astype(jnp.result_type(float))
  p = jnp.clip(p, 0.0, 1.0)
  if k == batch_size:
    return jnp.ones_like(p)
  a = jnp.asarray(batch_size - k, p.dtype)
  b = jnp.asarray(k, p.dtype)
  return jax.scipy.special.betainc(a, b, p)


def best_rows(scores, k: int) -> np.ndarray:
  """Row indices of the k highest scores, in ascending row order (host numpy).

  Ties are broken in favour of the lower row index, as `top_k_indices`.

  Args:
    scores: [N] finite scores (higher = better).
    k: int in [0, N].

  Returns:
    int64 array of k row indices, ascending.
  """
  scores = np.asarray(scores)
  return np.sort(np.argsort(-scores, kind='stable')[:k])


MAX_DISCARD = 0.9  # the largest discard fraction the score distribution may suggest


def mixture_discard_fraction(scores, iters: int = 200) -> dict:
  """The estimated fraction of low-scored examples, from the score distribution alone
  (no labels, no ground truth).

  Fits a two-component 1-D Gaussian mixture to the scores (scikit-learn's EM, started at
  the quartiles); the weight of the lower-scored component is the estimated fraction of
  examples worth discarding (as confident learning estimates a noise rate). Ashman's D of
  the components, D = sqrt(2) |m1 - m2| / sqrt(s1^2 + s2^2), says how separated they
  are (D > 2: two clean populations); it is reported, not used: on one population the
  fit still splits the scores, and the validation split decides whether filtering helps
  (`datarater.methods._filter.auto_choice`).

  Args:
    scores: [N] finite scores, higher = more worth keeping.
    iters: EM iterations.

  Returns:
    {'estimated_fraction': the low component's weight in [0, MAX_DISCARD] rounded to
     0.01, 'separation': D, 'low_weight', 'means' (low, high), 'stds'}.
  """
  from sklearn.mixture import GaussianMixture  # lazily: only 'auto' runs need it
  x = np.asarray(scores, np.float64)
  x = (x - x.mean()) / (x.std() + 1e-12)
  gm = GaussianMixture(2, max_iter=iters, means_init=np.quantile(x, [0.25, 0.75])[:, None],
                       reg_covar=1e-6, random_state=0).fit(x[:, None])
  pi, mu, var = gm.weights_, gm.means_[:, 0], gm.covariances_.reshape(2)
  low = int(np.argmin(mu))
  d = float(np.sqrt(2) * abs(mu[1] - mu[0]) / np.sqrt(var.sum()))
  return {'estimated_fraction': round(min(float(pi[low]), MAX_DISCARD), 2), 'separation': d,
          'low_weight': float(pi[low]), 'means': [float(mu[low]), float(mu[1 - low])],
          'stds': [float(np.sqrt(var[low])), float(np.sqrt(var[1 - low]))]}
