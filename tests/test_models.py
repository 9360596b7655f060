"""Model output shapes and config errors."""

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from configs.common import base_config, parse_arg
from datarater.data.core import DatasetInfo
from datarater.models import build_model


def info(task='classification', shape=(8, 8, 1), classes=10):
  return DatasetInfo('x', task, classes, shape, 1, ('s',), 'none', (), 'clean', 1)


@pytest.mark.parametrize('name,shape', [('mlp', (8, 8, 1)), ('cnn', (8, 8, 1)), ('cnn', (28, 28, 1)),
                                        ('resnet', (16, 16, 3)), ('wrn', (16, 16, 3))])
def test_classifier_shapes(name, shape):
  cfg = base_config(parse_arg(f'dataset=digits,smoke,model={name}')).model
  model = build_model(cfg, info(shape=shape))
  x = jnp.zeros((3,) + shape)
  params = model.init(jax.random.key(0), x)['params']
  assert model.apply({'params': params}, x).shape == (3, 10)


def test_resnet32_paper_size():
  cfg = base_config(parse_arg('dataset=cifar10')).model
  model = build_model(cfg, info(shape=(32, 32, 3)))
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))['params']
  n = sum(x.size for x in jax.tree.leaves(params))
  assert 0.4e6 < n < 0.6e6  # ResNet-32 has about 0.46M parameters


def test_wrn_28_10_paper_size():
  cfg = base_config(parse_arg('dataset=cifar10,model=wrn')).model
  model = build_model(cfg, info(shape=(32, 32, 3)))
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))['params']
  n = sum(x.size for x in jax.tree.leaves(params))
  assert 36.3e6 < n < 36.7e6, n  # WRN-28-10 has about 36.5M parameters


def test_wrn_depth_must_be_6n_plus_4():
  cfg = ml_collections.ConfigDict(base_config(parse_arg('dataset=cifar10,model=wrn')).model)
  cfg.kwargs.depth = 26
  with pytest.raises(ValueError, match='config.model.kwargs.depth'):
    build_model(cfg, info(shape=(32, 32, 3)))


def test_transformer_lm_is_causal():
  cfg = base_config(parse_arg('dataset=stdlib_text,smoke')).model
  model = build_model(cfg, info('lm', (16,), 256))
  tokens = jax.random.randint(jax.random.key(1), (2, 16), 0, 256)
  params = model.init(jax.random.key(0), tokens)['params']
  out = model.apply({'params': params}, tokens)
  assert out.shape == (2, 16, 256)
  changed = tokens.at[:, 10].set((tokens[:, 10] + 1) % 256)
  out2 = model.apply({'params': params}, changed)
  assert jnp.allclose(out[:, :10], out2[:, :10], atol=1e-5)   # the past does not see the future
  assert not jnp.allclose(out[:, 10:], out2[:, 10:], atol=1e-5)


def test_bad_model_configs():
  cfg = ml_collections.ConfigDict(base_config(parse_arg('dataset=digits')).model)
  cfg.name = 'nope'
  with pytest.raises(ValueError, match='config.model.name'):
    build_model(cfg, info())
  cfg.name = 'transformer'
  with pytest.raises(ValueError, match='does not fit'):
    build_model(cfg, info())
  cfg.name = 'resnet'  # the mlp's kwargs are not the resnet's fields
  with pytest.raises(ValueError, match='config.model.kwargs.hidden'):
    build_model(cfg, info())
