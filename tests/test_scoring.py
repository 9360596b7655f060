"""Per-example score tables and the score report shared by scoring methods."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config
from datarater.report import scoring
from datarater.weighting import tables


def test_report_fills_unscored_with_mean_and_scores_auroc(tmp_path):
  """Unscored examples get the mean of the scored ones; AUROC uses scored ones only."""
  from datarater.data import load_dataset
  config = load_config('l2rw')
  data = load_dataset(config.data, config.seed)
  n = data.train.size
  rng = np.random.default_rng(0)
  seen = rng.random(n) < 0.5
  # Scores that separate the classes perfectly on scored examples only.
  raw = np.where(data.train.corrupted, -1.0, 1.0) + 0.1 * rng.random(n)
  table = tables.ExampleTable(jnp.asarray(np.where(seen, raw, 0.0), jnp.float32),
                              jnp.asarray(seen, jnp.int32))
  os.makedirs(tmp_path / 'plots')
  run = type('Run', (), {'file': lambda self, *parts: str(tmp_path.joinpath(*parts))})()
  ctx = type('Ctx', (), {'dataset': data, 'run': run})()
  out = scoring.report_table(ctx, table, 'test score')
  scores = np.load(tmp_path / 'scores_train.npy')
  assert scores.shape == (data.info.num_rows,)
  meta_rows = np.load(tmp_path / 'meta_rows.npy')
  assert meta_rows.sum() == data.meta.size and not meta_rows[data.train.row].any()
  np.testing.assert_allclose(scores[meta_rows], out['score_fill_value'], rtol=1e-6)
  scores = scores[data.train.row]  # back to train-split order
  fill = raw[seen].astype(np.float32).mean()
  assert out['score_fill_value'] == pytest.approx(float(fill), rel=1e-5)
  np.testing.assert_allclose(scores[~seen], fill, rtol=1e-5)
  np.testing.assert_allclose(scores[seen], raw[seen], rtol=1e-6)
  assert out['scored_fraction'] == pytest.approx(seen.mean())
  assert out['score_auroc'] == 1.0  # unscored (filled) examples would break the perfect order
  assert 'raw_score' not in out and not os.path.exists(tmp_path / 'raw_scores_train.npy')
  assert os.path.exists(tmp_path / 'plots' / 'scores_by_source.png')


def test_report_of_a_loss_like_statistic_writes_it_negated_and_raw(tmp_path):
  """raw=...: scores_train.npy holds the given (negated) scores, raw_scores_train.npy the raw."""
  from datarater.data import load_dataset
  config = load_config('l2rw')
  data = load_dataset(config.data, config.seed)
  loss = np.where(data.train.corrupted, 2.0, 0.5) + 0.1 * np.random.default_rng(0).random(
      data.train.size)   # high loss = corrupted
  os.makedirs(tmp_path / 'plots')
  run = type('Run', (), {'file': lambda self, *parts: str(tmp_path.joinpath(*parts))})()
  ctx = type('Ctx', (), {'dataset': data, 'run': run})()
  out = scoring.report_scores(ctx, -loss, 'loss', raw='latest loss')
  keep = np.load(tmp_path / 'scores_train.npy')[data.train.row]
  raw = np.load(tmp_path / 'raw_scores_train.npy')[data.train.row]
  np.testing.assert_allclose(keep, -loss, rtol=1e-6)
  np.testing.assert_array_equal(raw, -keep)
  assert out['raw_score'] == 'latest loss' and out['score_auroc'] == 1.0
  assert 'score_higher_is_corrupted' not in out


def test_auroc_direction_and_degenerate_cases():
  corrupted = np.array([0, 0, 1, 1], bool)
  assert scoring.auroc(corrupted, np.array([2.0, 3.0, 0.0, 1.0])) == 1.0   # low score = corrupted
  assert scoring.auroc(corrupted, np.array([0.0, 1.0, 2.0, 3.0])) == 0.0
  assert scoring.auroc(np.zeros(4, bool), np.arange(4.0)) is None


def test_table_record_counts_visits_and_skips_invalid_slots():
  t = tables.table_init(5)
  t = tables.table_record(t, jnp.array([1, 3]), jnp.array([0.5, -1.0]))
  t = tables.table_record(t, jnp.array([3]), jnp.array([2.0]))
  t = tables.table_record(t, jnp.array([0, 1]), jnp.array([9.0, 9.0]), jnp.array([False, True]))
  np.testing.assert_allclose(t.value, [0, 9.0, 0, 2.0, 0])
  np.testing.assert_array_equal(t.count, [0, 2, 0, 2, 0])


def test_running_mean():
  m = tables.mean_init((2,))
  np.testing.assert_allclose(tables.mean_value(m), [0.0, 0.0])
  for v in ([1.0, 4.0], [3.0, 0.0]):
    m = tables.mean_update(m, jnp.asarray(v))
  np.testing.assert_allclose(tables.mean_value(m), [2.0, 2.0])
  assert int(m.count) == 2


def test_npz_noisy_meta_scores_every_user_row(run_smoke, tmp_path):
  """A noisy meta split carved out of the user's train rows: every row gets a score slot."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 6)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.int64)
  path = str(tmp_path / 'user.npz')
  np.savez(path, x_train=x[:240], y_train=y[:240], x_test=x[240:], y_test=y[240:])
  summary, _, workdir = run_smoke('l2rw', 'dataset=npz,smoke', scores=True, data__path=path,
                                  data__meta_mode='noisy', data__meta_size=40)
  scores = np.load(os.path.join(workdir, 'scores_train.npy'))
  meta_rows = np.load(os.path.join(workdir, 'meta_rows.npy'))
  scored = np.load(os.path.join(workdir, 'scored_rows.npy'))
  assert scores.shape == meta_rows.shape == scored.shape == (240,)  # the file's rows
  assert meta_rows.sum() == 40 and not (scored & meta_rows).any()
  assert 'score_higher_is_corrupted' not in summary


def test_auroc_and_spearman_equal_sklearn_and_scipy_with_ties():
  """The rank closed forms used in training runs equal the library functions (ties included)."""
  from scipy import stats
  from sklearn.metrics import roc_auc_score
  from datarater.report import detection
  rng = np.random.default_rng(0)
  for n in (2, 7, 50, 400):
    scores = rng.integers(0, 5, n).astype(float) + (rng.random(n) < 0.5) * rng.random(n)
    corrupted = rng.random(n) < 0.3
    corrupted[0], corrupted[-1] = True, False
    assert abs(detection.auroc(corrupted, scores) - roc_auc_score(corrupted, -scores)) < 1e-12
    rates = rng.integers(0, 3, n).astype(float)
    rates[:2] = [0.0, 2.0]
    np.testing.assert_allclose(detection.midranks(scores), stats.rankdata(scores))
    assert abs(detection.rate_spearman(scores, rates)
               - stats.spearmanr(scores, rates).statistic) < 1e-12
