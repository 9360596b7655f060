"""Your own corpus: documents (dataset=text) and tables (dataset=table), read with Hugging Face
`datasets` from local files only.

This module reads and checks the files and assigns documents to splits; `datarater.data.loaders`
(`load_text_documents`, `load_table`) builds the Dataset with the text preset's windows and
corruption, or with the classification recipe.
`open_text` reads and checks a dataset=text corpus without decoding it (the `datasets` Arrow
table, memory-mapped) and `text_rows` decodes any range of its documents, so a corpus larger than
memory can be read shard by shard (`experiments.score`); `read_text` is both at once. The mapped
pages a range was decoded from are dropped from the process's memory afterwards (`arrow_table`,
`release_pages`), so reading shard by shard keeps the resident set flat in the corpus's size.

Where the data comes from (config.data.path)
  A file, a glob (`**` recurses) or a directory: .jsonl / .json, .parquet, .csv, .txt (text
  only); a directory means every file of those kinds under it, and a directory written by
  `datasets.Dataset.save_to_disk` (or a DatasetDict's, whose 'train' split, or only split, is
  read) is read with `datasets.load_from_disk`. One format per path; empty files are skipped.
  `datasets` is imported only here and only when a corpus is loaded, with HF_HUB_OFFLINE set:
  it never calls the Hub; its Arrow cache goes to a temporary directory, deleted after reading.

dataset=text: documents
  A document is one row's `data.text_field` (default 'text'); in .txt files it is the whole file
  (`data.txt_unit='file'`, default) or one line (`'line'`, without its line break), as the
  `datasets` text reader decodes it (UTF-8, universal newlines: '\\r\\n' reads as '\\n').
  `data.max_examples` keeps the first documents in read order (files sorted by path, rows in
  file order); documents are numbered 0..D-1 in that order.
  Source: `data.source_field`'s value (strings or integers); without it the file (its path
  relative to the directory or glob it came from), or for .txt files read whole the directory
  holding the file (so a folder per domain gives a source per domain; a file per source would
  give one document per source, which cannot be split document-disjointly); a save_to_disk
  directory is one source named after it. Sources that give a sequence are numbered 0..K-1 in
  sorted order of their values (integers numerically); DatasetInfo.source_names holds the
  values as text, as the stdlib preset holds its package names.
  `data.id_field` (optional): the document's id, kept in `Documents.ids` (else its number).
  `data.corrupted_field` (optional, bool or 0/1): ground truth for evaluation only. It is put in
  `Split.corrupted` of the document's sequences in every split (OR'ed with the synthetic
  corruption of `data.corruption_rates`, one rate per source, as on the stdlib preset) and,
  like every `corrupted` flag, never in a training batch (`datarater.data.sampler.gather`).

Documents -> sequences (and back)
  A document's UTF-8 bytes b are cut into n = len(b) // L non-overlapping windows of
  L = data.seq_len + 1 bytes from its first byte: window j = b[j L:(j + 1) L], x = window[:-1],
  y = window[1:] (the text preset's `_windows`, applied per document rather than per source
  stream, so no sequence crosses two documents). The last len(b) % L bytes are not used, and a
  document shorter than L gives no sequence (one warning line counts them; lower
  data.seq_len for short documents): concatenating a document's windows in order gives back
  b[:n L]. Every sequence records its document: the train, meta and valid windows are the rows
  of the training data (Split.row, the index into scores_train.npy), numbered in corpus order
  (document, then window), and `Documents.row_document[row]` / `row_offset[row]` give the
  document and the byte offset of each row; `test_document` / `test_offset` do the same for the
  test split's positions. `loaders.load_text_documents(config.data, config.seed)` returns
  (Dataset, Documents) (the Dataset is the one training uses: same config and seed, same
  arrays); `document_means(scores, documents)` averages per-row scores per document.

Splits (document-disjoint)
  Within each source the documents are shuffled (seed) and dealt, whole, to test, then meta,
  then valid, each taking documents until it holds its target number of windows, always
  leaving at least one document to train: test round(data.test_fraction * W_k) windows (at
  least 1; the preset's 80/20 cut of each source), meta ceil(data.meta_size / K), valid
  data.valid_size as on the preset (a fraction of the source's windows left after test and
  meta, or ceil(valid_size / K)). A split's documents may hold more windows than its target;
  then a random target-sized subset is kept and their other windows are in no split. Train
  holds every window of the remaining documents (data.examples_per_source does not apply).
  So no document has windows in two splits; a source with too few documents may have no
  test, meta or valid windows (its per-source test loss is then null), and a split left with
  no window at all is a one-line DataError.

dataset=table: rows
  `data.label_field` (required): integer class indices 0..9999 as they are, or strings / bools
  numbered 0..C-1 in sorted order. `data.feature_fields`: the input columns (default: every
  numeric or bool column other than the label, source, corrupted and id fields), each numeric
  with no missing value and finite as float32. `data.source_field`, `data.corrupted_field`
  (optional) as for text. data.test_fraction of the rows is held out as test; the rest go
  through the classification recipe (meta, corruption, valid; datarater.data.classification),
  keeping their row number in the file as Split.row, so scores_train.npy has one value per row
  of the table (test rows hold the fill value and are not scored).
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from typing import NamedTuple

import numpy as np

from datarater.data.classification import MAX_LABEL, MAX_SOURCES
from datarater.data.mapped import arrow_table, release_pages
from datarater.data.core import DataError, is_fraction, valid_count
from datarater.errors import require

# File kinds, by extension, and the `datasets` packaged reader of each.
READERS = {'.jsonl': 'json', '.json': 'json', '.parquet': 'parquet', '.csv': 'csv', '.txt': 'text'}
TEXT_FORMATS = ('.jsonl', '.json', '.parquet', '.csv', '.txt')
TABLE_FORMATS = ('.jsonl', '.json', '.parquet', '.csv')
TXT_UNITS = ('file', 'line')
# Split codes of `assign_documents` (UNUSED: a document with no sequence).
TRAIN, META, VALID, TEST, UNUSED = 0, 1, 2, 3, -1
SPLIT_NAMES = ('train', 'meta', 'valid', 'test')


class TextCorpus(NamedTuple):
  """Documents as read, in read order."""
  docs: list              # bytes of each document (UTF-8)
  source: np.ndarray      # [D] the source value of each document (str or int64)
  ids: np.ndarray         # [D] the id_field value of each document, or 0..D-1
  corrupted: np.ndarray | None  # bool [D] from data.corrupted_field, or None
  where: str              # the path, for messages


class TextTable(NamedTuple):
  """A dataset=text corpus read and checked but not decoded (`open_text`; `text_rows` decodes)."""
  table: object           # pyarrow Table of every row, as `datasets` read it (memory-mapped)
  origin: list | None     # source of each row when it is the file (or its directory), else None
  text_field: str         # the column holding the documents ('text' for .txt files)
  source_field: str       # data.source_field, id_field, corrupted_field ('' when not given)
  id_field: str
  corrupted_field: str
  where: str              # the path, for messages
  maps: tuple = ()        # pyarrow Buffers: the read-only mappings `table` lies in (`arrow_table`)


class Documents(NamedTuple):
  """Where each document's sequences went (dataset=text); documents numbered 0..D-1 in read order.

  `row_document` / `row_offset` are indexed by Split.row of the train, meta and valid splits
  (the rows of scores_train.npy); `test_document` / `test_offset` by position in the test split.
  A meta, valid or test document may have windows outside its split's kept subset (in no split).
  """
  ids: np.ndarray            # [D] id_field value (or the document's number)
  source: np.ndarray         # int32 [D] source 0..K-1 (-1: a source that gave no sequence)
  split: np.ndarray          # [D] 'train' | 'meta' | 'valid' | 'test' | '' (no window)
  num_windows: np.ndarray    # int64 [D] windows cut from the document
  row_document: np.ndarray   # int64 [num_rows] document of each row
  row_offset: np.ndarray     # int64 [num_rows] byte offset of the row's window in its document
  test_document: np.ndarray  # int64 [test.size]
  test_offset: np.ndarray    # int64 [test.size]


class Table(NamedTuple):
  """A table as read: one row per example, in file order."""
  x: np.ndarray              # float32 [N, F]
  y: np.ndarray              # int32 [N] class indices
  num_classes: int
  source: np.ndarray | None  # int32 [N] 0..K-1, or None without data.source_field
  source_names: tuple | None
  corrupted: np.ndarray | None  # bool [N]
  feature_names: tuple
  where: str


# ----------------------------------------------------------------------------- files


def _ext(path: str) -> str:
  return os.path.splitext(path)[1].lower()


def _is_saved(path: str) -> bool:
  """A directory written by Dataset.save_to_disk (state.json) or DatasetDict.save_to_disk."""
  return any(os.path.isfile(os.path.join(path, f)) for f in ('state.json', 'dataset_dict.json'))


def resolve(path: str, dataset: str, formats: tuple):
  """(sorted files, root) of config.data.path, or (None, path) for a save_to_disk directory.

  Raises:
    DataError: no path, nothing matched, a file of another kind, or several kinds mixed.
  """
  kinds = ', '.join(formats)
  if not path:
    raise DataError(f'config.data.path: set it to a file, a glob or a directory ({kinds}, or a '
                    f'datasets.save_to_disk directory) for dataset={dataset}')
  path = os.path.expanduser(path)
  if os.path.isdir(path):
    if _is_saved(path):
      return None, path
    files = []
    for folder, dirs, names in os.walk(path):
      dirs[:] = [d for d in dirs if not d.startswith('.')]   # hidden folders (.cache, .git)
      files += [os.path.join(folder, f) for f in names
                if _ext(f) in formats and not f.startswith('.')]
    if not files:
      raise DataError(f'config.data.path: directory {path!r} holds no {kinds} file and was not '
                      'written by datasets.save_to_disk')
    root = path
  elif os.path.isfile(path):
    files, root = [path], os.path.dirname(path) or '.'
  else:
    files = [f for f in glob.glob(path, recursive=True) if os.path.isfile(f)]
    if not files:
      raise DataError(f'config.data.path: {path!r} matches no file')
    root = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])
  files = sorted(files)
  bad = [f for f in files if _ext(f) not in formats]
  if bad:
    raise DataError(f'config.data.path: {bad[0]!r} is not a {kinds} file (dataset={dataset}) '
                    'nor a datasets.save_to_disk directory')
  exts = sorted({_ext(f) for f in files})
  if len(exts) > 1:
    raise DataError(f'config.data.path: {path!r} mixes {", ".join(exts)} files; give one kind')
  return files, root


def _hf():
  """The `datasets` module, offline and quiet (imported here only: `import datarater` and the
  entry points' --help do not load it)."""
  os.environ.setdefault('HF_HUB_OFFLINE', '1')
  os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
  try:
    import datasets
  except ImportError:
    raise DataError('dataset=text and dataset=table read files with Hugging Face datasets: '
                    'pip install -r requirements.txt') from None
  datasets.config.HF_HUB_OFFLINE = True   # also when it was imported before, without the variable
  datasets.disable_progress_bars()
  datasets.logging.set_verbosity(datasets.logging.CRITICAL)
  return datasets


def _one_line(e: BaseException) -> str:
  cause = e.__cause__ or e
  text = str(cause).strip().splitlines()
  return f'{type(cause).__name__}: {text[0][:200]}' if text else type(cause).__name__


def read_tables(path: str, dataset: str, formats: tuple, per_file: bool = False,
                **reader_kwargs):
  """Reads config.data.path with `datasets`.

  Args:
    path: config.data.path.
    dataset: 'text' | 'table' (for messages).
    formats: the extensions allowed.
    per_file: keep which file each row came from (one `datasets` split per file).
    **reader_kwargs: options of the packaged reader (the text reader's sample_by).

  Returns:
    (pyarrow Table of every row, file of each row relative to the root (a list; the directory's
    name for a save_to_disk directory), root, reader ('json', 'text', ..., or 'saved'), the
    read-only file mappings the table lies in (`arrow_table`; `release_pages` drops their pages)).
  """
  files, root = resolve(path, dataset, formats)
  datasets = _hf()
  if files is None:
    try:
      ds = datasets.load_from_disk(root)
    except Exception as e:  # noqa: BLE001 - any unreadable directory is one user-facing error
      raise DataError(f'config.data.path: cannot read {root!r} with datasets.load_from_disk '
                      f'({_one_line(e)})') from None
    if isinstance(ds, datasets.DatasetDict):
      names = list(ds)
      if 'train' not in ds and len(names) != 1:
        raise DataError(f"config.data.path: {root!r} is a DatasetDict with splits {names}; "
                        "it needs a 'train' split (or a single split)")
      ds = ds['train' if 'train' in ds else names[0]]
    table, maps = arrow_table(ds)
    name = os.path.basename(os.path.normpath(root))
    return table, [name] * table.num_rows, root, 'saved', maps
  files = [f for f in files if os.path.getsize(f) > 0]
  if not files:
    raise DataError(f'config.data.path: {path!r}: every file is empty')
  reader = READERS[_ext(files[0])]
  if per_file and len(files) > MAX_SOURCES:
    raise DataError(f'config.data.path: {path!r} has {len(files)} files and the source is the '
                    f'file by default; at most {MAX_SOURCES} sources: set data.source_field')
  data_files = ({f'f{i}': [f] for i, f in enumerate(files)} if per_file else {'train': files})
  with tempfile.TemporaryDirectory(prefix='datarater-datasets-') as cache:
    try:
      dd = datasets.load_dataset(reader, data_files=data_files, cache_dir=cache, **reader_kwargs)
      tables, maps = zip(*[arrow_table(dd[k]) for k in data_files])
    except Exception as e:  # noqa: BLE001 - a malformed file is one user-facing error
      where = files[0] if len(files) == 1 else path
      empty = re.search(r'Instruction "(\w+)" corresponds to no data', str(e.__cause__ or e))
      if empty:   # a file with a header or blank lines only
        raise DataError(f'config.data.path: {data_files[empty.group(1)][0]!r} has no rows') \
            from None
      raise DataError(f'config.data.path: cannot read {where!r} as {reader} ({_one_line(e)})') \
          from None
  rel = [os.path.relpath(os.path.abspath(f), os.path.abspath(root)) for f in files]
  if per_file:
    origin = [r for r, t in zip(rel, tables) for _ in range(t.num_rows)]
    try:
      table = _concat(tables)
    except Exception as e:  # noqa: BLE001
      raise DataError(f'config.data.path: the files of {path!r} have different columns or types '
                      f'({_one_line(e)})') from None
  else:
    table = tables[0]
    origin = rel if reader == 'text' and reader_kwargs.get('sample_by') == 'document' else None
  return table, origin, root, reader, sum(maps, ())


def _concat(tables):
  import pyarrow as pa
  return pa.concat_tables(tables, promote_options='default')


def column(table, field: str, name: str, where: str):
  """table[field], or a DataError naming config.data.<name> and the columns there are."""
  if field not in table.column_names:
    raise DataError(f'config.data.{name}={field!r}: {where!r} has no such column (columns: '
                    f'{", ".join(table.column_names)[:300]})')
  col = table.column(field)
  if col.null_count:
    first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
    raise DataError(f'config.data.{name}={field!r}: {where!r} has {col.null_count} missing '
                    f'values (first at row {first})')
  return col


def _kind(col) -> str:
  """'int' | 'float' | 'bool' | 'str' | 'other' for a pyarrow column."""
  import pyarrow.types as t
  typ = col.type
  if t.is_dictionary(typ):
    typ = typ.value_type
  if t.is_boolean(typ):
    return 'bool'
  if t.is_integer(typ):
    return 'int'
  if t.is_floating(typ) or t.is_decimal(typ):
    return 'float'
  if t.is_string(typ) or t.is_large_string(typ):
    return 'str'
  return 'other'


def categories(col, name: str, field: str, where: str):
  """Values of a source column as a numpy array (strings or int64); DataError for other types."""
  kind = _kind(col)
  if kind not in ('int', 'str', 'bool'):
    raise DataError(f'config.data.{name}={field!r}: {where!r} holds {col.type} values; it must '
                    'hold strings or integers')
  values = col.to_numpy(zero_copy_only=False)
  return values.astype(np.int64) if kind == 'int' else values.astype(str)


def number(values: np.ndarray, what: str, where: str):
  """(ids 0..K-1 of each value in sorted order of the values, their names as text)."""
  unique, ids = np.unique(values, return_inverse=True)
  if len(unique) > MAX_SOURCES:
    raise DataError(f'{what}: {where!r} has {len(unique)} distinct sources; at most '
                    f'{MAX_SOURCES} sources are supported')
  return ids.reshape(-1).astype(np.int32), tuple(str(u) for u in unique)


def flags(col, field: str, where: str) -> np.ndarray:
  """A corrupted column (bool, or integers 0/1) as bool."""
  kind = _kind(col)
  values = col.to_numpy(zero_copy_only=False)
  if kind == 'int' and np.isin(values, (0, 1)).all():
    return values.astype(bool)
  if kind != 'bool':
    raise DataError(f'config.data.corrupted_field={field!r}: {where!r} holds {col.type} '
                    'values; it must be boolean (or 0/1)')
  return values.astype(bool)


def _cap(table, origin, cfg):
  if cfg.max_examples and table.num_rows > cfg.max_examples:
    table = table.slice(0, int(cfg.max_examples))
    origin = origin[:int(cfg.max_examples)] if origin is not None else None
  return table, origin


def _optional(cfg, name: str) -> str:
  value = cfg.get(name, '') or ''
  require(isinstance(value, str), f'data.{name}', 'a column name (text)', value)
  return value


# ----------------------------------------------------------------------------- text


def read_text(cfg) -> TextCorpus:
  """The documents of dataset=text (see the module docstring)."""
  return text_rows(open_text(cfg))


def open_text(cfg) -> TextTable:
  """Reads and checks dataset=text's corpus without decoding its documents (`text_rows` does,
  for any range of them: a corpus too large to decode at once is read shard by shard).

  Raises:
    DataError / ConfigError: one line, as `read_text`.
  """
  unit = cfg.get('txt_unit', 'file')
  require(unit in TXT_UNITS, 'data.txt_unit', f'one of {TXT_UNITS}', unit)
  text_field = cfg.get('text_field', 'text') or 'text'
  require(isinstance(text_field, str), 'data.text_field', 'a column name (text)', text_field)
  source_field, id_field, flag_field = (_optional(cfg, n) for n in
                                        ('source_field', 'id_field', 'corrupted_field'))
  files, _ = resolve(cfg.path, 'text', TEXT_FORMATS)
  if files is not None and _ext(files[0]) == '.txt':
    for name, value in (('source_field', source_field), ('id_field', id_field),
                        ('corrupted_field', flag_field)):
      if value:
        raise DataError(f'config.data.{name}={value!r}: .txt files have no fields (the source is '
                        'the file, or its directory under txt_unit=file); use .jsonl or .parquet')
    whole = unit == 'file'
    table, origin, root, _, maps = read_tables(cfg.path, 'text', TEXT_FORMATS,
                                               per_file=not whole,
                                               sample_by='document' if whole else 'line')
    if whole:   # a file is a document; its source is its directory
      top = os.path.basename(os.path.normpath(os.path.abspath(root)))
      origin = [os.path.dirname(o) or top for o in origin]
    text_field = 'text'
  else:
    table, origin, _, _, maps = read_tables(cfg.path, 'text', TEXT_FORMATS,
                                            per_file=not source_field)
  where = cfg.path
  table, origin = _cap(table, origin, cfg)
  if not table.num_rows:
    raise DataError(f'config.data.path: {where!r} holds no document')
  col = column(table, text_field, 'text_field', where)
  if _kind(col) != 'str':
    raise DataError(f'config.data.text_field={text_field!r}: {where!r} holds {col.type} values, '
                    'not text')
  if source_field:
    categories(column(table, source_field, 'source_field', where).slice(0, 0), 'source_field',
               source_field, where)
  if id_field:
    column(table, id_field, 'id_field', where)
  if flag_field:
    flags(column(table, flag_field, 'corrupted_field', where), flag_field, where)
  return TextTable(table, origin, text_field, source_field, id_field, flag_field, where, maps)


def text_rows(text: TextTable, start: int = 0, stop: int | None = None) -> TextCorpus:
  """Documents start..stop-1 of an opened corpus (`open_text`), decoded; ids are numbered from
  0 over the whole corpus (document `start` is `start`). The pages of the corpus's mapping read
  are dropped afterwards (`release_pages`): memory holds the decoded range, not what was read
  before it."""
  stop = text.table.num_rows if stop is None else min(stop, text.table.num_rows)
  rows = text.table.slice(start, max(stop - start, 0))
  docs = [s.encode('utf-8') for s in rows.column(text.text_field).to_pylist()]
  if text.source_field:
    source = categories(rows.column(text.source_field), 'source_field', text.source_field,
                        text.where)
  else:
    source = np.asarray(text.origin[start:stop], dtype=str)
  ids = (rows.column(text.id_field).to_numpy(zero_copy_only=False) if text.id_field
         else np.arange(start, stop))
  corrupted = flags(rows.column(text.corrupted_field), text.corrupted_field,
                    text.where) if text.corrupted_field else None
  release_pages(text.maps)
  return TextCorpus(docs, source, ids, corrupted, text.where)


def assign_documents(num_windows: np.ndarray, source: np.ndarray, num_sources: int, cfg,
                     rng: np.random.Generator):
  """Deals each source's documents, whole, to the splits (module docstring, "Splits").

  Args:
    num_windows: int [D] windows of each document.
    source: int [D] source 0..K-1 of each document (-1: none; such a document is UNUSED).
    num_sources: K.
    cfg: config.data (test_fraction, meta_size, valid_size).
    rng: the loader's generator (one permutation per source).

  Returns:
    (split code of each document: TRAIN / META / VALID / TEST, UNUSED for a document with no
    window; int64 [K, 4]: the windows each source's meta, valid and test split keep (the
    train column is unused: train keeps every window)).
  """
  split = np.full(len(num_windows), UNUSED, np.int8)
  keep = np.zeros((num_sources, 4), np.int64)
  n_meta = -(-int(cfg.meta_size) // num_sources)
  for k in range(num_sources):
    docs = rng.permutation(np.flatnonzero((source == k) & (num_windows > 0)))
    total, pos = int(num_windows[docs].sum()), 0

    def deal(code, target):
      nonlocal pos
      got = 0
      while got < target and pos < len(docs) - 1:   # the last document stays for train
        split[docs[pos]] = code
        got += int(num_windows[docs[pos]])
        pos += 1
      keep[k, code] = min(got, target)
      return got

    used = deal(TEST, max(1, int(round(cfg.test_fraction * total))))
    used += deal(META, n_meta)
    n_valid = (valid_count(cfg.valid_size, total - used) if is_fraction(cfg.valid_size)
               else -(-int(cfg.valid_size) // num_sources))
    deal(VALID, n_valid)
    split[docs[pos:]] = TRAIN
  return split, keep


def document_means(values, documents: Documents):
  """Per-document mean of per-row values (e.g. scores_train.npy).

  Returns:
    (mean [D], NaN for a document with no row; count [D] of its rows).
  """
  d = len(documents.ids)
  count = np.bincount(documents.row_document, minlength=d)
  total = np.bincount(documents.row_document, weights=np.asarray(values, np.float64), minlength=d)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(count > 0, total / np.maximum(count, 1), np.nan), count


# ----------------------------------------------------------------------------- table


def _features(table, cfg, special: set, where: str) -> tuple:
  fields = cfg.get('feature_fields', ()) or ()
  if isinstance(fields, str):
    fields = tuple(f.strip() for f in fields.split(',') if f.strip())
  require(isinstance(fields, (tuple, list)) and all(isinstance(f, str) for f in fields),
          'data.feature_fields', 'a tuple of column names', fields)
  if fields:
    for f in fields:
      if f not in table.column_names:
        raise DataError(f'config.data.feature_fields: {where!r} has no column {f!r} (columns: '
                        f'{", ".join(table.column_names)[:300]})')
      if _kind(table.column(f)) not in ('int', 'float', 'bool'):
        raise DataError(f'config.data.feature_fields: column {f!r} of {where!r} holds '
                        f'{table.column(f).type} values, not numbers')
    return tuple(fields)
  fields = tuple(f for f in table.column_names
                 if f not in special and _kind(table.column(f)) in ('int', 'float', 'bool'))
  if not fields:
    raise DataError(f'config.data.feature_fields: {where!r} has no numeric column besides '
                    f'{sorted(special)} (columns: {", ".join(table.column_names)[:300]})')
  return fields


def _labels(col, field: str, where: str):
  """(class index of each row, number of classes)."""
  kind = _kind(col)
  values = col.to_numpy(zero_copy_only=False)
  if kind == 'int':
    if values.min() < 0 or values.max() > MAX_LABEL:
      raise DataError(f'config.data.label_field={field!r}: {where!r} has labels outside '
                      f'0..{MAX_LABEL} (integer labels are class indices)')
    return values.astype(np.int32), int(values.max()) + 1
  if kind in ('str', 'bool'):
    unique, y = np.unique(values.astype(str) if kind == 'str' else values, return_inverse=True)
    return y.reshape(-1).astype(np.int32), len(unique)
  raise DataError(f'config.data.label_field={field!r}: {where!r} holds {col.type} values; it '
                  'must hold integer class indices or strings')


def read_table(cfg) -> Table:
  """The rows of dataset=table (see the module docstring)."""
  label_field = cfg.get('label_field', '') or ''
  require(isinstance(label_field, str) and label_field, 'data.label_field',
          'the name of the label column for dataset=table', label_field)
  source_field, id_field, flag_field = (_optional(cfg, n) for n in
                                        ('source_field', 'id_field', 'corrupted_field'))
  table, _, _, _, _ = read_tables(cfg.path, 'table', TABLE_FORMATS)
  where = cfg.path
  table, _ = _cap(table, None, cfg)
  if not table.num_rows:
    raise DataError(f'config.data.path: {where!r} has no rows')
  y, num_classes = _labels(column(table, label_field, 'label_field', where), label_field, where)
  special = {f for f in (label_field, source_field, id_field, flag_field) if f}
  names = _features(table, cfg, special, where)
  cols = []
  for f in names:
    col = column(table, f, 'feature_fields', where)
    v = col.to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.all(np.isfinite(v)):
      raise DataError(f'config.data.feature_fields: column {f!r} of {where!r} has non-finite '
                      'values')
    if np.abs(v).max() > np.finfo(np.float32).max:
      raise DataError(f'config.data.feature_fields: column {f!r} of {where!r} has values beyond '
                      'the float32 range; inputs are float32')
    cols.append(v.astype(np.float32))
  x = np.stack(cols, axis=1)
  source = source_names = None
  if source_field:
    values = categories(column(table, source_field, 'source_field', where), 'source_field',
                        source_field, where)
    source, source_names = number(values, f'config.data.source_field={source_field!r}', where)
  corrupted = flags(column(table, flag_field, 'corrupted_field', where), flag_field,
                    where) if flag_field else None
  return Table(x, y, num_classes, source, source_names, corrupted, names, where)
