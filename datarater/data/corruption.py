"""Corruption transforms that record per-example ground truth.

Each transform takes a boolean mask of the examples to corrupt and returns the
corrupted arrays; `corrupt_sources` draws that mask per source at the rates of
the noisy-sources preset (source k corrupted at rate r_k, ScaleBiO's protocol):
exactly round(r_k * n_k) examples of source k are drawn. The split's
`corrupted` flag marks the examples whose label (or input) actually changed:
the drawn ones, except under 'label_uniform', whose new label may be the true
one (flagged rate about r_k (C - 1) / C).

Label noise kinds (C classes; "the drawn examples" = the mask):
  label_symmetric  a uniformly drawn *different* class (always changes).
  label_pairflip   y -> (y + 1) mod C (always changes).
  label_uniform    Meta-Weight-Net's 'unif' noise: a class drawn uniformly from
                   all C, so it keeps the true class with probability 1/C (their
                   code resamples every label from (1 - r) I + r / C).
  label_flip2      Meta-Weight-Net's 'flip2' noise: each true class c has two
                   other classes (distinct, drawn at random once per class from
                   a generator of fixed seed FLIP2_SEED, the same for every run
                   and seed, as their code fixes seed 1); a drawn example of
                   class c goes to either with probability 1/2 (their row of the
                   transition matrix: 1 - r on c, r / 2 on each of the two).
Their code draws every label independently (a rate r in expectation); here the
number of drawn examples per source is exact.
"""

from __future__ import annotations

import numpy as np

from datarater.data.core import DataError, Split

# Seed of label_flip2's choice of the two target classes of each class (fixed, as in MW-Net's code).
FLIP2_SEED = 1
TEXT_CORRUPTIONS = ('none', 'random_bytes', 'shuffle', 'repeat')


def assign_sources(n: int, num_sources: int, rng: np.random.Generator) -> np.ndarray:
  """Balanced random source ids in [0, num_sources)."""
  return rng.permutation(np.arange(n) % max(num_sources, 1)).astype(np.int32)


def label_symmetric(y, mask, num_classes, rng):
  """Replaces masked labels by a uniformly drawn *different* class."""
  y = y.copy()
  shift = rng.integers(1, num_classes, size=int(mask.sum()))
  y[mask] = (y[mask] + shift) % num_classes
  return y


def label_pairflip(y, mask, num_classes, rng):
  """Pair-flip noise: masked labels y -> (y + 1) mod C."""
  del rng
  y = y.copy()
  y[mask] = (y[mask] + 1) % num_classes
  return y


def label_uniform(y, mask, num_classes, rng):
  """MW-Net's uniform noise: masked labels redrawn uniformly from all C classes (may keep y)."""
  y = y.copy()
  y[mask] = rng.integers(0, num_classes, size=int(mask.sum()))
  return y


def flip2_targets(num_classes: int) -> np.ndarray:
  """[C, 2]: the two distinct other classes each class flips to under label_flip2."""
  if num_classes < 3:
    raise DataError(f"config.data.corruption='label_flip2' needs at least 3 classes, the data "
                    f'has {num_classes}')
  rng = np.random.default_rng(FLIP2_SEED)
  return np.stack([rng.choice(np.delete(np.arange(num_classes), c), size=2, replace=False)
                   for c in range(num_classes)])


def label_flip2(y, mask, num_classes, rng):
  """MW-Net's flip2 noise: masked labels go to one of their class's two targets, 1/2 each."""
  y = y.copy()
  pick = rng.integers(0, 2, size=int(mask.sum()))
  y[mask] = flip2_targets(num_classes)[y[mask], pick]
  return y


# The label noise kinds (module docstring): (y, mask, num_classes, rng) -> new labels.
LABEL_NOISE = {'label_symmetric': label_symmetric, 'label_pairflip': label_pairflip,
               'label_uniform': label_uniform, 'label_flip2': label_flip2}
