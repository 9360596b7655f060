"""MNIST-1D (Greydanus and Kobak, ICML 2024, arXiv 2011.14439), generated offline.

The `mnist1d` package's `make_dataset` turns ten 1-D digit templates into
5,000 signals (random padding, scaling, translation, correlated and i.i.d.
noise, shear, resampling to 40 points) and splits them 4,000 train + 1,000
test, balanced over 10 classes. Its `get_dataset` is never called: it
downloads. The package's generator seed is `config.data.generator_seed`, or
the run's `seed` when that is -1 (the default); the published data set is
the package default, 42. The package draws from NumPy's and Python's global
random state, which this loader restores afterwards.

Inputs are float32 [N, 40, 1]: a 40 x 1 image with one channel, so the MLP
flattens it and the 3 x 3 convolutions of the CNN, ResNet and CNN rater act as
1-D convolutions of width 3 along the signal. The noisy-sources recipe of the
other classification presets follows (datarater.data.classification): long tail,
K sources with per-source corruption rates, a clean or noisy meta slice.
`config.data.test_fraction` does not apply (the split is the package's own).
"""

from __future__ import annotations

import random

import numpy as np

from datarater.data.classification import classification_dataset
from datarater.data.core import Dataset, make_split

NUM_TRAIN, NUM_TEST, LENGTH, NUM_CLASSES = 4000, 1000, 40, 10


def generate(seed: int) -> dict:
  """The package's train/test arrays for one generator seed, global RNGs left untouched.

  Args:
    seed: integer in [0, 2**32), the seed of `mnist1d.data.make_dataset`.

  Returns:
    dict with float64 'x' [4000, 40], 'x_test' [1000, 40] and integer 'y', 'y_test'.
  """
  from mnist1d.data import get_dataset_args, make_dataset
  args = get_dataset_args()
  args.seed = int(seed)
  np_state, py_state = np.random.get_state(), random.getstate()
  try:
    return make_dataset(args)
  finally:
    np.random.set_state(np_state)
    random.setstate(py_state)


def load_mnist1d(cfg, seed) -> Dataset:
  """MNIST-1D for `config.data`, corrupted and split as the digits preset.

  Args:
    cfg: the `config.data` ConfigDict (corruption_rates, corruption, imbalance,
      meta_mode, meta_size, generator_seed).
    seed: the run's seed; seeds the corruption / meta split, and the generator
      unless cfg.generator_seed is set (>= 0).

  Returns:
    Dataset with float32 inputs [N, 40, 1] and int32 labels in [0, 10).
  """
  generator_seed = cfg.get('generator_seed', -1)
  d = generate(seed if generator_seed < 0 else generator_seed)
  as_input = lambda x: x.astype(np.float32)[..., None]  # noqa: E731
  pool = make_split(as_input(d['x']), d['y'])
  test = make_split(as_input(d['x_test']), d['y_test'])
  return classification_dataset('mnist1d', pool, test, NUM_CLASSES, cfg,
                                np.random.default_rng([seed, 5]))
