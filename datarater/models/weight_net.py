"""Meta-Weight-Net's weight network V(loss; Theta) (Shu et al., NeurIPS 2019)."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def torch_linear_init(fan_in: int):
  """PyTorch's default `nn.Linear` initialiser, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for a
  layer's kernel and its bias alike."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


class WeightNet(nn.Module):
  """V(loss; Theta): per-example loss -> weight in (0, 1), a 1-hidden-1 MLP.

  Initialised as the MW-Net code's VNet (PyTorch's nn.Linear default: kernel and bias
  U(+-1/sqrt(fan_in))), so the hidden ReLUs have their kinks at losses spread over
  [0, inf) (-b_k / w_k) and V can fall at high losses while it rises at low ones. flax's
  default (zero biases) puts every kink at loss 0: V starts as sigmoid(c L + b), one
  slope for all losses, and the meta-gradient's early sign, locked in by the sigmoid's
  saturation, decided whether V rose or fell with the loss (on the noisy digits preset 4
  of 10 seeds learned a rising V, detection AUROC about 0.03).

  With `flat`, the output layer's kernel starts at zero (its bias and the hidden layer as
  above): V starts as the constant sigmoid(b), i.e. uniform weighting once normalised, with
  its gradient in the output kernel (the hidden features relu(w_k L + b_k)) nonzero, so the
  meta-gradient alone shapes V. PyTorch's init instead gives V a random slope in the loss
  (V(5) - V(0) between -0.26 and +0.42 over seeds 0-9) that the meta-gradient must first
  undo; where its signal is weak it does not within a short run (configs/mwn.py).

  Attributes:
    hidden: width of the single ReLU hidden layer (100 in MW-Net).
    flat: start V constant (zero output kernel) instead of the MW-Net code's init.
  """
  hidden: int = 100
  flat: bool = False

  @nn.compact
  def __call__(self, losses: jax.Array) -> jax.Array:
    """Maps losses of shape [B] to weights of shape [B] (sigmoid output)."""
    h = nn.relu(nn.Dense(self.hidden, kernel_init=torch_linear_init(1),
                         bias_init=torch_linear_init(1))(losses[:, None]))
    out = nn.Dense(1, kernel_init=(nn.initializers.zeros if self.flat
                                   else torch_linear_init(self.hidden)),
                   bias_init=torch_linear_init(self.hidden))(h)
    return nn.sigmoid(out)[:, 0]
