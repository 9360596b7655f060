"""Filtered retraining from any score file (method 'score_filter'; config: configs/score_filter.py).

Reads one score per row of the training data (`method.scores_path`, e.g. the
`scores_train.npy` of an earlier run of any scorer on the same data and seed;
higher = more worth keeping, the direction every scorer writes) and runs the
shared filtered retraining on it (datarater/methods/_filter.py: 'filtered',
by default drawing ceil(B / (1 - rho)) rows and training on the B
best-scored), paired with a uniform model from the same initial parameters
('uniform'). The label-error detection report (experiments/detect.py)
retrains every scorer that has no filtered phase of its own this way.

Config fields:
  method.scores_path       .npy file with one float per training row, in load
                           order, higher = keep (negate a loss-like file first).
  method.discard_fraction  rho in (0, 1): the fraction of the candidates discarded.
  method.filter_mode       'per_batch' | 'dataset' (datarater/methods/_filter.py).
"""

from __future__ import annotations

import os

import numpy as np

from datarater.errors import ConfigError, require
from datarater.methods import _filter
from datarater.train.pipeline import Pipeline

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
  _filter.check(config, allow_zero=False)
  scores = load_scores(m.scores_path, dataset)
  return _filter.filter_pipeline(config, task, dataset, (), _filter.lookup, lambda r: scores,
                                 report={'scores_path': os.path.abspath(m.scores_path)})
