"""Rater networks: one scalar score per example, from the whole example.

The rater sees input *and* target (for classification the label as a one-hot
vector; for language modelling the full window of bytes), since label noise is
only visible together with the label. Optionally it also sees per-example
features `feats` [B, F] (e.g. the inner model's loss features,
`datarater.meta.datarater_features`), joined to the head's input; without
them the rater and its parameters are the paper's.

  'mlp'          flattened input ++ one-hot label [++ feats] -> ReLU MLP -> score
  'cnn'          conv features of the image ++ one-hot label [++ feats] -> MLP -> score
  'transformer'  non-causal byte transformer over the window, mean-pooled [++ feats] -> score
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from datarater.models import build_module
from datarater.models.transformer import Encoder


def _head(h, onehot, feats, hidden):
  """h ++ one-hot label (if any) ++ feats (if any) -> ReLU MLP (`hidden` widths) -> [B] scores.

  Called inside a rater's compact `__call__`, so its Dense layers belong to the rater.
  """
  parts = [h] + [a for a in (onehot, feats) if a is not None]
  h = jnp.concatenate([a.astype(h.dtype) for a in parts], -1)
  for width in hidden:
    h = nn.relu(nn.Dense(width)(h))
  return nn.Dense(1)(h)[:, 0]


class MLPRater(nn.Module):
  """Flattened input ++ one-hot label [++ feats] -> ReLU MLP (`hidden` widths) -> score."""
  hidden: Sequence[int]
  num_classes: int

  @nn.compact
  def __call__(self, x, y, feats=None):
    return _head(jnp.reshape(x, (x.shape[0], -1)), jax.nn.one_hot(y, self.num_classes), feats,
                 self.hidden)


class CNNRater(nn.Module):
  """Conv features (`channels`, 2x2 average pooling) ++ one-hot label [++ feats] -> MLP -> score."""
  channels: Sequence[int]
  hidden: Sequence[int]
  num_classes: int

  @nn.compact
  def __call__(self, x, y, feats=None):
    h = x if x.ndim == 4 else x[..., None]
    for ch in self.channels:
      h = nn.relu(nn.Conv(ch, (3, 3))(h))
      if min(h.shape[1:3]) >= 2:
        h = nn.avg_pool(h, (2, 2), strides=(2, 2))
    return _head(jnp.reshape(h, (h.shape[0], -1)), jax.nn.one_hot(y, self.num_classes), feats,
                 self.hidden)


class TransformerRater(nn.Module):
  """Non-causal byte transformer over the whole window (input ++ last target), mean-pooled
  [++ feats] -> score."""
  d_model: int
  num_layers: int
  num_heads: int
  max_len: int
  vocab_size: int = 256

  @nn.compact
  def __call__(self, x, y, feats=None):
    tokens = jnp.concatenate([x, y[:, -1:]], axis=1)  # the whole window
    h = Encoder(self.vocab_size, self.d_model, self.num_layers, self.num_heads, 4,
                self.max_len + 1, causal=False)(tokens)
    return _head(h.mean(axis=1), None, feats, ())


RATERS = {
    'mlp': (MLPRater, 'classification', lambda info: dict(num_classes=info.num_classes)),
    'cnn': (CNNRater, 'classification', lambda info: dict(num_classes=info.num_classes)),
    'transformer': (TransformerRater, 'lm', lambda info: dict(max_len=info.input_shape[0],
                                                              vocab_size=info.num_classes)),
}


def build_rater(cfg, info):
  """The rater named by `config.method.rater.name` with `config.method.rater.kwargs`.

  Args:
    cfg: `config.method.rater` (name, kwargs).
    info: the dataset's DatasetInfo (number of classes, window length).

  Returns:
    The flax rater module.

  Raises:
    ConfigError: one line naming the bad `config.method.rater` field.
  """
  return build_module(RATERS, cfg, info, 'method.rater')
