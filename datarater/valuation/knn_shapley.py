"""Exact Shapley values of the K-nearest-neighbour classifier (KNN-Shapley).

Jia, Dao, Wang, Hubis, Gurel, Li, Zhang, Spanos, "Efficient task-specific data
valuation for nearest neighbor algorithms", VLDB 2019 (arXiv 1908.08619),
Theorem 1.

For one validation point (x', y') the utility of a training subset S is the
unweighted KNN classifier's likelihood of the right label,

    U(S) = (1/K) sum_{k=1}^{min(K, |S|)} 1[y_{alpha_k(S)} = y'],   U({}) = 0,

where alpha_k(S) is the k-th nearest point of S to x'. Sort all N training
points by distance to x', alpha_1 (nearest) ... alpha_N (farthest). The exact
Shapley values of U are then given by the recursion from the farthest point:

    s_{alpha_N} = 1[y_{alpha_N} = y'] / N
    s_{alpha_i} = s_{alpha_{i+1}}
                  + (1[y_{alpha_i} = y'] - 1[y_{alpha_{i+1}} = y']) / K * min(K, i) / i,

i = N-1, ..., 1 (O(N log N) per validation point instead of O(2^N)). The
utility of a validation set is the mean of the per-point utilities, so its
Shapley values are the mean over validation points (Shapley values are linear
in the utility). Distance: Euclidean; ties are broken by the lower training
index first (a stable sort), and the recursion is exact for that order.

Values sum to U(D) - U({}) (efficiency), are positive for points whose label
agrees with their neighbourhood in the validation set and negative for points
that push the right label out of the K nearest: higher = more valuable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _sq_distances(val_x, train_x):
  """Squared Euclidean distances [M, N] (the order is all the recursion needs)."""
  sq = (jnp.sum(val_x ** 2, axis=1)[:, None] + jnp.sum(train_x ** 2, axis=1)[None, :]
        - 2.0 * val_x @ train_x.T)
  return jnp.maximum(sq, 0.0)


def knn_shapley_per_point(train_x, train_y, val_x, val_y, k: int):
  """Exact KNN-Shapley values of every training point for each validation point.

  Args:
    train_x: [N, D] training features.
    train_y: [N] int training labels.
    val_x: [M, D] validation features.
    val_y: [M] int validation labels.
    k: K, the number of neighbours (>= 1).

  Returns:
    [M, N] float: row m holds the Shapley values of the N training points for
    the utility of validation point m (module docstring). Memory O(M N): call
    it on chunks of validation points (`knn_shapley`).
  """
  train_x = jnp.asarray(train_x, jnp.float32)
  val_x = jnp.asarray(val_x, jnp.float32)
  n = train_x.shape[0]
  order = jnp.argsort(_sq_distances(val_x, train_x), axis=1, stable=True)  # [M, N] nearest first
  match = (jnp.asarray(train_y)[order] == jnp.asarray(val_y)[:, None]).astype(jnp.float32)
  i = jnp.arange(1, n, dtype=jnp.float32)  # ranks 1..N-1 (1-based) of alpha_i
  step = (match[:, :-1] - match[:, 1:]) / k * jnp.minimum(k, i) / i  # s_{alpha_i} - s_{alpha_{i+1}}
  last = match[:, -1:] / n
  # s_{alpha_i} = s_{alpha_N} + sum_{j >= i} step_j: a reversed cumulative sum.
  sorted_values = jnp.concatenate(
      [last + jnp.cumsum(step[:, ::-1], axis=1)[:, ::-1], last], axis=1)
  rows = jnp.arange(order.shape[0])[:, None]
  return jnp.zeros_like(sorted_values).at[rows, order].set(sorted_values)


_per_point = jax.jit(knn_shapley_per_point, static_argnames='k')


def knn_shapley(train_x, train_y, val_x, val_y, k: int, chunk_size: int = 256) -> np.ndarray:
  """KNN-Shapley values of the training points for the mean utility over validation points.

  Vectorised over validation points, in chunks of `chunk_size` (memory
  O(chunk_size * N)); one compiled program serves every chunk (the last one is
  padded and its padding rows get weight 0).

  Args:
    train_x: [N, D] training features (e.g. embeddings).
    train_y: [N] int training labels.
    val_x: [M, D] validation features.
    val_y: [M] int validation labels.
    k: K >= 1, the number of neighbours.
    chunk_size: validation points per chunk (>= 1).

  Returns:
    [N] float64 numpy: the mean over validation points of the per-point
    Shapley values (higher = more valuable).

  Raises:
    ValueError: k or chunk_size < 1, mismatched shapes, or no validation point.
  """
  train_x, val_x = np.asarray(train_x), np.asarray(val_x)
  train_y, val_y = np.asarray(train_y), np.asarray(val_y)
  if not (isinstance(k, (int, np.integer)) and k >= 1):
    raise ValueError(f'k must be an int >= 1, got {k!r}')
  if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
    raise ValueError(f'chunk_size must be an int >= 1, got {chunk_size!r}')
  if train_x.ndim != 2 or val_x.ndim != 2 or train_x.shape[1] != val_x.shape[1]:
    raise ValueError(f'train_x [N, D] and val_x [M, D] must share D, got {train_x.shape} '
                     f'and {val_x.shape}')
  if train_y.shape != (len(train_x),) or val_y.shape != (len(val_x),) or not len(val_x):
    raise ValueError('train_y [N] and val_y [M] must match their features, M >= 1')
  m = len(val_x)
  size = min(chunk_size, m)
  total = np.zeros(len(train_x))
  for start in range(0, m, size):
    idx = np.arange(start, start + size)
    real = idx < m
    idx = np.where(real, idx, 0)
    values = np.asarray(_per_point(train_x, train_y, val_x[idx], val_y[idx], k=int(k)))
    total += values[real].sum(axis=0)
  return total / m
