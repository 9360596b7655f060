"""experiments.make_corpus: a corpus from installed packages' files with documents corrupted at
known per-source rates, and the end-to-end path on it (train DataRater, score, curate)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, load_config
from experiments.make_corpus import CorpusError, make_corpus, package_dir

PACKAGES = ['numpy', 'jax', 'optax']


def _read(path):
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f]


def test_rates_fields_and_the_corruption_are_as_stated(tmp_path):
  out = str(tmp_path / 'c.jsonl')
  counts = make_corpus(out, PACKAGES, [0.0, 1.0, 0.5], 6, 0.3, seed=1)
  docs = _read(out)
  assert [d['src'] for d in docs] == [p for p in PACKAGES for _ in range(counts[p][0])]
  assert counts['numpy'] == (6, 0) and counts['jax'] == (6, 6)
  assert sum(d['bad'] for d in docs if d['src'] == 'optax') == counts['optax'][1]
  for d in docs:
    name, path = d['id'].split('/', 1)
    with open(os.path.join(package_dir(name), path), encoding='utf-8', errors='replace') as f:
      original = f.read()
    assert 1024 <= len(original.encode()) <= 16384 and path.endswith('.py')
    changed = sum(a != b for a, b in zip(original, d['text']))
    assert len(d['text']) == len(original)
    if d['bad']:  # 30% of the positions drawn; a few may draw the character they had
      assert 0.25 * len(original) < changed <= round(0.3 * len(original))
    else:
      assert changed == 0
  again = str(tmp_path / 'd.jsonl')
  make_corpus(again, PACKAGES, [0.0, 1.0, 0.5], 6, 0.3, seed=1)
  assert open(out, 'rb').read() == open(again, 'rb').read()  # a pure function of the flags


@pytest.mark.parametrize('kwargs, match', [
    (dict(packages=['numpy', 'no_such_pkg'], rates=[0, 0]), 'no_such_pkg'),
    (dict(rates=[0.0, 1.5, 0.0]), 'rates'),
    (dict(rates=[0.0]), '1 values for 3'),
    (dict(out='c.json'), 'jsonl'),
])
def test_bad_flags_name_the_flag_and_write_nothing(tmp_path, kwargs, match):
  args = dict(out=str(tmp_path / 'c.jsonl'), packages=PACKAGES, rates=[0.0, 0.5, 1.0])
  args.update(kwargs)
  with pytest.raises(CorpusError, match=match):
    make_corpus(args['out'], args['packages'], args['rates'], 4, 0.3, seed=0)
  assert os.listdir(tmp_path) == []


def test_cli_bad_rate_is_one_line_and_exit_2(tmp_path):
  out = tmp_path / 'c.jsonl'
  p = subprocess.run([sys.executable, '-m', 'experiments.make_corpus', f'--out={out}',
                      '--rates=0,x,1,1,1'], cwd=ROOT, capture_output=True, text=True)
  assert p.returncode == 2 and p.stderr.count('\n') == 1 and '--rates' in p.stderr
  assert not out.exists()


def test_end_to_end_train_score_curate_on_a_corpus_never_seen(tmp_path, capsys):
  """The README's three commands in small: DataRater (smoke) on the corpus, every document
  scored, the best half curated with every field and in order."""
  import pyarrow.parquet as pq
  from datarater.methods._corpus_rater import score_corpus
  from datarater.run import train_and_evaluate
  from experiments._curate_corpus import curate_corpus
  from experiments.score import setup
  corpus = str(tmp_path / 'corpus.jsonl')
  make_corpus(corpus, PACKAGES, [0.0, 0.5, 1.0], 6, 0.3, seed=0)
  config = load_config('datarater', 'dataset=text,smoke')
  for key, value in {'data.path': corpus, 'data.source_field': 'src', 'data.id_field': 'id',
                     'data.corrupted_field': 'bad', 'data.meta_size': 12,
                     'method.baseline': False, 'method.discard_fraction': 0.5,
                     'data.seq_len': 32, 'method.meta_steps': 2}.items():
    group, field = key.rsplit('.', 1)
    config[group][field] = value
  config.num_steps = 1
  workdir = str(tmp_path / 'run')
  train_and_evaluate(config, workdir)
  scores = str(tmp_path / 'scores.parquet')
  cfg, plan = setup(workdir, scores, {}, 16, 64)
  score_corpus(cfg, workdir, scores, plan, 64)
  table = pq.read_table(scores).to_pydict()
  docs = _read(corpus)
  assert table['id'] == [d['id'] for d in docs] and table['corrupted'] == [d['bad'] for d in docs]
  assert all(table['scored']) and np.isfinite(table['score']).all()
  from datarater.report.detection import auroc
  from experiments.score import report_ground_truth
  capsys.readouterr()
  report_ground_truth(scores)
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].endswith(f'{auroc(table["corrupted"], table["score"]):.4f}')
  bad_optax = [s for s, b, src in zip(table['score'], table['corrupted'], table['source'])
               if b and src == 'optax']
  assert lines[1:] == [l for l in lines[1:] if l.split(':')[0] in ('[score] jax', '[score] numpy',
                                                                    '[score] optax')]
  assert lines[3].endswith(f'corrupted {np.mean(bad_optax):.3f}') and 'clean' not in lines[3]
  kept_path = str(tmp_path / 'kept.jsonl')
  stats = curate_corpus(workdir, scores, 0.5, kept_path)
  kept = _read(kept_path)
  best = sorted(np.argsort(-np.asarray(table['score']), kind='stable')[:len(docs) // 2])
  assert kept == [docs[i] for i in best] and stats['kept'] == len(kept)
