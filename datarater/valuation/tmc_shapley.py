"""Truncated Monte Carlo Shapley values (TMC-Shapley) with a cheap learner.

Ghorbani & Zou, "Data Shapley: Equitable Valuation of Data for Machine
Learning", ICML 2019 (arXiv 1904.02868), Algorithm 1.

The Shapley value of training point i for a performance score V (a learner
trained on a subset, evaluated on validation data) is its mean marginal
contribution over uniformly random orderings pi of the N points:

    phi_i = E_pi [ V(S_pi(i) + {i}) - V(S_pi(i)) ],

S_pi(i) = the points before i in pi. TMC-Shapley samples T permutations and
scans each one: v_0 = V({}) and, for j = 1..N,

    v_j = v_{j-1}                    if |V(D) - v_{j-1}| < tolerance  (truncation)
    v_j = V(pi[:j])                  otherwise,

    phi_{pi[j]} += (v_j - v_{j-1}) / T.

Truncation: once the running performance is within `tolerance` of the
full-data performance V(D), the remaining marginal contributions are taken as
0 and their learners are not trained (Algorithm 1's absolute "performance
tolerance"; the authors' code scales it by V(D)). tolerance = 0 disables it
and gives the unbiased permutation estimator. Convergence (the paper's
criterion): the mean over points of the relative change of the estimates over
the last chunk of permutations, (1/N) sum_i |phi_i^T - phi_i^{T - chunk}| /
|phi_i^T|, below 0.05.

The learner (`fit_logistic`, `performance`): multinomial logistic regression
on fixed features, W [D, C] and b [C] from zero, `steps` full-batch gradient
steps of size `lr` on the subset's mean cross-entropy plus (l2 / 2) ||W||^2.
The subset is a 0/1 weight vector over all N points, so every prefix of every
permutation is the same shape and the fits are vmapped: for a chunk of
permutations, prefixes are evaluated in blocks of `block` lengths at a time
(one compiled program), and a chunk stops when all its permutations are
truncated. The empty set's model predicts uniformly (its accuracy is the share
of class 0 under argmax ties, its log-likelihood -log C). V is the
validation accuracy (the paper) or the validation log-likelihood (-mean
cross-entropy: smooth, lower-variance). Higher phi = more valuable.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

METRICS = ('accuracy', 'log_likelihood')


class Learner(NamedTuple):
  """The cheap learner's hyperparameters (module docstring)."""
  num_classes: int
  steps: int = 100
  lr: float = 0.5
  l2: float = 1e-3
  metric: str = 'log_likelihood'


def fit_logistic(x, y, weights, learner: Learner):
  """Multinomial logistic regression on the rows with weight 1, by `steps` full-batch GD steps.

  Minimises sum_i w_i CE_i / max(sum_i w_i, 1) + (l2 / 2) ||W||^2 from W = 0, b = 0.

  Args:
    x: [N, D] features.
    y: [N] int labels.
    weights: [N] subset weights (0/1; any non-negative weights work).
    learner: Learner.

  Returns:
    (W [D, C], b [C]).
  """
  onehot = jax.nn.one_hot(y, learner.num_classes)
  w = weights / jnp.maximum(jnp.sum(weights), 1.0)

  def step(params, _):
    W, b = params
    err = (jax.nn.softmax(x @ W + b) - onehot) * w[:, None]  # d(weighted mean CE)/dlogits
    return (W - learner.lr * (x.T @ err + learner.l2 * W), b - learner.lr * err.sum(0)), None

  init = (jnp.zeros((x.shape[1], learner.num_classes)), jnp.zeros(learner.num_classes))
  return jax.lax.scan(step, init, None, length=learner.steps)[0]


