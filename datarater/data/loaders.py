"""Dataset loaders: embedded (digits, stdlib_text), a user's npz, corpus (text) or table
(datarater.data.corpus), and TFDS.

`load_dataset(data_config, seed)` is the single entry point. Everything is
loaded into host numpy arrays once (the embedded and paper-scale datasets fit
in memory); batches are gathered by index (see `datarater.data.sampler`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import numbers
import os
import sys
import sysconfig

import numpy as np

from datarater.data import corpus, corruption, tokens, windows
from datarater.data.classification import (MAX_CLASSES, MAX_LABEL, MAX_SOURCES,
                                           classification_dataset)
from datarater.data.core import (DataError, Dataset, DatasetInfo, Split, check_valid_mode,
                                 check_valid_size, is_fraction, make_split, valid_count)
from datarater.data.mnist1d import load_mnist1d
from datarater.data.tabular import load_tabular
from datarater.errors import require

VOCAB = tokens.BYTE_VOCAB  # byte-level text


# ----------------------------------------------------------------------------- classification


def digits_arrays() -> tuple:
  """(images [1797, 8, 8] in 0..16, labels [1797]): scikit-learn's bundled digits file, read
  as sklearn.datasets.load_digits reads it (the same arrays) without importing scikit-learn,
  whose import takes longer than a quick-start run's training steps."""
  spec = importlib.util.find_spec('sklearn')
  if spec is None:
    raise DataError('dataset digits needs scikit-learn installed (its bundled digits.csv.gz); '
                    'pip install -r requirements.txt')
  path = os.path.join(spec.submodule_search_locations[0], 'datasets', 'data', 'digits.csv.gz')
  data = np.loadtxt(path, delimiter=',')
  return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def load_digits(cfg, seed) -> Dataset:
  """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes)."""
  images, target = digits_arrays()
  x = (images / 16.0).astype(np.float32)[..., None]
  y = target.astype(np.int32)
  rng = np.random.default_rng([seed, 1])
  perm = rng.permutation(len(y))
  n_test = int(round(cfg.test_fraction * len(y)))
  if not 0 < n_test < len(y):
    raise DataError(f'config.data.test_fraction={cfg.test_fraction} leaves {n_test} of {len(y)} '
                    'digits for test; it must leave at least one for test and for training')
  test = make_split(x[perm[:n_test]], y[perm[:n_test]])
  pool = make_split(x[perm[n_test:]], y[perm[n_test:]])
  return classification_dataset('digits', pool, test, 10, cfg, rng)


NPZ_REQUIRED = ('x_train', 'y_train', 'x_test', 'y_test')


