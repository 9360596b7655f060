"""Class-balanced loss weights from the effective number of samples (Cui et al., CVPR 2019).

A class with n_c examples has the effective number E_c = (1 - beta^n_c) / (1 - beta),
beta in [0, 1): the expected volume covered by n_c samples when every sample
overlaps the others with probability beta (N = 1 / (1 - beta) distinct
prototypes per class). The class weight is 1 / E_c, normalised so that the
weights of the classes that occur have mean one (the paper's sum = number of
classes):

    w_c = C' (1 - beta) / (1 - beta^n_c) / sum_{c': n_c' > 0} (1 - beta) / (1 - beta^n_c')

with C' the number of classes with n_c > 0. beta = 0 gives equal weights (no
re-weighting); beta -> 1 gives inverse class frequency. A class with no
examples gets weight 0 (it is never in a batch; leaving it out keeps the
other weights finite). The weighted loss is (1/B) sum_i w_{y_i} l_i.
"""

from __future__ import annotations

import numpy as np


def class_counts(labels, num_classes: int) -> np.ndarray:
  """int64 [num_classes]: examples per class of integer `labels`."""
  return np.bincount(np.asarray(labels, np.int64), minlength=num_classes)


def effective_number_weights(counts, beta: float) -> np.ndarray:
  """Class-balanced weights w_c (module docstring), mean one over the classes that occur.

  Args:
    counts: [C] examples per class (non-negative).
    beta: in [0, 1).

  Returns:
    float64 [C]; 0 where counts is 0.
  """
  counts = np.asarray(counts, np.float64)
  present = counts > 0
  raw = np.zeros_like(counts)
  raw[present] = (1.0 - beta) / (1.0 - np.power(beta, counts[present]))
  return raw * present.sum() / raw.sum() if present.any() else raw