IMAGE_CORRUPTIONS = ('none', *LABEL_NOISE, 'feature_noise')


def feature_noise(x, mask, rng):
  """Replaces masked inputs by uniform noise over the input's value range."""
  x = x.copy()
  lo, hi = float(x.min()), float(x.max())
  x[mask] = rng.uniform(lo, hi, size=x[mask].shape).astype(x.dtype)
  return x


def random_bytes(seqs, mask, fraction, rng):
  """Replaces a `fraction` of the bytes of each masked sequence by random bytes."""
  seqs = seqs.copy()
  rows = np.flatnonzero(mask)
  hit = rng.random((len(rows), seqs.shape[1])) < fraction
  noise = rng.integers(0, 256, size=hit.shape)
  seqs[rows] = np.where(hit, noise, seqs[rows])
  return seqs


def shuffle_tokens(seqs, mask, rng):
  """Randomly permutes the bytes within each masked sequence."""
  seqs = seqs.copy()
  for r in np.flatnonzero(mask):
    seqs[r] = rng.permutation(seqs[r])
  return seqs


def repeat_content(seqs, mask, rng, chunk: int = 8):
  """Replaces each masked sequence by one short chunk of itself, repeated."""
  seqs = seqs.copy()
  length = seqs.shape[1]
  for r in np.flatnonzero(mask):
    start = rng.integers(0, length - chunk + 1)
    seqs[r] = np.resize(seqs[r, start:start + chunk], length)
  return seqs


def corruption_mask(source, rates, rng) -> np.ndarray:
  """Exactly round(r_k * n_k) randomly chosen examples of each source k."""
  mask = np.zeros(len(source), bool)
  for k, rate in enumerate(rates):
    members = np.flatnonzero(source == k)
    count = int(round(rate * len(members)))
    mask[rng.choice(members, size=count, replace=False)] = True
  return mask


def corrupt_sources(split: Split, rates, kind: str, num_classes: int, rng) -> Split:
  """Corrupts a classification split per source; flags the examples it changed (`corrupted`)."""
  if kind not in IMAGE_CORRUPTIONS:
    raise DataError(f'config.data.corruption={kind!r} is not one of {IMAGE_CORRUPTIONS}')
  if kind == 'none' or not len(rates):
    return split
  mask = corruption_mask(split.source, rates, rng)
  x, y = split.x, split.y
  if kind in LABEL_NOISE:
    y = LABEL_NOISE[kind](y, mask, num_classes, rng)
    mask = y != split.y   # label_uniform may redraw the true label: not corrupted
  else:
    x = feature_noise(x, mask, rng)
  return Split(x, y, split.source, split.corrupted | mask, split.row)


def corrupt_sequences(seqs, source, rates, kind, rng, noise_fraction):
  """Corrupts [N, L+1] byte sequences per source; returns (seqs, mask)."""
  if kind not in TEXT_CORRUPTIONS:
    raise DataError(f'config.data.corruption={kind!r} is not one of {TEXT_CORRUPTIONS}')
  if kind == 'none' or not len(rates):
    return seqs, np.zeros(len(seqs), bool)
  mask = corruption_mask(source, rates, rng)
  if kind == 'random_bytes':
    out = random_bytes(seqs, mask, noise_fraction, rng)
  elif kind == 'shuffle':
    out = shuffle_tokens(seqs, mask, rng)
  else:
    out = repeat_content(seqs, mask, rng)
  return out, mask


def long_tail(split: Split, factor: float, num_classes: int, rng) -> Split:
  """Keeps a fraction factor**(-c/(C-1)) of class c (class-imbalance transform)."""
  if factor == 1.0:
    return split
  keep = np.zeros(split.size, bool)
  for c in range(num_classes):
    members = np.flatnonzero(split.y == c)
    count = max(1, int(round(len(members) * factor ** (-c / max(num_classes - 1, 1)))))
    keep[rng.choice(members, size=min(count, len(members)), replace=False)] = True
  return split.take(np.flatnonzero(keep))