def load_npz(cfg, seed) -> Dataset:
  """A user's classification data: x_train, y_train, x_test, y_test
  [, source_train, source_test, corrupted_train, x_meta, y_meta, x_valid, y_valid]
  (without x_valid, config.data.valid_size rows are carved from the training
  rows). Every problem raises DataError with one line naming the key: inputs
  must be finite as float32, labels in 0..MAX_LABEL; `source_train` ids are
  remapped to 0..K-1 (`_npz_sources`), `source_test` ids the same way (ids of
  source_train only); without `source_test` the test rows have no source (no
  per-source test loss)."""
  path = cfg.path
  if not path:
    raise DataError('config.data.path: set it to the .npz file for dataset=npz')
  if not os.path.isfile(path):
    raise DataError(f'config.data.path: no such file {path!r}')
  try:
    f = dict(np.load(path, allow_pickle=False))
  except Exception as e:  # noqa: BLE001 - any unreadable file is one user-facing error
    raise DataError(f'config.data.path: cannot read {path!r} as .npz ({type(e).__name__})') from None
  for k in NPZ_REQUIRED:
    if k not in f:
      raise DataError(f'{path}: missing key {k!r} (needs {", ".join(NPZ_REQUIRED)})')
  for xk, yk in (('x_train', 'y_train'), ('x_test', 'y_test'), ('x_meta', 'y_meta'),
                 ('x_valid', 'y_valid')):
    if (xk in f) != (yk in f):
      raise DataError(f'{path}: {xk!r} and {yk!r} must be given together')
    if xk not in f:
      continue
    x, y = f[xk], f[yk]
    if np.iscomplexobj(x) or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
      raise DataError(f'{path}: {xk!r} must be real numbers, got dtype {x.dtype}')
    if x.ndim < 2:
      raise DataError(f'{path}: {xk!r} must have shape [N, ...features], got {x.shape}')
    if not np.all(np.isfinite(x)):
      raise DataError(f'{path}: {xk!r} contains non-finite values')
    # Inputs are trained on as float32: check the values that will be used.
    with np.errstate(over='ignore'):
      f[xk] = x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
      raise DataError(f'{path}: {xk!r} has values beyond the float32 range '
                      f'(|x| > {np.finfo(np.float32).max:.4g}); inputs are float32')
    if not np.issubdtype(y.dtype, np.integer):
      raise DataError(f'{path}: {yk!r} must hold integer class labels, got dtype {y.dtype}')
    if y.shape != (len(x),):
      raise DataError(f'{path}: {yk!r} must have shape ({len(x)},), got {y.shape}')
    if not len(y):
      raise DataError(f'{path}: {yk!r} is empty')
    if y.min() < 0 or y.max() > MAX_LABEL:
      raise DataError(f'{path}: {yk!r} has labels outside 0..{MAX_LABEL} (class indices; at '
                      f'most {MAX_CLASSES} classes)')
    if x.shape[1:] != f['x_train'].shape[1:]:
      raise DataError(f"{path}: {xk!r} shape {x.shape[1:]} differs from 'x_train' "
                      f"{f['x_train'].shape[1:]}")
  num_classes = int(f['y_train'].max()) + 1
  for yk in ('y_test', 'y_meta', 'y_valid'):
    if yk in f and f[yk].max() >= num_classes:
      raise DataError(f'{path}: {yk!r} has label {int(f[yk].max())} not seen in y_train '
                      f'(classes 0..{num_classes - 1})')
  unseen = np.setdiff1d(f['y_test'], f['y_train'])
  if len(unseen) == len(np.unique(f['y_test'])):
    raise DataError(f"{path}: no label of 'y_test' occurs in 'y_train'; accuracy would be "
                    'meaningless')
  if len(unseen):
    print(f"warning: {path}: 'y_test' labels {unseen.tolist()[:10]} never occur in 'y_train'",
          file=sys.stderr, flush=True)
  n = len(f['y_train'])
  for k, kind in (('source_train', 'int'), ('corrupted_train', 'bool')):
    if k in f:
      v = f[k]
      if v.shape != (n,):
        raise DataError(f'{path}: {k!r} must have shape ({n},), got {v.shape}')
      if kind == 'int' and (not np.issubdtype(v.dtype, np.integer) or v.min() < 0):
        raise DataError(f'{path}: {k!r} must hold non-negative integers')
      if kind == 'bool' and v.dtype != bool:
        raise DataError(f'{path}: {k!r} must be boolean, got dtype {v.dtype}')
  source, source_ids = _npz_sources(path, f.get('source_train'), len(cfg.corruption_rates))
  if cfg.max_examples:
    n = min(n, cfg.max_examples)
  pool = make_split(f['x_train'][:n], f['y_train'][:n],
                    source[:n] if source is not None else None,
                    f['corrupted_train'][:n] if 'corrupted_train' in f else None)
  test_source = _npz_test_sources(path, f.get('source_test'), source_ids, len(f['y_test']))
  test = make_split(f['x_test'], f['y_test'], test_source)
  meta = make_split(f['x_meta'], f['y_meta']) if 'x_meta' in f else None
  valid = make_split(f['x_valid'], f['y_valid']) if 'x_valid' in f else None
  rng = np.random.default_rng([seed, 2])
  return classification_dataset('npz', pool, test, num_classes, cfg, rng, meta,
                                sources_given=source is not None,
                                num_rows=len(f['y_train']), source_ids=source_ids,
                                test_sources_given=test_source is not None, valid=valid)


