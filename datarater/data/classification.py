"""The classification recipe every labelled preset shares (digits, npz, MNIST-1D, tabular, TFDS).

`classification_dataset` takes a loader's train pool and test split and
applies, in this order and drawing from the loader's generator: long-tail
imbalance, source assignment, the meta split (clean or noisy) and per-source
corruption with ground-truth flags, and last the validation split
(`config.data.valid_size` rows carved from the corrupted pool with a child
generator of the loader's, so the other draws are those of a run without one;
under `config.data.valid_mode='clean'` those same rows are taken as they were
before the corruption; `valid` given by an npz file is used as it is). Under long tail (imbalance > 1) a clean
meta split is drawn first instead, meta_size // C rows of every class
(Meta-Weight-Net's protocol: a balanced meta set drawn before imbalancing).
"""

from __future__ import annotations

import numpy as np

from datarater.data import corruption
from datarater.data.core import (NO_SOURCE, DataError, Dataset, DatasetInfo, Split,
                                 balanced_meta_split, carve_valid, train_meta_split,
                                 uncorrupted)

# A classification dataset has at most MAX_CLASSES classes (labels 0..MAX_LABEL): the
# label is the index of a logit, so a larger label would size an absurd output layer
# (a label of 2**31 - 1 asks for two billion logits).
MAX_CLASSES = 10_000
MAX_LABEL = MAX_CLASSES - 1
# At most MAX_SOURCES distinct sources (npz `source_train` ids, corruption_rates
# entries): methods keep per-source vectors and plots, and the summary lists
# per-source metrics.
MAX_SOURCES = 1024


def classification_dataset(name, pool: Split, test: Split, num_classes, cfg, rng,
                           meta: Split | None = None, sources_given: bool = False,
                           num_rows: int | None = None, source_ids=None,
                           test_sources_given: bool = False,
                           valid: Split | None = None) -> Dataset:
  """Shared recipe: imbalance -> sources -> meta split -> per-source corruption -> valid.

  `source_ids`: the data's own id of each source 0..K-1 (its name is
  f'source{id}'); None: the sources are 0..K-1 themselves. Test rows keep
  their source only when it is real (`test_sources_given`: an npz
  `source_test`; or a single source); otherwise they get NO_SOURCE, and the
  per-source test loss is not reported (a random partition of the test set
  would make it a meaningless number).
  """
  rates = tuple(cfg.corruption_rates)
  # The validation split draws from a child generator: which rows it takes does not depend
  # on the corruption's draws (clean and noisy versions of a run carve the same rows), and
  # every draw of `rng` is that of a run without a validation split.
  valid_rng = rng.spawn(1)[0]
  if num_classes > MAX_CLASSES:
    raise DataError(f'dataset {name!r} has {num_classes} classes; at most {MAX_CLASSES} are '
                    'supported')
  num_rows = pool.size if num_rows is None else num_rows
  # Under long tail, a clean meta split is class-balanced and drawn before imbalancing.
  balanced = meta is None and cfg.meta_mode == 'clean' and cfg.imbalance != 1.0
  if balanced:
    pool, meta = balanced_meta_split(pool, cfg.meta_size, num_classes, rng)
  pool = corruption.long_tail(pool, cfg.imbalance, num_classes, rng)
  if len(rates) and not sources_given:
    pool = pool._replace(source=corruption.assign_sources(pool.size, len(rates), rng))
    if balanced:
      meta = meta._replace(source=corruption.assign_sources(meta.size, len(rates), rng))
  if source_ids is None:
    num_sources = len(rates) or int(pool.source.max()) + 1
    source_ids = tuple(range(num_sources))
  num_sources = len(source_ids)
  # Test rows have no real source when the sources are random partitions of the pool. The draw
  # that used to give them random ids is kept, so every preset's train and meta rows (and their
  # corruption) are those of earlier versions.
  corruption.assign_sources(test.size, num_sources, rng)
  if not test_sources_given and num_sources > 1:
    test = test._replace(source=np.full(test.size, NO_SOURCE, np.int32))
  if meta is not None:
    meta_mode = 'clean' if balanced else 'given'
  elif cfg.meta_mode == 'clean':
    meta_mode = 'clean'
    pool, meta = train_meta_split(pool, cfg.meta_size, rng)
  else:
    meta_mode = 'noisy'
  clean_pool = pool
  pool = corruption.corrupt_sources(pool, rates, cfg.corruption, num_classes, rng)
  if meta_mode == 'noisy':
    pool, meta = train_meta_split(pool, cfg.meta_size, rng)
  info = DatasetInfo(
      name=name, task='classification', num_classes=int(num_classes),
      input_shape=tuple(pool.x.shape[1:]), num_sources=num_sources,
      source_names=tuple(f'source{k}' for k in source_ids),
      corruption=cfg.corruption if len(rates) else 'none',
      corruption_rates=rates, meta_mode=meta_mode, num_rows=int(num_rows),
      source_corruption=corruption.source_kinds(cfg.corruption, rates),
      valid_mode='given' if valid is not None else cfg.valid_mode)
  if meta_mode == 'given':
    meta = meta._replace(row=np.full(meta.size, -1, np.int64))
  if valid is None:
    pool, valid = carve_valid(pool, cfg.valid_size, valid_rng)
    if cfg.valid_mode == 'clean':
      valid = uncorrupted(valid, clean_pool)
  else:  # the user's own validation rows (npz x_valid / y_valid), not rows of its training data
    source = np.full(valid.size, NO_SOURCE if num_sources > 1 else 0, np.int32)
    valid = valid._replace(source=source, row=np.full(valid.size, -1, np.int64))
  return Dataset(pool, meta, valid, test, info)
