"""Validation of the shared config fields: one-line errors naming the field,
before anything is written.

`validate_shared` checks every field the framework reads (sizes, optimizer,
schedule, data, model, nonfinite); the runner (datarater.run.validate) adds
the method's name, and each method module checks its own `config.method.*`
fields with the same `require` (datarater.errors).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax

from datarater.data import DATASETS_EMBEDDED
from datarater.data.classification import MAX_SOURCES
from datarater.errors import ConfigError, is_number, require
from datarater.models import MODELS
from datarater.models.rater import RATERS
from datarater.train.guard import NONFINITE_POLICIES
from datarater.train.task import OPTIMIZERS, SCHEDULES


def _leaves(node, prefix=''):
  """(dotted field name, value) of every leaf of a ConfigDict (tuple/list items included)."""
  items = node.items() if hasattr(node, 'items') else enumerate(node)
  for key, value in items:
    name = f'{prefix}{key}' if isinstance(key, str) else f'{prefix[:-1]}[{key}]'
    if hasattr(value, 'items') or isinstance(value, (tuple, list)):
      yield from _leaves(value, f'{name}.')
    else:
      yield name, value


def _field(config, name: str):
  for part in name.split('.'):
    config = config[part]
  return config


# jax.random.key keeps only the low 32 bits of a seed without jax_enable_x64 (2**32
# would give seed 0's key) and overflows at 2**63; MNIST-1D's generator needs < 2**32.
SEED_LIMIT = 2**32


def _field_kind(field) -> str | None:
  """'int' or 'ints' (a sequence of ints) for a flax module field's annotation."""
  t = field.type
  t = t if isinstance(t, str) else t.__name__ if isinstance(t, type) else str(t)
  t = t.replace('typing.', '')
  return {'int': 'int', 'Sequence[int]': 'ints', 'tuple[int, ...]': 'ints'}.get(t)


def check_module_kwargs(registry: dict, cfg, field: str) -> None:
  """Type checks `cfg.kwargs` against the fields of `registry[cfg.name]`'s flax module:
  an `int` field must be a positive integer, a `Sequence[int]` field a tuple of them.

  Unknown names and missing fields are left to `datarater.models.build_module`,
  which knows the dataset.
  """
  if cfg.name not in registry:
    return
  kinds = {f.name: _field_kind(f) for f in dataclasses.fields(registry[cfg.name][0])}
  def positive_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
  for key, value in cfg.kwargs.items():
    name = f'{field}.kwargs.{key}'
    if kinds.get(key) == 'int':
      require(positive_int(value), name, 'a positive integer', value)
    elif kinds.get(key) == 'ints':
      require(isinstance(value, (tuple, list)), name, 'a tuple of positive integers', value)
      for i, v in enumerate(value):
        require(positive_int(v), f'{name}[{i}]', 'a positive integer', v)


