"""The one filtered-retraining module (methods/_filter.py): both modes, validation, old configs."""

import json

import jax
import numpy as np
import pytest

from conftest import load_config
from datarater.data import load_dataset
from datarater.errors import ConfigError
from datarater.methods import _filter
from datarater.run import changed_fields, prepare
from datarater.train.state import init_train_state
from datarater.train.task import make_task
from datarater.weighting import scores as score_ops
from datarater.weighting import tables


def _setup(mode):
  config = load_config('score_filter')   # batch 16
  config.method.filter_mode, config.method.discard_fraction = mode, 0.5
  dataset = load_dataset(config.data, config.seed)
  task = make_task(config, dataset.info)
  table = np.random.default_rng(0).permutation(dataset.train.size).astype(np.float32)
  return config, dataset, task, table


def test_oversampled_batch_size_and_kept_count():
  assert _filter.oversampled_batch_size(64, 0.5) == 128
  assert _filter.oversampled_batch_size(64, 0.75) == 256
  assert _filter.oversampled_batch_size(100, 0.1) == 112  # ceil(111.1) = 112
  assert _filter.kept_count(10, 0.5) == 5 and _filter.kept_count(10, 0.25) == 8   # ceil(7.5)
  assert _filter.kept_count(10, 0.0) == 10


def test_per_batch_trains_on_the_best_scored_rows():
  config, dataset, task, table = _setup('per_batch')
  method = _filter.make_filter(config, task, dataset, _filter.lookup, table)
  assert method.train_batch_size == 32 and method.grad_evals == 16   # draws 32, keeps 16
  idx = np.arange(100, 132)
  batch = {'x': dataset.train.x[idx], 'y': dataset.train.y[idx],
           'source': dataset.train.source[idx], 'index': idx.astype(np.int32)}
  _, _, metrics = jax.jit(method.step)(init_train_state(task, jax.random.key(0)),
                                       method.init(None, None), batch, None)
  s = np.sort(table[idx])   # higher = keep: the top 16 are kept
  np.testing.assert_allclose(metrics['filter/kept_score_mean'], s[16:].mean(), rtol=1e-6)
  np.testing.assert_allclose(metrics['filter/dropped_score_mean'], s[:16].mean(), rtol=1e-6)
  np.testing.assert_allclose(metrics['filter/all_score_mean'], s.mean(), rtol=1e-6)


def test_dataset_prune_draws_only_the_best_rows():
  config, dataset, task, table = _setup('dataset')
  n = dataset.train.size
  method = _filter.make_filter(config, task, dataset, _filter.lookup, table)
  assert method.train_batch_size == 16 and method.sample is not None
  assert method.init(None, init_train_state(task, jax.random.key(0))) == ()
  best = set(np.flatnonzero(table >= np.sort(table)[n - _filter.kept_count(n, 0.5)]).tolist())
  drawn = np.concatenate([method.sample(step, ()) for step in range(2 * n // 16)])
  assert set(drawn.tolist()) == best   # every kept row, and no other, over two passes
  again = _filter.make_filter(config, task, dataset, _filter.lookup, table)
  again.init(None, init_train_state(task, jax.random.key(0)))
  np.testing.assert_array_equal(again.sample(5, ()), method.sample(5, ()))   # (seed, step) only


def test_unscored_rows_rank_at_the_mean_and_ties_keep_the_lower_row():
  table = tables.ExampleTable(np.array([0.9, 0.1, 0.5, 0.0, 0.7]), np.array([1, 1, 1, 0, 2]))
  filled, fill = tables.fill_unscored(table.value, table.count > 0)
  assert fill == pytest.approx(0.55)   # row 3 ranks between 0.5 and 0.7
  np.testing.assert_array_equal(score_ops.best_rows(filled, _filter.kept_count(5, 0.4)), [0, 3, 4])
  np.testing.assert_array_equal(score_ops.best_rows(filled, _filter.kept_count(5, 0.0)),
                                [0, 1, 2, 3, 4])
  np.testing.assert_array_equal(score_ops.best_rows(np.array([1.0, 2.0, 2.0, 2.0]), 2), [1, 2])


@pytest.mark.parametrize('name', ['datarater', 'storm', 'aum', 'el2n', 'forgetting', 'cartography',
                                  'confident_learning', 'score_filter'])
def test_filter_mode_is_validated(name, tmp_path):
  config = load_config(name)
  assert config.method.filter_mode == ('dataset' if name == 'storm' else 'per_batch')
  if name == 'score_filter':
    path = str(tmp_path / 's.npy')
    np.save(path, np.zeros(load_dataset(config.data, config.seed).info.num_rows, np.float32))
    config.method.scores_path = path
  config.method.filter_mode = 'online'
  with pytest.raises(ConfigError, match='config.method.filter_mode'):
    prepare(config)


@pytest.mark.parametrize('name', ['datarater', 'storm', 'score_filter'])
def test_configs_recorded_before_filter_mode_are_the_same_run(name):
  """A fingerprint.json written before method.filter_mode existed matches today's default."""
  config = load_config(name)
  old = json.loads(config.to_json_best_effort())
  del old['method']['filter_mode']
  if name == 'score_filter':
    old['method']['higher_is_better'] = True   # removed: True kept the highest, as now
  assert changed_fields(old, config, ()) == []
  config.method.filter_mode = 'per_batch' if name == 'storm' else 'dataset'
  assert changed_fields(old, config, ()) == ['method']
  if name == 'score_filter':
    old['method']['higher_is_better'] = False   # kept the lowest: another run
    assert changed_fields(old, load_config(name), ()) == ['method']


@pytest.mark.parametrize('name', ['el2n', 'forgetting'])
def test_a_recorded_raw_score_filter_is_not_resumed(name):
  """Before "higher = keep", el2n's and forgetting's filtered phase checkpointed a
  table of raw statistics: resuming it would keep the most suspect rows, so such a
  recorded config stays another run (its resume is refused); without a filter it
  still matches."""
  config = load_config(name)
  config.method.discard_fraction = 0.5
  old = json.loads(config.to_json_best_effort())
  del old['method']['filter_mode']
  assert changed_fields(old, config, ()) == ['method']
  config.method.discard_fraction = old['method']['discard_fraction'] = 0.0
  assert changed_fields(old, config, ()) == []


@pytest.mark.parametrize('name,mode', [('datarater', 'dataset'), ('storm', 'per_batch'),
                                       ('aum', 'dataset')])
def test_the_other_mode_runs_in_the_loop(run_smoke, name, mode):
  extra = {'method__filter': True} if name == 'storm' else {}   # STORM's filtered variant
  summary, rows, _ = run_smoke(name, method__filter_mode=mode, method__discard_fraction=0.5,
                               **extra)
  assert summary['filter_mode'] == mode and summary['discard_fraction'] == 0.5
  assert summary['result_phase'] == 'filtered' and summary['baseline_phase'] == 'uniform'
  ledger = summary['phases']['filtered']['ledger']
  b = load_config(name).batch_size
  per_step = 2 * b if mode == 'per_batch' else b   # rho 0.5: 2B candidates, or B kept rows
  assert ledger['examples_processed'] == per_step * ledger['steps']
  logged = [r for r in rows if r['phase'] == 'filtered' and 'filter/kept_score_mean' in r]
  assert bool(logged) == (mode == 'per_batch')
