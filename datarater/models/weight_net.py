"""Meta-Weight-Net's weight network V(loss; Theta) (Shu et al., NeurIPS 2019)."""

import flax.linen as nn
import jax


class WeightNet(nn.Module):
  """V(loss; Theta): per-example loss -> weight in (0, 1), a 1-hidden-1 MLP.

  Attributes:
    hidden: width of the single ReLU hidden layer (100 in MW-Net).
  """
  hidden: int = 100

  @nn.compact
  def __call__(self, losses: jax.Array) -> jax.Array:
    """Maps losses of shape [B] to weights of shape [B] (sigmoid output)."""
    h = nn.relu(nn.Dense(self.hidden)(losses[:, None]))
    return nn.sigmoid(nn.Dense(1)(h))[:, 0]
