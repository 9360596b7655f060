"""Self-supervised prototype pruning score (label-free): distance to the nearest k-means prototype.

Sorscher, Geirhos, Shekhar, Ganguli, Morcos, "Beyond neural scaling laws:
beating power law scaling via data pruning", NeurIPS 2022 (arXiv 2206.14486),
section 5 ("self-supervised prototype metric").

Embeddings e_i are L2-normalised; k-means (spherical: centroids renormalised
to the unit sphere after each Lloyd update) runs for a fixed number of Lloyd
iterations from a seeded k-means++ (or random-row) initialisation; the score of
example i is its cosine distance to the nearest prototype,

    d_i = min_k (1 - <e_i, c_k>),   ||e_i|| = ||c_k|| = 1.

Sign convention: d_i is a *difficulty* (far from every prototype = hard /
atypical). The paper keeps the hard (far) examples when data is plentiful and
the easy (near) ones when it is scarce; `keep_scores(d, keep)` returns
'higher = keep' scores for either choice: keep='hard' -> +d, keep='easy' -> -d.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

INITS = ('kmeans++', 'random')
KEEP = ('hard', 'easy')


def normalize(e, eps: float = 1e-12):
  """Rows of e scaled to unit L2 norm (zero rows stay zero)."""
  e = jnp.asarray(e, jnp.float32)
  return e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), eps)


def cosine_distances(e, centroids):
  """[N, K] 1 - <e_i, c_k> for unit-norm rows of e and centroids."""
  return 1.0 - e @ centroids.T


def kmeans_init(e, k: int, key, init: str = 'kmeans++'):
  """Initial centroids [k, D]: k-means++ (Arthur & Vassilvitskii 2007: each next centre drawn
  with probability proportional to its distance to the nearest centre so far; cosine distance
  here) or k distinct random rows ('random'). `e` must be unit-norm."""
  n = e.shape[0]
  if init == 'random':
    return e[jax.random.choice(key, n, (k,), replace=False)]
  keys = jax.random.split(key, k)
  first = jax.random.randint(keys[0], (), 0, n)
  centroids = jnp.zeros((k, e.shape[1]), e.dtype).at[0].set(e[first])
  nearest = jnp.maximum(1.0 - e @ e[first], 0.0)

  def body(j, carry):
    centroids, nearest = carry
    p = nearest / jnp.maximum(nearest.sum(), 1e-30)
    pick = jax.random.choice(keys[j], n, p=jnp.where(nearest.sum() > 0, p, 1.0 / n))
    centroids = centroids.at[j].set(e[pick])
    return centroids, jnp.minimum(nearest, jnp.maximum(1.0 - e @ e[pick], 0.0))

  return jax.lax.fori_loop(1, k, body, (centroids, nearest))[0]


def kmeans(e, k: int, key, iterations: int = 10, init: str = 'kmeans++'):
  """Spherical k-means by `iterations` Lloyd steps (assign to the nearest centroid, set each
  centroid to the normalised mean of its rows; an empty cluster keeps its centroid).

  Args:
    e: [N, D] embeddings (normalised here).
    k: clusters, 1 <= k <= N.
    key: PRNG key of the initialisation.
    iterations: Lloyd iterations (>= 0).
    init: 'kmeans++' or 'random'.

  Returns:
    (centroids [k, D] unit-norm, assignment [N] int).

  Raises:
    ValueError: bad k, iterations or init.
  """
  e = normalize(e)
  n = e.shape[0]
  if init not in INITS:
    raise ValueError(f'init must be one of {INITS}, got {init!r}')
  if not (isinstance(k, (int, np.integer)) and 1 <= k <= n):
    raise ValueError(f'k must be an int in [1, {n}], got {k!r}')
  if not (isinstance(iterations, (int, np.integer)) and iterations >= 0):
    raise ValueError(f'iterations must be an int >= 0, got {iterations!r}')
  centroids = kmeans_init(e, int(k), key, init)

  def lloyd(centroids, _):
    assign = jnp.argmin(cosine_distances(e, centroids), axis=1)
    onehot = jax.nn.one_hot(assign, k, dtype=e.dtype)
    sums = onehot.T @ e
    counts = onehot.sum(0)[:, None]
    return jnp.where(counts > 0, normalize(sums), centroids), None

  centroids = jax.lax.scan(lloyd, centroids, None, length=iterations)[0]
  return centroids, jnp.argmin(cosine_distances(e, centroids), axis=1)


def prototype_distances(e, centroids):
  """d_i = min_k (1 - <e_i / ||e_i||, c_k>): cosine distance to the nearest prototype [N]."""
  return jnp.min(cosine_distances(normalize(e), normalize(centroids)), axis=1)


def keep_scores(distances, keep: str = 'hard'):
  """'Higher = keep' scores: +d (keep='hard', the paper with plentiful data) or -d ('easy')."""
  if keep not in KEEP:
    raise ValueError(f'keep must be one of {KEEP}, got {keep!r}')
  return distances if keep == 'hard' else -distances


def prototype_scores(e, k: int, key, iterations: int = 10, init: str = 'kmeans++'):
  """k-means on the embeddings, then each row's distance to its nearest prototype.

  Returns:
    (distances [N] (higher = harder; `keep_scores` for a keep score), centroids [k, D]).
  """
  centroids, _ = kmeans(e, k, key, iterations, init)
  return prototype_distances(e, centroids), centroids
