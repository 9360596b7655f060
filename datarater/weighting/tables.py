"""Per-example tables and running means: the state primitives every scorer shares.

`ExampleTable` keeps the latest value of every training example (a score, a
loss, a weight) and how often it was recorded; `Mean` keeps a running sum and
count (time averages of weights, of per-source shares). Both are NamedTuples
of arrays, so they live in jitted method state and in checkpoints.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class ExampleTable(NamedTuple):
  """The latest value recorded for each of N examples.

  Attributes:
    value: float32 [N]: the value recorded last (`fill` until then).
    count: int32 [N]: how many times a value was recorded (0: never seen).
  """
  value: jax.Array
  count: jax.Array


def table_init(num_examples: int, fill: float = 0.0) -> ExampleTable:
  """A table of `num_examples` rows holding `fill` and count 0.

  Args:
    num_examples: N.
    fill: the value of rows never recorded.

  Returns:
    ExampleTable with value [N] float32 and count [N] int32.
  """
  return ExampleTable(jnp.full((num_examples,), fill, jnp.float32),
                      jnp.zeros((num_examples,), jnp.int32))


def table_record(table: ExampleTable, index: jax.Array, values: jax.Array,
                 valid: jax.Array | None = None) -> ExampleTable:
  """Writes values[i] at row index[i] for the valid slots; invalid slots change nothing.

  An index repeated among the valid slots of one batch keeps one of its
  values; a padding slot (valid False) never overwrites a valid slot's value,
  even when it repeats the same index.

  Args:
    table: the ExampleTable.
    index: [b] int row indices.
    values: [b] values to record.
    valid: optional [b] bool; default all True.

  Returns:
    The updated ExampleTable.
  """
  index = jnp.asarray(index)
  if valid is not None:  # out of range: dropped by mode='drop'
    index = jnp.where(valid, index, table.value.shape[0])
  values = jnp.asarray(values).astype(table.value.dtype)
  return ExampleTable(table.value.at[index].set(values, mode='drop'),
                      table.count.at[index].add(1, mode='drop'))


def fill_unscored(scores, seen) -> tuple[np.ndarray, float]:
  """Scores with every unscored row set to the mean score of the scored rows (host numpy).

  The one rule for rows without a score (never drawn, or held out): they
  rank in the middle, in scores_train.npy and in every filter alike.

  Args:
    scores: [N] scores (values of unscored rows are ignored).
    seen: [N] bool, the rows that have a score.

  Returns:
    (float64 [N] scores, the fill value: the mean over the seen rows, 0 if none).
  """
  scores = np.asarray(scores, np.float64)
  seen = np.asarray(seen, bool)
  fill = float(scores[seen].mean()) if seen.any() else 0.0
  return np.where(seen, scores, fill), fill


class Mean(NamedTuple):
  """Running mean of an array-valued quantity: total / count.

  Attributes:
    total: the sum of the values so far.
    count: int32 scalar, how many values were added.
  """
  total: jax.Array
  count: jax.Array


def mean_init(shape=(), dtype=jnp.float32) -> Mean:
  """An empty running mean of values of `shape` and `dtype`.

  Args:
    shape: shape of one value.
    dtype: dtype of the total.

  Returns:
    Mean with total zeros(shape) and count 0.
  """
  return Mean(jnp.zeros(shape, dtype), jnp.zeros((), jnp.int32))


def mean_update(mean: Mean, value: jax.Array) -> Mean:
  """Adds one value.

  Args:
    mean: the running Mean.
    value: a value of the Mean's shape.

  Returns:
    The updated Mean.
  """
  return Mean(mean.total + value, mean.count + 1)


def mean_value(mean: Mean) -> jax.Array:
  """total / count (0 before the first update).

  Args:
    mean: the running Mean.

  Returns:
    The mean, of the total's shape.
  """
  return mean.total / jnp.maximum(mean.count, 1).astype(mean.total.dtype)
