"""Flax models. Params are plain pytrees passed to pure `module.apply` calls."""

from datarater.models.cnn import CNN
from datarater.models.mlp import MLP
from datarater.models.resnet import ResNet
from datarater.models.transformer import TransformerLM

MODELS = ('mlp', 'cnn', 'resnet', 'transformer')


def build_model(cfg, info):
  """The model named by `config.model.name` for a dataset's `info`."""
  if cfg.name not in MODELS:
    raise ValueError(f'config.model.name={cfg.name!r} is not one of {MODELS}')
  if (cfg.name == 'transformer') != (info.task == 'lm'):
    raise ValueError(f'config.model.name={cfg.name!r} does not fit the {info.task} task of '
                     f'dataset {info.name!r}')
  if cfg.name == 'mlp':
    return MLP(tuple(cfg.hidden), info.num_classes)
  if cfg.name == 'cnn':
    return CNN(tuple(cfg.channels), info.num_classes)
  if cfg.name == 'resnet':
    if cfg.resnet_depth < 8 or (cfg.resnet_depth - 2) % 6:
      raise ValueError(f'config.model.resnet_depth must be 6n+2 >= 8, got {cfg.resnet_depth}')
    return ResNet(cfg.resnet_depth, cfg.resnet_width, info.num_classes)
  return TransformerLM(info.num_classes, cfg.d_model, cfg.num_layers, cfg.num_heads,
                       cfg.mlp_ratio, info.input_shape[0])
