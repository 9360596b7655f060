"""Your own corpus (dataset=text / table, datarater/data/corpus.py): every format reads the same
documents, documents round-trip through their byte windows, sources / ids / corrupted flags land
on the right rows, splits are document-disjoint, the flag never reaches a batch, one smoke run
each, and bad input is one line (exit 2 from the entry point)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from configs.common import base_config, parse_arg
from datarater.data import DataError, load_dataset, sampler
from datarater.data import corpus as corpus_lib
from datarater.data.core import NO_SOURCE
from datarater.data.loaders import load_text_documents
from datarater.errors import ConfigError
from datarater.run import data_fingerprint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQ = 16            # data.seq_len of these tests: windows of 17 bytes
L = SEQ + 1
WORDS = ('alpha', 'beta', 'gamma', 'delta', 'café', 'naïve', '日本語', 'zeta', 'eta', 'theta')


def make_docs(n=60, seed=0):
  """n documents (some multi-byte UTF-8, one shorter than a window) with a source, an id and a
  corrupted flag each."""
  rng = np.random.default_rng(seed)
  docs = []
  for i in range(n):
    words = rng.choice(WORDS, rng.integers(4, 40))
    text = f'doc {i}: ' + ' '.join(words) if i != 5 else 'tiny'   # doc 5 gives no window
    docs.append({'text': text, 'src': ('web', 'code', 'books')[i % 3], 'id': f'id-{i:03d}',
                 'bad': bool(i % 4 == 1)})
  return docs


def text_cfg(path, **fields):
  cfg = base_config(parse_arg('dataset=text,smoke')).data
  cfg.path, cfg.seq_len, cfg.meta_size = str(path), SEQ, 12
  for k, v in fields.items():
    cfg[k] = v
  return cfg


def write_jsonl(path, docs):
  with open(path, 'w', encoding='utf-8') as f:
    for d in docs:
      f.write(json.dumps(d, ensure_ascii=False) + '\n')
  return path


def write_format(tmp_path, docs, fmt):
  """The same documents as .jsonl, .parquet or a save_to_disk directory."""
  if fmt == 'jsonl':
    return write_jsonl(tmp_path / 'c.jsonl', docs)
  columns = {k: [d[k] for d in docs] for k in docs[0]}
  if fmt == 'parquet':
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table(columns), tmp_path / 'c.parquet')
    return tmp_path / 'c.parquet'
  import datasets
  datasets.Dataset.from_dict(columns).save_to_disk(str(tmp_path / 'saved'))
  return tmp_path / 'saved'


def splits(d):
  return {'train': d.train, 'meta': d.meta, 'valid': d.valid, 'test': d.test}


def doc_of(split_name, split, documents):
  """(document, byte offset) of each sequence of a split."""
  if split_name == 'test':
    return documents.test_document, documents.test_offset
  return documents.row_document[split.row], documents.row_offset[split.row]


def window(split, i):
  """The L bytes of sequence i of a split (x and the last target)."""
  return bytes(np.append(split.x[i], split.y[i][-1]).astype(np.uint8))


# ----------------------------------------------------------------------------- text


@pytest.mark.parametrize('fmt', ['jsonl', 'parquet', 'saved'])
def test_documents_round_trip_and_fields_land_on_their_rows(tmp_path, fmt):
  docs = make_docs()
  cfg = text_cfg(write_format(tmp_path, docs, fmt), source_field='src', id_field='id',
                 corrupted_field='bad')
  d, documents = load_text_documents(cfg, 0)
  raw = [x['text'].encode('utf-8') for x in docs]
  np.testing.assert_array_equal(documents.num_windows, [len(b) // L for b in raw])
  np.testing.assert_array_equal(documents.ids, [x['id'] for x in docs])
  assert d.info.source_names == ('books', 'code', 'web')      # sorted values
  src = np.array([d.info.source_names.index(x['src']) for x in docs])
  bad = np.array([x['bad'] for x in docs])
  pieces = {}
  for name, split in splits(d).items():
    doc, offset = doc_of(name, split, documents)
    assert split.size and len(doc) == split.size
    for i in range(split.size):      # every sequence is its document's bytes at its offset
      assert window(split, i) == raw[doc[i]][offset[i]:offset[i] + L]
      pieces.setdefault(doc[i], {})[offset[i]] = window(split, i)
    np.testing.assert_array_equal(split.source, src[doc])
    np.testing.assert_array_equal(split.corrupted, bad[doc])
    assert (documents.split[doc] == name).all()
  # A train document's windows, in order, concatenate back to its bytes but the short tail.
  for k in np.flatnonzero(documents.split == 'train'):
    n = len(raw[k]) // L
    assert b''.join(pieces[k][o] for o in sorted(pieces[k])) == raw[k][:n * L]
  assert documents.split[5] == '' and documents.num_windows[5] == 0 and 5 not in pieces


def test_every_format_reads_the_same_dataset(tmp_path):
  docs = make_docs()
  prints = set()
  for fmt in ('jsonl', 'parquet', 'saved'):
    (tmp_path / fmt).mkdir()
    cfg = text_cfg(write_format(tmp_path / fmt, docs, fmt), source_field='src',
                   corrupted_field='bad')
    prints.add(data_fingerprint(load_dataset(cfg, 3)))
  assert len(prints) == 1


def test_splits_are_document_disjoint_and_rows_number_the_training_data(tmp_path):
  cfg = text_cfg(write_jsonl(tmp_path / 'c.jsonl', make_docs(90)), source_field='src')
  d, documents = load_text_documents(cfg, 1)
  owner = {}
  for name, split in splits(d).items():
    for doc in set(doc_of(name, split, documents)[0].tolist()):
      assert owner.setdefault(doc, name) == name, f'document {doc} in {owner[doc]} and {name}'
  assert set(owner.values()) == {'train', 'meta', 'valid', 'test'}
  # Every source trains and is tested; train keeps every window of its documents.
  for k in range(d.info.num_sources):
    assert (d.train.source == k).any() and (d.test.source == k).any()
  train_docs = np.flatnonzero(documents.split == 'train')
  assert d.train.size == documents.num_windows[train_docs].sum()
  # Rows 0..N-1 of the training data: train, meta and valid windows in corpus order.
  rows = np.concatenate([d.train.row, d.meta.row, d.valid.row])
  np.testing.assert_array_equal(np.sort(rows), np.arange(d.info.num_rows))
  assert (np.diff(documents.row_document) >= 0).all() and (d.test.row == -1).all()
  assert (d.test.source != NO_SOURCE).all()
  # Per-document means of per-row values (e.g. scores_train.npy).
  means, count = corpus_lib.document_means(documents.row_document.astype(float), documents)
  has = count > 0
  np.testing.assert_array_equal(means[has], np.flatnonzero(has))
  assert np.isnan(means[~has]).all()


def test_a_source_with_few_documents_keeps_one_for_train(tmp_path):
  """A source of two documents gives one to test and keeps one for train (none for meta or
  valid)."""
  docs = make_docs(60)
  for i, x in enumerate(docs):
    x['src'] = 'rare' if i < 2 else 'common'
  cfg = text_cfg(write_jsonl(tmp_path / 'c.jsonl', docs), source_field='src')
  d, documents = load_text_documents(cfg, 0)
  rare = d.info.source_names.index('rare')
  assert sorted(documents.split[:2]) == ['test', 'train']
  assert (d.train.source == rare).any() and (d.test.source == rare).any()
  assert not (d.meta.source == rare).any() and not (d.valid.source == rare).any()


def test_default_source_is_the_file_and_max_examples_caps_documents(tmp_path):
  docs = make_docs(60)
  (tmp_path / 'shards').mkdir()
  write_jsonl(tmp_path / 'shards' / 'b.jsonl', docs[:30])
  write_jsonl(tmp_path / 'shards' / 'a.jsonl', docs[30:])
  cfg = text_cfg(tmp_path / 'shards' / '*.jsonl', id_field='id')
  d, documents = load_text_documents(cfg, 0)
  assert d.info.source_names == ('a.jsonl', 'b.jsonl')
  # Files are read in sorted order: a.jsonl's documents first.
  np.testing.assert_array_equal(documents.ids, [x['id'] for x in docs[30:] + docs[:30]])
  np.testing.assert_array_equal(documents.source[documents.num_windows > 0],
                                (np.arange(60) >= 30)[documents.num_windows > 0])
  cfg.max_examples = 40
  _, capped = load_text_documents(cfg, 0)
  np.testing.assert_array_equal(capped.ids, documents.ids[:40])


def test_txt_files_one_document_per_file_or_per_line(tmp_path, capsys):
  docs = make_docs(36)
  root = tmp_path / 'txt'
  for i, x in enumerate(docs):          # a folder per source, a file per document
    (root / x['src']).mkdir(parents=True, exist_ok=True)
    (root / x['src'] / f'{i:03d}.txt').write_bytes(x['text'].encode('utf-8'))
  d, documents = load_text_documents(text_cfg(root), 0)
  assert d.info.source_names == ('books', 'code', 'web')
  order = sorted(range(36), key=lambda i: (docs[i]['src'], i))    # sorted paths
  raw = [docs[i]['text'].encode('utf-8') for i in order]
  for name, split in splits(d).items():
    doc, offset = doc_of(name, split, documents)
    for i in range(split.size):
      assert window(split, i) == raw[doc[i]][offset[i]:offset[i] + L]
    np.testing.assert_array_equal(split.source, [d.info.source_names.index(docs[order[k]]['src'])
                                                 for k in doc])
  assert 'shorter than data.seq_len + 1 = 17 bytes' in capsys.readouterr().err
  # Per line: two files, each line a document, the file its source (\r\n reads as \n).
  lines = [x['text'] for x in docs]
  (tmp_path / 'lines').mkdir()
  (tmp_path / 'lines' / 'one.txt').write_bytes('\r\n'.join(lines[:18]).encode('utf-8'))
  (tmp_path / 'lines' / 'two.txt').write_bytes('\n'.join(lines[18:]).encode('utf-8') + b'\n')
  d, documents = load_text_documents(text_cfg(tmp_path / 'lines', txt_unit='line'), 0)
  assert d.info.source_names == ('one.txt', 'two.txt') and len(documents.ids) == 36
  raw = [t.encode('utf-8') for t in lines]
  for name, split in splits(d).items():
    doc, offset = doc_of(name, split, documents)
    for i in range(split.size):
      assert window(split, i) == raw[doc[i]][offset[i]:offset[i] + L]
    np.testing.assert_array_equal(split.source, (doc >= 18).astype(int))


def write_tokenizer(path, docs):
  """A small byte-level BPE tokenizer trained on `docs` (Hugging Face tokenizers), saved to
  `path`; returns the Tokenizer."""
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.train_from_iterator([d['text'] for d in docs], trainer=trainers.BpeTrainer(
      vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
  tok.save(str(path))
  return tok


def test_tokenizer_file_cuts_documents_into_token_windows(tmp_path):
  """With data.tokenizer a document is its token ids: windows of seq_len + 1 tokens, offsets in
  tokens, the vocabulary the tokenizer's; a train document's windows give back its tokens."""
  docs = make_docs()
  tok = write_tokenizer(tmp_path / 'tok.json', docs)
  vocab = tok.get_vocab_size(with_added_tokens=True)
  assert vocab > 256
  cfg = text_cfg(write_jsonl(tmp_path / 'c.jsonl', docs), source_field='src', seq_len=4,
                 tokenizer=str(tmp_path / 'tok.json'))
  d, documents = load_text_documents(cfg, 0)
  ids = [tok.encode(x['text'], add_special_tokens=False).ids for x in docs]
  n = 5   # seq_len + 1
  np.testing.assert_array_equal(documents.num_windows, [len(t) // n for t in ids])
  assert d.info.num_classes == vocab and d.info.input_shape == (4,)
  pieces = {}
  for name, split in splits(d).items():
    doc, offset = doc_of(name, split, documents)
    for i in range(split.size):
      w = list(np.append(split.x[i], split.y[i][-1]))
      assert w == ids[doc[i]][offset[i]:offset[i] + n]
      pieces.setdefault(doc[i], {})[offset[i]] = w
  assert max(int(s.x.max()) for s in splits(d).values()) >= 256   # merged tokens, not bytes
  for k in np.flatnonzero(documents.split == 'train'):
    m = len(ids[k]) // n
    assert sum((pieces[k][o] for o in sorted(pieces[k])), []) == ids[k][:m * n]
    assert tok.decode(ids[k]) == docs[k]['text']


def test_tokenizer_smoke_run_builds_the_model_and_rater_on_its_vocabulary(tmp_path, run_smoke):
  docs = make_docs(90)
  vocab = write_tokenizer(tmp_path / 'tok.json', docs).get_vocab_size(with_added_tokens=True)
  path = write_jsonl(tmp_path / 'c.jsonl', docs)
  summary, _, workdir = run_smoke('datarater', 'dataset=text,smoke', data__path=str(path),
                                  data__source_field='src', data__seq_len=4, data__meta_size=12,
                                  data__tokenizer=str(tmp_path / 'tok.json'),
                                  method__discard_fraction=0.5, method__baseline=False,
                                  method__meta_steps=2, num_steps=2)
  assert summary['dataset'] == 'text' and np.isfinite(summary['test_loss'])
  from datarater.methods.datarater import RATER_FILE
  import flax.serialization
  with open(os.path.join(workdir, RATER_FILE), 'rb') as f:
    rater = flax.serialization.msgpack_restore(f.read())
  embed = [v for k, v in flax.traverse_util.flatten_dict(rater).items() if 'embedding' in k]
  assert vocab != 256 and embed and embed[0].shape[0] == vocab   # the tokenizer's vocabulary
  # experiments.score cuts the documents into the same token windows and averages the rater's
  # scores of them per document.
  import io
  import pyarrow.parquet as pq
  from datarater.methods._corpus_rater import score_corpus
  from datarater.models.rater import TransformerRater
  from experiments.score import setup
  config, plan = setup(workdir, str(tmp_path / 's.parquet'), {}, 16, 8)
  score_corpus(config, workdir, str(tmp_path / 's.parquet'), plan, 8, stream=io.StringIO())
  got = pq.read_table(tmp_path / 's.parquet').column('score').to_numpy(zero_copy_only=False)
  from tokenizers import Tokenizer
  tok = Tokenizer.from_file(str(tmp_path / 'tok.json'))
  apply = TransformerRater(**config.method.rater.kwargs, max_len=4, vocab_size=vocab).apply
  windows = [np.array(tok.encode(d['text'], add_special_tokens=False).ids) for d in docs]
  windows = [ids[:len(ids) // 5 * 5].reshape(-1, 5) for ids in windows]
  flat = np.concatenate(windows)   # every document's windows scored in one call
  scores = np.split(np.asarray(apply({'params': rater}, flat[:, :-1], flat[:, 1:])),
                    np.cumsum([len(w) for w in windows])[:-1])
  for k, s in enumerate(scores):
    if not len(s):
      assert np.isnan(got[k])
      continue
    np.testing.assert_allclose(got[k], np.mean(s), rtol=1e-5, atol=1e-6)


def test_corpus_is_read_without_the_network(tmp_path, monkeypatch):
  def refuse(*args, **kwargs):
    raise OSError('network access in a corpus load')
  monkeypatch.setattr(socket.socket, 'connect', refuse)
  monkeypatch.setattr(socket, 'create_connection', refuse)
  cfg = text_cfg(write_jsonl(tmp_path / 'c.jsonl', make_docs()), source_field='src')
  assert load_dataset(cfg, 0).train.size


def test_synthetic_corruption_adds_to_the_users_flags(tmp_path):
  docs = make_docs(90)
  cfg = text_cfg(write_jsonl(tmp_path / 'c.jsonl', docs), source_field='src',
                 corrupted_field='bad', corruption_rates=(0.0, 0.5, 1.0))
  d, documents = load_text_documents(cfg, 0)
  bad = np.array([x['bad'] for x in docs])[documents.row_document[d.train.row]]
  assert (d.train.corrupted[bad]).all()                         # the user's flags stay
  assert (d.train.corrupted[d.train.source == 2]).all()         # rate 1: every window
  assert not d.train.corrupted[(d.train.source == 0) & ~bad].any()
  cfg.corruption_rates = (0.5,)
  with pytest.raises(DataError, match='corruption_rates has 1 entries but .* has 3 sources'):
    load_dataset(cfg, 0)


def test_the_corrupted_flag_never_reaches_a_batch(tmp_path, monkeypatch, run_smoke):
  """A smoke run end to end on a corpus; every batch a method gets is gathered without the flag."""
  keys = []
  gather = sampler.gather
  def spy(split, idx):
    out = gather(split, idx)
    keys.append(frozenset(out))
    return out
  monkeypatch.setattr(sampler, 'gather', spy)
  path = write_jsonl(tmp_path / 'c.jsonl', make_docs(90))
  summary, _, workdir = run_smoke('uniform', 'dataset=text,smoke', data__path=str(path),
                                  data__source_field='src', data__corrupted_field='bad',
                                  data__seq_len=SEQ, data__meta_size=12)
  assert keys and not any('corrupted' in k for k in keys)
  assert summary['dataset'] == 'text' and summary['source_names'] == ['books', 'code', 'web']
  assert all(np.isfinite(summary['test_source_loss']))
  assert json.load(open(os.path.join(workdir, 'config.json')))['data']['source_field'] == 'src'


# ----------------------------------------------------------------------------- table


def write_table(path, n=200, seed=0):
  """A csv: numeric features f1..f3, a text column, string labels, a source and a flag."""
  import pyarrow as pa
  import pyarrow.csv as pcsv
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 3)).round(4)
  y = (x[:, 0] + x[:, 1] > 0)
  cols = {'f1': x[:, 0], 'note': ['n'] * n, 'f2': x[:, 1], 'label': np.where(y, 'pos', 'neg'),
          'f3': x[:, 2], 'src': rng.choice(['s1', 's2', 's3'], n), 'bad': rng.random(n) < 0.2}
  pcsv.write_csv(pa.table(cols), path)
  return path, cols


def table_cfg(path, **fields):
  cfg = base_config(parse_arg('dataset=table,smoke')).data
  cfg.path, cfg.meta_size, cfg.label_field = str(path), 20, 'label'
  for k, v in fields.items():
    cfg[k] = v
  return cfg


def test_table_rows_keep_their_features_labels_sources_and_flags(tmp_path):
  path, cols = write_table(tmp_path / 't.csv')
  d = load_dataset(table_cfg(path, source_field='src', corrupted_field='bad'), 0)
  x = np.stack([cols['f1'], cols['f2'], cols['f3']], 1).astype(np.float32)   # numeric columns
  y = (cols['label'] == 'pos').astype(int)            # 'neg' < 'pos'
  src = np.searchsorted(['s1', 's2', 's3'], cols['src'])
  assert d.info.num_rows == 200 and d.info.source_names == ('s1', 's2', 's3')
  assert d.info.input_shape == (3,) and d.info.num_classes == 2
  rows = np.concatenate([d.train.row, d.meta.row, d.valid.row])
  assert len(set(rows.tolist())) == len(rows) == 200 - d.test.size       # test rows are apart
  for split in (d.train, d.meta, d.valid):
    np.testing.assert_array_equal(split.x, x[split.row])
    np.testing.assert_array_equal(split.y, y[split.row])
    np.testing.assert_array_equal(split.source, src[split.row])
    np.testing.assert_array_equal(split.corrupted, cols['bad'][split.row])
  test_rows = np.setdiff1d(np.arange(200), rows)
  np.testing.assert_array_equal(np.sort(d.test.x[:, 0]), np.sort(x[test_rows, 0]))
  assert (d.test.source != NO_SOURCE).all()
  explicit = load_dataset(table_cfg(path, feature_fields=('f3', 'f1')), 0)
  np.testing.assert_array_equal(explicit.train.x, x[explicit.train.row][:, [2, 0]])


def test_table_from_a_saved_dataset_matches_the_csv(tmp_path):
  import datasets
  path, cols = write_table(tmp_path / 't.csv')
  datasets.Dataset.from_dict({k: list(v) for k, v in cols.items()}).save_to_disk(
      str(tmp_path / 'saved'))
  a = load_dataset(table_cfg(path, source_field='src'), 2)
  b = load_dataset(table_cfg(tmp_path / 'saved', source_field='src'), 2)
  assert data_fingerprint(a) == data_fingerprint(b)


def test_table_smoke_run(tmp_path, run_smoke):
  path, _ = write_table(tmp_path / 't.csv', n=300)
  summary, _, _ = run_smoke('uniform', 'dataset=table,smoke', data__path=str(path),
                            data__label_field='label', data__source_field='src',
                            data__meta_size=20)
  assert summary['dataset'] == 'table' and summary['source_names'] == ['s1', 's2', 's3']
  assert 0 <= summary['test_accuracy'] <= 1 and len(summary['test_source_loss']) == 3


# ----------------------------------------------------------------------------- one-line errors


def one_line(error, needles):
  """The error's message is one line holding every needle."""
  message = str(error)
  for needle in (needles,) if isinstance(needles, str) else needles:
    assert needle in message, message
  assert '\n' not in message


