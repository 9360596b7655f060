"""Batch index samplers: the data order is a pure function of (seed, step).

No sampler keeps state, so a run resumed at step t draws exactly the batches
an uninterrupted run would have drawn.
"""

from __future__ import annotations

import numpy as np

from datarater.data.core import Split

# Independent random streams (train order, meta order, mixture draws, ...).
TRAIN, META, MIXTURE = 0, 1, 2


def epoch_order(n: int, seed: int, epoch: int, stream: int = TRAIN) -> np.ndarray:
  return np.random.default_rng([seed, stream, epoch]).permutation(n)


def sequential_indices(n: int, batch_size: int, seed: int, step: int, stream: int = TRAIN) -> np.ndarray:
  """Batch `step` of epoch-wise reshuffled passes over n examples (no replacement within an epoch)."""
  start = step * batch_size
  out = []
  while len(out) < batch_size:
    epoch, offset = divmod(start + len(out), n)
    order = epoch_order(n, seed, epoch, stream)
    out.extend(order[offset: offset + batch_size - len(out)].tolist())
  return np.asarray(out, np.int64)


def source_members(source: np.ndarray, num_sources: int) -> list:
  """Indices of each source's examples."""
  return [np.flatnonzero(source == k) for k in range(num_sources)]


def mixture_indices(source: np.ndarray, weights, batch_size: int, seed: int, step: int,
                    members: list | None = None) -> np.ndarray:
  """Draws each example's source from `weights`, then an example of that source uniformly.

  `members` (from `source_members`) can be passed to avoid recomputing it every step.
  """
  weights = np.asarray(weights, np.float64)
  rng = np.random.default_rng([seed, MIXTURE, step])
  picks = rng.choice(len(weights), size=batch_size, p=weights / weights.sum())
  if members is None:
    members = source_members(source, len(weights))
  return np.asarray([members[k][rng.integers(len(members[k]))] for k in picks], np.int64)


def gather(split: Split, idx: np.ndarray) -> dict:
  """A training batch: inputs, targets, source ids and split indices (never the corrupted flag)."""
  return {'x': split.x[idx], 'y': split.y[idx], 'source': split.source[idx],
          'index': idx.astype(np.int32)}
