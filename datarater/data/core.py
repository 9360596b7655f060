"""The data model: source-aware splits with ground-truth corruption flags.

Every example has an input `x`, a target `y` (a class label, or the next tokens
for language modelling), an integer `source` id and a ground-truth `corrupted`
flag. Methods see `x`, `y`, `source` and the example's `index` in its split;
the `corrupted` flag is for evaluation only (AUROC of scores, weight vs
corruption rate) and is never put in a training batch.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import NamedTuple

import numpy as np

from datarater.errors import DataError  # noqa: F401 (re-exported: datarater.data.DataError)

# The source id of a row whose source is unknown: test rows of presets whose sources are random
# partitions of the training pool (corruption-rate sources), or of an npz without source_test.
NO_SOURCE = -1


class Split(NamedTuple):
  x: np.ndarray          # float32 [N, H, W, C] images / [N, D] features, or int32 [N, L] tokens
  y: np.ndarray          # int32 [N] labels, or int32 [N, L] next tokens
  source: np.ndarray     # int32 [N]; NO_SOURCE where the row has no real source (test rows)
  corrupted: np.ndarray  # bool [N]; all False when unknown
  row: np.ndarray        # int64 [N]: row in the user's training data (-1: not from it)

  @property
  def size(self) -> int:
    return len(self.y)

  def take(self, idx) -> 'Split':
    return Split(*(a[idx] for a in self))


def make_split(x, y, source=None, corrupted=None, row=None) -> Split:
  """A Split; `row` defaults to 0..N-1 (the examples are rows 0..N-1 of their data)."""
  n = len(y)
  source = np.zeros(n, np.int32) if source is None else np.asarray(source, np.int32)
  corrupted = np.zeros(n, bool) if corrupted is None else np.asarray(corrupted, bool)
  row = np.arange(n, dtype=np.int64) if row is None else np.asarray(row, np.int64)
  return Split(np.asarray(x), np.asarray(y, np.int32), source, corrupted, row)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  task: str                    # 'classification' | 'lm'
  num_classes: int             # classes, or vocabulary size for 'lm'
  input_shape: tuple           # shape of one x
  num_sources: int
  source_names: tuple
  corruption: str              # description of the corruption applied
  corruption_rates: tuple      # per source (empty when unknown)
  meta_mode: str               # 'clean' | 'noisy' | 'given'
  num_rows: int                # rows of the user's training data (train + carved meta/valid + dropped)
  source_corruption: tuple = ()  # per source: the corruption kind of its corrupted rows ('' none)
  valid_mode: str = 'noisy'    # 'noisy' | 'clean' (uncorrupted, evaluation only) | 'given' (npz)


class Dataset(NamedTuple):
  """The splits of a run. `valid` holds held-out rows of the training distribution
  (corrupted like `train`, disjoint from every other split; no method trains on it): the
  split every validation decision reads (early stopping, net compute gain, the automatic
  discard fraction). It is empty when config.data.valid_size = 0."""
  train: Split
  meta: Split
  valid: Split
  test: Split
  info: DatasetInfo


def train_meta_split(pool: Split, meta_size: int, rng: np.random.Generator):
  """Disjoint random (train, meta) slices of a pool."""
  if meta_size >= pool.size:
    raise DataError(f'config.data.meta_size={meta_size} must be smaller than the '
                    f'training pool ({pool.size} examples)')
  perm = rng.permutation(pool.size)
  return pool.take(np.sort(perm[meta_size:])), pool.take(np.sort(perm[:meta_size]))


# A fractional config.data.valid_size carves at least this many rows (at most a quarter of the pool).
MIN_VALID = 50


def valid_count(valid_size, pool_size: int) -> int:
  """Rows of a pool of `pool_size` that config.data.valid_size asks for.

  Args:
    valid_size: a number in (0, 1): that fraction of the pool, at least
      min(MIN_VALID, pool_size // 4) rows; a whole number >= 1 (an int, or a float such
      as 200.0, which is what a float config field holds): that many rows; 0: none.
    pool_size: rows of the training pool it is carved from.

  Returns:
    The number of validation rows (0: no validation split).
  """
  if is_fraction(valid_size):
    return max(int(round(valid_size * pool_size)), min(MIN_VALID, pool_size // 4))
  return int(valid_size)


def is_fraction(valid_size) -> bool:
  """Whether config.data.valid_size is a fraction of the pool (in (0, 1)) or a row count."""
  return 0 < valid_size < 1


def check_valid_size(valid_size) -> None:
  """DataError (one line) unless config.data.valid_size is in [0, 1) or a whole number."""
  ok = (isinstance(valid_size, numbers.Real) and not isinstance(valid_size, bool)
        and np.isfinite(valid_size) and valid_size >= 0
        and (valid_size < 1 or float(valid_size).is_integer()))
  if not ok:
    raise DataError(f'config.data.valid_size={valid_size!r} must be a fraction of the training '
                    'pool in [0, 1) or a whole number of rows; 0 = no validation split')


VALID_MODES = ('noisy', 'clean')


def check_valid_mode(valid_mode) -> None:
  """DataError (one line) unless config.data.valid_mode is one of VALID_MODES."""
  if valid_mode not in VALID_MODES:
    raise DataError(f'config.data.valid_mode={valid_mode!r} must be one of {VALID_MODES}')


def uncorrupted(split: Split, clean: Split) -> Split:
  """The rows of `split` as they were in `clean`, the same pool before its corruption, matched
  by their `row` ids (config.data.valid_mode='clean')."""
  order = np.argsort(clean.row, kind='stable')
  pos = order[np.searchsorted(clean.row, split.row, sorter=order)]
  if not np.array_equal(clean.row[pos], split.row):
    raise AssertionError('uncorrupted: a row of the split is not in the clean pool')
  return clean.take(pos)


def carve_valid(pool: Split, valid_size, rng: np.random.Generator):
  """Disjoint random (train, valid) slices of a (corrupted) training pool.

  Raises:
    DataError: the validation split would leave no training rows.
  """
  n = valid_count(valid_size, pool.size)
  if n >= pool.size:
    raise DataError(f'config.data.valid_size={valid_size!r} asks for {n} validation rows of a '
                    f'training pool of {pool.size}; it must leave rows to train on')
  perm = rng.permutation(pool.size)
  return pool.take(np.sort(perm[n:])), pool.take(np.sort(perm[:n]))


def balanced_meta_split(pool: Split, meta_size: int, num_classes: int, rng: np.random.Generator):
  """Disjoint (train, meta) slices where meta holds meta_size // num_classes random rows of
  every class (Meta-Weight-Net's long-tail protocol: a fixed number per class, drawn before
  the imbalance is applied).

  Raises:
    DataError: meta_size is smaller than num_classes, or a class has too few rows.
  """
  per_class = meta_size // num_classes
  if per_class < 1:
    raise DataError(f'config.data.meta_size={meta_size} must be at least the number of '
                    f'classes ({num_classes}) for a class-balanced meta split')
  meta = []
  for c in range(num_classes):
    members = np.flatnonzero(pool.y == c)
    if len(members) <= per_class:
      raise DataError(f'config.data.meta_size={meta_size}: class {c} has {len(members)} '
                      f'training rows, too few for {per_class} meta rows per class and a train '
                      'split')
    meta.append(rng.choice(members, size=per_class, replace=False))
  meta = np.sort(np.concatenate(meta))
  return pool.take(np.setdiff1d(np.arange(pool.size), meta)), pool.take(meta)


def per_row(dataset: Dataset, train_values: np.ndarray, meta_values: np.ndarray | None, fill):
  """Values of the train (and meta) split placed at their rows of the user's training data.

  Returns:
    (values [num_rows] with `fill` where no split value lands, has_value [num_rows] bool).
  """
  n = dataset.info.num_rows
  values, has = np.full(n, fill, np.float64), np.zeros(n, bool)
  for split, vals in ((dataset.train, train_values), (dataset.meta, meta_values)):
    if vals is None:
      continue
    ok = split.row >= 0
    values[split.row[ok]] = np.asarray(vals)[ok]
    has[split.row[ok]] = True
  return values, has


def meta_row_mask(dataset: Dataset) -> np.ndarray:
  """bool [num_rows]: rows of the user's training data carved into the meta split."""
  mask = np.zeros(dataset.info.num_rows, bool)
  rows = dataset.meta.row
  mask[rows[rows >= 0]] = True
  return mask
