"""Input validation (issue 24, items 5, 6 and 13): values that used to pass
validation and then crashed with a traceback or gave silently wrong results are
one-line ConfigErrors / DataErrors naming the field or npz key."""

import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from conftest import ROOT, load_config
from configs.common import SMOKE_MODEL_KWARGS
from datarater.data import DataError, load_dataset
from datarater.data.loaders import MAX_CLASSES, MAX_LABEL, MAX_SOURCES
from datarater.errors import ConfigError
from datarater.run import prepare, validate


def _one_line(error) -> str:
  msg = str(error.value)
  assert '\n' not in msg
  return msg


# ----------------------------------------------------------------------------- config (item 13)


@pytest.mark.parametrize('seed', [2**32, 2**63, 18446744073709551616, True])
def test_seed_outside_what_the_prng_accepts_is_refused(seed):
  # jax.random.key keeps only the low 32 bits (2**32 would silently be seed 0) and
  # overflows with a traceback from 2**63.
  config = load_config('uniform')
  config.seed = seed
  with pytest.raises(ConfigError, match=r'config\.seed must be an integer in \[0, 2\*\*32\)') as e:
    validate(config)
  _one_line(e)


def test_largest_accepted_seed_validates():
  config = load_config('uniform')
  config.seed = 2**32 - 1
  validate(config)


@pytest.mark.parametrize('rates,field', [
    (('abc',), 'config.data.corruption_rates[0]'),
    ((0.1, 'x'), 'config.data.corruption_rates[1]'),
    ((0.1, True), 'config.data.corruption_rates[1]'),
    ((1.5,), 'config.data.corruption_rates[0]'),
    ((0.1,) * (MAX_SOURCES + 1), 'config.data.corruption_rates'),
])
def test_corruption_rates_must_be_numbers_in_unit_interval(rates, field):
  config = load_config('uniform')
  config.data.corruption_rates = rates
  with pytest.raises(ConfigError, match=field.replace('.', r'\.').replace('[', r'\[')) as e:
    validate(config)
  _one_line(e)
  # The loader (used without validate by curate and the experiment drivers) refuses too.
  with pytest.raises(DataError, match='config.data.corruption_rates') as e:
    load_dataset(config.data, 0)
  _one_line(e)


@pytest.mark.parametrize('model,kwargs,field', [
    ('mlp', dict(hidden=('abc',)), 'config.model.kwargs.hidden[0]'),
    ('mlp', dict(hidden=(32.5,)), 'config.model.kwargs.hidden[0]'),
    ('mlp', dict(hidden=(True,)), 'config.model.kwargs.hidden[0]'),
    ('mlp', dict(hidden='abc'), 'config.model.kwargs.hidden'),
    ('cnn', dict(hidden=2.5), 'config.model.kwargs.hidden'),
    ('cnn', dict(channels=(8, 'x')), 'config.model.kwargs.channels[1]'),
    ('resnet', dict(width=8.5), 'config.model.kwargs.width'),
    ('transformer', dict(mlp_ratio=1.5), 'config.model.kwargs.mlp_ratio'),
])
def test_model_kwargs_of_the_wrong_type_are_refused(model, kwargs, field):
  config = load_config('uniform')
  config.model = ml_collections.ConfigDict(
      {'name': model, 'kwargs': {**SMOKE_MODEL_KWARGS[model], **kwargs}})
  with pytest.raises(ConfigError, match=field.replace('.', r'\.').replace('[', r'\[')) as e:
    validate(config)
  assert 'positive integer' in _one_line(e)


@pytest.mark.parametrize('value', [1.5, -0.1])
def test_text_noise_fraction_outside_unit_interval_is_refused(value):
  config = load_config('uniform', 'dataset=stdlib_text,smoke')   # > 1 silently acted as 1
  config.data.text_noise_fraction = value
  with pytest.raises(ConfigError, match=r'config\.data\.text_noise_fraction must be in \[0, 1\]'):
    validate(config)


def test_rater_kwargs_of_the_wrong_type_are_refused():
  config = load_config('datarater')
  config.method.rater.kwargs.hidden = (16.5,)
  with pytest.raises(ConfigError, match=r'config\.method\.rater\.kwargs\.hidden\[0\]') as e:
    validate(config)
  _one_line(e)


def test_cli_seed_beyond_range_exits_2_one_line_nothing_written(tmp_path):
  workdir = tmp_path / 'run'
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.train',
       '--config=configs/uniform.py:dataset=digits,smoke', f'--workdir={workdir}',
       '--config.seed=18446744073709551616'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1 and 'config.seed' in errors[0], proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  assert not workdir.exists()


