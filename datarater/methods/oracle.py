"""Oracle: uniform training on the training rows that are not corrupted (ground truth).

Config: configs/oracle.py. An upper reference, not a method: it reads the
ground-truth `corrupted` flag of the training split when building its
sampler (`uniform.on_rows`: batches of B drawn from the clean rows only,
epoch-wise reshuffled passes, a pure function of (seed, step)); the flag is
never put in a batch (datarater.data.sampler.gather). Same steps, batch size,
optimizer and compute as uniform. Without corruption (or without known
flags) it is uniform training on every row.
"""

from __future__ import annotations

import numpy as np

from datarater.errors import DataError
from datarater.methods import uniform
from datarater.train.state import Method

DECLARES = dict(family='baseline', label='oracle (clean rows, ground truth)',
                information='ground truth')


def clean_rows(dataset) -> np.ndarray:
  """int64 indices of the training rows whose ground-truth `corrupted` flag is False.

  Raises:
    DataError: every training row is corrupted.
  """
  rows = np.flatnonzero(~np.asarray(dataset.train.corrupted, bool))
  if not len(rows):
    raise DataError(f'oracle: all {dataset.train.size} training rows are corrupted; there are no '
                    'clean rows to train on (config.data.corruption_rates)')
  return rows


def make(config, task, dataset) -> Method:
  """Uniform training on the clean training rows.

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset (its train split's corrupted flags choose the rows).

  Returns:
    Method.
  """
  rows = clean_rows(dataset)
  print(f'[oracle] trains on the {len(rows)} clean rows of {dataset.train.size} training rows',
        flush=True)
  return uniform.on_rows(config, task, dataset, lambda: rows)
