"""Devices and processes: one global ('population', 'data') mesh over every process.

A run is one process over its local devices, or several processes (one per
host, JAX's multi-controller runtime) that run the same program; `initialize`
starts the latter. The mesh spans every process's devices: batches are split
along `data`, parameters are replicated, and `population` (config.mesh.population,
default 1) places DataRater's inner models on different devices. The mesh uses
Auto axis types, so jitted steps over arrays placed with these shardings need
no mesh context; XLA inserts the collectives, which makes every batch-level
statistic (batch softmax, top-K, min/max, per-source means) global across
devices and processes.

Each process holds only its rows of a batch (`local_rows`); `put_batch` builds
the global array from them with `jax.make_array_from_process_local_data`.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from datarater.errors import require

# Environment variables that say a process was started as one of several by a
# cluster launcher (SLURM's srun, Open MPI's mpirun) that JAX detects itself.
_LAUNCHER_ENV = ('SLURM_NTASKS', 'OMPI_COMM_WORLD_SIZE')


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, auto: bool = False, timeout_s: int = 300) -> bool:
  """Starts JAX's multi-process runtime when the run is multi-process.

  Explicit arguments are passed to `jax.distributed.initialize`. Without
  them, `auto=True` (TPU pod slices, any cluster JAX detects) or a SLURM /
  Open MPI launch of more than one task calls it with no arguments, so that
  JAX reads the cluster's environment. On CPU, collectives go through gloo.
  Must run before anything else touches JAX's devices.

  Args:
    coordinator_address: 'host:port' of process 0.
    num_processes: number of processes.
    process_id: this process's index in [0, num_processes).
    auto: initialize from the environment even without a launcher variable.
    timeout_s: how long to wait for every process to join.

  Returns:
    True when the multi-process runtime was started.
  """
  explicit = (coordinator_address, num_processes, process_id)
  launched = any(int(os.environ.get(v, '1')) > 1 for v in _LAUNCHER_ENV)
  if not (auto or launched or any(a is not None for a in explicit)):
    return False
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address, num_processes, process_id,
                             initialization_timeout=timeout_s)
  return True


def is_primary() -> bool:
  """True in the process that writes the run directory (process 0)."""
  return jax.process_index() == 0


def make_mesh(population: int = 1) -> jax.sharding.Mesh:
  """The global (population, data) mesh over every process's devices.

  Raises:
    ConfigError: `population` does not divide the device count.
  """
  n = jax.device_count()
  require(isinstance(population, int) and population >= 1 and n % population == 0,
          'mesh.population', f'a divisor of the {n} devices', population)
  return jax.make_mesh((population, n // population), ('population', 'data'),
                       axis_types=(AxisType.Auto, AxisType.Auto))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh, stacked: bool = False) -> NamedSharding:
  """Rows split over `data` (stacked: axis 1, after a leading axis of steps)."""
  return NamedSharding(mesh, P(None, 'data') if stacked else P('data'))


def local_rows(mesh, size: int) -> slice:
  """The rows of a `size`-row batch that this process's devices hold."""
  spans = {(s.start or 0, size if s.stop is None else s.stop) for s, *_ in
           data_sharded(mesh).addressable_devices_indices_map((size,)).values()}
  start, stop = min(a for a, _ in spans), max(b for _, b in spans)
  if sum(b - a for a, b in spans) != stop - start:
    raise ValueError(f'process {jax.process_index()} holds non-contiguous rows {sorted(spans)}')
  return slice(start, stop)


def _data_positions(mesh) -> int:
  """How many positions along `data` this process's devices occupy."""
  here = jax.process_index()
  return len({j for (_, j), d in np.ndenumerate(mesh.devices) if d.process_index == here})


def put_batch(local, mesh, stacked: bool = False):
  """The global batch from this process's rows of it (`local_rows`).

  Args:
    local: pytree of numpy arrays, this process's rows along axis 0 (axis 1
      when `stacked`: a leading axis of steps).
    mesh: the mesh.
    stacked: the leaves carry a leading axis of steps.

  Returns:
    The pytree of global arrays, rows split over `data`.
  """
  sharding = data_sharded(mesh, stacked)
  if jax.process_count() == 1:
    return jax.device_put(local, sharding)
  axis, scale = int(stacked), mesh.shape['data'] // _data_positions(mesh)

  def put(x):
    x = np.asarray(x)
    shape = x.shape[:axis] + (x.shape[axis] * scale,) + x.shape[axis + 1:]
    return jax.make_array_from_process_local_data(sharding, x, shape)
  return jax.tree.map(put, local)


def batch_spec(local, mesh):
  """ShapeDtypeStructs of the global batch `put_batch(local, mesh)` would make (no transfer)."""
  sharding = data_sharded(mesh)
  scale = 1 if jax.process_count() == 1 else mesh.shape['data'] // _data_positions(mesh)
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(
      (np.shape(x)[0] * scale,) + np.shape(x)[1:], np.asarray(x).dtype, sharding=sharding), local)


def put_replicated(tree, mesh):
  return jax.device_put(tree, replicated(mesh))


def to_host(tree, mesh):
  """Numpy copies of global arrays (a sharded array is first gathered to every process)."""
  if jax.process_count() > 1:
    tree = jax.jit(lambda t: t, out_shardings=replicated(mesh))(tree)
  return jax.device_get(tree)


def population_split(tree):
  """Inside a step: places the leading axis of every leaf on the `population` axis.

  Traced under the run's mesh (the loop compiles steps under `jax.set_mesh`),
  e.g. a population of models stacked [N, ...] is split over the population
  devices and each group of devices trains its models data-parallel (the other
  axes are left to XLA). A no-op without a population axis (size 1).
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or mesh.shape.get('population', 1) == 1:
    return tree
  return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(
      x, P('population', *[P.UNCONSTRAINED] * (x.ndim - 1))), tree)


def process_flags(ok: bool) -> list[bool]:
  """`ok` of every process, by process index (a collective: every process must call it)."""
  if jax.process_count() == 1:
    return [ok]
  return [bool(v) for v in multihost_utils.process_allgather(np.int32(ok))]


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier `name`."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
