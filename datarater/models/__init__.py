"""Flax models, found by name. Params are plain pytrees passed to pure `module.apply` calls.

`config.model` is a name plus a kwargs dict: `build_model(config.model, info)`
builds `MODELS[name](**kwargs, <sizes from the dataset>)`. Each model's
kwargs are the fields of its flax module (see its file); the dataset fixes
the output size (and the LM's vocabulary and length).
"""

import dataclasses

from datarater.errors import ConfigError, require
from datarater.models.cnn import CNN
from datarater.models.mlp import MLP
from datarater.models.resnet import ResNet
from datarater.models.transformer import TransformerLM
from datarater.models.wrn import WideResNet

# name -> (flax module, task it fits, fields the dataset fills in)
MODELS = {
    'mlp': (MLP, 'classification', lambda info: dict(num_outputs=info.num_classes)),
    'cnn': (CNN, 'classification', lambda info: dict(num_outputs=info.num_classes)),
    'resnet': (ResNet, 'classification', lambda info: dict(num_outputs=info.num_classes)),
    'wrn': (WideResNet, 'classification', lambda info: dict(num_outputs=info.num_classes)),
    'transformer': (TransformerLM, 'lm', lambda info: dict(vocab_size=info.num_classes,
                                                           max_len=info.input_shape[0])),
}


def build_module(registry: dict, cfg, info, field: str):
  """`registry[cfg.name](**cfg.kwargs, **dataset sizes)`, with one-line ConfigErrors.

  Args:
    registry: name -> (module class, task, info -> dict of dataset-given fields).
    cfg: ConfigDict with `name` and `kwargs`.
    info: the dataset's DatasetInfo.
    field: the config path of `cfg` for error messages ('model', 'method.rater').
  """
  require(cfg.name in registry, f'{field}.name', f'one of {sorted(registry)}', cfg.name)
  cls, task, given = registry[cfg.name]
  if task != info.task:
    raise ConfigError(f'config.{field}.name={cfg.name!r} does not fit the {info.task} task of '
                      f'dataset {info.name!r}')
  fixed = given(info)
  allowed = [f.name for f in dataclasses.fields(cls)
             if f.name not in fixed and f.name not in ('parent', 'name')]
  kwargs = dict(cfg.kwargs)
  for k in kwargs:
    require(k in allowed, f'{field}.kwargs.{k}', f'a field of {cfg.name} ({allowed})', k)
  kwargs = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in kwargs.items()}
  try:
    return cls(**kwargs, **fixed)
  except TypeError as e:  # a missing required field
    raise ConfigError(f'config.{field}.kwargs: {e}') from None


def build_model(cfg, info):
  """The model named by `config.model.name` with `config.model.kwargs` for a dataset's `info`."""
  if cfg.name == 'resnet':
    depth = cfg.kwargs.get('depth', 32)
    require(depth >= 8 and (depth - 2) % 6 == 0, 'model.kwargs.depth', '6n+2 >= 8', depth)
  if cfg.name == 'wrn':
    depth = cfg.kwargs.get('depth', 28)
    require(depth >= 10 and (depth - 4) % 6 == 0, 'model.kwargs.depth', '6n+4 >= 10', depth)
  return build_module(MODELS, cfg, info, 'model')
