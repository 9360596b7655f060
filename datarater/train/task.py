"""The inner problem a method trains: model, per-example loss, optimizer.

`Task` bundles pure functions over a params pytree so that methods never touch
the dataset type: classification (cross-entropy per example) and byte-level
language modelling (mean next-byte cross-entropy per sequence) look the same.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from datarater.data.core import DatasetInfo
from datarater.models import build_model

OPTIMIZERS = ('sgd', 'momentum', 'nesterov', 'adam', 'adamw')
SCHEDULES = ('constant', 'cosine', 'warmup_cosine', 'step')


def make_schedule(cfg, num_steps: int) -> optax.Schedule:
  """`config.optimizer.schedule` as an optax schedule over `num_steps`."""
  lr = cfg.learning_rate
  if cfg.schedule == 'constant':
    return optax.constant_schedule(lr)
  if cfg.schedule == 'cosine':
    return optax.cosine_decay_schedule(lr, max(num_steps, 1))
  if cfg.schedule == 'warmup_cosine':
    return optax.warmup_cosine_decay_schedule(0.0, lr, cfg.warmup_steps, max(num_steps, cfg.warmup_steps + 1))
  if cfg.schedule == 'step':  # lr * factor^(number of boundaries passed), boundaries as fractions
    scales = {}
    for b in cfg.step_boundaries:  # boundaries that round to one step multiply there
      step = int(round(b * num_steps))
      scales[step] = scales.get(step, 1.0) * cfg.step_factor
    return optax.piecewise_constant_schedule(lr, scales)
  raise ValueError(f'config.optimizer.schedule={cfg.schedule!r} is not one of {SCHEDULES}')


def make_optimizer(cfg, num_steps: int) -> optax.GradientTransformation:
  """`config.optimizer` as an optax chain: [clip] -> [weight decay] -> optimizer.

  Adam uses `eps_root` (see datarater.config) so the update stays
  differentiable when a second-moment entry is zero.
  """
  lr = make_schedule(cfg, num_steps)
  if cfg.name == 'adamw':
    core = optax.adamw(lr, eps_root=cfg.eps_root, weight_decay=cfg.weight_decay)
  elif cfg.name == 'adam':
    core = optax.adam(lr, eps_root=cfg.eps_root)
  elif cfg.name == 'sgd':
    core = optax.sgd(lr)
  elif cfg.name in ('momentum', 'nesterov'):
    core = optax.sgd(lr, momentum=cfg.momentum, nesterov=cfg.name == 'nesterov')
  else:
    raise ValueError(f'config.optimizer.name={cfg.name!r} is not one of {OPTIMIZERS}')
  chain = []
  if cfg.grad_clip:
    chain.append(optax.clip_by_global_norm(cfg.grad_clip))
  if cfg.weight_decay and cfg.name != 'adamw':
    chain.append(optax.add_decayed_weights(cfg.weight_decay))
  return optax.chain(*chain, core)


@dataclasses.dataclass(frozen=True)
class Task:
  """Model + loss of one dataset. All methods are pure and jit-able."""
  model: nn.Module
  info: DatasetInfo
  optimizer: optax.GradientTransformation

  def init_params(self, key) -> Any:
    dummy = jnp.zeros((1,) + tuple(self.info.input_shape),
                      jnp.int32 if self.info.task == 'lm' else jnp.float32)
    return self.model.init(key, dummy)['params']

  def logits(self, params, x):
    return self.model.apply({'params': params}, x)

  def per_example_loss(self, params, batch) -> jax.Array:
    """Cross-entropy per example [B] (mean over tokens for language modelling)."""
    ce = optax.softmax_cross_entropy_with_integer_labels(self.logits(params, batch['x']), batch['y'])
    return ce.mean(axis=-1) if ce.ndim == 2 else ce

  def per_example_correct(self, params, batch) -> jax.Array:
    """Accuracy per example [B] (fraction of correct next bytes for LM)."""
    hit = (jnp.argmax(self.logits(params, batch['x']), -1) == batch['y']).astype(jnp.float32)
    return hit.mean(axis=-1) if hit.ndim == 2 else hit


def make_task(config, info: DatasetInfo, num_steps: int | None = None) -> Task:
  return Task(build_model(config.model, info), info,
              make_optimizer(config.optimizer, num_steps or config.num_steps))
