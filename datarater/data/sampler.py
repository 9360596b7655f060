"""Batch index samplers: the data order is a pure function of (seed, step).

No sampler keeps state, so a run resumed at step t draws exactly the batches
an uninterrupted run would have drawn.
"""

from __future__ import annotations

import functools

import numpy as np

from datarater.data.core import Split
from datarater.errors import DataError

# Independent random streams (train order, meta order, mixture draws, ...).
TRAIN, META, MIXTURE = 0, 1, 2


@functools.lru_cache(maxsize=16)
def epoch_order(n: int, seed: int, epoch: int, stream: int = TRAIN) -> np.ndarray:
  """The random permutation of epoch `epoch` (read-only; cached, consecutive steps share it)."""
  order = np.random.default_rng([seed, stream, epoch]).permutation(n)
  order.setflags(write=False)
  return order


def _defer(order: np.ndarray, taken: np.ndarray, head: int) -> np.ndarray:
  """`order` with the rows of `taken` among its first `head` other rows moved just after them."""
  clash = np.isin(order, taken)
  end = np.flatnonzero(~clash)[head - 1] + 1
  return np.concatenate([order[:end][~clash[:end]], order[:end][clash[:end]], order[end:]])


def _tail_is_raw(n: int, batch_size: int, epoch: int) -> bool:
  """Whether epoch `epoch`'s served order ends like its permutation over the rows the batch
  crossing into the next epoch takes (its own head fix moves only positions < batch_size)."""
  return (epoch * n) % batch_size == 0 or n - ((epoch + 1) * n) % batch_size >= batch_size


@functools.lru_cache(maxsize=16)
def served_order(n: int, batch_size: int, seed: int, epoch: int, stream: int = TRAIN) -> np.ndarray:
  """The order epoch `epoch`'s n rows are served in, batch_size rows per step.

  Batch t holds positions [t*B, (t+1)*B) of the concatenated epochs, so when n is
  not a multiple of B one batch takes the last k rows of epoch e-1 and the first
  B - k of epoch e. Epoch e's order is its permutation `epoch_order` except that
  the rows of those k that come among its first B - k other rows are deferred to
  just after them: every batch has distinct rows and every row is served exactly
  once per epoch. Epoch e's order depends on epoch e-1's last k rows, which equal
  epoch e-1's permutation unless n < 2B - 1; then the chain is walked back to an
  epoch whose tail is its permutation's (at most B / gcd(n, B) epochs). Read-only.
  """
  first = epoch
  while first > 0 and not _tail_is_raw(n, batch_size, first - 1):
    first -= 1
  order = None
  for e in range(first, epoch + 1):
    perm, k = epoch_order(n, seed, e, stream), (e * n) % batch_size
    if k == 0:
      order = perm
      continue
    prev = order if order is not None else epoch_order(n, seed, e - 1, stream)
    order = _defer(perm, prev[-k:], batch_size - k)
  order.setflags(write=False)
  return order


def check_batch_size(n: int, batch_size: int, split: str = 'a split') -> None:
  """Raises DataError unless batch_size distinct rows can be drawn from n (the training loop
  requires it of the train split: per-example tables take each row once per step)."""
  if batch_size > n:
    raise DataError(f'a batch of {batch_size} rows cannot be drawn without repeats from {split} '
                    f'of {n} rows; lower the batch size or use more data')


def sequential_indices(n: int, batch_size: int, seed: int, step: int, stream: int = TRAIN) -> np.ndarray:
  """Batch `step` of epoch-wise reshuffled passes over n examples (`served_order`).

  With batch_size <= n every batch has batch_size distinct rows and every row
  is served once per epoch. A larger batch (DataRater's meta batch, one
  meta batch per population member, can exceed a small meta split) must
  repeat rows: it is then positions [t*B, (t+1)*B) of the epochs' plain
  permutations, one after the other.
  """
  if batch_size > n:
    start = step * batch_size
    epochs = range(start // n, (start + batch_size - 1) // n + 1)
    flat = np.concatenate([epoch_order(n, seed, e, stream) for e in epochs])
    return np.array(flat[start - epochs[0] * n:][:batch_size], np.int64)
  epoch, offset = divmod(step * batch_size, n)
  order = served_order(n, batch_size, seed, epoch, stream)
  idx = order[offset: offset + batch_size]
  if len(idx) < batch_size:
    following = _defer(epoch_order(n, seed, epoch + 1, stream), idx, batch_size - len(idx))
    idx = np.concatenate([idx, following[:batch_size - len(idx)]])
  return np.array(idx, np.int64)


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