def _npz_sources(path, ids, num_rates: int):
  """(source 0..K-1 of each row, the file's id of each source) for an npz `source_train`.

  With config.data.corruption_rates set, ids must be 0..len(rates)-1 (id k is
  corrupted at rate k) and are kept as they are. Without, any non-negative
  integer ids are remapped in sorted order to 0..K-1; the sources keep their
  ids as names ('source<id>'). At most MAX_SOURCES distinct ids.
  Returns (None, None) without `source_train`.
  """
  if ids is None:
    return None, None
  if num_rates:
    if ids.max() >= num_rates:
      raise DataError(f"{path}: 'source_train' has ids >= len(config.data.corruption_rates) "
                      f'= {num_rates}')
    return ids.astype(np.int32), tuple(range(num_rates))
  unique, source = np.unique(ids, return_inverse=True)
  if len(unique) > MAX_SOURCES:
    raise DataError(f"{path}: 'source_train' has {len(unique)} distinct source ids; at most "
                    f'{MAX_SOURCES} sources are supported')
  return source.reshape(-1).astype(np.int32), tuple(int(i) for i in unique)


def _npz_test_sources(path, ids, source_ids, n_test: int):
  """The test rows' sources 0..K-1 from an npz `source_test` (None without it).

  Ids are the file's own, numbered like source_train's (`_npz_sources`); an id
  source_train does not have is a DataError.
  """
  if ids is None:
    return None
  if source_ids is None:
    raise DataError(f"{path}: 'source_test' needs 'source_train' (the sources it names)")
  if ids.shape != (n_test,) or not np.issubdtype(ids.dtype, np.integer):
    raise DataError(f"{path}: 'source_test' must be integers of shape ({n_test},), got "
                    f'{ids.dtype} {ids.shape}')
  known = np.asarray(source_ids)
  pos = np.minimum(np.searchsorted(known, ids), len(known) - 1)
  if (known[pos] != ids).any():
    raise DataError(f"{path}: 'source_test' has ids that 'source_train' does not have: "
                    f'{np.setdiff1d(ids, known).tolist()[:10]}')
  return pos.astype(np.int32)


# ----------------------------------------------------------------------------- text


def _windows(stream: np.ndarray, length: int) -> np.ndarray:
  n = len(stream) // length
  return stream[:n * length].reshape(n, length)


