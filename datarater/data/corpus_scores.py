"""Document scores of a corpus, shard by shard (numpy / pyarrow; no JAX, no config).

The pieces of `experiments.score` (which scores every document of a dataset=text corpus with a
finished DataRater run's rater) and of `experiments.curate --scores` that are plain data:

Documents <-> windows
  `windows_of(docs, L)` cuts each document's UTF-8 bytes b (or its token ids, under the run's
  data.tokenizer) into n = len(b) // L non-overlapping
  windows of L = data.seq_len + 1 units from its first one, exactly as dataset=text does
  (`datarater.data.loaders._windows`, per document): window j = b[j L:(j + 1) L]; the last
  len(b) % L bytes are not scored and a document shorter than L has no window.
  `document_scores(window_scores, counts)` averages each document's window scores
  (`corpus.document_means`); a document with no window gets NaN and `scored=False`.

Shards
  Documents 0..D-1 (corpus read order) are cut into shards of `shard_size` documents
  (`shard_bounds`); shard i is written, whole, to `<out>.shards/shard-<i:05d>.parquet`
  (`write_table`: a temporary file then os.replace, so a shard file is complete or absent; a
  killed process's temporary files are removed when the shard is written again).
  Its rows, one per document in order, have the columns of `SCORE_COLUMNS`: id (data.id_field's
  value, or the document's number), source (as text), score (float32, higher = keep, NaN
  without a window), num_windows (int64), scored (bool: num_windows > 0) and, when
  data.corrupted_field is given, corrupted (bool). `<out>.shards/manifest.json` records what the
  shards are scores of (`check_manifest`); `assemble` concatenates the shards, in order, into
  `<out>` with the manifest in the Parquet schema's metadata (key `MANIFEST_KEY`), so a re-run
  writes the same bytes.

Curation
  `keep_documents(scores, source, keep, per_source)` picks the documents `experiments.curate
  --scores` keeps.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import NamedTuple

import numpy as np

from datarater.data import corpus
from datarater.data.loaders import _windows
from datarater.errors import DataError, WorkdirError

SCORE_COLUMNS = ('id', 'source', 'score', 'num_windows', 'scored', 'corrupted')
MANIFEST = 'manifest.json'
MANIFEST_KEY = b'datarater.scores'   # the manifest, in the final Parquet file's metadata


# ----------------------------------------------------------------------------- windows and means


def windows_of(docs: list, length: int):
  """Every window of a list of documents, in order.

  Args:
    docs: each document's bytes, or its units (an int array: the token ids of a run with
      data.tokenizer, `datarater.data.tokens.encode`).
    length: window length L = data.seq_len + 1.

  Returns:
    ([W, L] windows (uint8 bytes, or the units' dtype), int64 [W] document (index into docs) of
    each window, int64 [len(docs)] windows of each document).
  """
  cut = [_windows(d if isinstance(d, np.ndarray) else np.frombuffer(d, np.uint8), length)
         for d in docs]
  counts = np.array([len(w) for w in cut], np.int64)
  if not counts.sum():
    return np.zeros((0, length), np.uint8), np.zeros(0, np.int64), counts
  return (np.concatenate([w for w in cut if len(w)]),
          np.repeat(np.arange(len(docs)), counts), counts)


class _Rows(NamedTuple):
  """The two fields of corpus.Documents that `document_means` reads."""
  ids: np.ndarray
  row_document: np.ndarray


def document_scores(window_scores, counts) -> np.ndarray:
  """float32 [D]: the mean of each document's window scores (windows in document order, as
  `windows_of` returns them), NaN for a document with no window."""
  counts = np.asarray(counts, np.int64)
  doc = np.repeat(np.arange(len(counts)), counts)
  means, _ = corpus.document_means(window_scores, _Rows(np.arange(len(counts)), doc))
  return means.astype(np.float32)


# ----------------------------------------------------------------------------- shards


def shard_bounds(num_documents: int, shard_size: int) -> list:
  """[(start, stop)] of each shard: documents start..stop-1, `shard_size` per shard."""
  return [(a, min(a + shard_size, num_documents)) for a in range(0, num_documents, shard_size)]


def shards_dir(out: str) -> str:
  return out + '.shards'


def shard_path(out: str, index: int) -> str:
  return os.path.join(shards_dir(out), f'shard-{index:05d}.parquet')


def shard_table(text: corpus.TextCorpus, scores: np.ndarray, counts: np.ndarray):
  """The pyarrow Table of one shard (`SCORE_COLUMNS`) from its decoded documents."""
  import pyarrow as pa
  columns = {'id': pa.array(text.ids), 'source': pa.array(np.asarray(text.source).astype(str)),
             'score': pa.array(np.asarray(scores, np.float32)),
             'num_windows': pa.array(np.asarray(counts, np.int64)),
             'scored': pa.array(np.asarray(counts) > 0)}
  if text.corrupted is not None:
    columns['corrupted'] = pa.array(np.asarray(text.corrupted, bool))
  return pa.table(columns)


def write_table(table, path: str) -> None:
  """Writes a Parquet file atomically: a temporary file beside it, then os.replace."""
  import pyarrow.parquet as pq
  tmp = f'{path}.tmp-{os.getpid()}'
  try:
    pq.write_table(table, tmp)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def remove_leftovers(path: str) -> None:
  """Removes the temporary files `write_table` left for `path` when a process was killed."""
  import glob
  for tmp in glob.glob(glob.escape(path) + '.tmp-*'):
    try:
      os.remove(tmp)
    except FileNotFoundError:
      pass


def missing_shards(out: str, indices) -> list:
  """The shard indices among `indices` whose file is not written yet."""
  return [i for i in indices if not os.path.isfile(shard_path(out, i))]


def assemble(out: str, num_shards: int, manifest: dict) -> int:
  """Concatenates shards 0..num_shards-1 in order into `out` (atomically), the manifest in the
  schema's metadata; returns the number of rows. The bytes depend only on the shards' rows."""
  import pyarrow as pa
  import pyarrow.parquet as pq
  table = pa.concat_tables([pq.read_table(shard_path(out, i)) for i in range(num_shards)])
  table = table.replace_schema_metadata({MANIFEST_KEY: json.dumps(manifest, sort_keys=True)})
  write_table(table, out)
  return table.num_rows


def read_scores(path: str):
  """(pyarrow Table, manifest dict) of a scores file written by `assemble`.

  Raises:
    DataError: naming the file when it is unreadable or has no manifest.
  """
  import pyarrow.parquet as pq
  try:
    table = pq.read_table(path)
  except (OSError, ValueError) as e:
    raise DataError(f'--scores={path}: cannot read it as Parquet ({type(e).__name__}: '
                    f'{" ".join(str(e).split())[:200]})') from None
  meta = (table.schema.metadata or {}).get(MANIFEST_KEY)
  if meta is None:
    raise DataError(f'--scores={path}: not a file written by experiments.score (no '
                    f'{MANIFEST_KEY.decode()} metadata)')
  return table, json.loads(meta)


# ----------------------------------------------------------------------------- what the shards are of


def file_sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def corpus_files(path: str) -> list:
  """[[file relative to the corpus root, size, mtime_ns]] of every file config.data.path reads
  (every file under a save_to_disk directory): a changed corpus gives another list."""
  files, root = corpus.resolve(path, 'text', corpus.TEXT_FORMATS)
  if files is None:
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(root) for f in names)
  out = []
  for f in files:
    st = os.stat(f)
    out.append([os.path.relpath(os.path.abspath(f), os.path.abspath(root)), st.st_size,
                st.st_mtime_ns])
  return out


def check_manifest(out: str, manifest: dict, create: bool = True) -> None:
  """Creates `<out>.shards` holding `manifest` (with `create`), or checks that the one there is
  the same.

  Several processes may call it at once: each writes the same file atomically.

  Raises:
    WorkdirError: naming --out, when the shards there were written for another run, corpus or
      config (a re-run resumes only the same scoring).
  """
  folder = shards_dir(out)
  path = os.path.join(folder, MANIFEST)
  if not os.path.isfile(path):
    if not create:
      return
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
      json.dump(manifest, f, sort_keys=True, indent=1)
    os.replace(tmp, path)
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError):
    old = None
  if old != manifest:
    differ = sorted(k for k in set(manifest) | set(old or {})
                    if (old or {}).get(k) != manifest.get(k)) if isinstance(old, dict) else ['all']
    raise WorkdirError(f'--out={out}: {folder} holds shards of another scoring (its {MANIFEST} '
                       f'differs in: {", ".join(differ)}); remove {folder} or choose another --out')


# ----------------------------------------------------------------------------- curation


def keep_documents(scores: np.ndarray, source: np.ndarray, keep: float, per_source: bool):
  """bool [D]: the documents to keep.

  Among the documents with a score (not NaN), the round(keep * n) best-scored are kept, over the
  whole corpus or, with `per_source`, within each source (n: that source's scored documents);
  equal scores go to the earlier document. Documents without a score (no window) are kept.
  """
  from datarater.weighting.scores import best_rows
  scores = np.asarray(scores, np.float64)
  scored = ~np.isnan(scores)
  mask = ~scored
  groups = [np.ones(len(scores), bool)] if not per_source else \
      [np.asarray(source) == s for s in np.unique(source)]
  for group in groups:
    idx = np.flatnonzero(group & scored)
    mask[idx[best_rows(scores[idx], int(round(keep * len(idx))))]] = True
  return mask
