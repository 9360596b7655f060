"""Byte-level transformer: a causal LM and a non-causal pooled encoder."""

import flax.linen as nn
import jax.numpy as jnp


class Block(nn.Module):
  d_model: int
  num_heads: int
  mlp_ratio: int
  causal: bool

  @nn.compact
  def __call__(self, x):
    mask = nn.make_causal_mask(jnp.ones(x.shape[:2], jnp.int32)) if self.causal else None
    y = nn.LayerNorm()(x)
    x = x + nn.MultiHeadDotProductAttention(num_heads=self.num_heads)(y, y, mask=mask)
    y = nn.LayerNorm()(x)
    y = nn.Dense(self.mlp_ratio * self.d_model)(y)
    return x + nn.Dense(self.d_model)(nn.gelu(y))


class Encoder(nn.Module):
  """Token + learned position embeddings followed by `num_layers` blocks."""
  vocab_size: int
  d_model: int
  num_layers: int
  num_heads: int
  mlp_ratio: int
  max_len: int
  causal: bool

  @nn.compact
  def __call__(self, tokens):
    x = nn.Embed(self.vocab_size, self.d_model)(tokens)
    pos = self.param('pos', nn.initializers.normal(0.02), (self.max_len, self.d_model))
    x = x + pos[: tokens.shape[1]]
    for _ in range(self.num_layers):
      x = Block(self.d_model, self.num_heads, self.mlp_ratio, self.causal)(x)
    return nn.LayerNorm()(x)


class TransformerLM(nn.Module):
  """Decoder-only byte LM: logits [B, L, vocab] for next-token prediction."""
  vocab_size: int
  d_model: int
  num_layers: int
  num_heads: int
  mlp_ratio: int
  max_len: int

  @nn.compact
  def __call__(self, tokens):
    h = Encoder(self.vocab_size, self.d_model, self.num_layers, self.num_heads,
                self.mlp_ratio, self.max_len, causal=True)(tokens)
    return nn.Dense(self.vocab_size)(h)
