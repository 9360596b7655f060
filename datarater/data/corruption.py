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

Text kinds act on [N, L+1] int byte windows (values 0..255) and keep that
shape: 'random_bytes', 'shuffle', 'repeat' (synthetic noise), and three that
mimic the paper's qualitative findings (text with wrong encodings, OCR errors,
irrelevant content): 'mojibake', 'ocr', 'boilerplate' (each function's
docstring says exactly what it does). 'mixed' gives source k the kind
MIXED_KINDS[k % len(MIXED_KINDS)]. On text the `corrupted` flag marks the drawn
windows (a window that a kind happens to leave as it was, e.g. one repeated
byte shuffled, stays flagged).
"""

from __future__ import annotations

import re

import numpy as np

from datarater.data.core import DataError, Split

# Seed of label_flip2's choice of the two target classes of each class (fixed, as in MW-Net's code).
FLIP2_SEED = 1
# The kinds of the 'mixed' preset: source k gets MIXED_KINDS[k % len(MIXED_KINDS)]. Ordered from the
# subtlest kind to the most visible one so that, at the default rates (0, .2, .4, .6, .8), a more
# corrupted source also carries a more visible kind and the per-source mean score still ranks by
# rate; source 0 is clean by default, so its kind ('shuffle') is then never used.
MIXED_KINDS = ('shuffle', 'ocr', 'boilerplate', 'mojibake', 'random_bytes')
TEXT_CORRUPTIONS = ('none', 'random_bytes', 'shuffle', 'repeat', 'mojibake', 'ocr', 'boilerplate',
                    'mixed')


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


def _cp1252_utf8(byte: int) -> bytes:
  """The UTF-8 bytes of the character CP1252 reads `byte` as (Latin-1 where CP1252 has none)."""
  try:
    return bytes([byte]).decode('cp1252').encode('utf-8')
  except UnicodeDecodeError:
    return bytes([byte]).decode('latin-1').encode('utf-8')


# byte -> its UTF-8-read-as-CP1252 double encoding; Latin-1 byte -> its EBCDIC (cp037) byte.
_DOUBLE_UTF8 = tuple(_cp1252_utf8(b) for b in range(256))
_EBCDIC = np.frombuffer(bytes(range(256)).decode('latin-1').encode('cp037'), np.uint8)


def mojibake(seqs, mask, rng):
  """Wrong text encoding: each masked window becomes what a broken export pipeline stores.

  Two real failures in a row, then the window's length is kept (the first L+1 bytes):
    1. double encoding: the bytes (UTF-8) are read as CP1252 (Latin-1 for the five bytes
       CP1252 leaves undefined) and written back as UTF-8, so every non-ASCII byte becomes
       the 2-3 bytes of its CP1252 character ('é' = C3 A9 -> 'Ã©' = C3 83 C2 A9); ASCII
       bytes stay as they are;
    2. wrong codec: that text (one character per byte) is written in a codec drawn per
       window, 1/2 each, and its bytes are read as 8-bit text: UTF-16-LE (a Windows
       'Unicode' export read as ASCII: a NUL after every character, so the window holds the
       first half of its text) or EBCDIC cp037 (a mainframe export read as ASCII: letters
       move to 0x81-0xE9, space to 0x40, digits to 0xF0-0xF9).
  Step 2 changes pure-ASCII text (the stdlib corpus is almost all ASCII, where step 1 alone
  would change nothing).
  """
  seqs = seqs.copy()
  rows = np.flatnonzero(mask)
  utf16 = rng.random(len(rows)) < 0.5
  length = seqs.shape[1]
  for r, wide in zip(rows, utf16):
    text = np.frombuffer(b''.join(_DOUBLE_UTF8[b] for b in seqs[r]), np.uint8)[:length]
    if wide:
      text = np.stack([text, np.zeros_like(text)], 1).ravel()
    else:
      text = _EBCDIC[text]
    seqs[r] = text[:length]
  return seqs


# OCR confusions: a site (a match of _OCR_SITES) -> what the OCR reads instead. A space is
# dropped only between two non-space characters (a lost word gap, not indentation).
_OCR_SWAPS = {b'rn': b'm', b'm': b'rn', b'l': b'1', b'O': b'0', b'I': b'l', b'e': b'c', b' ': b''}
_OCR_SITES = re.compile(rb'rn|[mlOIe]|(?<=\S) (?=\S)')


def ocr(seqs, mask, following, fraction, rng):
  """OCR-like character confusions in each masked window.

  Every confusable site of the window followed by its `following` text (the next L+1 bytes
  of the same stream) is confused independently with probability `fraction`
  (config.data.text_noise_fraction): 'rn' -> 'm', 'm' -> 'rn', 'l' -> '1', 'O' -> '0',
  'I' -> 'l', 'e' -> 'c', and a space between two non-space characters is dropped. Sites
  are the non-overlapping matches of _OCR_SITES, left to right. The window is the first
  L+1 bytes of the result, so a confusion that shortens or lengthens the text pulls in or
  pushes out (confused) following text; were the result ever shorter than L+1 (the text
  and its following text more than halved), it is repeated to fill the window.

  Args:
    seqs: int [N, L+1] byte windows.
    mask: bool [N], the windows to corrupt.
    following: int [N, L+1], the text after each window.
    fraction: probability that a site is confused.
    rng: a numpy Generator (one uniform draw per site, in order).
  """
  seqs = seqs.copy()
  for r in np.flatnonzero(mask):
    text = bytes(np.concatenate([seqs[r], following[r]]).astype(np.uint8))
    sites = list(_OCR_SITES.finditer(text))
    hit = rng.random(len(sites)) < fraction
    out, end = [], 0
    for site, confused in zip(sites, hit):
      if confused:
        out += [text[end:site.start()], _OCR_SWAPS[site.group()]]
        end = site.end()
    out = np.frombuffer(b''.join(out) + text[end:], np.uint8)
    seqs[r] = np.resize(out, seqs.shape[1])
  return seqs


# The 'boilerplate' kind's text: a generic licence-like header, written for this project.
BOILERPLATE = (b'# Copyright (c) the original authors and contributors. All rights reserved.\n'
               b'# This file is provided AS IS, with no promise that it works or suits any\n'
               b'# purpose. You use it at your own risk; the authors accept no liability for\n'
               b'# any loss it may cause. Keep this notice in every copy you make or share.\n')


def boilerplate(seqs, mask, rng):
  """Irrelevant content: each masked window is replaced by BOILERPLATE (a licence-like header)
  repeated to fill the window, starting at an offset drawn uniformly in [0, len(BOILERPLATE))."""
  seqs = seqs.copy()
  length = seqs.shape[1]
  rows = np.flatnonzero(mask)
  tiled = np.resize(np.frombuffer(BOILERPLATE, np.uint8), len(BOILERPLATE) + length)
  starts = rng.integers(0, len(BOILERPLATE), size=len(rows))
  seqs[rows] = tiled[starts[:, None] + np.arange(length)]
  return seqs


def source_kinds(kind: str, rates) -> tuple:
  """The corruption kind of each source (DatasetInfo.source_corruption): '' for a source with
  rate 0 (or kind 'none'); MIXED_KINDS[k % len(MIXED_KINDS)] for source k under 'mixed'."""
  def of(k, rate):
    if rate == 0 or kind == 'none':
      return ''
    return MIXED_KINDS[k % len(MIXED_KINDS)] if kind == 'mixed' else kind
  return tuple(of(k, r) for k, r in enumerate(rates))


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


def corrupt_sequences(seqs, following, source, rates, kind, rng, noise_fraction):
  """Corrupts [N, L+1] byte windows per source; returns (seqs, mask of the drawn windows).

  `following` [N, L+1] holds the text after each window (only 'ocr' reads it). Under
  'mixed' each source's drawn windows get that source's kind (`source_kinds`).
  """
  if kind not in TEXT_CORRUPTIONS:
    raise DataError(f'config.data.corruption={kind!r} is not one of {TEXT_CORRUPTIONS}')
  if kind == 'none' or not len(rates):
    return seqs, np.zeros(len(seqs), bool)
  mask = corruption_mask(source, rates, rng)
  kinds = np.array(source_kinds(kind, rates))[source]
  for k in dict.fromkeys(source_kinds(kind, rates)):
    if k:
      seqs = _text_kind(k, seqs, mask & (kinds == k), following, rng, noise_fraction)
  return seqs, mask


def _text_kind(kind, seqs, mask, following, rng, noise_fraction):
  """One text kind applied to the masked windows."""
  if kind == 'random_bytes':
    return random_bytes(seqs, mask, noise_fraction, rng)
  if kind == 'shuffle':
    return shuffle_tokens(seqs, mask, rng)
  if kind == 'repeat':
    return repeat_content(seqs, mask, rng)
  if kind == 'mojibake':
    return mojibake(seqs, mask, rng)
  if kind == 'ocr':
    return ocr(seqs, mask, following, noise_fraction, rng)
  return boilerplate(seqs, mask, rng)


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
