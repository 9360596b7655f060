"""MNIST-1D: offline generation, shapes, determinism, and the published clean calibration row."""

import random
import socket
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from configs.common import base_config, parse_arg
from datarater.data.mnist1d import LENGTH, NUM_CLASSES, NUM_TEST, NUM_TRAIN, generate, load_mnist1d


def mnist1d_cfg(**kw):
  c = base_config(parse_arg('dataset=mnist1d')).data
  for k, v in kw.items():
    c[k] = v
  return c


@pytest.fixture(scope='module')
def noisy():
  """Seed 0 with the default 5 noisy sources and a clean meta slice."""
  return load_mnist1d(mnist1d_cfg(), seed=0)


@pytest.fixture(scope='module')
def clean():
  """The generator seed of the published data set (42), no corruption."""
  return load_mnist1d(mnist1d_cfg(corruption_rates=()), seed=42)


@pytest.fixture
def network_attempts(monkeypatch):
  """Refuses every connection and records it (a caller's bare `except` cannot hide it)."""
  attempts = []
  def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError('network disabled in this test')
  monkeypatch.setattr(socket.socket, 'connect', refuse)
  for name in ('create_connection', 'getaddrinfo'):
    monkeypatch.setattr(socket, name, refuse)
  return attempts


def test_generates_offline_quickly_and_leaves_global_rngs(network_attempts, noisy):
  np.random.seed(123)
  random.seed(123)
  expected = np.random.rand(), random.random()
  np.random.seed(123)
  random.seed(123)
  start = time.perf_counter()
  d = generate(1)
  seconds = time.perf_counter() - start
  assert seconds < 15, f'{seconds:.1f} s'  # about 1 s alone; 2 shared CPU cores can be busy
  assert d['x'].shape == (NUM_TRAIN, LENGTH) and d['x_test'].shape == (NUM_TEST, LENGTH)
  assert (np.random.rand(), random.random()) == expected
  assert not network_attempts
  assert not np.allclose(d['x_test'], noisy.test.x[..., 0])  # another seed, other signals


def test_shapes_labels_and_sources(noisy):
  assert noisy.info.name == 'mnist1d' and noisy.info.num_classes == NUM_CLASSES
  assert noisy.info.input_shape == (LENGTH, 1) and noisy.info.num_sources == 5
  assert noisy.train.size + noisy.meta.size + noisy.valid.size == NUM_TRAIN
  assert noisy.valid.size == 390 and noisy.test.size == NUM_TEST  # 10% of the 3,900-row pool
  assert noisy.meta.size == 100 and not noisy.meta.corrupted.any()
  for split in noisy[:3]:
    assert split.x.dtype == np.float32 and split.x.shape == (split.size, LENGTH, 1)
    assert split.y.dtype == np.int32 and set(np.unique(split.y)) == set(range(NUM_CLASSES))
  # Exact per-source rates over the corrupted pool (train and the validation rows carved from it).
  rates = [np.concatenate([s.corrupted[s.source == k] for s in (noisy.train, noisy.valid)]).mean()
           for k in range(5)]
  np.testing.assert_allclose(rates, [0, 0.2, 0.4, 0.6, 0.8], atol=0.01)


def test_same_seed_same_data(noisy):
  again = load_mnist1d(mnist1d_cfg(), seed=0)
  for split, split_again in zip(noisy[:3], again[:3]):
    for array, array_again in zip(split, split_again):
      np.testing.assert_array_equal(array, array_again)


def test_input_shape_fits_the_cnn(clean):
  import jax
  from datarater.models import build_model
  cnn = build_model(base_config(parse_arg('dataset=mnist1d,model=cnn,smoke')).model, clean.info)
  x = clean.test.x[:4]
  params = cnn.init(jax.random.PRNGKey(0), x)
  assert cnn.apply(params, x).shape == (4, NUM_CLASSES)


@pytest.mark.filterwarnings('ignore::sklearn.exceptions.ConvergenceWarning')
def test_clean_baselines_match_the_published_calibration_row(clean):
  """Paper (arXiv 2011.14439): logistic regression 32%, MLP 68% test accuracy."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.neural_network import MLPClassifier
  flat = lambda s: s.x.reshape(s.size, -1)  # noqa: E731
  x_tr, y_tr = flat(clean.train), clean.train.y
  x_te, y_te = flat(clean.test), clean.test.y
  with threadpool_limits(1):  # 2 shared cores: BLAS threads would oversubscribe them
    linear = LogisticRegression(max_iter=300).fit(x_tr, y_tr).score(x_te, y_te)
    mlp = MLPClassifier((64,), max_iter=60, random_state=0).fit(x_tr, y_tr).score(x_te, y_te)
  assert 0.25 < linear < 0.40, linear
  assert mlp > linear + 0.1, (mlp, linear)


def test_generator_seed_fixes_the_data_set_across_run_seeds(clean):
  """data.generator_seed=42: every run seed gets the published data set (the calibration row);
  the run's seed still draws the meta split. -1 (default): the run's seed generates the data."""
  for seed in (0, 3):
    d = load_mnist1d(mnist1d_cfg(corruption_rates=(), generator_seed=42), seed=seed)
    np.testing.assert_array_equal(d.test.x, clean.test.x)
    assert (d.meta.row != clean.meta.row).any() if seed else True
  other = load_mnist1d(mnist1d_cfg(corruption_rates=()), seed=3)
  assert not np.allclose(other.test.x, clean.test.x)


def test_generator_seed_is_validated():
  from datarater.errors import ConfigError
  from datarater.train.validate import validate_shared
  c = base_config(parse_arg('dataset=mnist1d'))
  c.method.name = 'uniform'
  c.data.generator_seed = -2
  with pytest.raises(ConfigError, match='data.generator_seed'):
    validate_shared(c)
