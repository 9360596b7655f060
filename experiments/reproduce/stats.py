"""Statistics of the tables: mean and spread over seeds, paired intervals and paired t-tests vs
uniform, and Holm's correction of a table's paired tests."""

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


def paired_pvalue(method, baseline):
  """Two-sided p-value of the paired t-test of method vs baseline over seeds (scipy's ttest_rel).

  Args:
    method: per-seed values of the method.
    baseline: per-seed values of the baseline, same seeds in the same order.

  Returns:
    The p-value; None with fewer than 2 pairs; 1.0 when every paired difference is 0
    (the method equals its baseline on every seed: no evidence of a difference). When every
    paired difference is the same nonzero value (a quantised metric, e.g. a net compute gain
    that moves in evaluation intervals) the t statistic is undefined (zero spread; scipy
    returns p ~ 0): the exact sign-flip test's p-value then, 2 / 2**n (of the 2**n sign
    patterns only all-plus and all-minus are as extreme): 0.5 with 2 seeds, 0.0625 with 5.
  """
  from scipy import stats
  d = np.asarray(method, float) - np.asarray(baseline, float)
  if d.size < 2:
    return None
  if not d.any():
    return 1.0
  if np.ptp(d) <= 1e-9 * np.abs(d).max():
    return 2.0 / 2 ** d.size
  return float(stats.ttest_rel(method, baseline).pvalue)


def holm(pvalues) -> list:
  """Holm's step-down adjusted p-values of a family of tests (None entries are not tests).

  With the m p-values sorted, p_(1) <= ... <= p_(m), the adjusted value of the
  j-th smallest is max over i <= j of min(1, (m - i + 1) p_(i)); a test survives
  at level alpha when its adjusted p-value is <= alpha, which controls the
  family-wise error rate at alpha (Holm 1979).

  Args:
    pvalues: a list of p-values, or None where a row has no test.

  Returns:
    The adjusted p-values in the input order (None where the input is None).
  """
  tested = [(p, i) for i, p in enumerate(pvalues) if p is not None]
  m, out, running = len(tested), [None] * len(pvalues), 0.0
  for rank, (p, i) in enumerate(sorted(tested)):
    running = max(running, min(1.0, (m - rank) * p))
    out[i] = running
  return out
