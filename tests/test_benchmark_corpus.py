"""The benchmark's `corpus` section (issue #20: `experiments.score`'s peak RSS vs corpus size, and
its throughput) on tiny corpora: every field, positive RSS and throughput from real
`experiments.score` processes, the ratio computed from the RSS it reports, the table and target.

For speed the rater is an untrained one of the smoke text config, written as a finished run
directory (config.json and rater_params.msgpack), not a trained run; the 2-process row is
skipped (tests/test_score.py runs experiments.score with 2 processes).
"""

import json
import os

import jax
import numpy as np
import pytest

from conftest import load_config
from experiments.benchmark import corpus, report, targets

ROW_FIELDS = {'corpus', 'processes', 'documents', 'windows', 'wall_s', 'docs_per_s',
              'windows_per_s', 'peak_rss_mib', 'max_peak_rss_mib'}


def untrained_run(root) -> str:
  """A run directory `experiments.score` accepts: the smoke text config, an untrained rater."""
  from flax import serialization
  from datarater.data.core import DatasetInfo
  from datarater.data.loaders import VOCAB
  from datarater.models.rater import build_rater
  from datarater.methods.datarater import RATER_FILE
  config = load_config('datarater', 'dataset=text,smoke')
  seq = int(config.data.seq_len)
  info = DatasetInfo(name='text', task='lm', num_classes=VOCAB, input_shape=(seq,),
                     num_sources=0, source_names=(), corruption='none', corruption_rates=(),
                     meta_mode=config.data.meta_mode, num_rows=0)
  x = np.zeros((1, seq), np.int32)
  params = build_rater(config.method.rater, info).init(jax.random.key(0), x, x, None)['params']
  workdir = os.path.join(root, 'run')
  os.makedirs(workdir)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort())
  with open(os.path.join(workdir, RATER_FILE), 'wb') as f:
    f.write(serialization.to_bytes(jax.device_get(params)))
  return workdir


def test_corpus_section_on_tiny_corpora(tmp_path):
  result = corpus.bench_corpus(small_mb=0.2, factor=3, processes=1, per_package=8,
                               root=str(tmp_path), workdir=untrained_run(tmp_path),
                               train_steps=2, train_memory_row=False)
  assert json.loads(json.dumps(result)) == result
  assert set(result) == {'seq_len', 'shard_size', 'batch_size', 'base_documents', 'train_s',
                         'corpora', 'rows', 'rss_small_mib', 'rss_large_mib', 'rss_ratio',
                         'rss_target', 'train_steps', 'train_rows', 'train_rss_ratio'}
  small, large = result['corpora']['small'], result['corpora']['large']
  assert large['documents'] == 3 * small['documents'] and small['documents'] >= 1
  assert 2.5 < large['text_mb'] / small['text_mb'] < 3.5 and small['file_mb'] > small['text_mb']
  rows = result['rows']
  assert [(r['corpus'], r['processes']) for r in rows] == [('small', 1), ('large', 1)]
  for r, c in zip(rows, (small, large)):
    assert set(r) == ROW_FIELDS
    assert r['documents'] == c['documents'] and r['windows'] > r['documents']
    assert r['wall_s'] > 0 and len(r['peak_rss_mib']) == 1
    assert 50 < r['peak_rss_mib'][0] < 1e5 and r['max_peak_rss_mib'] == r['peak_rss_mib'][0]
    np.testing.assert_allclose(r['docs_per_s'], r['documents'] / r['wall_s'])
    np.testing.assert_allclose(r['windows_per_s'], r['windows'] / r['wall_s'])
  assert result['rss_small_mib'] == rows[0]['max_peak_rss_mib']
  assert result['rss_large_mib'] == rows[1]['max_peak_rss_mib']
  np.testing.assert_allclose(result['rss_ratio'],
                             result['rss_large_mib'] / result['rss_small_mib'])
  assert result['rss_target'] == corpus.RSS_TARGET and result['train_s'] is None
  train = result['train_rows']
  assert [(r['corpus'], r['store']) for r in train] == [('small', 'disk'), ('large', 'disk')]
  for r in train:
    assert set(r) == {'corpus', 'store', 'wall_s', 'peak_rss_mib'} and r['wall_s'] > 0
    assert 50 < r['peak_rss_mib'] < 1e5
  np.testing.assert_allclose(result['train_rss_ratio'],
                             train[1]['peak_rss_mib'] / train[0]['peak_rss_mib'])
  assert os.listdir(tmp_path) == ['run'] or set(os.listdir(tmp_path)) == {
      'run', 'small.jsonl', 'large.jsonl'}   # the scores were removed
  wrapped = {'machine': {}, 'corpus': result}
  target, train_target = targets.evaluate_targets(wrapped)
  assert target['name'].startswith('experiments.score peak RSS') and \
      target['met'] == (result['rss_ratio'] <= corpus.RSS_TARGET)
  assert train_target['name'].startswith('experiments.train') and \
      train_target['met'] == (result['train_rss_ratio'] <= corpus.RSS_TARGET)
  text = '\n'.join(report._corpus_lines(result))   # noqa: SLF001
  assert f"{result['rss_ratio']:.2f}" in text and text.count('\n| small | 1 |') == 1
  assert f"{result['train_rss_ratio']:.2f}" in text and text.count('\n| large | disk |') == 1
