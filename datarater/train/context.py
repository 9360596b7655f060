"""What every phase runs in: `Context` (config, data, run directory, device mesh)
and `phase_key`, the PRNG key of a named stream.

Methods use both (a Method's `finalize` and a Pipeline's `report` receive the
Context; scorers draw keys from named streams), so they live apart from the
loop that creates them.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import jax

from datarater.data.core import Dataset
from datarater.train.rundir import RunDir


@dataclasses.dataclass
class Context:
  """What a pipeline needs: config, data, run directory and device mesh."""
  config: Any
  dataset: Dataset
  run: RunDir
  mesh: jax.sharding.Mesh

  @property
  def seed(self) -> int:
    return int(self.config.seed)


def phase_key(seed: int, name: str) -> jax.Array:
  """PRNG key of a named stream: a stable hash (CRC-32) of the name, folded into the seed."""
  return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()))
