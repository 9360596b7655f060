"""Filtered retraining from any score file (method 'score_filter'; config: configs/score_filter.py).

Reads one score per row of the training data (`method.scores_path`, e.g. the
`scores_train.npy` of an earlier run of any scorer on the same data and seed)
and runs DataRater's top-K filtered retraining on it ('filtered': draw
ceil(B / (1 - rho)) rows, train on the B best-scored), paired with a uniform
model from the same initial parameters ('uniform'). The label-error detection
report (experiments/detect.py) retrains every scorer that has no filtered
phase of its own this way.

Config fields:
  method.scores_path       .npy file with one float per training row, in load order.
  method.higher_is_better  keep the highest scores (True) or the lowest (False;
                           e.g. for latest-loss scores, where high = suspect).
  method.discard_fraction  rho in (0, 1): the fraction of each oversampled batch dropped.
"""

from __future__ import annotations

import os

import numpy as np

from datarater.errors import ConfigError, is_number, require
from datarater.methods import _filter, uniform
from datarater.train.pipeline import Phase, Pipeline

DECLARES = dict(family='filter', label='score filter')


def load_scores(path: str, dataset) -> np.ndarray:
  """The train split's scores from a per-row score file; ConfigError naming the field otherwise.

  The file holds one score per row of the user's training data
  (info.num_rows, as every scorer writes scores_train.npy).
  """
  num_rows = dataset.info.num_rows
  if not path or not os.path.isfile(path):
    raise ConfigError(f'config.method.scores_path: no such file {path!r}')
  try:
    scores = np.load(path, allow_pickle=False)
  except Exception as e:  # noqa: BLE001 - any unreadable file is one user-facing error
    raise ConfigError(f'config.method.scores_path: cannot read {path!r} ({type(e).__name__})'
                      ) from None
  require(scores.shape == (num_rows,), 'method.scores_path',
          f'one score per training row (shape ({num_rows},))', f'shape {scores.shape}')
  require(bool(np.all(np.isfinite(scores))), 'method.scores_path', 'finite scores', path)
  return scores[dataset.train.row].astype(np.float32)


def make(config, task, dataset) -> Pipeline:
  m = config.method
  require(is_number(m.discard_fraction) and 0 < m.discard_fraction < 1,
          'method.discard_fraction', 'in (0, 1)', m.discard_fraction)
  require(isinstance(m.higher_is_better, bool), 'method.higher_is_better', 'True or False',
          m.higher_is_better)
  scores = load_scores(m.scores_path, dataset)
  n = config.num_steps
  return Pipeline(
      (Phase('filtered', _filter.table_filter(config, task, scores, m.higher_is_better), n),
       Phase('uniform', uniform.make(config, task, dataset), n)),
      result='filtered', baseline='uniform',
      report=lambda ctx, r: {'discard_fraction': m.discard_fraction,
                             'scores_path': os.path.abspath(m.scores_path)})