def _bad_csv(tmp_path, text):
  (tmp_path / 'b.csv').write_text(text)
  return tmp_path / 'b.csv'


TABLE_BAD = {
    'missing label field': (lambda p: table_cfg(p, label_field='lbl'),
                            "config.data.label_field='lbl'", DataError),
    'no label field': (lambda p: table_cfg(p, label_field=''), 'config.data.label_field',
                       ConfigError),
    'non-numeric feature': (lambda p: table_cfg(p, feature_fields=('f1', 'note')),
                            "column 'note'", DataError),
    'unknown feature': (lambda p: table_cfg(p, feature_fields=('f9',)), "column 'f9'", DataError),
    'no rows': (lambda p: table_cfg(_bad_csv(p.parent, 'f1,label\n')), 'has no rows', DataError),
    'nothing matched': (lambda p: table_cfg(p.parent / 'nope*.csv'), 'matches no file',
                        DataError),
    'infinite feature': (lambda p: table_cfg(_bad_csv(p.parent, 'f1,label\n1,a\ninf,b\n1,a\n')),
                         ("column 'f1'", 'non-finite'), DataError),
    'missing feature value': (lambda p: table_cfg(_bad_csv(p.parent, 'f1,label\n1,a\n,b\n')),
                              ("feature_fields='f1'", 'missing values'), DataError),
    'float labels': (lambda p: table_cfg(p, label_field='f1'), "label_field='f1'", DataError),
    'flag not boolean': (lambda p: table_cfg(p, corrupted_field='src'), "corrupted_field='src'",
                         DataError),
    'txt for a table': (lambda p: table_cfg(_txt(p.parent)), 'is not a .jsonl', DataError),
}


