"""Data Selection with Importance Resampling (DSIR) on hashed n-gram features.

Xie, Santurkar, Ma, Liang, "Data Selection for Language Models via Importance
Resampling", NeurIPS 2023 (arXiv 2302.03169). Given a raw pool of N examples
and a small target sample, DSIR

1. maps every example x to the counts c(x) in [num_buckets] of its hashed
   n-grams (the paper: the unigrams and bigrams of its words, 10,000
   buckets; `ngram_buckets`);
2. fits a bag-of-hashed-features model of the target and one of the raw pool,
   categorical distributions over the buckets (`smoothed_distribution`, here
   with add-one / Laplace smoothing, so every bucket has positive mass):

       p_j = (n_j + alpha) / (sum_l n_l + alpha B),   n_j = the bucket's count
                                                       over the set, alpha = 1;

3. gives every raw example the log importance weight of that model
   (`log_importance_weights`)

       log w_i = sum_j c_ij (log p_target_j - log p_raw_j);

4. resamples k examples without replacement with probabilities proportional to
   w_i, by the Gumbel top-k trick (`gumbel_top_k`): the k largest of
   log w_i + G_i, G_i i.i.d. standard Gumbel.

Featurisation (`featurize`):

- integer sequences [N, L] (bytes, tokens): the n-grams of each row, n = 1 ..
  `ngrams` (the paper's "unigrams and bigrams" for ngrams=2), each hashed with
  its length n into a bucket, position-free (a bag of n-grams, as the paper's
  words; here byte ids stand for words). A row has L + (L - 1) + ... features.
- real-valued vectors [N, ...] (images, tabular rows; flattened to [N, D]):
  each value is quantised into one of `num_bins` per-feature quantile bins of
  the raw pool (`quantile_edges`, `quantize`: bin b of feature d holds the
  values in [q_{b/num_bins}, q_{(b+1)/num_bins}) of that feature in the raw
  pool, ties going to the upper bin); the "words" are then the pairs
  (feature index d, bin), so the unigram of feature d is hash(d, bin_d) and
  the bigram of the adjacent features d, d+1 (in flattened order, e.g.
  neighbouring pixels) is hash(d, bin_d, bin_{d+1}). The feature index is
  part of the hash: bin 3 of pixel 10 and bin 3 of pixel 11 are different
  words. A row has D + (D - 1) + ... features.
- optional class labels [N]: the label is folded into every hash of its row,
  so a feature is "this value pattern in a row of class y" (the models become
  class-conditional bags, sensitive to a wrong label as well as to an odd
  input); not in the paper, whose targets are unlabelled text.

The hash is a fixed 64-bit mix (splitmix64's finaliser folded over the
n-gram's length, its position for vectors, its ids and the label), then
modulo num_buckets; the paper hashes each n-gram's string with sha256. Both
are fixed functions of the n-gram; this one is vectorised.

Features are returned sparsely, as bucket ids [N, F] (a row's count vector is
the bincount of its row; every row of a fixed-size input has the same number F
of features), which is all steps 2-4 need; `count_matrix` gives the dense
[N, num_buckets] counts of a chunk of rows.

KL reduction (`kl_reduction`): the paper's data metric, whose value on hashed
n-gram features correlated with downstream accuracy across selection methods
(r = 0.82 in the paper). Over a set T of target feature distributions p_hat,
with q_hat the raw pool's and p'_feat the selected data's feature
distribution, the paper defines

    KL-reduction(p'_feat; q_hat, T) = 1/|T| sum_{p_hat in T}
                                       [KL(p_hat || q_hat) - KL(p_hat || p'_feat)]

with one target here (|T| = 1), so KL(target || raw) - KL(target || selected),
in nats. Each KL needs the second distribution positive wherever the target's
is, so all three are smoothed, and with the same strength: a set's bucket
frequencies f_j = n_j / sum_l n_l are smoothed as if they were a sample of M
counts, M = the raw pool's total count (`pool_smoothed`),

    p_j = (M f_j + alpha) / (M + alpha B),

i.e. each is mixed with the uniform distribution in the same proportion
alpha B / (M + alpha B). (Add-one on each set's own counts would not do: a
smaller set is smoothed more, so its distribution is flatter, and against a
small, heavily smoothed target a uniformly random half of the pool then
"reduced" the KL as much as DSIR's selection did: 0.227 vs 0.224 nats on
digits with its 100-row meta split.) Positive: the selection is closer to the
target than the raw pool is; about 0 for a uniformly random selection whose
counts cover the buckets well (below 0 when they are sparse: the plug-in KL to
a noisy sample's distribution is biased up).

Everything is numpy on the host (no jax): invalid arguments raise ValueError
naming the argument.
"""

