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


class ExampleTable(NamedTuple):
  """The latest value recorded for each of N examples.

  Attributes:
    value: float32 [N]: the value recorded last (`fill` until then).
    count: int32 [N]: how many times a value was recorded.
  """
  value: jax.Array
  count: jax.Array


def table_init(num_examples: int, fill: float = 0.0) -> ExampleTable:
  """A table of `num_examples` rows holding `fill` and count 0."""
  return ExampleTable(jnp.full((num_examples,), fill, jnp.float32),
                      jnp.zeros((num_examples,), jnp.int32))


def table_record(table: ExampleTable, index: jax.Array, values: jax.Array,
                 valid: jax.Array | None = None) -> ExampleTable:
  """Writes values[i] at row index[i] (where valid[i], if given).

  An index repeated within one batch keeps one of its values.
  """
  values = values.astype(table.value.dtype)
  if valid is not None:
    values = jnp.where(valid, values, table.value[index])
  hits = jnp.ones(index.shape, jnp.int32) if valid is None else valid.astype(jnp.int32)
  return ExampleTable(table.value.at[index].set(values), table.count.at[index].add(hits))


class Mean(NamedTuple):
  """Running mean of an array-valued quantity: total / count."""
  total: jax.Array
  count: jax.Array


def mean_init(shape=(), dtype=jnp.float32) -> Mean:
  return Mean(jnp.zeros(shape, dtype), jnp.zeros((), jnp.int32))


def mean_update(mean: Mean, value: jax.Array) -> Mean:
  return Mean(mean.total + value, mean.count + 1)


def mean_value(mean: Mean) -> jax.Array:
  """total / count (0 before the first update)."""
  return mean.total / jnp.maximum(mean.count, 1).astype(mean.total.dtype)
