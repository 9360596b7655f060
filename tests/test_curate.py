"""experiments.curate: the kept rows of the user's npz, in order, every key; one-line errors."""

import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.curate import CurateError, curate, kept_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_kept_rows_keeps_the_highest_scores_and_every_unscored_row():
  scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
  scored = np.array([True, True, True, True, False])
  np.testing.assert_array_equal(kept_rows(scores, scored, 0.5), [False, True, False, True, True])


def test_a_run_with_the_old_score_direction_is_refused(run_smoke, tmp_path):
  """A summary.json that still has score_higher_is_corrupted: one line, exit 2, nothing written."""
  import json
  _, _, workdir = run_smoke('kl_dro', scores=True)
  path = os.path.join(workdir, 'summary.json')
  summary = json.load(open(path))
  json.dump({**summary, 'score_higher_is_corrupted': True}, open(path, 'w'))
  out = str(tmp_path / 'curated.npz')
  proc = subprocess.run([sys.executable, '-m', 'experiments.curate', f'--workdir={workdir}',
                         f'--out={out}'], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and proc.stderr.strip().count('\n') == 0
  assert 'summary.json' in proc.stderr and 're-run' in proc.stderr
  assert not os.path.exists(out)


def test_curate_npz_keeps_rows_in_order_with_every_key(run_smoke, tmp_path):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 6)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.int64)
  src = rng.integers(0, 2, 240)
  path = str(tmp_path / 'user.npz')
  np.savez(path, x_train=x[:240], y_train=y[:240], source_train=src, x_test=x[240:],
           y_test=y[240:], note=np.array([7]))
  _, _, workdir = run_smoke('l2rw', 'dataset=npz,smoke', scores=True, data__path=path,
                            data__meta_mode='noisy', data__meta_size=40,
                            data__corruption_rates=(0.0, 0.5))
  out = str(tmp_path / 'curated.npz')
  stats = curate(workdir, 0.5, out)
  cur = dict(np.load(out))
  assert set(cur) == {'x_train', 'y_train', 'source_train', 'x_test', 'y_test', 'note'}
  scored = np.load(os.path.join(workdir, 'scored_rows.npy'))
  meta_rows = np.load(os.path.join(workdir, 'meta_rows.npy'))
  assert stats['rows'] == 240 and meta_rows.sum() == 40 and not scored[meta_rows].any()
  assert stats['unscored_kept'] == (~scored).sum()
  assert len(cur['y_train']) == stats['kept'] == round(0.5 * scored.sum()) + (~scored).sum()
  rows = [int(np.flatnonzero((x[:240] == r).all(1))[0]) for r in cur['x_train']]
  assert rows == sorted(rows)  # original order
  assert np.array_equal(cur['x_test'], x[240:]) and cur['note'][0] == 7
  assert sum(stats['dropped_per_source'].values()) == 240 - stats['kept']
  with pytest.raises(CurateError, match='--keep'):
    curate(workdir, 0.0, out)


def test_missing_scores_is_one_line(tmp_path):
  proc = subprocess.run([sys.executable, '-m', 'experiments.curate', f'--workdir={tmp_path}',
                         f'--out={tmp_path}/x.npz'], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.strip().count('\n') == 0 and 'config.json' in proc.stderr


def test_old_runs_whose_scores_were_already_higher_is_keep_are_accepted():
  """Older summaries carried score_higher_is_corrupted=False for raters and margins
  (their files were already "higher = keep"): only True is refused."""
  from experiments._runs import old_direction
  assert old_direction('run', {'score_higher_is_corrupted': False}) is None
  assert old_direction('run', {}) is None
  assert 'run/summary.json' in old_direction('run', {'score_higher_is_corrupted': True})
