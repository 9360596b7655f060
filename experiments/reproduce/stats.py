"""Statistics of the tables: mean and spread over seeds, paired intervals vs uniform."""

from __future__ import annotations

import numpy as np


def mean_std(values) -> tuple:
  """(mean, sample standard deviation) of finite values; std None with fewer than 2."""
  v = np.asarray([x for x in values if x is not None], float)
  if v.size == 0:
    return None, None
  return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)


def paired_interval(method, baseline, level: float = 0.95) -> tuple:
  """Mean paired difference method - baseline and its t-interval over seeds.

  Args:
    method: per-seed values of the method.
    baseline: per-seed values of the baseline, same seeds in the same order.
    level: coverage of the two-sided interval.

  Returns:
    (mean, low, high); low and high are None with a single pair.
  """
  from scipy import stats
  d = np.asarray(method, float) - np.asarray(baseline, float)
  if d.size < 2:
    return float(d.mean()), None, None
  half = stats.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
  return float(d.mean()), float(d.mean() - half), float(d.mean() + half)