def performance(params, val_x, val_y, metric: str):
  """V: validation accuracy or log-likelihood (-mean cross-entropy) of a fitted (W, b)."""
  W, b = params
  logits = val_x @ W + b
  if metric == 'accuracy':
    return jnp.mean(jnp.argmax(logits, -1) == val_y)
  logp = jax.nn.log_softmax(logits)
  return jnp.mean(jnp.take_along_axis(logp, val_y[:, None], axis=1))


def subset_performance(x, y, val_x, val_y, weights, learner: Learner):
  """V(S) for the subset given by 0/1 `weights` [N] (fit, then score on validation)."""
  return performance(fit_logistic(x, y, weights, learner), val_x, val_y, learner.metric)


@functools.partial(jax.jit, static_argnames=('learner', 'block'))
def _block(x, y, val_x, val_y, ranks, start, learner: Learner, block: int):
  """V of the prefixes of lengths start .. start + block - 1 (clipped to N) of each permutation.

  ranks: [P, N] position of each point in each permutation. Returns [P, block].
  """
  lengths = jnp.minimum(start + jnp.arange(block), x.shape[0])
  masks = (ranks[:, None, :] < lengths[None, :, None]).astype(x.dtype)  # [P, block, N]
  fit = lambda m: subset_performance(x, y, val_x, val_y, m, learner)  # noqa: E731
  return jax.vmap(jax.vmap(fit))(masks)


def truncated_values(perf, v_empty, v_full, tolerance):
  """Algorithm 1's running values v_0..v_N of each permutation, with truncation (numpy).

  Args:
    perf: [P, N] V(pi[:j]) for j = 1..N (entries after truncation are ignored).
    v_empty: V({}).
    v_full: V(D).
    tolerance: truncate once |V(D) - v_{j-1}| < tolerance.

  Returns:
    ([P, N + 1] values v_0..v_N, [P] number of prefixes actually needed).
  """
  p, n = perf.shape
  values = np.empty((p, n + 1))
  values[:, 0] = v_empty
  done = np.zeros(p, bool)
  needed = np.zeros(p, int)
  for j in range(1, n + 1):
    done |= np.abs(v_full - values[:, j - 1]) < tolerance
    values[:, j] = np.where(done, values[:, j - 1], perf[:, j - 1])
    needed += ~done
  return values, needed


def marginals(perms, values):
  """Marginal contributions [P, N] indexed by point: point pi[j-1] gets v_j - v_{j-1}."""
  out = np.zeros(perms.shape, float)
  np.put_along_axis(out, perms, np.diff(values, axis=1), axis=1)
  return out


def mean_relative_change(new, old, eps: float = 1e-12) -> float:
  """(1/N) sum_i |new_i - old_i| / |new_i| (points with new_i = 0 count |new_i - old_i| / eps
  capped at 1)."""
  return float(np.mean(np.minimum(np.abs(new - old) / np.maximum(np.abs(new), eps), 1e6)))


