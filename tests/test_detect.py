"""The label-error detection report on a smoke preset: every column filled, metrics recomputable."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from datarater.report.detection import detection_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_detection_metrics_on_a_hand_case():
  corrupted = np.array([True, False, True, False])
  scores = np.array([0.1, 0.9, 0.6, 0.5])   # higher = keep: row 0 is the most suspect
  m = detection_metrics(scores, corrupted)
  # Pairs (corrupted, clean) ranked right: (0,1) (0,3) (2,1); wrong: (2,3) -> 3/4.
  assert m['auroc'] == 0.75 and m['precision_at_rate'] == 0.5   # flagged rows 0 and 3


def test_report_runs_and_reuses_finished_runs(tmp_path):
  cmd = [sys.executable, '-m', 'experiments.detect', '--dataset=digits', '--smoke',
         '--scorers=small_loss (latest loss),aum', f'--out={tmp_path}']
  first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert first.returncode == 0, first.stderr[-2000:]
  folder = tmp_path / 'digits_clean_seed0'
  rows = list(csv.DictReader(open(folder / 'table.csv')))
  assert [r['scorer'] for r in rows] == ['small_loss (latest loss)', 'aum']
  assert all(r[k] != '' for r in rows for k in r)
  assert os.path.isdir(folder / 'small_loss_retrain')  # retrained by score_filter
  again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0 and '[train] step' not in again.stdout  # finished runs reused
  assert list(csv.DictReader(open(folder / 'table.csv'))) == rows
  # A finished run written before scores_train.npy had one direction is refused, not reused.
  path = folder / 'small_loss' / 'summary.json'
  json.dump({**json.load(open(path)), 'score_higher_is_corrupted': True}, open(path, 'w'))
  old = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert old.returncode == 2 and old.stderr.strip().count('\n') == 0, old.stderr[-2000:]
  assert str(path) in old.stderr and 're-run' in old.stderr


def test_every_scorer_is_measured_on_the_same_rows(tmp_path, monkeypatch):
  """DataRater also scores its meta rows, another scorer misses some training rows: both are
  measured on the training rows that both scored, and only on those."""
  import datarater.report.detection as detection
  from datarater.data import load_dataset
  from experiments._runs import common_rows, load_config, run_detection
  config = load_config('uniform', 'dataset=digits,smoke')
  data = load_dataset(config.data, config.seed)
  n = data.info.num_rows
  meta = np.zeros(n, bool)
  meta[data.meta.row] = True
  unscored = np.zeros(n, bool)
  unscored[np.flatnonzero(~meta)[::7]] = True       # rows the second scorer never saw
  runs = {'datarater': np.ones(n, bool), 'small_loss': ~meta & ~unscored}
  for name, scored in runs.items():
    os.makedirs(tmp_path / name)
    np.save(tmp_path / name / 'scores_train.npy', np.arange(n, dtype=np.float32))  # score = row id
    np.save(tmp_path / name / 'scored_rows.npy', scored)
    np.save(tmp_path / name / 'meta_rows.npy', meta)
  seen = {}
  def spy(scores, corrupted):
    seen[len(seen)] = set(np.asarray(scores, int))
    return detection_metrics(scores, corrupted)
  monkeypatch.setattr(detection, 'detection_metrics', spy)
  rows = common_rows([str(tmp_path / name) for name in runs])
  out = [run_detection(config, str(tmp_path / name), {}, rows) for name in runs]
  expected = set(np.flatnonzero(~meta & ~unscored))
  assert seen[0] == seen[1] == expected and out[0]['rows'] == out[1]['rows'] == len(expected)
  # Without the common population, DataRater's own rows would include its meta split.
  run_detection(config, str(tmp_path / 'datarater'), {})
  assert seen[2] == set(np.flatnonzero(~meta)) and not seen[2] & set(np.flatnonzero(meta))


def test_a_subset_scorer_does_not_shrink_the_others_population(tmp_path):
  """TMC-Shapley values a random subset of the rows (method.max_rows): the other scorers stay
  measured on every row they all scored, TMC-Shapley on its subset of those rows."""
  from experiments._runs import SUBSET_SCORERS, detection_population
  assert SUBSET_SCORERS == ('tmc_shapley',)
  n = 40
  scored = {'aum': np.ones(n, bool), 'small_loss (latest loss)': np.arange(n) != 3,
            'tmc_shapley': np.arange(n) % 4 == 0}
  runs = {}
  for name, mask in scored.items():
    runs[name] = str(tmp_path / name.split()[0])
    os.makedirs(runs[name])
    np.save(os.path.join(runs[name], 'scored_rows.npy'), mask)
    np.save(os.path.join(runs[name], 'meta_rows.npy'), np.zeros(n, bool))
  full = np.arange(n) != 3
  for name in ('aum', 'small_loss (latest loss)'):
    np.testing.assert_array_equal(detection_population(runs, name), full)
  np.testing.assert_array_equal(detection_population(runs, 'tmc_shapley'),
                                full & (np.arange(n) % 4 == 0))


def test_agreement_with_the_raters_is_the_spearman_over_the_population(tmp_path):
  """The suite's 'Spearman with datarater' column: a scorer's scores against DataRater's of the
  same setting and seed, over the rows the scorer is measured on; 1 in DataRater's row."""
  from scipy import stats
  from experiments._runs import scorers
  from experiments.reproduce.core import slug
  from experiments.reproduce.suites import label_error_detection as led
  n, rng = 30, np.random.default_rng(0)
  meta = np.arange(n) < 4
  for name in scorers():
    run = tmp_path / 'setting' / slug(name) / 'seed0'
    os.makedirs(run)
    np.save(run / 'scores_train.npy', rng.normal(size=n).astype(np.float32))
    np.save(run / 'scored_rows.npy', np.arange(n) != 7)
    np.save(run / 'meta_rows.npy', meta)
    json.dump({}, open(run / 'summary.json', 'w'))
  metric = next(m for m in led.SUITE.metrics if m.name == 'Spearman with datarater')
  aum = tmp_path / 'setting' / 'aum' / 'seed0'
  rows = ~meta & (np.arange(n) != 7)
  a = np.load(aum / 'scores_train.npy')[rows]
  b = np.load(tmp_path / 'setting' / 'datarater' / 'seed0' / 'scores_train.npy')[rows]
  assert abs(metric.fn({}, str(aum), None) - stats.spearmanr(a, b).statistic) < 1e-12
  assert metric.fn({}, str(tmp_path / 'setting' / 'datarater' / 'seed0'), None) == pytest.approx(1)


def test_detect_runs_at_the_label_error_detection_suite_budget():
  """One budget: experiments.detect's scorer runs take the suite's steps and meta-steps (the
  review found 1,500 steps and 800 meta-steps against the suite's 600 and 200)."""
  from experiments.detect import scorer_config
  from experiments.reproduce.suites import SUITES
  runs = [r for r in SUITES['label_error_detection'].runs('cpu') if r.setting == 'digits clean meta']
  assert len(runs) > 5
  for run in runs:
    suite, report = run.make_config(0), scorer_config(run.method, 'dataset=digits', 'clean', 0)
    assert report.num_steps == suite.num_steps == 600, run.method
    assert report.method.get('meta_steps') == suite.method.get('meta_steps'), run.method