from __future__ import annotations

import numpy as np

_M64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
# Distinct tags of the hashed parts of a feature (so that, e.g., a label never collides
# with the same number used as an id).
_TAG_NGRAM, _TAG_POSITION, _TAG_LABEL = 1, 2, 3

CHUNK_ROWS = 4096  # rows hashed (or counted densely) at a time


def _check(name: str, ok: bool, requirement: str, value) -> None:
  if not ok:
    raise ValueError(f'{name} must be {requirement}, got {value!r}')


def _mix(h: np.ndarray) -> np.ndarray:
  """splitmix64's finaliser (a bijection of uint64, good avalanche), elementwise."""
  with np.errstate(over='ignore'):
    h = (h ^ (h >> np.uint64(30))) * _C1
    h = (h ^ (h >> np.uint64(27))) * _C2
    return h ^ (h >> np.uint64(31))


def _fold(h: np.ndarray, values, tag: int) -> np.ndarray:
  """h absorbing `values` (int, broadcast against h) under `tag`."""
  v = np.asarray(values).astype(np.int64).astype(np.uint64)  # negative ids wrap, still distinct
  with np.errstate(over='ignore'):
    return _mix(h ^ _mix(v * np.uint64(8) + np.uint64(tag) + _GOLDEN))


def hash_ngram(ids, num_buckets: int, position: int | None = None, label: int | None = None) -> int:
  """The bucket of one n-gram (the scalar form of `ngram_buckets`, for checks by hand).

  Args:
    ids: the n-gram's ids (n >= 1 ints: byte / token ids, or bin ids of vectors).
    num_buckets: B.
    position: for a real-valued vector's n-gram, the index of its first feature; None for
      a token sequence (position-free).
    label: the row's class label, or None.

  Returns:
    The bucket in [0, B).
  """
  ids = [int(i) for i in np.atleast_1d(ids)]
  h = _fold(np.zeros(1, np.uint64), [len(ids)], _TAG_NGRAM)
  if position is not None:
    h = _fold(h, [position], _TAG_POSITION)
  if label is not None:
    h = _fold(h, [label], _TAG_LABEL)
  for i in ids:
    h = _fold(h, [i], 0)
  return int(h[0] % np.uint64(num_buckets))


def _check_common(num_buckets: int, ngrams: int) -> None:
  _check('num_buckets', isinstance(num_buckets, (int, np.integer)) and 1 <= num_buckets < 2 ** 31,
         'an int in [1, 2**31)', num_buckets)
  _check('ngrams', isinstance(ngrams, (int, np.integer)) and ngrams >= 1, 'an int >= 1', ngrams)


def ngram_buckets(seq, num_buckets: int, ngrams: int = 2, positional: bool = False,
                  labels=None) -> np.ndarray:
  """The hashed n-grams (n = 1 .. ngrams) of every row of an integer sequence array.

  Args:
    seq: int [N, L] ids (bytes, tokens, or the quantised bins of real-valued features).
    num_buckets: B.
    ngrams: the largest n (2: unigrams and bigrams, as the paper).
    positional: whether the n-gram's start position is hashed too (True for the bins of
      real-valued vectors, where position d is the feature; False for text, a bag of
      n-grams).
    labels: optional int [N] class labels folded into every hash of their row.

  Returns:
    int32 [N, F] buckets, F = sum_{n=1..ngrams} max(L - n + 1, 0): row i's features;
    its count vector is np.bincount(out[i], minlength=B).
  """
  _check_common(num_buckets, ngrams)
  seq = np.asarray(seq)
  _check('seq', seq.ndim == 2 and np.issubdtype(seq.dtype, np.integer),
         'an integer array [N, L]', f'{seq.dtype} {seq.shape}')
  n_rows, length = seq.shape
  if labels is not None:
    labels = np.asarray(labels)
    _check('labels', labels.shape == (n_rows,) and np.issubdtype(labels.dtype, np.integer),
           f'an integer array [{n_rows}]', f'{labels.dtype} {labels.shape}')
  widths = [length - n + 1 for n in range(1, ngrams + 1) if length - n + 1 > 0]
  out = np.empty((n_rows, sum(widths)), np.int32)
  b = np.uint64(num_buckets)
  for start in range(0, n_rows, CHUNK_ROWS):
    rows = slice(start, min(start + CHUNK_ROWS, n_rows))
    s = seq[rows]
    col = 0
    for n, width in zip(range(1, ngrams + 1), widths):
      h = _fold(np.zeros((s.shape[0], width), np.uint64), n, _TAG_NGRAM)
      if positional:
        h = _fold(h, np.arange(width)[None, :], _TAG_POSITION)
      if labels is not None:
        h = _fold(h, labels[rows][:, None], _TAG_LABEL)
      for k in range(n):
        h = _fold(h, s[:, k:k + width], 0)
      out[rows, col:col + width] = (h % b).astype(np.int32)
      col += width
  return out


