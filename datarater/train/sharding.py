"""Data parallelism: a 1-D `data` mesh over all devices, params replicated.

The mesh uses Auto axis types, so jitted steps over arrays placed with these
shardings need no mesh context; XLA inserts the collectives, which makes every
batch-level statistic (batch softmax, top-K, min/max, per-source means)
global across devices, not per device. For multi-host runs the batch would be
assembled with `jax.make_array_from_process_local_data`; nothing here assumes
one process except `put_batch`.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P


def make_mesh() -> jax.sharding.Mesh:
  return jax.make_mesh((jax.device_count(),), ('data',), axis_types=(AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def put_batch(batch, mesh):
  """Places a host batch (pytree of numpy arrays) split along axis 0 over `data`."""
  return jax.device_put(jax.tree.map(np.asarray, batch), data_sharded(mesh))


def put_replicated(tree, mesh):
  return jax.device_put(tree, replicated(mesh))