def tmc_shapley(x, y, val_x, val_y, learner: Learner, *, num_permutations: int = 100,
                tolerance: float = 0.01, chunk: int = 16, block: int = 8, seed: int = 0,
                permutations=None, convergence_tol: float | None = None) -> tuple:
  """TMC-Shapley values of the N training points (module docstring).

  Args:
    x: [N, D] training features (fixed: standardised features or embeddings).
    y: [N] int training labels.
    val_x: [M, D] validation features.
    val_y: [M] int validation labels.
    learner: Learner (classes, GD steps, step size, l2, metric).
    num_permutations: T, the most permutations sampled.
    tolerance: truncation tolerance on V (0 = no truncation).
    chunk: permutations per chunk (the convergence report compares the
      estimates before and after the last chunk).
    block: prefix lengths evaluated per compiled call (vmapped).
    seed: permutations are numpy's default_rng(seed).permutation(N), drawn
      one after another.
    permutations: optional [T, N] int permutations to use instead (e.g. all N!
      of them: the exact Shapley values when tolerance = 0).
    convergence_tol: stop early, after a chunk, once the mean relative change
      over that chunk is below it (the paper: 0.05); None = run all T.

  Returns:
    (values [N] float64 numpy, report dict: permutations used, v_empty,
    v_full, mean_relative_change over the last chunk (None after one chunk),
    converged (change < 0.05 or convergence_tol), fits (learners trained),
    fits_without_truncation (P N), blocks (compiled calls)).

  Raises:
    ValueError: bad sizes, metric or tolerance.
  """
  x = jnp.asarray(x, jnp.float32)
  val_x = jnp.asarray(val_x, jnp.float32)
  y, val_y = jnp.asarray(y, jnp.int32), jnp.asarray(val_y, jnp.int32)
  n = x.shape[0]
  if learner.metric not in METRICS:
    raise ValueError(f'learner.metric must be one of {METRICS}, got {learner.metric!r}')
  if not tolerance >= 0:
    raise ValueError(f'tolerance must be >= 0, got {tolerance!r}')
  for name, v in (('num_permutations', num_permutations), ('chunk', chunk), ('block', block)):
    if not (isinstance(v, (int, np.integer)) and v >= 1):
      raise ValueError(f'{name} must be an int >= 1, got {v!r}')
  if n < 1 or y.shape != (n,) or val_y.shape != (val_x.shape[0],) or val_x.shape[0] < 1:
    raise ValueError(f'x [N, D], y [N], val_x [M, D], val_y [M] with N, M >= 1; got {x.shape}, '
                     f'{y.shape}, {val_x.shape}, {val_y.shape}')
  if permutations is not None:
    permutations = np.asarray(permutations, np.int64)
    if permutations.ndim != 2 or permutations.shape[1] != n or not np.all(
        np.sort(permutations, axis=1) == np.arange(n)):
      raise ValueError(f'permutations must be [T, {n}] permutations of 0..{n - 1}')
    num_permutations = len(permutations)
  rng = np.random.default_rng(seed)
  ends = jax.jit(lambda w: subset_performance(x, y, val_x, val_y, w, learner))
  v_empty, v_full = float(ends(jnp.zeros(n))), float(ends(jnp.ones(n)))

  total, used, fits, blocks, previous, change = np.zeros(n), 0, 0, 0, None, None
  while used < num_permutations:
    p = min(chunk, num_permutations - used)
    perms = (permutations[used:used + p] if permutations is not None
             else np.stack([rng.permutation(n) for _ in range(p)]))
    padded = np.concatenate([perms, np.repeat(perms[:1], chunk - p, axis=0)])  # one shape
    ranks = jnp.asarray(np.argsort(padded, axis=1))
    perf = np.zeros((p, n))
    values = np.full(p, v_empty)
    done = np.abs(v_full - values) < tolerance
    for start in range(1, n + 1, block):  # prefixes of lengths start .. start + block - 1
      if done.all():
        break
      out = np.asarray(_block(x, y, val_x, val_y, ranks, start, learner, block))[:p]
      blocks += 1
      width = min(block, n + 1 - start)
      perf[:, start - 1:start - 1 + width] = out[:, :width]
      for j in range(width):  # the truncation rule, to know whether the next block is needed
        done |= np.abs(v_full - values) < tolerance
        values = np.where(done, values, out[:, j])
    vals, needed = truncated_values(perf, v_empty, v_full, tolerance)
    fits += int(needed.sum())
    total += marginals(perms, vals).sum(axis=0)
    used += p
    estimate = total / used
    if previous is not None:
      change = mean_relative_change(estimate, previous)
      if convergence_tol is not None and change < convergence_tol:
        break
    previous = estimate
  threshold = 0.05 if convergence_tol is None else convergence_tol
  return total / used, {
      'permutations': used, 'v_empty': v_empty, 'v_full': v_full,
      'mean_relative_change': change, 'converged': change is not None and change < threshold,
      'fits': fits, 'fits_without_truncation': used * n, 'blocks': blocks}
