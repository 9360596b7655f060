"""Filtered retraining from a score file: an oracle score keeps only clean rows."""

import numpy as np
import pytest

from datarater.data import load_dataset
from datarater.errors import ConfigError
from tests.conftest import load_config


def test_oracle_scores_keep_clean_rows(run_smoke, tmp_path):
  config = load_config('score_filter')
  data = load_dataset(config.data, config.seed)
  oracle = np.zeros(data.info.num_rows, np.float32)  # one score per row; meta rows: 0
  oracle[data.train.row] = np.where(data.train.corrupted, -1.0, 1.0)
  path = str(tmp_path / 'oracle.npy')
  np.save(path, oracle)
  summary, rows, _ = run_smoke('score_filter', num_steps=8, log_every=1, method__scores_path=path,
                             method__discard_fraction=0.5)
  logged = [(r['filter/kept_score_mean'], r['filter/dropped_score_mean']) for r in rows
            if 'filter/kept_score_mean' in r]
  # Top B of the 2B drawn: only clean rows kept, or only corrupted rows dropped.
  assert logged and all(kept == 1.0 or dropped == -1.0 for kept, dropped in logged)
  assert summary['result_phase'] == 'filtered' and summary['baseline_phase'] == 'uniform'


def test_wrong_length_is_one_line(run_smoke, tmp_path):
  path = str(tmp_path / 'short.npy')
  np.save(path, np.zeros(3, np.float32))
  with pytest.raises(ConfigError, match='config.method.scores_path'):
    run_smoke('score_filter', method__scores_path=path)