def _text_dataset(name, streams, names, cfg, seed, test_streams=None) -> Dataset:
  """Cuts non-overlapping (seq_len+1)-byte windows from per-source byte streams.

  Without `test_streams`, the first 80% of each stream gives train (+ meta
  + valid) windows and the last 20% test windows, so the splits are disjoint; with them
  (a dataset's own test split), test windows come from those: n_train // 4
  of them, or all of them when the test split is smaller (wikitext103's test
  split holds about 2,500 windows of 513 bytes).
  Validation windows: config.data.valid_size per source as a fraction of
  examples_per_source (a float) or ceil(valid_size / K) (an int), drawn from
  the same windows as train and corrupted like them, or left as they are under
  config.data.valid_mode='clean' (the corruption draws valid's last, so the other
  splits are the same in both modes).
  x = window[:-1], y = window[1:]. The corruption sees each window's following text: the
  next window of its stream (the first one for the last window of the stream's head).
  """
  rng = np.random.default_rng([seed, 3])
  length = cfg.seq_len + 1
  n_train = cfg.examples_per_source
  n_meta = -(-cfg.meta_size // len(streams))
  n_valid = (valid_count(cfg.valid_size, n_train) if is_fraction(cfg.valid_size)
             else -(-int(cfg.valid_size) // len(streams)))
  n_test = max(1, n_train // 4)
  parts = {'train': [], 'meta': [], 'valid': [], 'test': []}
  for k, stream in enumerate(streams):
    if test_streams is None:
      cut = int(0.8 * len(stream))
      head, tail = _windows(stream[:cut], length), _windows(stream[cut:], length)
    else:
      head, tail = _windows(stream, length), _windows(test_streams[k], length)
      n_test = min(max(1, n_train // 4), len(tail))
    if len(head) < n_train + n_meta + n_valid or len(tail) < max(n_test, 1):
      raise DataError(f'source {names[k]!r} has {len(head)} train and {len(tail)} test windows of '
                      f'{length} bytes; needs {n_train + n_meta + n_valid} and {max(n_test, 1)}: '
                      'lower config.data.examples_per_source, valid_size or seq_len')
    pick = rng.choice(len(head), n_train + n_meta + n_valid, replace=False)
    # (windows, the text after each, source ids) of the picked rows.
    rows = lambda p: (head[p], head[(p + 1) % len(head)], np.full(len(p), k, np.int32))  # noqa
    parts['train'].append(rows(pick[:n_train]))
    parts['meta'].append(rows(pick[n_train:n_train + n_meta]))
    parts['valid'].append(rows(pick[n_train + n_meta:]))
    test_pick = rng.choice(len(tail), n_test, replace=False)
    parts['test'].append((tail[test_pick], None, np.full(n_test, k, np.int32)))
  splits = _lm_splits(parts, cfg, rng)
  info = _lm_info(name, names, cfg, splits)
  # The train, meta and valid windows are rows 0..N-1, N..N+M-1, N+M.. of the corpus drawn.
  start = 0
  for k in ('train', 'meta', 'valid'):
    splits[k] = splits[k]._replace(row=start + np.arange(splits[k].size, dtype=np.int64))
    start += splits[k].size
  return Dataset(splits['train'], splits['meta'], splits['valid'], splits['test'], info)


def _lm_splits(parts: dict, cfg, rng) -> dict:
  """{split: Split} from {split: [(windows [n, L+1], the text after each or None, source [n])]}.

  Train windows are corrupted (config.data.corruption_rates per source), meta and valid ones
  too in the 'noisy' modes, in the order of `parts`; x = window[:-1], y = window[1:]; every
  row is -1 (the caller numbers them).
  """
  rates = tuple(cfg.corruption_rates)
  splits = {}
  for split, chunks in parts.items():
    seqs = np.concatenate([c[0] for c in chunks]).astype(np.int32)
    source = np.concatenate([c[2] for c in chunks])
    corrupt = (split == 'train' or (split == 'meta' and cfg.meta_mode == 'noisy')
               or (split == 'valid' and cfg.valid_mode == 'noisy'))
    mask = np.zeros(len(seqs), bool)
    if corrupt:
      following = np.concatenate([c[1] for c in chunks]).astype(np.int32)
      seqs, mask = corruption.corrupt_sequences(seqs, following, source, rates, cfg.corruption,
                                                rng, cfg.text_noise_fraction)
    splits[split] = Split(seqs[:, :-1], seqs[:, 1:], source, mask,
                          np.full(len(seqs), -1, np.int64))
  return splits


def _lm_info(name, names, cfg, splits: dict, vocab: int = VOCAB) -> DatasetInfo:
  """DatasetInfo of an LM dataset whose sources are `names` (byte-level, or `vocab` tokens)."""
  if cfg.meta_mode not in ('clean', 'noisy'):
    raise DataError(f"config.data.meta_mode={cfg.meta_mode!r} must be 'clean' or 'noisy'")
  rates = tuple(cfg.corruption_rates)
  return DatasetInfo(name=name, task='lm', num_classes=vocab, input_shape=(cfg.seq_len,),
                     num_sources=len(names), source_names=tuple(names),
                     corruption=cfg.corruption if len(rates) else 'none',
                     corruption_rates=rates, meta_mode=cfg.meta_mode,
                     source_corruption=corruption.source_kinds(cfg.corruption, rates),
                     valid_mode=cfg.valid_mode,
                     num_rows=sum(splits[k].size for k in ('train', 'meta', 'valid')))


def stdlib_package_bytes(package: str) -> np.ndarray:
  """All `.py` files of one top-level stdlib package, concatenated (sorted paths)."""
  root = os.path.join(sysconfig.get_paths()['stdlib'], package)
  if not os.path.isdir(root):
    raise DataError(f'config.data.text_packages: {package!r} is not a package of this '
                    f'Python\'s standard library ({root})')
  chunks = []
  for dirpath, dirnames, files in os.walk(root):
    dirnames.sort()
    for fname in sorted(files):
      if fname.endswith('.py'):
        with open(os.path.join(dirpath, fname), 'rb') as fh:
          chunks.append(fh.read())
  return np.frombuffer(b'\n'.join(chunks), dtype=np.uint8)


def load_stdlib_text(cfg, seed) -> Dataset:
  """Byte sequences from the running interpreter's stdlib; source = package."""
  packages = tuple(cfg.text_packages)
  if len(cfg.corruption_rates) not in (0, len(packages)):
    raise DataError(f'config.data.corruption_rates has {len(cfg.corruption_rates)} entries but '
                    f'config.data.text_packages has {len(packages)}; they must match')
  streams = [stdlib_package_bytes(p) for p in packages]
  return _text_dataset('stdlib_text', streams, packages, cfg, seed)


# ----------------------------------------------------------------------------- your own corpus


def load_text_documents(cfg, seed):
  """dataset=text: a user's documents as byte windows, with where each document went.

  Documents are read and dealt to document-disjoint splits by `datarater.data.corpus` (its
  module docstring states how documents map to sequences and back); each is cut by `_windows`
  and the splits are built and corrupted as on the stdlib preset (`_lm_splits`). The user's
  `corrupted_field` flag is OR'ed into every split's `corrupted`. With config.data.store='disk'
  the windows are cut into a file and the train split reads them by index
  (`datarater.data.windows`); the arrays are the same.

  Returns:
    (Dataset, corpus.Documents).
  """
  unit = 'tokens' if cfg.get('tokenizer', '') else 'bytes'
  store = cfg.get('store', 'memory')
  require(store in windows.STORES, 'data.store', f'one of {windows.STORES}', store)
  synthetic = len(cfg.corruption_rates) and cfg.corruption != 'none'
  if synthetic and cfg.corruption not in corruption.TEXT_CORRUPTIONS:
    raise DataError(f'config.data.corruption={cfg.corruption!r} is not one of '
                    f'{corruption.TEXT_CORRUPTIONS}')
  if unit == 'tokens' and synthetic:
    raise DataError('config.data.corruption_rates: the synthetic text corruptions act on bytes; '
                    'with config.data.tokenizer set them to () (config.data.corrupted_field '
                    'still marks your own ground truth)')
  if store == 'disk' and synthetic and any(cfg.corruption_rates):
    raise DataError("config.data.corruption_rates: the synthetic text corruptions need every "
                    "window in memory; with config.data.store='disk' set them to 0 or () "
                    '(config.data.corrupted_field still marks your own ground truth)')
  tokenizer = tokens.load(cfg)   # checked before the corpus is read
  length = cfg.seq_len + 1
  if store == 'disk':
    opened = corpus.open_text(cfg)
    flat, counts, doc_source, ids, flags = windows.write(opened, tokenizer, length)
    text = corpus.TextCorpus([], doc_source, ids, flags, opened.where)
  else:
    text = corpus.read_text(cfg)
    cut = [_windows(u, length) for u in tokens.encode(text.docs, tokenizer)]
    counts = np.array([len(w) for w in cut], np.int64)
    flat = np.concatenate(cut) if counts.any() else None
  if not counts.any():
    raise DataError(f'config.data.path: no document of {text.where!r} has data.seq_len + 1 = '
                    f'{length} {unit}; lower config.data.seq_len')
  short = int((counts == 0).sum())
  if short:
    print(f'warning: {short} of {len(counts)} documents of {text.where} are shorter than '
          f'data.seq_len + 1 = {length} {unit} and give no sequence', file=sys.stderr, flush=True)
  has = counts > 0
  source = np.full(len(counts), -1, np.int32)
  source[has], names = corpus.number(text.source[has], 'config.data.source_field', text.where)
  rates = tuple(cfg.corruption_rates)
  if len(rates) not in (0, len(names)):
    raise DataError(f'config.data.corruption_rates has {len(rates)} entries but {text.where!r} '
                    f'has {len(names)} sources ({", ".join(names)[:200]}); give one rate per '
                    'source, or ()')
  rng = np.random.default_rng([seed, 5])
  doc_split, keep = corpus.assign_documents(counts, source, len(names), cfg, rng)
  # Windows are numbered in corpus order (document, then position): document d's are
  # start[d] .. end[d] - 1.
  end = np.cumsum(counts)
  start = end - counts

  def windows_of(docs):   # the windows of documents `docs` (ascending), ascending
    c = counts[docs]
    return np.repeat(start[docs] - (np.cumsum(c) - c), c) + np.arange(int(c.sum()))

  def document(i):
    return np.searchsorted(end, i, side='right')

  members = {'train': windows_of(np.flatnonzero(doc_split == corpus.TRAIN))}
  for code in (corpus.TEST, corpus.META, corpus.VALID):   # keep each split's target windows
    kept = []
    for k in range(len(names)):
      idx = windows_of(np.flatnonzero((doc_split == code) & (source == k)))
      kept.append(rng.choice(idx, keep[k, code], replace=False) if len(idx) > keep[k, code]
                  else idx)
    members[corpus.SPLIT_NAMES[code]] = np.sort(np.concatenate(kept))
  for code, hint in ((corpus.TEST, ''), (corpus.META, ''),
                     (corpus.VALID, ' or set data.valid_size=0')):
    if not len(members[corpus.SPLIT_NAMES[code]]) and (code != corpus.VALID or cfg.valid_size):
      raise DataError(f'config.data.path: {text.where!r} has too few documents for '
                      f'document-disjoint splits: none is left for {corpus.SPLIT_NAMES[code]} '
                      f'({int(has.sum())} documents with sequences in {len(names)} sources, each '
                      f'source keeps one for train); give more documents{hint}')
  members = {name: members[name] for name in corpus.SPLIT_NAMES}   # the order _lm_splits draws in
  docs = {name: document(i) for name, i in members.items()}   # each window's document
  if store == 'disk':   # as _lm_splits builds them (no corruption), read from the file by index
    splits = {name: windows.split(flat, i, source[docs[name]]) for name, i in members.items()}
  else:
    def part(name):   # windows, the window after each in its document (the first after the last)
      i, d = members[name], docs[name]
      return [(flat[i], flat[start[d] + (i - start[d] + 1) % counts[d]], source[d])]
    splits = _lm_splits({name: part(name) for name in members}, cfg, rng)
  # Rows of the training data: the train, meta and valid windows in corpus order.
  rows = np.sort(np.concatenate([members[k] for k in ('train', 'meta', 'valid')]))
  for name, i in members.items():
    split = splits[name]
    if text.corrupted is not None:   # the user's ground truth, with the synthetic corruption's
      split = split._replace(corrupted=split.corrupted | text.corrupted[docs[name]])
    splits[name] = split._replace(row=np.searchsorted(rows, i)) if name != 'test' else split
  info = _lm_info('text', names, cfg, splits, tokens.vocab_size(tokenizer))
  split_names = np.array(corpus.SPLIT_NAMES + ('',))
  row_document, test_document = document(rows), docs['test']
  documents = corpus.Documents(
      ids=text.ids, source=source, split=split_names[np.where(doc_split >= 0, doc_split, 4)],
      num_windows=counts, row_document=row_document,
      row_offset=(rows - start[row_document]) * length, test_document=test_document,
      test_offset=(members['test'] - start[test_document]) * length)
  dataset = Dataset(splits['train'], splits['meta'], splits['valid'], splits['test'], info)
  return dataset, documents


def load_text(cfg, seed) -> Dataset:
  """dataset=text (`load_text_documents` without the document table)."""
  return load_text_documents(cfg, seed)[0]


def load_table(cfg, seed) -> Dataset:
  """dataset=table: a user's table (datarater.data.corpus reads and checks it). A random
  config.data.test_fraction of the rows is the test split; the others are the training pool of
  the classification recipe, each keeping its row number in the file (Split.row)."""
  t = corpus.read_table(cfg)
  n = len(t.y)
  rates = tuple(cfg.corruption_rates)
  if t.source is not None and len(rates) not in (0, len(t.source_names)):
    raise DataError(f'config.data.corruption_rates has {len(rates)} entries but '
                    f'config.data.source_field gives {len(t.source_names)} sources; give one '
                    'rate per source, or ()')
  rng = np.random.default_rng([seed, 6])
  perm = rng.permutation(n)
  n_test = int(round(cfg.test_fraction * n))
  if not 0 < n_test < n:
    raise DataError(f'config.data.test_fraction={cfg.test_fraction} leaves {n_test} of {n} rows of '
                    f'{t.where!r} for test; it must leave at least one for test and for training')
  test_rows, pool_rows = np.sort(perm[:n_test]), np.sort(perm[n_test:])
  part = lambda a, r: None if a is None else a[r]  # noqa: E731
  pool = make_split(t.x[pool_rows], t.y[pool_rows], part(t.source, pool_rows),
                    part(t.corrupted, pool_rows), row=pool_rows)
  test = make_split(t.x[test_rows], t.y[test_rows], part(t.source, test_rows),
                    part(t.corrupted, test_rows), row=np.full(n_test, -1))
  given = t.source is not None
  d = classification_dataset('table', pool, test, t.num_classes, cfg, rng, sources_given=given,
                             num_rows=n, source_ids=tuple(range(len(t.source_names)))
                             if given else None, test_sources_given=given)
  if given:
    d = d._replace(info=dataclasses.replace(d.info, source_names=t.source_names))
  return d


# ----------------------------------------------------------------------------- TFDS


def _tfds_source(name, split, data_dir):
  import tensorflow_datasets as tfds
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir or None, download=False)
  except Exception as e:  # noqa: BLE001 - TFDS raises many types for "not prepared"
    where = data_dir or '~/tensorflow_datasets'
    raise DataError(
        f'TFDS dataset {name!r} ({split}) is not prepared in {where} ({type(e).__name__}); run: '
        f'python -c "import tensorflow_datasets as tfds; tfds.builder(\'{name}\', '
        f'data_dir=\'{where}\').download_and_prepare(file_format=\'array_record\')"') from None


def _read_all(source, max_examples=0):
  n = len(source) if not max_examples else min(len(source), max_examples)
  return [source[i] for i in range(n)]


def load_tfds(cfg, seed) -> Dataset:
  """Any prepared TFDS dataset with image/label or text features."""
  train_src = _tfds_source(cfg.name, 'train', cfg.data_dir)
  test_split = 'test' if 'test' in _splits(train_src) else 'validation'
  test_src = _tfds_source(cfg.name, test_split, cfg.data_dir)
  first = train_src[0]
  if 'text' in first:
    stream = lambda recs: np.frombuffer(b'\n'.join(_as_bytes(r['text']) for r in recs), np.uint8)  # noqa: E731
    tr = stream(_read_all(train_src, cfg.max_examples))
    te = stream(_read_all(test_src))
    # One source: train (+ meta) windows from the train split, test windows from the test split.
    return _text_dataset(cfg.name, [tr], (cfg.name,), cfg, seed, test_streams=[te])
  if 'image' not in first or 'label' not in first:
    raise DataError(f'TFDS dataset {cfg.name!r}: needs image/label or text features, has {sorted(first)}')
  def arrays(src, cap=0):
    recs = _read_all(src, cap)
    x = np.stack([np.asarray(r['image']) for r in recs]).astype(np.float32) / 255.0
    return x, np.asarray([int(r['label']) for r in recs], np.int32)
  x_tr, y_tr = arrays(train_src, cfg.max_examples)
  x_te, y_te = arrays(test_src)
  num_classes = int(max(y_tr.max(), y_te.max())) + 1
  rng = np.random.default_rng([seed, 4])
  return classification_dataset(cfg.name, make_split(x_tr, y_tr), make_split(x_te, y_te),
                                num_classes, cfg, rng)


def _splits(source):
  info = getattr(source, 'dataset_info', None)
  return set(info.splits.keys()) if info is not None else {'test'}


def _as_bytes(t):
  return t if isinstance(t, bytes) else str(t).encode('utf-8')


# ----------------------------------------------------------------------------- entry point


def load_dataset(cfg, seed: int) -> Dataset:
  """Loads `cfg.name` (a ConfigDict `config.data`). Raises DataError on bad input."""
  if cfg.meta_mode not in ('clean', 'noisy'):
    raise DataError(f"config.data.meta_mode={cfg.meta_mode!r} must be 'clean' or 'noisy'")
  rates = cfg.corruption_rates
  if not isinstance(rates, (tuple, list)) or len(rates) > MAX_SOURCES:
    raise DataError(f'config.data.corruption_rates must be a tuple of at most {MAX_SOURCES} '
                    f'rates in [0, 1], got {rates!r}')
  for r in rates:
    if isinstance(r, bool) or not isinstance(r, numbers.Real) or not 0.0 <= r <= 1.0:
      raise DataError(f'config.data.corruption_rates: {r!r} is not a number in [0, 1]')
  check_valid_size(cfg.get('valid_size', 0))
  check_valid_mode(cfg.get('valid_mode'))
  loaders = {'digits': load_digits, 'stdlib_text': load_stdlib_text, 'npz': load_npz,
             'mnist1d': load_mnist1d, 'tabular': load_tabular, 'text': load_text,
             'table': load_table}
  return loaders.get(cfg.name, load_tfds)(cfg, seed)
