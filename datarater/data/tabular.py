"""A synthetic tabular preset: scikit-learn's `make_classification`, generated offline.

3,000 train + 1,000 test examples, 20 features (8 informative, 4 redundant),
3 classes, 2 clusters per class, `class_sep=1.0`; features standardised with
the train pool's mean and std. The noisy-sources recipe of the other
classification presets follows (datarater.data.classification): K sources with
per-source label-noise rates, a clean or noisy meta slice. It is data the
project's methods were never tuned on, for the label-error detection report.
"""

from __future__ import annotations

import numpy as np

from datarater.data.classification import classification_dataset
from datarater.data.core import Dataset, make_split

NUM_TRAIN, NUM_TEST, NUM_FEATURES, NUM_CLASSES = 3000, 1000, 20, 3


def load_tabular(cfg, seed) -> Dataset:
  """The tabular preset for `config.data` (corruption and meta split as for digits)."""
  from sklearn.datasets import make_classification
  x, y = make_classification(
      n_samples=NUM_TRAIN + NUM_TEST, n_features=NUM_FEATURES, n_informative=8,
      n_redundant=4, n_classes=NUM_CLASSES, n_clusters_per_class=2, class_sep=1.0,
      random_state=int(seed))
  rng = np.random.default_rng([seed, 3])
  perm = rng.permutation(len(y))
  train, test = perm[:NUM_TRAIN], perm[NUM_TRAIN:]
  mean, std = x[train].mean(0), x[train].std(0) + 1e-6
  x = ((x - mean) / std).astype(np.float32)
  pool = make_split(x[train], y[train])
  return classification_dataset('tabular', pool, make_split(x[test], y[test]), NUM_CLASSES,
                                cfg, rng)