def validate_shared(config) -> None:
  """Raises ConfigError for non-finite numbers, unknown names, sizes out of range,
  indivisible batches, values of the wrong type.

  Covers every float of the config, the shared fields and the kwargs of a
  `config.method.rater` network; not the method's name (datarater.run.validate)
  nor its other `config.method.*` fields (the method module checks those).
  """
  for name, value in _leaves(config):
    if isinstance(value, float):
      require(math.isfinite(value), name, 'a finite number', value)
  for name in ('num_steps', 'batch_size', 'eval_batch_size', 'log_every', 'eval_every',
               'checkpoint_every', 'optimizer.learning_rate', 'data.meta_size', 'data.seq_len',
               'data.examples_per_source'):
    value = _field(config, name)
    require(is_number(value) and value > 0, name, 'a positive number', value)
  for name in ('optimizer.warmup_steps', 'optimizer.momentum', 'optimizer.weight_decay',
               'optimizer.grad_clip', 'optimizer.eps_root', 'data.max_examples'):
    value = _field(config, name)
    require(is_number(value) and value >= 0, name, 'a number >= 0', value)
  require(isinstance(config.seed, numbers.Integral) and not isinstance(config.seed, bool)
          and 0 <= config.seed < SEED_LIMIT, 'seed', 'an integer in [0, 2**32)', config.seed)
  rates = config.data.corruption_rates
  require(isinstance(rates, (tuple, list)) and len(rates) <= MAX_SOURCES,
          'data.corruption_rates', f'a tuple of at most {MAX_SOURCES} rates (one per source)',
          rates)
  for i, r in enumerate(rates):
    require(is_number(r) and 0 <= r <= 1, f'data.corruption_rates[{i}]', 'a number in [0, 1]', r)
  generator_seed = config.data.get('generator_seed', -1)
  require(isinstance(generator_seed, numbers.Integral) and not isinstance(generator_seed, bool)
          and -1 <= generator_seed < SEED_LIMIT, 'data.generator_seed',
          'an integer in [-1, 2**32) (-1 = the run\'s seed)', generator_seed)
  fraction = config.data.text_noise_fraction
  require(is_number(fraction) and 0 <= fraction <= 1, 'data.text_noise_fraction', 'in [0, 1]',
          fraction)
  require(is_number(config.data.imbalance) and config.data.imbalance >= 1, 'data.imbalance',
          'a number >= 1 (1 = balanced)', config.data.imbalance)
  require(is_number(config.data.test_fraction) and 0 < config.data.test_fraction < 1,
          'data.test_fraction', 'in (0, 1)', config.data.test_fraction)
  require(config.get('eval_test', 'every') in ('every', 'last'), 'eval_test',
          "'every' or 'last'", config.get('eval_test'))
  require(config.get('nonfinite', 'stop') in NONFINITE_POLICIES, 'nonfinite',
          f'one of {NONFINITE_POLICIES}', config.get('nonfinite'))
  check_module_kwargs(MODELS, config.model, 'model')
  rater = config.method.get('rater')
  if hasattr(rater, 'get') and 'name' in rater and 'kwargs' in rater:  # DataRater's rater
    check_module_kwargs(RATERS, rater, 'method.rater')
  for name, value in _leaves(config.model.kwargs, 'model.kwargs.'):  # widths, depths, ...
    require(not is_number(value) or value > 0, name, 'a positive number', value)
  n = jax.device_count()
  for name in ('batch_size', 'eval_batch_size'):
    require(config[name] % n == 0, name, f'divisible by the {n} devices', config[name])
  require(config.model.name in MODELS, 'model.name', f'one of {sorted(MODELS)}', config.model.name)
  require(config.optimizer.name in OPTIMIZERS, 'optimizer.name', f'one of {OPTIMIZERS}',
          config.optimizer.name)
  require(config.optimizer.schedule in SCHEDULES, 'optimizer.schedule', f'one of {SCHEDULES}',
          config.optimizer.schedule)
  bounds = config.optimizer.step_boundaries
  require(isinstance(bounds, (tuple, list)) and all(is_number(b) and 0 < b < 1 for b in bounds)
          and list(bounds) == sorted(set(bounds)), 'optimizer.step_boundaries',
          'an increasing tuple of fractions in (0, 1)', bounds)
  require(is_number(config.optimizer.step_factor) and 0 < config.optimizer.step_factor <= 1,
          'optimizer.step_factor', 'in (0, 1]', config.optimizer.step_factor)
  require(config.optimizer.schedule != 'step' or len(bounds) > 0, 'optimizer.step_boundaries',
          "at least one boundary for schedule='step'", bounds)
  name = config.data.name
  if name not in DATASETS_EMBEDDED:
    import tensorflow_datasets as tfds
    try:
      tfds.builder_cls(name)
    except Exception:  # noqa: BLE001 - TFDS raises DatasetNotFoundError subclasses
      raise ConfigError(f'config.data.name={name!r} is not one of {DATASETS_EMBEDDED} nor a '
                        'TFDS dataset name') from None
