"""The five data scorers as methods: scores in the loop, the shared filter, the out-of-fold rule."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config
from datarater.data import load_dataset
from datarater.dynamics import aum as aum_math
from datarater.errors import ConfigError
from datarater.methods import _filter, aum, confident_learning
from datarater.train.context import Context
from datarater.train.rundir import RunDir
from datarater.train.sharding import make_mesh
from datarater.train.state import init_train_state
from datarater.train.task import make_task

# Enough steps on the digits smoke preset (batch 16) to see each row about twice; no
# evaluation or checkpoint in between (compilation, not steps, dominates a smoke run).
# Only AUM runs the filtered retraining in the loop (shared code, unit-tested below).
STEPS = 160
QUIET = dict(num_steps=STEPS, eval_every=STEPS, log_every=20, checkpoint_every=STEPS)
SCORE_ONLY = dict(QUIET, method__discard_fraction=0.0)


def filter_rows(rows):
  rows = [r for r in rows if r['phase'] == 'filtered' and 'filter/kept_score_mean' in r]
  assert rows
  return [(r['filter/kept_score_mean'], r['filter/dropped_score_mean']) for r in rows]


def test_presentation_records_the_logits_before_the_update():
  config = load_config('aum')
  dataset = load_dataset(config.data, config.seed)
  task = make_task(config, dataset.info)
  method = _filter.presentation_method(config, task, dataset, aum_math.aum_init,
                                       aum_math.aum_update)
  ts = init_train_state(task, jax.random.key(0))
  idx = np.arange(config.batch_size)
  batch = {'x': dataset.train.x[idx], 'y': dataset.train.y[idx],
           'source': dataset.train.source[idx], 'index': idx.astype(np.int32)}
  new_ts, state, _ = jax.jit(method.step)(ts, method.init(None, ts), batch, None)
  before = aum_math.margins(task.logits(ts.params, batch['x']), batch['y'])
  after = aum_math.margins(task.logits(new_ts.params, batch['x']), batch['y'])
  assert float(jnp.max(jnp.abs(before - after))) > 1e-4  # the step moved the model
  np.testing.assert_allclose(state.margin_sum[idx], before, rtol=1e-5, atol=1e-6)
  assert np.all(np.asarray(state.count)[idx] == 1) and state.count.sum() == len(idx)


def test_aum_threshold_rows_train_and_score_on_the_fake_class():
  config = load_config('aum')
  config.method.threshold_samples = True
  dataset = load_dataset(config.data, config.seed)
  c = dataset.info.num_classes
  labels, is_threshold = aum.threshold_labels(config, dataset)
  assert round(dataset.train.size / (c + 1)) == is_threshold.sum()
  np.testing.assert_array_equal(labels, np.where(is_threshold, c, dataset.train.y))
  phase = aum.make(config, make_task(config, dataset.info), dataset).phases[0]
  ts = init_train_state(phase.task, jax.random.key(0))
  idx = np.arange(64)
  batch = {'x': dataset.train.x[idx], 'y': dataset.train.y[idx],
           'source': dataset.train.source[idx], 'index': idx.astype(np.int32)}
  _, state, _ = jax.jit(phase.method.step)(ts, phase.method.init(None, ts), batch, None)
  logits = phase.task.logits(ts.params, batch['x'])
  assert logits.shape == (64, c + 1) and is_threshold[idx].any()
  np.testing.assert_allclose(state.margin_sum[idx], aum_math.margins(logits, labels[idx]),
                             rtol=1e-5, atol=1e-6)


def test_aum_threshold_samples_scores_filter(run_smoke):
  summary, rows, workdir = run_smoke('aum', scores=True, method__threshold_samples=True,
                                     method__discard_fraction=0.5,
                                     **QUIET)
  assert summary['score_auroc'] > 0.6  # low AUM = corrupted
  # The threshold rows (1/(C+1) of the train rows) are unscored.
  assert 0.8 < summary['scored_fraction'] < 1 - 1 / 11 + 0.01
  assert 0 < summary['aum_flagged_fraction'] < 1
  assert summary['result_phase'] == 'filtered' and summary['baseline_phase'] == 'uniform'
  assert all(kept > dropped for kept, dropped in filter_rows(rows))  # keeps high AUM
  assert 'score_higher_is_corrupted' not in summary and 'raw_score' not in summary


def test_forgetting_scores(run_smoke):
  summary, _, _ = run_smoke('forgetting', scores=True, **SCORE_ONLY)
  assert summary['score_auroc'] > 0.6  # many forgetting events = corrupted
  assert 0 < summary['never_learned_fraction'] < 1


def test_cartography_scores_and_map(run_smoke):
  summary, _, workdir = run_smoke('cartography', scores=True, **SCORE_ONLY)
  assert summary['score_auroc'] > 0.6  # low confidence = corrupted
  carto = summary['cartography']
  assert carto['corrupted']['confidence'] < carto['clean']['confidence']
  assert carto['corrupted']['correctness'] < carto['clean']['correctness']
  assert os.path.exists(os.path.join(workdir, 'plots', 'data_map.png'))


def test_el2n_early_ensemble_scores(run_smoke):
  summary, _, _ = run_smoke('el2n', scores=True, method__score_steps=STEPS // 2, **SCORE_ONLY)
  assert summary['score_auroc'] > 0.6  # high EL2N = corrupted
  assert summary['phases']['score']['ledger']['steps'] == STEPS // 2


def test_grand_without_filtering_is_one_phase(run_smoke):
  summary, _, _ = run_smoke('el2n', scores=True, method__score='grand',
                            method__discard_fraction=0.0, method__score_steps=40, num_steps=40,
                            eval_every=40, checkpoint_every=40)
  assert list(summary['phases']) == ['score'] and summary['result_phase'] == 'score'
  assert summary['score_auroc'] > 0.55  # high gradient norm = corrupted


def test_confident_learning_scores(run_smoke):
  summary, _, workdir = run_smoke('confident_learning', scores=True, **SCORE_ONLY)
  assert summary['score_auroc'] > 0.6  # low self-confidence = corrupted
  cl = summary['confident_learning']
  assert len(cl['thresholds']) == 10 and 0 < cl['label_issues']
  assert cl['issue_precision'] > 0.5  # the digits preset's corruption rate is 0.4
  probs = np.load(os.path.join(workdir, 'oof_pred_probs.npy'))
  np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_fold_models_never_train_on_their_own_fold():
  config = load_config('confident_learning')
  dataset = load_dataset(config.data, config.seed)
  pipeline = confident_learning.make(config, make_task(config, dataset.info), dataset)
  method = pipeline.phases[0].method
  k, b, n = config.method.num_folds, config.batch_size, dataset.train.size
  folds = confident_learning.folds_of(config, n)
  assert np.all(np.bincount(folds) >= n // k)
  seen = np.zeros(n, bool)
  for step in range(3 * n // b):
    idx = method.sample(step, ()).reshape(k, b)
    assert all(np.all(folds[idx[f]] != f) for f in range(k)), step
    seen[idx.ravel()] = True
  assert seen.all()  # every row is trained on by the other folds' models


def test_each_row_is_scored_by_the_model_of_its_own_fold(tmp_path):
  config = load_config('confident_learning')
  dataset = load_dataset(config.data, config.seed)
  k, c, n = config.method.num_folds, dataset.info.num_classes, dataset.train.size
  phase = confident_learning.make(config, make_task(config, dataset.info), dataset).phases[0]
  ts = init_train_state(phase.task, jax.random.key(0))
  # Member f predicts class f for every input: zero weights, output bias 10 * onehot(f).
  out_bias = 10.0 * jnp.eye(k, c)
  params = jax.tree.map(lambda a: out_bias if a.shape == (k, c) else jnp.zeros_like(a), ts.params)
  ctx = Context(config, dataset, RunDir(str(tmp_path)), make_mesh())
  phase.method.finalize(ctx, ts._replace(params=params), ())
  probs = np.load(tmp_path / 'oof_pred_probs.npy')
  folds = confident_learning.folds_of(config, n)
  np.testing.assert_array_equal(np.argmax(probs, 1), folds)


def test_bad_fields_name_the_field(run_smoke):
  with pytest.raises(ConfigError, match='config.method.discard_fraction'):
    run_smoke('forgetting', method__discard_fraction=1.0)
  with pytest.raises(ConfigError, match='config.method.num_folds'):
    run_smoke('confident_learning', method__num_folds=1)
  with pytest.raises(ConfigError, match='config.data.name'):
    run_smoke('aum', 'dataset=stdlib_text,smoke')


def test_el2n_score_steps_follow_num_steps_unless_set():
  """EL2N scores after ~10% of the run as launched (REVIEW: it was fixed at config load, 150
  steps, 25% of a 600-step suite run)."""
  config = load_config('el2n', 'dataset=digits')
  assert config.method.score_steps == config.num_steps // 10
  config.num_steps = 600
  assert config.method.score_steps == 60
  config.method.score_steps = 7
  config.num_steps = 300
  assert config.method.score_steps == 7