def quantile_edges(x, num_bins: int) -> np.ndarray:
  """Per-feature quantile edges of a reference set (the raw pool).

  Args:
    x: float [N, ...] real-valued rows (flattened to [N, D]).
    num_bins: bins per feature (>= 2).

  Returns:
    float64 [D, num_bins - 1]: edge b of feature d is that feature's b / num_bins quantile.
  """
  _check('num_bins', isinstance(num_bins, (int, np.integer)) and num_bins >= 2, 'an int >= 2',
         num_bins)
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  _check('x', len(x) > 0 and np.isfinite(x).all(), 'finite with at least one row', x.shape)
  return np.quantile(x, np.arange(1, num_bins) / num_bins, axis=0).T


def quantize(x, edges) -> np.ndarray:
  """Bin ids [N, D] in [0, num_bins) of real-valued rows under `quantile_edges`' edges:
  the number of feature d's edges <= x_d (a value equal to an edge goes to the upper bin)."""
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  edges = np.asarray(edges, np.float64)
  _check('edges', edges.ndim == 2 and edges.shape[0] == x.shape[1],
         f'[D={x.shape[1]}, num_bins - 1]', edges.shape)
  return (x[:, :, None] >= edges[None, :, :]).sum(-1).astype(np.int32)


def featurize(x, num_buckets: int, ngrams: int = 2, edges=None, labels=None) -> np.ndarray:
  """Hashed n-gram bucket ids [N, F] of a split's inputs (module docstring).

  Args:
    x: int [N, L] sequences, or float [N, ...] real-valued rows.
    num_buckets: B.
    ngrams: the largest n.
    edges: for real-valued rows, `quantile_edges` of the raw pool (required); ignored
      for integer sequences.
    labels: optional int [N] class labels folded into the hashes.

  Returns:
    int32 [N, F] bucket ids.
  """
  x = np.asarray(x)
  if np.issubdtype(x.dtype, np.integer):
    _check('x', x.ndim == 2, 'an integer array [N, L] (token sequences)', x.shape)
    return ngram_buckets(x, num_buckets, ngrams, positional=False, labels=labels)
  _check('edges', edges is not None, 'given for real-valued inputs (quantile_edges)', edges)
  return ngram_buckets(quantize(x, edges), num_buckets, ngrams, positional=True, labels=labels)


def count_matrix(buckets, num_buckets: int) -> np.ndarray:
  """Dense counts int64 [N, B] of bucket ids [N, F] (c_ij = occurrences of bucket j in row i).

  Meant for chunks of rows (N x B entries); `bucket_totals` and `log_importance_weights`
  never build it."""
  buckets = np.asarray(buckets, np.int64)
  n = len(buckets)
  flat = (buckets + num_buckets * np.arange(n)[:, None]).ravel()
  return np.bincount(flat, minlength=n * num_buckets).reshape(n, num_buckets)


def bucket_totals(buckets, num_buckets: int) -> np.ndarray:
  """int64 [B]: every bucket's count summed over the rows of `buckets` [N, F]."""
  return np.bincount(np.asarray(buckets, np.int64).ravel(), minlength=num_buckets)


def smoothed_distribution(totals, alpha: float = 1.0) -> np.ndarray:
  """The add-`alpha` (Laplace for alpha = 1) smoothed categorical distribution over buckets:
  p_j = (n_j + alpha) / (sum_l n_l + alpha B). float64 [B]."""
  totals = np.asarray(totals, np.float64)
  _check('alpha', alpha > 0, '> 0', alpha)
  _check('totals', totals.ndim == 1 and (totals >= 0).all(), 'non-negative counts [B]',
         totals.shape)
  return (totals + alpha) / (totals.sum() + alpha * len(totals))


