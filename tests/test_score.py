"""experiments.score (every document of a corpus scored by a finished DataRater run's rater) and
experiments.curate --scores (the best-scored documents written in the corpus's format), issue #20.

One tiny DataRater text run (smoke config, 60 documents; module fixture) serves every test:
a document's score is the mean of the rater applied by hand to its windows (and matches the
run's own scores_train.npy on its training documents); rows are the documents in corpus order
with their ids, sources and flags; a run killed with SIGKILL mid-way and re-run writes the bytes
of an uninterrupted run; 2 processes x 2 devices give the scores of 1 process x 4 devices;
curate keeps the right documents (globally and per source) in order with every field, in
.jsonl / .parquet / .csv, and .txt corpora as .jsonl; bad input is one line and exit status 2,
nothing written.
"""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import FAST_COMPILE, ROOT, load_config
from test_corpus import SEQ, make_docs, write_jsonl

L = SEQ + 1          # window length
SHARD, BATCH = 7, 8  # documents per shard (uneven last shard), windows per rater call
TIMEOUT = 240


def _env(devices=None):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT)
  if devices:
    env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices} {FAST_COMPILE}'
  return env


def _port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A finished DataRater run on a 60-document jsonl corpus (fields text, src, id, bad)."""
  from datarater.run import train_and_evaluate
  root = tmp_path_factory.mktemp('score')
  docs = make_docs(60)
  corpus = write_jsonl(root / 'corpus.jsonl', docs)
  config = load_config('datarater', 'dataset=text,smoke')
  for key, value in {'data.path': str(corpus), 'data.source_field': 'src', 'data.id_field': 'id',
                     'data.corrupted_field': 'bad', 'data.seq_len': SEQ, 'data.meta_size': 12,
                     'method.baseline': False, 'method.discard_fraction': 0.5,
                     'method.meta_steps': 2, 'num_steps': 1, 'log_every': 1, 'eval_every': 1,
                     'checkpoint_every': 1}.items():
    group, field = key.rsplit('.', 1) if '.' in key else (None, key)
    (config[group] if group else config)[field] = value
  workdir = str(root / 'run')
  train_and_evaluate(config, workdir)
  return types.SimpleNamespace(root=root, corpus=str(corpus), workdir=workdir, docs=docs)


def score(run, out, overrides=None, shard_size=SHARD):
  """experiments.score in this process (one device): the result dict."""
  from datarater.methods._corpus_rater import score_corpus
  from experiments.score import setup
  config, plan = setup(run.workdir, str(out), overrides or {}, shard_size, BATCH)
  return score_corpus(config, run.workdir, str(out), plan, BATCH, stream=io.StringIO())


@pytest.fixture(scope='module')
def scored(run):
  """(scores file, its table as a dict of numpy columns, score_corpus's result)."""
  import pyarrow.parquet as pq
  out = run.root / 'scores.parquet'
  result = score(run, out)
  table = pq.read_table(out)
  return out, {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}, \
      result


def by_hand(run):
  """Each document's mean rater score over its windows, cut and scored here (NaN: none)."""
  from flax import serialization
  from datarater.models.rater import TransformerRater
  config = json.load(open(os.path.join(run.workdir, 'config.json')))
  kwargs = config['method']['rater']['kwargs']
  rater = TransformerRater(**kwargs, max_len=SEQ)
  with open(os.path.join(run.workdir, 'rater_params.msgpack'), 'rb') as f:
    eta = serialization.msgpack_restore(f.read())
  windows, owner = [], []
  for k, d in enumerate(run.docs):
    b = d['text'].encode('utf-8')
    windows += [b[j * L:(j + 1) * L] for j in range(len(b) // L)]
    owner += [k] * (len(b) // L)
  w = np.frombuffer(b''.join(windows), np.uint8).reshape(-1, L).astype(np.int32)
  each = np.asarray(rater.apply({'params': eta}, w[:, :-1], w[:, 1:]))   # one call, every window
  owner = np.array(owner)
  out = [float(np.mean(each[owner == k])) if (owner == k).any() else np.nan
         for k in range(len(run.docs))]
  return np.array(out)


# ----------------------------------------------------------------------------- scores


def test_scores_are_the_mean_of_the_raters_window_scores_in_corpus_order(run, scored):
  _, cols, result = scored
  docs = run.docs
  assert result['documents'] == 60 and result['shards'] == 9 and result['compiles'] == 1
  np.testing.assert_array_equal(cols['id'], [d['id'] for d in docs])
  np.testing.assert_array_equal(cols['source'], [d['src'] for d in docs])
  np.testing.assert_array_equal(cols['corrupted'], [d['bad'] for d in docs])
  counts = [len(d['text'].encode('utf-8')) // L for d in docs]
  np.testing.assert_array_equal(cols['num_windows'], counts)
  np.testing.assert_array_equal(cols['scored'], np.array(counts) > 0)
  assert cols['score'].dtype == np.float32 and np.isnan(cols['score'][5]) and counts[5] == 0
  np.testing.assert_allclose(cols['score'], by_hand(run), rtol=1e-5, atol=1e-6)
  # The function the run scored its training rows with: the same per-document means.
  import ml_collections
  from datarater.data.corpus import document_means
  from datarater.data.loaders import load_text_documents
  config = ml_collections.ConfigDict(json.load(open(os.path.join(run.workdir, 'config.json'))))
  _, documents = load_text_documents(config.data, config.seed)
  means, _ = document_means(np.load(os.path.join(run.workdir, 'scores_train.npy')), documents)
  train = documents.split == 'train'
  assert train.sum() > 10
  np.testing.assert_allclose(cols['score'][train], means[train], rtol=1e-5, atol=1e-6)


def _resident_kib(address: int) -> int:
  """Rss of this process's mapping that starts at `address` (/proc/self/smaps), in KiB."""
  lines = open('/proc/self/smaps').read().splitlines()
  start = [i for i, line in enumerate(lines) if line.startswith(f'{address:x}-')]
  assert len(start) == 1
  rss = next(line for line in lines[start[0] + 1:] if line.startswith('Rss:'))
  return int(rss.split()[1])


@pytest.mark.skipif(not os.path.exists('/proc/self/smaps'), reason='Linux /proc only')
def test_decoding_a_shard_drops_the_corpus_pages_it_read(run):
  """Pages of the corpus's memory-mapped Arrow cache stay resident once read (and count in peak
  RSS) unless dropped: `text_rows` drops them, so scoring shard by shard is flat in corpus size."""
  import ml_collections
  from datarater.data import corpus
  text = corpus.open_text(ml_collections.ConfigDict(
      {'path': run.corpus, 'source_field': 'src', 'id_field': 'id', 'corrupted_field': 'bad',
       'max_examples': 0}))
  [mapping] = text.maps   # a pyarrow Buffer spanning the corpus's Arrow cache mapping
  address = mapping.address
  assert text.table.column('text').to_pylist() == [d['text'] for d in run.docs]
  assert _resident_kib(address) > 0     # what was read stays resident...
  rows = corpus.text_rows(text, SHARD, 2 * SHARD)
  assert _resident_kib(address) == 0    # ...until text_rows drops it
  assert rows.docs == [d['text'].encode('utf-8') for d in run.docs[SHARD:2 * SHARD]]
  assert list(rows.ids) == [d['id'] for d in run.docs[SHARD:2 * SHARD]]
  assert text.table.column('text').to_pylist() == [d['text'] for d in run.docs]   # read again


KILLER = """
import os, runpy, signal, sys
import pyarrow.parquet as pq
write, count = pq.write_table, [0]
def killed_mid_write(table, where, **kwargs):
  count[0] += 1
  if count[0] == 4:     # the fourth shard: half a file where the shard is being written, SIGKILL
    open(where, 'wb').write(b'PAR1 half a file')
    os.kill(os.getpid(), signal.SIGKILL)
  write(table, where, **kwargs)
pq.write_table = killed_mid_write
sys.argv = ['experiments.score'] + sys.argv[1:]
runpy.run_module('experiments.score', run_name='__main__')
"""


def test_a_run_killed_mid_way_resumes_to_the_same_bytes(run, scored, tmp_path):
  out = str(tmp_path / 'scores.parquet')
  args = [f'--workdir={run.workdir}', f'--out={out}', f'--shard_size={SHARD}',
          f'--batch_size={BATCH}']
  killed = subprocess.run([sys.executable, '-c', KILLER, *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
  assert killed.returncode == -9, killed.stderr[-2000:]
  shards = sorted(os.listdir(out + '.shards'))
  assert shards[:4] == ['manifest.json', 'shard-00000.parquet', 'shard-00001.parquet',
                        'shard-00002.parquet'] and not os.path.exists(out)
  again = subprocess.run([sys.executable, '-m', 'experiments.score', *args], cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
  assert again.returncode == 0, again.stderr[-2000:]
  assert '3 already written' in again.stderr
  assert not [f for f in os.listdir(out + '.shards') if '.tmp' in f]
  with open(out, 'rb') as a, open(scored[0], 'rb') as b:
    assert a.read() == b.read()


def test_two_processes_of_two_devices_score_as_one_of_four(run, scored, tmp_path):
  import pyarrow.parquet as pq
  port = _port()
  common = [f'--workdir={run.workdir}', f'--shard_size={SHARD}', f'--batch_size={BATCH}']
  two = str(tmp_path / 'two.parquet')
  procs = [subprocess.Popen([sys.executable, '-m', 'experiments.score', *common, f'--out={two}',
                             f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
                             f'--process_id={i}'], cwd=ROOT, env=_env(2), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  four = str(tmp_path / 'four.parquet')
  procs.append(subprocess.Popen([sys.executable, '-m', 'experiments.score', *common,
                                 f'--out={four}'], cwd=ROOT, env=_env(4), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True))
  try:
    logs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  assert [p.returncode for p in procs] == [0, 0, 0], '\n'.join(l[-1500:] for l in logs)
  assert 'process 0: 32/32 documents' in logs[0] and 'process 1: 28/28 documents' in logs[1]
  a, b = pq.read_table(two), pq.read_table(four)
  assert a.column('id').to_pylist() == b.column('id').to_pylist() == scored[1]['id'].tolist()
  np.testing.assert_allclose(a.column('score').to_numpy(), b.column('score').to_numpy(),
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(a.column('score').to_numpy(), scored[1]['score'], rtol=1e-5,
                             atol=1e-7)


# ----------------------------------------------------------------------------- curate


def expected_kept(scores, groups, keep):
  """Indices kept: per group, the round(keep * n) best-scored of its n scored documents (ties:
  the earlier document), and every document without a score."""
  kept = [i for i in range(len(scores)) if np.isnan(scores[i])]
  for g in sorted(set(groups)):
    idx = [i for i in range(len(scores)) if groups[i] == g and not np.isnan(scores[i])]
    best = sorted(idx, key=lambda i: (-scores[i], i))
    kept += best[:int(round(keep * len(idx)))]
  return sorted(kept)


def read_jsonl(path):
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f]


@pytest.mark.parametrize('per_source', [False, True])
def test_curate_keeps_the_best_documents_in_order_with_every_field(run, scored, tmp_path,
                                                                   per_source):
  from experiments._curate_corpus import curate_corpus
  cols = scored[1]
  out = str(tmp_path / 'kept.jsonl')
  stats = curate_corpus(run.workdir, str(scored[0]), 0.6, out, per_source=per_source)
  groups = cols['source'] if per_source else ['all'] * 60
  kept = expected_kept(cols['score'], groups, 0.6)
  assert read_jsonl(out) == [run.docs[i] for i in kept]     # every field, original order
  assert stats['kept'] == len(kept) and stats['documents'] == 60 and stats['unscored_kept'] == 1
  for s, v in stats['per_source'].items():
    n = sum(d['src'] == s for d in run.docs)
    assert v['kept'] == sum(run.docs[i]['src'] == s for i in kept) and v['kept'] + v['dropped'] == n
  if per_source:   # each source keeps its own fraction of its scored documents (+ unscored)
    for s, v in stats['per_source'].items():
      n_scored = sum(d['src'] == s and not np.isnan(x) for d, x in zip(run.docs, cols['score']))
      unscored = sum(d['src'] == s and np.isnan(x) for d, x in zip(run.docs, cols['score']))
      assert v['kept'] == round(0.6 * n_scored) + unscored


def _write_format(root, docs, fmt):
  """The documents as a .parquet or .csv file, or .txt files (a folder per source)."""
  import pyarrow as pa
  if fmt == 'txt':
    for i, d in enumerate(docs):
      (root / 'txt' / d['src']).mkdir(parents=True, exist_ok=True)
      (root / 'txt' / d['src'] / f'{i:03d}.txt').write_bytes(d['text'].encode('utf-8'))
    return root / 'txt'
  table = pa.table({k: [d[k] for d in docs] for k in docs[0]})
  if fmt == 'parquet':
    import pyarrow.parquet as pq
    pq.write_table(table, root / 'c.parquet')
  else:
    import pyarrow.csv as pcsv
    pcsv.write_csv(table, root / 'c.csv')
  return root / f'c.{fmt}'


@pytest.mark.parametrize('fmt', ['parquet', 'csv', 'txt'])
def test_curate_writes_the_corpus_format(run, tmp_path, fmt):
  """Another corpus (--config.data.path override) in another format, scored and curated."""
  from experiments._curate_corpus import curate_corpus
  path = _write_format(tmp_path, run.docs, fmt)
  overrides = {'data.path': str(path)}
  if fmt == 'txt':   # .txt files have no fields: the source is the folder
    overrides.update({'data.source_field': '', 'data.id_field': '', 'data.corrupted_field': ''})
  scores = tmp_path / 'scores.parquet'
  score(run, scores, overrides)
  import pyarrow.parquet as pq
  cols = pq.read_table(scores).to_pydict()
  order = (sorted(range(60), key=lambda i: (run.docs[i]['src'], i)) if fmt == 'txt'
           else list(range(60)))
  assert cols['source'] == [run.docs[i]['src'] for i in order]
  out = str(tmp_path / ('kept.jsonl' if fmt == 'txt' else f'kept.{fmt}'))
  curate_corpus(run.workdir, str(scores), 0.5, out)
  kept = [order[i] for i in expected_kept(np.array(cols['score']), ['all'] * 60, 0.5)]
  if fmt == 'txt':
    assert read_jsonl(out) == [{'text': run.docs[i]['text'], 'source': run.docs[i]['src']}
                               for i in kept]
    return
  if fmt == 'parquet':
    rows = pq.read_table(out).to_pylist()
  else:
    import pyarrow.csv as pcsv
    rows = pcsv.read_csv(out).to_pylist()
  assert rows == [run.docs[i] for i in kept]


# ----------------------------------------------------------------------------- bad input


def _not_datarater(root):
  (root / 'uniform').mkdir()
  (root / 'uniform' / 'config.json').write_text(json.dumps(
      {'method': {'name': 'uniform'}, 'data': {'name': 'text'}}))
  return str(root / 'uniform')


def _no_rater(root, run):
  (root / 'norater').mkdir()
  shutil.copy(os.path.join(run.workdir, 'config.json'), root / 'norater')
  return str(root / 'norater')


SCORE_BAD = {   # name: (workdir, out, overrides) from (tmp_path, run, scores file), the needle
    'no workdir': (lambda p, r, s: (str(p / 'nope'), p / 'o.parquet', {}), '--workdir='),
    'not datarater': (lambda p, r, s: (_not_datarater(p), p / 'o.parquet', {}),
                      "ran method 'uniform'"),
    'no rater file': (lambda p, r, s: (_no_rater(p, r), p / 'o.parquet', {}),
                      'no rater_params.msgpack'),
    'out not parquet': (lambda p, r, s: (r.workdir, p / 'o.csv', {}), 'must end with .parquet'),
    'out dir missing': (lambda p, r, s: (r.workdir, p / 'no' / 'o.parquet', {}), 'no directory'),
    'missing text field': (lambda p, r, s: (r.workdir, p / 'o.parquet',
                                            {'data.text_field': 'body'}),
                           "config.data.text_field='body'"),
    'glob matches nothing': (lambda p, r, s: (r.workdir, p / 'o.parquet',
                                              {'data.path': str(p / 'x*.jsonl')}),
                             'matches no file'),
    'field it cannot override': (lambda p, r, s: (r.workdir, p / 'o.parquet',
                                                  {'data.seq_len': '8'}), '--config.data.seq_len'),
    'unknown field': (lambda p, r, s: (r.workdir, p / 'o.parquet', {'data.pth': 'x'}),
                      '--config.data.pth'),
    'not an integer': (lambda p, r, s: (r.workdir, p / 'o.parquet', {'data.max_examples': 'ab'}),
                       'not an integer'),
    'shards of another scoring': (lambda p, r, s: (r.workdir, s, {}), ('--out=', 'shard_size')),
}


@pytest.mark.parametrize('case', sorted(SCORE_BAD))
def test_score_bad_input_is_one_line_and_writes_nothing(run, scored, tmp_path, case):
  from datarater.errors import ConfigError, DataError, WorkdirError
  from experiments.score import setup
  make, needles = SCORE_BAD[case]
  workdir, out, overrides = make(tmp_path, run, scored[0])
  before = sorted(os.listdir(tmp_path))
  with pytest.raises((ConfigError, DataError, WorkdirError)) as e:
    setup(workdir, str(out), overrides, SHARD + 1, BATCH)
  for needle in (needles,) if isinstance(needles, str) else needles:
    assert needle in str(e.value), str(e.value)
  assert '\n' not in str(e.value) and sorted(os.listdir(tmp_path)) == before


def test_a_rater_file_that_does_not_fit_its_config_is_refused(run, tmp_path):
  from datarater.errors import WorkdirError
  shutil.copytree(run.workdir, tmp_path / 'run', ignore=shutil.ignore_patterns('checkpoints'))
  config = json.load(open(tmp_path / 'run' / 'config.json'))
  config['method']['rater']['kwargs']['d_model'] = 8
  json.dump(config, open(tmp_path / 'run' / 'config.json', 'w'))
  with pytest.raises(WorkdirError, match='does not fit the rater of its config.json'):
    score(types.SimpleNamespace(workdir=str(tmp_path / 'run')), tmp_path / 'o.parquet')
  assert not os.path.exists(tmp_path / 'o.parquet.shards')


@pytest.mark.parametrize('args,needle', [
    (['--config.data.text_field=body'], "config.data.text_field='body'"),
    (['--config.data.seq_len=8'], '--config.data.seq_len'),
])
def test_score_entry_exits_2_with_one_line(run, tmp_path, args, needle):
  out = tmp_path / 'o.parquet'
  proc = subprocess.run([sys.executable, '-m', 'experiments.score', f'--workdir={run.workdir}',
                         f'--out={out}', *args], cwd=ROOT, env=_env(), capture_output=True,
                        text=True, timeout=TIMEOUT)
  assert proc.returncode == 2 and proc.stderr.startswith('error: '), proc.stderr[-2000:]
  assert proc.stderr.strip().count('\n') == 0 and needle in proc.stderr
  assert os.listdir(tmp_path) == []


def _other_rater(root, run):
  shutil.copytree(run.workdir, root / 'other', ignore=shutil.ignore_patterns('checkpoints'))
  with open(root / 'other' / 'rater_params.msgpack', 'ab') as f:
    f.write(b'\0')
  return str(root / 'other')


def _changed_corpus(root, run, scores):
  """A copy of the scores whose corpus is a copy of the corpus, changed after scoring."""
  import pyarrow.parquet as pq
  from datarater.data import corpus_scores
  table, manifest = corpus_scores.read_scores(str(scores))
  copy = root / 'copy.jsonl'
  shutil.copy(run.corpus, copy)
  manifest['data']['path'] = str(copy)
  manifest['corpus_files'] = corpus_scores.corpus_files(str(copy))
  pq.write_table(table.replace_schema_metadata(
      {corpus_scores.MANIFEST_KEY: json.dumps(manifest)}), root / 's.parquet')
  with open(copy, 'a') as f:
    f.write(json.dumps(run.docs[0]) + '\n')
  return root / 's.parquet'


def _foreign(root):
  import pyarrow as pa
  import pyarrow.parquet as pq
  pq.write_table(pa.table({'score': [1.0]}), root / 'f.parquet')
  return root / 'f.parquet'


CURATE_BAD = {  # name: (workdir, scores, keep, out) from (tmp_path, run, scores file), needle
    'keep 0': (lambda p, r, s: (r.workdir, s, 0.0, p / 'k.jsonl'), '--keep'),
    'out npz': (lambda p, r, s: (r.workdir, s, 0.5, p / 'k.npz'), 'must end with .jsonl'),
    'out in another format': (lambda p, r, s: (r.workdir, s, 0.5, p / 'k.parquet'),
                              'written as .jsonl'),
    'out dir missing': (lambda p, r, s: (r.workdir, s, 0.5, p / 'no' / 'k.jsonl'), 'no directory'),
    'no scores file': (lambda p, r, s: (r.workdir, p / 'none.parquet', 0.5, p / 'k.jsonl'),
                       'no such file'),
    'not a scores file': (lambda p, r, s: (r.workdir, _foreign(p), 0.5, p / 'k.jsonl'),
                          'not a file written by experiments.score'),
    'another rater': (lambda p, r, s: (_other_rater(p, r), s, 0.5, p / 'k.jsonl'),
                      'another rater'),
    'corpus changed': (lambda p, r, s: (r.workdir, _changed_corpus(p, r, s), 0.5, p / 'k.jsonl'),
                       'changed since'),
    'not a datarater run': (lambda p, r, s: (_not_datarater(p), s, 0.5, p / 'k.jsonl'),
                            "ran method 'uniform'"),
}


@pytest.mark.parametrize('case', sorted(CURATE_BAD))
def test_curate_bad_input_is_one_line_and_writes_nothing(run, scored, tmp_path, case):
  from experiments._curate_corpus import CurateError, curate_corpus
  workdir, scores, keep, out = CURATE_BAD[case][0](tmp_path, run, scored[0])
  with pytest.raises(CurateError) as e:
    curate_corpus(workdir, str(scores), keep, str(out))
  assert CURATE_BAD[case][1] in str(e.value) and '\n' not in str(e.value), str(e.value)
  assert not os.path.exists(out)


def test_curate_entry_exits_2_with_one_line(run, tmp_path):
  out = tmp_path / 'k.jsonl'
  proc = subprocess.run([sys.executable, '-m', 'experiments.curate', f'--workdir={run.workdir}',
                         f'--scores={tmp_path / "none.parquet"}', f'--out={out}'], cwd=ROOT,
                        env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
  assert proc.returncode == 2 and proc.stderr.startswith('error: '), proc.stderr[-2000:]
  assert proc.stderr.strip().count('\n') == 0 and 'none.parquet' in proc.stderr
  assert not out.exists()


# ----------------------------------------------------------------------------- curate, streamed


@pytest.mark.parametrize('fmt', ['jsonl', 'parquet', 'csv'])
def test_curate_chunk_by_chunk_writes_the_bytes_of_one_chunk(run, scored, tmp_path, monkeypatch,
                                                            fmt):
  """Curation streams the corpus: CHUNK rows at a time (.jsonl, .csv), ROW_GROUP kept rows at a
  time (.parquet, a row group each). Chunks smaller than the corpus (7 rows, the last of 4) write
  the bytes of a chunk holding it all; smaller row groups, the same rows in more row groups."""
  import experiments._curate_corpus as curate
  if fmt == 'jsonl':
    scores = scored[0]
  else:
    scores = tmp_path / 'scores.parquet'
    score(run, scores, {'data.path': str(_write_format(tmp_path, run.docs, fmt))})
  written = {}
  for chunk in (10**9, SHARD):
    monkeypatch.setattr(curate, 'CHUNK', chunk)
    out = tmp_path / f'kept-{chunk}.{fmt}'
    stats = curate.curate_corpus(run.workdir, str(scores), 0.6, str(out))
    written[chunk] = out.read_bytes()
  assert written[SHARD] == written[10**9] and stats['kept'] > 2 * SHARD
  if fmt == 'parquet':
    import pyarrow.parquet as pq
    monkeypatch.setattr(curate, 'ROW_GROUP', 5)
    out = tmp_path / 'kept-groups.parquet'
    curate.curate_corpus(run.workdir, str(scores), 0.6, str(out))
    meta = pq.ParquetFile(out).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [5] * (stats['kept'] // 5) + ([stats['kept'] % 5] if stats['kept'] % 5 else [])
    assert pq.read_table(out).equals(pq.read_table(tmp_path / f'kept-{10**9}.parquet'))


@pytest.mark.skipif(not os.path.exists('/proc/self/smaps'), reason='Linux /proc only')
def test_curate_drops_the_corpus_pages_after_each_chunk(run, scored, tmp_path, monkeypatch):
  """As `text_rows` for scoring (test_decoding_a_shard_drops_the_corpus_pages_it_read): the pages
  of the corpus's mapping a chunk read are dropped after it, so curating is flat in corpus size."""
  import experiments._curate_corpus as curate
  from datarater.data import corpus
  opened, resident = [], []
  open_text, release_pages = corpus.open_text, corpus.release_pages

  def opening(cfg):
    opened.append(open_text(cfg))
    return opened[-1]

  def releasing(maps):
    [mapping] = maps
    before = _resident_kib(mapping.address)
    release_pages(maps)
    resident.append((before, _resident_kib(mapping.address)))

  monkeypatch.setattr(corpus, 'open_text', opening)
  monkeypatch.setattr(corpus, 'release_pages', releasing)
  monkeypatch.setattr(curate, 'CHUNK', SHARD)
  out = tmp_path / 'kept.jsonl'
  curate.curate_corpus(run.workdir, str(scored[0]), 0.6, str(out))
  [text] = opened
  [mapping] = text.maps
  assert len(resident) == -(-60 // SHARD)            # one release per chunk of 7 documents...
  assert all(b > 0 and a == 0 for b, a in resident)  # ...of the pages that chunk read
  assert _resident_kib(mapping.address) == 0
  kept = expected_kept(scored[1]['score'], ['all'] * 60, 0.6)
  assert read_jsonl(out) == [run.docs[i] for i in kept]
  assert text.table.column('text').to_pylist() == [d['text'] for d in run.docs]   # read again
  assert _resident_kib(mapping.address) > 0
