"""scores_train.npy has one direction for every method: higher = more worth keeping.

For every scorer of the detection report (experiments._runs.scorers()) and
InfoBatch, a smoke run's file gives back the summary's AUROC of "low score =
corrupted" (so reports and consumers need no flag), a loss-like statistic is
written negated (its raw values in raw_scores_train.npy, named in the
summary), and no summary carries the old direction flag. Longer runs of a
loss-like method check the sign itself: clean rows score higher.
"""

import os

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from conftest import load_config
from datarater.data import load_dataset
from experiments._runs import scorers

# Detection-only runs (no filtered retraining), as the label_error_detection suite.
NO_RETRAIN = {'datarater': dict(method__baseline=False, method__discard_fraction=0.0),
              'storm': dict(method__filter=False)}
RETRAINS = ('aum', 'el2n', 'forgetting', 'cartography', 'confident_learning')
CASES = {name: (cfg, {k.replace('.', '__'): v for k, v in extra.items()})
         for name, (cfg, extra) in scorers().items()}
CASES['infobatch'] = ('infobatch', {})


def auroc_from_files(workdir, config, name='scores_train.npy'):
  """(AUROC of "low value = corrupted", corrupted [n], values [n]) over the scored training rows."""
  values = np.load(os.path.join(workdir, name))
  scored = np.load(os.path.join(workdir, 'scored_rows.npy'))
  train = load_dataset(config.data, config.seed).train
  rows, corrupted = train.row[train.row >= 0], train.corrupted[train.row >= 0]
  keep = scored[rows]
  return (float(roc_auc_score(corrupted[keep], -values[rows][keep])), corrupted[keep],
          values[rows][keep])


@pytest.mark.parametrize('name', list(CASES))
def test_scores_file_is_higher_keep(run_smoke, name):
  cfg, extra = CASES[name]
  if cfg in RETRAINS:
    extra = dict(extra, method__discard_fraction=0.0)
  summary, _, workdir = run_smoke(cfg, scores=True, **NO_RETRAIN.get(cfg, {}), **extra)
  assert 'score_higher_is_corrupted' not in summary
  config = load_config(cfg)
  auroc, _, scores = auroc_from_files(workdir, config)
  assert summary['score_auroc'] == pytest.approx(auroc, abs=1e-9)
  raw_path = os.path.join(workdir, 'raw_scores_train.npy')
  assert os.path.exists(raw_path) == ('raw_score' in summary)
  if 'raw_score' in summary:
    np.testing.assert_array_equal(np.load(raw_path), -np.load(
        os.path.join(workdir, 'scores_train.npy')))


@pytest.mark.parametrize('name', ['kl_dro', 'infobatch'])
def test_loss_like_scores_are_negated(run_smoke, name):
  """After 160 steps on the noisy digits preset corrupted rows have the higher latest loss:
  their scores_train.npy values are lower (AUROC of low = corrupted > 0.6)."""
  summary, _, workdir = run_smoke(name, scores=True, num_steps=160, eval_every=160,
                                  log_every=40, checkpoint_every=160)
  auroc, corrupted, scores = auroc_from_files(workdir, load_config(name))
  assert summary['score_auroc'] == pytest.approx(auroc, abs=1e-9) and auroc > 0.6, auroc
  assert scores[~corrupted].mean() > scores[corrupted].mean()
  raw_auroc = auroc_from_files(workdir, load_config(name), 'raw_scores_train.npy')[0]
  assert summary['raw_score'] and raw_auroc == pytest.approx(1 - auroc)   # high raw = corrupted