def log_importance_weights(buckets, p_target, p_raw) -> np.ndarray:
  """log w_i = sum_j c_ij (log p_target_j - log p_raw_j), from bucket ids [N, F].

  Args:
    buckets: int [N, F] bucket ids (`featurize`).
    p_target, p_raw: float [B] positive distributions (`smoothed_distribution`).

  Returns:
    float64 [N] log importance weights (higher = more target-like).
  """
  p_target, p_raw = np.asarray(p_target, np.float64), np.asarray(p_raw, np.float64)
  _check('p_target', p_target.shape == p_raw.shape and (p_target > 0).all() and (p_raw > 0).all(),
         'positive and of the shape of p_raw', p_target.shape)
  ratio = np.log(p_target) - np.log(p_raw)
  buckets = np.asarray(buckets)
  out = np.empty(len(buckets), np.float64)
  for start in range(0, len(buckets), CHUNK_ROWS):
    out[start:start + CHUNK_ROWS] = ratio[buckets[start:start + CHUNK_ROWS]].sum(1)
  return out


def gumbel_top_k(log_w, k: int, seed) -> np.ndarray:
  """k indices drawn without replacement with probabilities proportional to exp(log_w).

  The Gumbel top-k trick (the paper's resampling step): the k largest of log w_i + G_i,
  G_i i.i.d. standard Gumbel, are a draw without replacement of k items, each step picking
  among those left with probability proportional to w_i.

  Args:
    log_w: float [N] log weights (-inf: never picked while others remain).
    k: 0 <= k <= N.
    seed: int or sequence of ints for numpy's default_rng.

  Returns:
    int64 [k] indices in the order drawn (largest perturbed key first).
  """
  log_w = np.asarray(log_w, np.float64)
  _check('k', isinstance(k, (int, np.integer)) and 0 <= k <= len(log_w),
         f'an int in [0, {len(log_w)}]', k)
  keys = log_w + np.random.default_rng(seed).gumbel(size=len(log_w))
  top = np.argpartition(-keys, k - 1)[:k] if 0 < k < len(log_w) else np.arange(len(log_w))[:k]
  return top[np.argsort(-keys[top], kind='stable')].astype(np.int64)


def kl_divergence(p, q) -> float:
  """KL(p || q) = sum_j p_j log(p_j / q_j) in nats (terms with p_j = 0 are 0; q_j > 0
  wherever p_j > 0)."""
  p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
  _check('q', p.shape == q.shape and not ((p > 0) & (q <= 0)).any(),
         'positive wherever p is, of the shape of p', q.shape)
  m = p > 0
  return float(np.sum(p[m] * (np.log(p[m]) - np.log(q[m]))))


def pool_smoothed(totals, pool_total: float, alpha: float = 1.0) -> np.ndarray:
  """A set's bucket frequencies smoothed as a sample of `pool_total` counts:
  p_j = (M f_j + alpha) / (M + alpha B), f_j = n_j / sum_l n_l, M = pool_total. float64 [B]."""
  totals = np.asarray(totals, np.float64)
  _check('totals', totals.ndim == 1 and (totals >= 0).all() and totals.sum() > 0,
         'non-negative counts [B] with a positive sum', totals.shape)
  _check('pool_total', pool_total > 0, '> 0', pool_total)
  return smoothed_distribution(totals * (pool_total / totals.sum()), alpha)


def kl_reduction(target_totals, raw_totals, selected_totals, alpha: float = 1.0) -> dict:
  """The paper's KL reduction with one target: KL(p_hat || q_hat) - KL(p_hat || p'_feat).

  Args:
    target_totals, raw_totals, selected_totals: int [B] bucket totals (`bucket_totals`) of
      the target, the raw pool and the selected examples.
    alpha: the smoothing of all three distributions, each as a sample of the raw pool's
      total count (`pool_smoothed`; module docstring).

  Returns:
    {'kl_target_raw', 'kl_target_selected', 'kl_reduction'} in nats.
  """
  m = float(np.sum(raw_totals))
  p = pool_smoothed(target_totals, m, alpha)
  to_raw = kl_divergence(p, pool_smoothed(raw_totals, m, alpha))
  to_selected = kl_divergence(p, pool_smoothed(selected_totals, m, alpha))
  return {'kl_target_raw': to_raw, 'kl_target_selected': to_selected,
          'kl_reduction': to_raw - to_selected}
