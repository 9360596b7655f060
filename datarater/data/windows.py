"""dataset=text's windows on disk (config.data.store='disk'): training on a corpus larger than
memory.

With data.store='memory' (default) every window of the corpus is cut into one in-memory array and
the splits are numpy arrays (`loaders.load_text_documents`). With 'disk' the corpus is decoded
and cut document range by document range (`corpus.text_rows`, which drops the corpus's mapped
pages after each range) and its windows are appended to one file, [W, data.seq_len + 1] in
corpus order (uint8 bytes; token ids as uint16 when the vocabulary fits, else int32). Every
split's x and y are then `Rows`: its windows read from the file by index, a batch at a time
(`datarater.data.sampler.gather`; evaluation too, `datarater.train.evaluation.map_split`), so
neither the corpus nor its windows are ever in memory. Per window of a split the process keeps
21 bytes of index (file row 8, Split.row 8, source 4, corrupted 1), plus 16 for
`corpus.Documents` where the document table is asked for. Evaluation passes over the whole
valid and test splits: on a large corpus make them small (data.test_fraction, and
data.valid_size as a count of windows).

The file is created in the temporary directory (TMPDIR; it needs about the corpus's size free,
twice that for uint16 token ids, and should be on a disk: a TMPDIR on tmpfs holds it in memory)
and unlinked at once: it is never seen in a directory and is
gone when the process ends, however it ends. Rows are read with pread, not memory-mapped, so
reading them adds nothing to the process's resident set (the kernel's page cache keeps what it
can, outside it). Every process of a multi-process run writes its own file (each reads the
whole corpus once) and then reads only the rows of its share of each batch.

The splits are the same arrays in both stores (`datarater.run.data_fingerprint` is equal, so a
run can be resumed with the other store): only the synthetic corruptions
(config.data.corruption_rates) need every window in memory, so 'disk' requires every rate to
be 0 (config.data.corrupted_field still marks your own ground truth).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

from datarater.data import corpus, tokens
from datarater.data.core import Split

STORES = ('memory', 'disk')
DOCS_PER_CHUNK = 4096   # documents decoded and cut at a time
PROGRESS_EVERY_S = 10.0
READ_BYTES = 256 << 20   # the most one pread asks for


class WindowFile:
  """[W, width] windows in an unlinked file; file[rows] reads them ([n, width], file dtype)."""

  def __init__(self, handle, width: int, dtype, count: int):
    self.handle, self.width, self.dtype, self.count = handle, width, np.dtype(dtype), count
    self.row_bytes = width * self.dtype.itemsize

  def __len__(self) -> int:
    return self.count

  def __getitem__(self, rows) -> np.ndarray:
    """The windows of file rows `rows` (an int or integer array), in that order; a run of
    consecutive rows is one read."""
    rows = np.asarray(rows, np.int64)
    flat = rows.reshape(-1)
    out = np.empty((len(flat), self.width), self.dtype)
    if len(flat):
      if flat.min() < 0 or flat.max() >= self.count:
        raise IndexError(f'window rows outside 0..{self.count - 1}')
      order = np.argsort(flat, kind='stable')
      ordered = flat[order]
      breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
      fd, got = self.handle.fileno(), np.empty_like(out)
      per_read = max(1, READ_BYTES // self.row_bytes)
      for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(ordered)]):
        for a in range(int(lo), int(hi), per_read):   # one pread returns at most ~2 GiB
          b = min(a + per_read, int(hi))
          size = (b - a) * self.row_bytes
          data = os.pread(fd, size, int(ordered[a]) * self.row_bytes)
          if len(data) != size:
            raise OSError(f'short read of the windows file ({len(data)} of {size} bytes)')
          got[a:b] = np.frombuffer(data, self.dtype).reshape(-1, self.width)
      out[order] = got
    return out.reshape(rows.shape + (self.width,))


class Rows:
  """A split's x or y on disk: rows[idx] is int32 [..., width - 1], the columns `cols`
  (x: [:-1], y: [1:]) of file rows members[idx]; idx indexes the first axis as it would a numpy
  array's (an int, slice, integer array or mask; not a tuple)."""

  def __init__(self, file: WindowFile, members: np.ndarray, cols: slice):
    self.file, self.members, self.cols = file, members, cols
    self.shape = (len(members), file.width - 1)
    self.dtype, self.ndim = np.dtype(np.int32), 2

  def __len__(self) -> int:
    return len(self.members)

  def __getitem__(self, idx) -> np.ndarray:
    return self.file[self.members[idx]][..., self.cols].astype(np.int32)

  def __array__(self, dtype=None, copy=None):   # every row: only for code that needs them all
    out = self[:]
    return out if dtype is None else out.astype(dtype)


def split(file: WindowFile, members: np.ndarray, source: np.ndarray) -> Split:
  """The Split of file rows `members` (x = window[:-1], y = window[1:], not corrupted, row -1:
  what `loaders._lm_splits` builds without corruption), its windows read by index."""
  n = len(members)
  return Split(Rows(file, members, slice(0, -1)), Rows(file, members, slice(1, None)),
               np.asarray(source, np.int32), np.zeros(n, bool), np.full(n, -1, np.int64))


def file_dtype(vocab: int):
  """The narrowest integer type holding ids 0..vocab-1."""
  return np.uint8 if vocab <= 256 else np.uint16 if vocab <= 65536 else np.int32


def write(text, tokenizer, length: int):
  """Cuts every document of an opened corpus (`corpus.open_text`) into windows of `length`
  units, appended to a new WindowFile, DOCS_PER_CHUNK documents at a time.

  Returns:
    (WindowFile, int64 [D] windows per document, [D] source values, [D] ids, bool [D] or None:
    the corrupted_field flags), documents in corpus order.
  """
  dtype = file_dtype(tokens.vocab_size(tokenizer))
  handle = tempfile.TemporaryFile(prefix='datarater-windows-')   # unlinked already
  num_docs = text.table.num_rows
  counts, source, ids, flags = [], [], [], []
  total, shown = 0, time.monotonic()
  for start in range(0, num_docs, DOCS_PER_CHUNK):
    part = corpus.text_rows(text, start, start + DOCS_PER_CHUNK)
    units = tokens.encode(part.docs, tokenizer)
    n = np.array([len(u) // length for u in units], np.int64)
    cut = [u[:k * length] for u, k in zip(units, n) if k]
    if cut:
      handle.write(np.concatenate(cut).astype(dtype).tobytes())
    counts.append(n)
    source.append(part.source)
    ids.append(part.ids)
    flags.append(part.corrupted)
    total += int(n.sum())
    if time.monotonic() - shown > PROGRESS_EVERY_S:
      shown = time.monotonic()
      print(f'[data] {min(start + DOCS_PER_CHUNK, num_docs)} of {num_docs} documents cut into '
            f'{total} windows on disk', file=sys.stderr, flush=True)
  handle.flush()
  corrupted = None if text.corrupted_field == '' else np.concatenate(flags)
  return (WindowFile(handle, length, dtype, total), np.concatenate(counts),
          np.concatenate(source), np.concatenate(ids), corrupted)
