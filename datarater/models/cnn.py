"""Small convolutional network for images (digits, MNIST-sized inputs)."""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class CNN(nn.Module):
  """3x3 conv + ReLU + 2x2 average pool per stage, then a dense head."""
  channels: Sequence[int]
  num_outputs: int
  hidden: int = 128

  @nn.compact
  def __call__(self, x):
    if x.ndim == 3:
      x = x[..., None]
    for ch in self.channels:
      x = nn.relu(nn.Conv(ch, (3, 3))(x))
      if min(x.shape[1:3]) >= 2:
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = jnp.reshape(x, (x.shape[0], -1))
    x = nn.relu(nn.Dense(self.hidden)(x))
    return nn.Dense(self.num_outputs)(x)
