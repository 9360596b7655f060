"""Config validation: one-line errors naming the field, before anything is written."""

from __future__ import annotations

import jax

from datarater.config import DATASETS_EMBEDDED


class ConfigError(ValueError):
  """A bad config value; the message is one line naming the field."""


def _positive(config, *names):
  for name in names:
    value = config
    for part in name.split('.'):
      value = value[part]
    if not isinstance(value, (int, float)) or value <= 0:
      raise ConfigError(f'config.{name} must be a positive number, got {value!r}')


def validate(config, methods) -> None:
  """Raises ConfigError for unknown names, non-positive sizes, indivisible batches."""
  from datarater.models import MODELS
  from datarater.train.task import OPTIMIZERS, SCHEDULES

  _positive(config, 'num_steps', 'batch_size', 'eval_batch_size', 'log_every', 'eval_every',
            'checkpoint_every', 'optimizer.learning_rate', 'data.meta_size', 'data.seq_len',
            'data.examples_per_source')
  n = jax.device_count()
  for name in ('batch_size', 'eval_batch_size'):
    if config[name] % n:
      raise ConfigError(f'config.{name}={config[name]} is not divisible by the {n} devices')
  if config.method.name not in methods:
    raise ConfigError(f'config.method.name={config.method.name!r} is not one of {sorted(methods)}')
  if config.model.name not in MODELS:
    raise ConfigError(f'config.model.name={config.model.name!r} is not one of {MODELS}')
  if config.optimizer.name not in OPTIMIZERS:
    raise ConfigError(f'config.optimizer.name={config.optimizer.name!r} is not one of {OPTIMIZERS}')
  if config.optimizer.schedule not in SCHEDULES:
    raise ConfigError(f'config.optimizer.schedule={config.optimizer.schedule!r} is not one of {SCHEDULES}')
  name = config.data.name
  if name not in DATASETS_EMBEDDED:
    import tensorflow_datasets as tfds
    try:
      tfds.builder_cls(name)
    except Exception:  # noqa: BLE001 - TFDS raises DatasetNotFoundError subclasses
      raise ConfigError(f'config.data.name={name!r} is not one of {DATASETS_EMBEDDED} nor a '
                        'TFDS dataset name') from None