def _txt(folder):
  (folder / 'x.txt').write_text('hello')
  return folder / 'x.txt'


@pytest.mark.parametrize('case', sorted(TABLE_BAD))
def test_table_errors_are_one_line(tmp_path, case):
  path, _ = write_table(tmp_path / 't.csv')
  make, needle, kind = TABLE_BAD[case]
  with pytest.raises(kind) as e:
    load_dataset(make(path), 0)
  one_line(e.value, needle)


def _mixed(folder):
  write_jsonl(folder / 'a.jsonl', make_docs(9))
  (folder / 'b.txt').write_text('hello')
  return folder


TEXT_BAD = {
    'missing text field': (lambda p: text_cfg(p, text_field='body'),
                           "config.data.text_field='body'", DataError),
    'text field not text': (lambda p: text_cfg(p, text_field='bad'), 'not text', DataError),
    'missing source field': (lambda p: text_cfg(p, source_field='domain'),
                             "config.data.source_field='domain'", DataError),
    'txt with a field': (lambda p: text_cfg(_txt(p.parent), source_field='src'),
                         '.txt files have no fields', DataError),
    'mixed formats': (lambda p: text_cfg(_mixed(p.parent)), 'mixes .jsonl, .txt', DataError),
    'too few documents': (lambda p: text_cfg(write_jsonl(p.parent / 'few.jsonl', make_docs(4)),
                                             source_field='src'), 'too few documents', DataError),
    'every document too short': (lambda p: text_cfg(p, seq_len=4096), 'lower config.data.seq_len',
                                 DataError),
    'bad json': (lambda p: text_cfg(_bad_json(p.parent)), "cannot read", DataError),
    'unknown txt unit': (lambda p: text_cfg(p, txt_unit='page'), 'config.data.txt_unit',
                         ConfigError),
    'no path': (lambda p: text_cfg(''), 'config.data.path: set it', DataError),
    'tokenizer file missing': (lambda p: text_cfg(p, tokenizer=str(p.parent / 'none.json')),
                               'config.data.tokenizer', DataError),
    'tokenizer file does not load': (lambda p: text_cfg(p, tokenizer=str(p)),
                                     'not a tokenizers file', DataError),
    'tokenizer with byte corruption': (lambda p: text_cfg(p, tokenizer=str(p),
                                                          corruption_rates=(0.5,) * 3),
                                       'config.data.corruption_rates', DataError),
}


def _bad_json(folder):
  (folder / 'bad.jsonl').write_text('{"text": "fine"}\n{not json\n')
  return folder / 'bad.jsonl'


@pytest.mark.parametrize('case', sorted(TEXT_BAD))
def test_text_errors_are_one_line(tmp_path, case):
  (tmp_path / 'in').mkdir()
  path = write_jsonl(tmp_path / 'in' / 'c.jsonl', make_docs())
  make, needle, kind = TEXT_BAD[case]
  with pytest.raises(kind) as e:
    load_dataset(make(path), 0)
  one_line(e.value, needle)


def test_cli_missing_label_field_exits_2_with_one_line_and_no_workdir(tmp_path):
  path, _ = write_table(tmp_path / 't.csv')
  workdir = tmp_path / 'run'
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.train', '--config=configs/uniform.py:dataset=table,smoke',
       f'--config.data.path={path}', '--config.data.label_field=lbl', f'--workdir={workdir}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  err = [line for line in proc.stderr.splitlines() if line.strip()]
  assert len(err) == 1 and err[0].startswith('error:') and "label_field='lbl'" in err[0], err
  assert not workdir.exists()
