"""Wide ResNet (Zagoruyko and Komodakis 2016): depth 6n+4, widths 16k, 32k, 64k.

WRN-28-10 (n = 4, k = 10, about 36.5M parameters) is the network of the
Meta-Weight-Net uniform-noise tables. Pre-activation blocks; GroupNorm replaces
BatchNorm for the reason given in resnet.py (parameters stay a plain pytree
that meta-gradients can differentiate through). Dropout is left out (the
MW-Net code trains WRN-28-10 without it).
"""

import flax.linen as nn
import jax.numpy as jnp


class WideBlock(nn.Module):
  width: int
  stride: int

  @nn.compact
  def __call__(self, x):
    groups = min(8, x.shape[-1])
    y = nn.relu(nn.GroupNorm(groups)(x))
    shortcut = x
    if x.shape[-1] != self.width or self.stride != 1:
      shortcut = nn.Conv(self.width, (1, 1), self.stride, use_bias=False)(y)
    y = nn.Conv(self.width, (3, 3), self.stride, use_bias=False)(y)
    y = nn.relu(nn.GroupNorm(min(8, self.width))(y))
    y = nn.Conv(self.width, (3, 3), use_bias=False)(y)
    return shortcut + y


class WideResNet(nn.Module):
  depth: int
  widen: int
  num_outputs: int

  @nn.compact
  def __call__(self, x):
    if (self.depth - 4) % 6:
      raise ValueError(f'WideResNet depth must be 6n+4, got {self.depth}')
    n = (self.depth - 4) // 6
    if x.ndim == 3:
      x = x[..., None]
    x = nn.Conv(16, (3, 3), use_bias=False)(x)
    for stage in range(3):
      for block in range(n):
        stride = 2 if stage > 0 and block == 0 else 1
        x = WideBlock(16 * self.widen * 2 ** stage, stride)(x)
    x = nn.relu(nn.GroupNorm(min(8, x.shape[-1]))(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_outputs)(x)
