"""config.data.store='disk' (datarater/data/windows.py): the same splits, arrays and data
fingerprint as in memory, read by index from a file; a corpus whose in-memory arrays do not fit
a memory cap loads and is read batch by batch under it; a smoke run trains the same."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs.common import base_config, parse_arg
from datarater import run as run_lib
from datarater.data import DataError, load_dataset, sampler, windows
from datarater.data.loaders import load_text_documents
from datarater.data.windows import Rows, WindowFile, file_dtype
from datarater.errors import ConfigError
from datarater.run import data_fingerprint
from test_corpus import SEQ, make_docs, text_cfg, write_jsonl, write_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLITS = ('train', 'meta', 'valid', 'test')


def both(path, **fields):
  """(memory, disk) of load_text_documents on the same config."""
  return [load_text_documents(text_cfg(path, store=store, **fields), 0)
          for store in ('memory', 'disk')]


def assert_same(memory, disk):
  (dm, docm), (dd, docd) = memory, disk
  for name in SPLITS:
    sm, sd = getattr(dm, name), getattr(dd, name)
    assert isinstance(sd.x, Rows) and isinstance(sd.y, Rows)
    assert sd.x.shape == sm.x.shape and sd.x.dtype == sm.x.dtype and len(sd.y) == sm.size
    for a, b in zip(sm, sd):
      np.testing.assert_array_equal(a, np.asarray(b))
  assert dm.info == dd.info
  for a, b in zip(docm, docd):
    np.testing.assert_array_equal(a, b)
  assert data_fingerprint(dm) == data_fingerprint(dd)


def test_disk_store_gives_the_same_splits_documents_and_fingerprint(tmp_path, monkeypatch):
  path = write_jsonl(tmp_path / 'c.jsonl', make_docs(90))
  monkeypatch.setattr(windows, 'DOCS_PER_CHUNK', 7)       # the file written over many chunks
  monkeypatch.setattr(windows, 'READ_BYTES', 3 * (SEQ + 1))   # a read of 4+ rows is split
  memory, disk = both(path, source_field='src', id_field='id', corrupted_field='bad')
  assert disk[0].train.x.file.dtype == np.uint8
  assert memory[0].train.corrupted.any()   # the user's flags are on the disk rows too
  assert_same(memory, disk)
  fingerprint = data_fingerprint(memory[0])
  monkeypatch.setattr(run_lib, 'FINGERPRINT_BYTES', 5)   # hashed a row at a time: same hash
  assert data_fingerprint(memory[0]) == data_fingerprint(disk[0]) == fingerprint


def test_zero_rates_are_allowed_on_disk(tmp_path):
  path = write_jsonl(tmp_path / 'c.jsonl', make_docs(90))
  assert_same(*both(path, source_field='src', corruption='shuffle', corruption_rates=(0.0,) * 3))


def test_a_run_resumes_with_the_other_store():
  """data.store says where the windows live, not what they are (the data fingerprint checks
  that): a recorded config with the other store, or from before the field, is the same run."""
  config = base_config(parse_arg('dataset=text,smoke'))
  recorded = json.loads(config.to_json_best_effort())
  config.data.store = 'disk'
  assert run_lib.changed_fields(recorded, config, ()) == []
  del recorded['data']['store']
  assert run_lib.changed_fields(recorded, config, ()) == []
  config.data.seq_len += 1
  assert run_lib.changed_fields(recorded, config, ()) == ['data']


def test_token_ids_beyond_the_vocabulary_are_refused(tmp_path):
  """A tokenizer whose ids have gaps (ids >= get_vocab_size) would be clamped by the embedding
  and wrap in a narrow file type: one DataError naming data.tokenizer, in both stores."""
  from tokenizers import Tokenizer, models, pre_tokenizers
  tok = Tokenizer(models.WordLevel({'alpha': 0, 'beta': 70000, '[UNK]': 1}, unk_token='[UNK]'))
  tok.pre_tokenizer = pre_tokenizers.Whitespace()
  tok.save(str(tmp_path / 'tok.json'))
  path = write_jsonl(tmp_path / 'c.jsonl', make_docs(30))
  for store in ('memory', 'disk'):
    with pytest.raises(DataError, match='config.data.tokenizer: token id 70000 is not below'):
      load_dataset(text_cfg(path, store=store, seq_len=2, tokenizer=str(tmp_path / 'tok.json')), 0)


def test_disk_store_of_token_ids(tmp_path):
  docs = make_docs(90)
  write_tokenizer(tmp_path / 'tok.json', docs)
  memory, disk = both(write_jsonl(tmp_path / 'c.jsonl', docs), source_field='src', seq_len=4,
                      tokenizer=str(tmp_path / 'tok.json'))
  assert disk[0].train.x.file.dtype == np.uint16 and memory[0].info.num_classes > 256
  assert_same(memory, disk)


def test_rows_index_like_arrays(tmp_path):
  """Rows / WindowFile read any numpy index (int, slice, mask, repeated or unordered rows,
  2-D) as the array would, each run of consecutive file rows in one read."""
  path = write_jsonl(tmp_path / 'c.jsonl', make_docs(90))
  (dm, _), (dd, _) = both(path, source_field='src')
  rng = np.random.default_rng(0)
  n = dm.train.size
  for idx in (3, -1, slice(2, 40, 3), slice(None), rng.random(n) < 0.3,
              rng.integers(0, n, 50), np.array([5, 5, 4, 3, 2]), rng.integers(0, n, (4, 6)),
              np.array([], np.int64)):
    np.testing.assert_array_equal(dd.train.x[idx], dm.train.x[idx])
    np.testing.assert_array_equal(dd.train.y[idx], dm.train.y[idx])
  idx = sampler.sequential_indices(n, 16, 0, 3)
  for key, value in sampler.gather(dm.train, idx).items():
    np.testing.assert_array_equal(sampler.gather(dd.train, idx)[key], value)
  file = dd.train.x.file
  with pytest.raises(IndexError):
    file[[len(file)]]
  assert file_dtype(256) == np.uint8 and file_dtype(257) == np.uint16
  assert file_dtype(65537) == np.int32


def test_disk_store_refuses_synthetic_corruption_and_unknown_stores(tmp_path):
  path = write_jsonl(tmp_path / 'c.jsonl', make_docs(30))
  with pytest.raises(DataError, match="corruption_rates.*store='disk'"):
    load_dataset(text_cfg(path, store='disk', source_field='src', corruption='shuffle',
                          corruption_rates=(0.5, 0.0, 0.0)), 0)
  with pytest.raises(DataError, match="config.data.corruption='bogus' is not one of"):
    load_dataset(text_cfg(path, store='disk', source_field='src', corruption='bogus',
                          corruption_rates=(0.0, 0.0, 0.0)), 0)
  with pytest.raises(ConfigError, match='config.data.store must be one of'):
    load_dataset(text_cfg(path, store='cloud'), 0)


def test_smoke_run_on_disk_trains_as_in_memory(tmp_path, run_smoke):
  path = str(write_jsonl(tmp_path / 'c.jsonl', make_docs(90)))
  runs = [run_smoke('uniform', 'dataset=text,smoke', tag=store, data__path=path,
                    data__source_field='src', data__seq_len=16, data__meta_size=12,
                    data__store=store)[0] for store in ('memory', 'disk')]
  assert runs[0]['test_loss'] == runs[1]['test_loss'] and np.isfinite(runs[0]['test_loss'])


# A corpus of CORPUS_MB MB of text, loaded under a cap on the address space of CAP_MB MB above
# what loading a small corpus took: its windows as int32 arrays alone (4 bytes per byte of text,
# x and y) would not fit, so the in-memory store fails with MemoryError; the disk store loads
# it, serves 100 training batches and reads every row of every split (the data fingerprint).
CORPUS_MB, CAP_MB = 40, 220
CAPPED = r'''
import resource, sys
import numpy as np
sys.path[:0] = [sys.argv[1], sys.argv[1] + '/tests']
from datarater.data import load_dataset, sampler
from datarater.run import data_fingerprint
from test_corpus import text_cfg

def vm_peak():
  return int(dict(l.split(':', 1) for l in open('/proc/self/status'))['VmPeak'].split()[0]) >> 10

def cfg(path, store):
  return text_cfg(path, store=store, source_field='src', seq_len=64, meta_size=64,
                  valid_size=64, test_fraction=0.002)

load_dataset(cfg(sys.argv[2], 'disk'), 0)   # imports and first-use allocations, uncapped
base = vm_peak()
cap = (base + int(sys.argv[4])) << 20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
d = load_dataset(cfg(sys.argv[3], 'disk'), 0)
for step in range(100):
  batch = sampler.gather(d.train, sampler.sequential_indices(d.train.size, 64, 0, step))
  assert batch['x'].shape == (64, 64)
data_fingerprint(d)
print(f'disk: {d.train.size} train rows under the cap, VmPeak +{vm_peak() - base} MiB', flush=True)
try:
  load_dataset(cfg(sys.argv[3], 'memory'), 0)
  print(f'memory: loaded, VmPeak +{vm_peak() - base} MiB')
except MemoryError as e:
  print(f'memory: MemoryError ({e})')
'''


def write_corpus(path, megabytes, seed=0):
  import pyarrow as pa
  import pyarrow.parquet as pq
  rng = np.random.default_rng(seed)
  words = np.array('alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu'.split())
  texts = [' '.join(rng.choice(words, 500)) for _ in range(100)]   # about 3 KB each
  n = int(megabytes * 1e6 / 3000)
  pq.write_table(pa.table({'text': [f'{i} ' + texts[i % 100] for i in range(n)],
                           'src': [f's{i % 3}' for i in range(n)]}), path, row_group_size=1000)


def test_a_corpus_larger_than_a_memory_cap_loads_and_serves_batches_on_disk(tmp_path):
  write_corpus(tmp_path / 'small.parquet', 1)
  write_corpus(tmp_path / 'big.parquet', CORPUS_MB)
  out = subprocess.run([sys.executable, '-c', CAPPED, ROOT, str(tmp_path / 'small.parquet'),
                        str(tmp_path / 'big.parquet'), str(CAP_MB)],
                       capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  lines = out.stdout.splitlines()
  assert lines[0].startswith('disk: ') and 'under the cap' in lines[0], out.stdout
  assert lines[1].startswith('memory: MemoryError'), out.stdout