# ----------------------------------------------------------------------------- npz (items 5, 6)


def _good(n=60):
  rng = np.random.default_rng(0)
  return dict(x_train=rng.normal(size=(n, 4)), y_train=rng.integers(0, 3, n),
              x_test=rng.normal(size=(20, 4)), y_test=rng.integers(0, 3, 20))


def _npz_config(tmp_path, arrays, name='uniform'):
  path = tmp_path / 'd.npz'
  np.savez(path, **arrays)
  config = load_config(name, 'dataset=npz,smoke')
  config.data.path, config.data.meta_size = str(path), 10
  return config


@pytest.mark.parametrize('key', ['x_train', 'x_test', 'x_meta'])
def test_npz_values_beyond_float32_range_are_refused(tmp_path, key):
  g = _good()
  g.update(x_meta=g['x_test'][:10].copy(), y_meta=g['y_test'][:10])
  g[key][3, 1] = 1e39   # finite in float64, inf as the float32 the model sees
  config = _npz_config(tmp_path, g)
  with pytest.raises(DataError, match=f"'{key}' has values beyond the float32 range") as e:
    load_dataset(config.data, 0)
  _one_line(e)


def test_npz_inputs_near_float32_limit_are_accepted(tmp_path):
  g = _good()
  g['x_train'][0, 0] = 3e38
  config = _npz_config(tmp_path, g)
  d = load_dataset(config.data, 0)
  assert d.train.x.dtype == np.float32 and np.isfinite(d.train.x).all()


def test_npz_source_ids_are_remapped_and_keep_their_names(tmp_path):
  g = _good()
  ids = np.array([2**32 + 1, 1, 2**31, 2**31 - 1], np.int64)
  g['source_train'] = ids[np.arange(60) % 4]   # used to become 1, 1, -2**31, 2**31-1 as int32
  g['source_test'] = ids[np.arange(20) % 4]    # numbered like source_train's
  config = _npz_config(tmp_path, g)
  d = load_dataset(config.data, 0)
  assert d.info.num_sources == 4
  assert d.info.source_names == ('source1', 'source2147483647', 'source2147483648',
                                 'source4294967297')
  # Every split's source ids are 0..K-1, and each maps back to the row's own id.
  for split in (d.train, d.test):
    assert split.source.min() >= 0 and split.source.max() < 4
  user_id = g['source_train'][d.train.row]
  names = np.array(d.info.source_names)[d.train.source]
  assert (names == np.array([f'source{i}' for i in user_id])).all()
  names = np.array(d.info.source_names)[d.test.source]
  assert (names == np.array([f'source{i}' for i in g['source_test']])).all()


def test_npz_large_sparse_source_ids_train(tmp_path):
  g = _good()
  g['source_train'] = np.where(np.arange(60) % 2 == 0, 0, 2**31 - 1)   # was a MemoryError
  config = _npz_config(tmp_path, g)
  _, _, pipeline = prepare(config)
  dataset = load_dataset(config.data, 0)
  assert dataset.info.source_names == ('source0', 'source2147483647')
  assert pipeline.phases


def test_npz_too_many_sources_are_refused(tmp_path):
  g = _good(n=MAX_SOURCES + 1)
  g['source_train'] = np.arange(MAX_SOURCES + 1) * 1000
  config = _npz_config(tmp_path, g)
  with pytest.raises(DataError, match=f"'source_train' has {MAX_SOURCES + 1} distinct source "
                                      f'ids; at most {MAX_SOURCES}') as e:
    load_dataset(config.data, 0)
  _one_line(e)


@pytest.mark.parametrize('label', [2**31 - 1, MAX_CLASSES])
def test_npz_label_beyond_class_limit_is_refused(tmp_path, label):
  g = _good()
  g['y_train'][0] = label   # 2**31-1 (the old limit) crashed with a traceback
  config = _npz_config(tmp_path, g)
  with pytest.raises(DataError, match=f"'y_train' has labels outside 0..{MAX_LABEL}") as e:
    load_dataset(config.data, 0)
  _one_line(e)


def test_npz_largest_accepted_label_builds_a_model(tmp_path):
  g = _good()
  g['y_train'][0] = MAX_LABEL
  config = _npz_config(tmp_path, g)
  dataset, task, pipeline = prepare(config)
  assert dataset.info.num_classes == MAX_CLASSES and pipeline.phases
  params = task.init_params(jax.random.key(0))
  batch = {'x': dataset.train.x[:8], 'y': np.full(8, MAX_LABEL, np.int32)}
  assert np.isfinite(np.asarray(task.per_example_loss(params, batch))).all()
