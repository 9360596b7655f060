"""Multi-layer perceptron over flattened inputs."""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
  """ReLU MLP: flatten -> hidden layers -> `num_outputs` logits."""
  hidden: Sequence[int]
  num_outputs: int

  @nn.compact
  def __call__(self, x):
    x = jnp.reshape(x, (x.shape[0], -1))
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.num_outputs)(x)
