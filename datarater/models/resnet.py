"""CIFAR ResNet (He et al. 2016): depth 6n+2, three stages of widths w, 2w, 4w.

ResNet-32 (n = 5, w = 16) is the network of the Meta-Weight-Net flip-noise and
long-tail tables. GroupNorm replaces BatchNorm so that the parameters are a
plain pytree with no mutable batch statistics: an update can then be
differentiated through (meta-gradients) and sharded like any other params.
"""

import flax.linen as nn
import jax.numpy as jnp


class BasicBlock(nn.Module):
  width: int
  stride: int

  @nn.compact
  def __call__(self, x):
    groups = min(8, self.width)
    y = nn.Conv(self.width, (3, 3), self.stride, use_bias=False)(x)
    y = nn.relu(nn.GroupNorm(groups)(y))
    y = nn.Conv(self.width, (3, 3), use_bias=False)(y)
    y = nn.GroupNorm(groups)(y)
    if x.shape != y.shape:
      x = nn.Conv(self.width, (1, 1), self.stride, use_bias=False)(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  depth: int
  width: int
  num_outputs: int

  @nn.compact
  def __call__(self, x):
    if (self.depth - 2) % 6:
      raise ValueError(f'ResNet depth must be 6n+2, got {self.depth}')
    n = (self.depth - 2) // 6
    if x.ndim == 3:
      x = x[..., None]
    x = nn.Conv(self.width, (3, 3), use_bias=False)(x)
    x = nn.relu(nn.GroupNorm(min(8, self.width))(x))
    for stage in range(3):
      for block in range(n):
        stride = 2 if stage > 0 and block == 0 else 1
        x = BasicBlock(self.width * 2 ** stage, stride)(x)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_outputs)(x)
