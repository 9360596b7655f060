"""Corpus scoring (issue #20): peak memory and throughput of `experiments.score` vs corpus size.

`experiments.score` streams a corpus shard by shard from Hugging Face datasets' memory-mapped
Arrow table, so its peak memory should not grow with the corpus. This section checks that and
times it, in one benchmark run:

* trains one tiny DataRater run on dataset=text (the smoke config, as tests/test_score.py's
  fixture does) on a few hundred documents;
* writes two .jsonl corpora of the same documents (installed packages' .py files of 1-16 KB,
  drawn as `experiments.make_corpus` draws them, cycled with fresh ids): a small one of `small_mb` MB of
  text and a large one `factor` times as many documents;
* runs `python -m experiments.score` (default shard and batch size) as a whole process on each
  (1 process, 1 device) and on the large one with `processes` processes of 1 device each
  (`--coordinator_address`, `--num_processes`, `--process_id`), measuring wall time (whole
  processes: Python start, JAX import, reading the corpus into datasets' Arrow cache, compiling
  and scoring), documents/s and windows/s, and each process's peak resident set size:
  `ru_maxrss` of RUSAGE_CHILDREN read by a tiny Python wrapper (`RSS_WRAPPER`) that runs one
  scoring process and nothing else, so every measurement is fresh.

* trains on each corpus (`python -m experiments.train`, the uniform method on dataset=text with
  data.store='disk', `train_steps` steps, small valid / test splits) as a whole process through
  the same wrapper, and on the large one with data.store='memory' beside it: the training rows.

The targets: peak RSS of the large corpus / the small one <= RSS_TARGET, for scoring (1 process)
and for training on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RSS_TARGET = 1.2
PACKAGES = ('numpy', 'scipy', 'sklearn', 'matplotlib', 'jax')
TIMEOUT = 3600

# argv: rss_file, command...: runs the command, writes its peak RSS in KiB (Linux ru_maxrss
# units) to rss_file and exits with its status. Only this one child is ever waited for here.
RSS_WRAPPER = ('import resource, subprocess, sys\n'
               'rc = subprocess.call(sys.argv[2:])\n'
               'open(sys.argv[1], "w").write(str(resource.getrusage('
               'resource.RUSAGE_CHILDREN).ru_maxrss))\n'
               'sys.exit(rc)\n')


def base_documents(per_package: int, seed: int = 0) -> List[Dict[str, str]]:
  """[{'text', 'src', 'id'}]: up to `per_package` .py files of 1-16 KB of each installed package
  of PACKAGES, drawn as `experiments.make_corpus` draws them (that module defines absl flags on
  import, so it is not imported here)."""
  import importlib.util
  rng = np.random.default_rng(seed)
  docs = []
  for name in PACKAGES:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
      continue
    root = list(spec.submodule_search_locations)[0]
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files
                   if f.endswith('.py') and 1024 <= os.path.getsize(os.path.join(d, f)) <= 16384)
    for i in sorted(rng.choice(len(paths), min(per_package, len(paths)), replace=False)):
      with open(paths[i], encoding='utf-8', errors='replace') as f:
        docs.append({'text': f.read(), 'src': name,
                     'id': f'{name}/{os.path.relpath(paths[i], root)}'})
  if not docs:
    raise RuntimeError(f'none of {PACKAGES} is installed: no documents for the corpus benchmark')
  return docs


def write_corpus(path: str, base: List[Dict[str, str]], num_docs: int) -> int:
  """Writes `num_docs` documents cycling through `base` (ids made unique) as .jsonl; returns
  the bytes of text (UTF-8) written."""
  text_bytes = [len(d['text'].encode('utf-8')) for d in base]
  lines = [None] * len(base)
  total = 0
  with open(path, 'w', encoding='utf-8') as f:
    for i in range(num_docs):
      k = i % len(base)
      if lines[k] is None:
        lines[k] = json.dumps({'text': base[k]['text'], 'src': base[k]['src']},
                              ensure_ascii=False)[:-1]
      f.write(lines[k] + f', "id": "{i}:{json.dumps(base[k]["id"])[1:-1]}"}}\n')
      total += text_bytes[k]
  return total


def train_rater(root: str, docs: List[Dict[str, str]]) -> str:
  """A finished tiny DataRater run (dataset=text, smoke) on `docs`; returns its directory."""
  from datarater.run import train_and_evaluate
  from experiments._runs import load_config
  corpus = os.path.join(root, 'train.jsonl')
  write_corpus(corpus, docs, len(docs))
  config = load_config('datarater', 'dataset=text,smoke')
  for key, value in {'data.path': corpus, 'data.source_field': 'src', 'data.id_field': 'id',
                     'data.meta_size': 12, 'method.baseline': False,
                     'method.discard_fraction': 0.5, 'method.meta_steps': 2, 'num_steps': 1,
                     'log_every': 1, 'eval_every': 1, 'checkpoint_every': 1}.items():
    group, field = key.rsplit('.', 1) if '.' in key else (None, key)
    (config[group] if group else config)[field] = value
  workdir = os.path.join(root, 'run')
  train_and_evaluate(config, workdir)
  return workdir


def _port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _env() -> Dict[str, str]:
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  env.setdefault('JAX_PLATFORMS', 'cpu')
  # One device per process (what the 2-process row is of).
  env['XLA_FLAGS'] = ' '.join(f for f in env.get('XLA_FLAGS', '').split()
                              if 'force_host_platform_device_count' not in f)
  return env


def score_run(workdir: str, corpus: str, out: str, processes: int = 1,
              extra: tuple = ()) -> Dict[str, Any]:
  """`experiments.score` on `corpus` with `processes` processes (1 device each), each through
  RSS_WRAPPER: {'processes', 'wall_s', 'peak_rss_mib' (per process), 'documents', 'windows'}.

  Raises:
    RuntimeError: a process failed (its output's tail in the message).
  """
  base = [sys.executable, '-m', 'experiments.score', f'--workdir={workdir}', f'--out={out}',
          f'--config.data.path={corpus}', '--config.data.max_examples=0', *extra]
  if processes > 1:
    port = _port()
    commands = [base + [f'--coordinator_address=127.0.0.1:{port}',
                        f'--num_processes={processes}', f'--process_id={i}']
                for i in range(processes)]
  else:
    commands = [base]
  with tempfile.TemporaryDirectory(prefix='corpus-bench-rss-') as tmp:
    start = time.perf_counter()
    procs = [_wrapped(cmd, tmp, str(i)) for i, cmd in enumerate(commands)]
    codes = [p.wait(timeout=TIMEOUT) for p in procs]
    wall = time.perf_counter() - start
    if any(codes):
      tails = [open(os.path.join(tmp, f'log-{i}')).read()[-3000:] for i in range(len(procs))]
      raise RuntimeError(f'experiments.score exited {codes}: ' + '\n---\n'.join(tails))
    rss = [int(open(os.path.join(tmp, f'rss-{i}')).read()) / 1024   # ru_maxrss: KiB on Linux
           for i in range(len(procs))]
  import pyarrow.parquet as pq
  table = pq.read_table(out, columns=['num_windows'])
  return dict(processes=processes, wall_s=wall, peak_rss_mib=rss, documents=table.num_rows,
              windows=int(np.sum(table.column('num_windows').to_numpy())))


def _wrapped(command: List[str], tmp: str, name: str) -> subprocess.Popen:
  """`command` started through RSS_WRAPPER (peak RSS to tmp/rss-name, output to tmp/log-name)."""
  with open(os.path.join(tmp, f'log-{name}'), 'w') as log:   # the child keeps its own copy
    return subprocess.Popen([sys.executable, '-c', RSS_WRAPPER, os.path.join(tmp, f'rss-{name}'),
                             *command], cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)


def train_run(corpus: str, store: str, steps: int, workdir: str) -> Dict[str, Any]:
  """`experiments.train` (uniform, dataset=text, data.store=`store`) for `steps` steps on
  `corpus` as a whole process: {'store', 'wall_s', 'peak_rss_mib'}.

  Raises:
    RuntimeError: the run failed (its output's tail in the message).
  """
  flags = {'config.data.path': corpus, 'config.data.source_field': 'src',
           'config.data.store': store, 'config.num_steps': steps, 'config.eval_every': steps,
           'config.log_every': steps, 'config.checkpoint_every': steps,
           'config.data.meta_size': 64, 'config.data.valid_size': 64,
           'config.data.test_fraction': 0.002}
  command = [sys.executable, '-m', 'experiments.train', '--config=configs/uniform.py:dataset=text',
             f'--workdir={workdir}', *(f'--{k}={v}' for k, v in flags.items())]
  with tempfile.TemporaryDirectory(prefix='corpus-bench-train-') as tmp:
    start = time.perf_counter()
    code = _wrapped(command, tmp, 'train').wait(timeout=TIMEOUT)
    wall = time.perf_counter() - start
    if code:
      raise RuntimeError(f'experiments.train exited {code}: '
                         + open(os.path.join(tmp, 'log-train')).read()[-3000:])
    rss = int(open(os.path.join(tmp, 'rss-train')).read()) / 1024
  shutil.rmtree(workdir, ignore_errors=True)
  return dict(store=store, wall_s=wall, peak_rss_mib=rss)


def bench_corpus(small_mb: float = 12.0, factor: int = 10, processes: int = 2,
                 per_package: int = 200, train_docs: int = 200, train_steps: int = 20,
                 train_memory_row: bool = True,
                 log: Callable[[str], None] = lambda _: None,
                 root: Optional[str] = None, workdir: Optional[str] = None) -> Dict[str, Any]:
  """The section (see the module docstring).

  Args:
    small_mb: MB (1e6 bytes) of text in the small corpus (at least one document).
    factor: the large corpus has `factor` times the small one's documents.
    processes: processes of the large corpus's multi-process row (< 2: that row is skipped).
    per_package: documents drawn per installed package of PACKAGES (the documents cycled).
    train_docs: documents the tiny DataRater run trains on.
    log: progress callback.
    root: where the run and corpora go (a temporary folder, deleted at the end, by default).
    workdir: a finished DataRater text run to score with instead of training the tiny one
      (`train_s` is then None).
    train_steps: steps of each training row.
    train_memory_row: also train on the large corpus with data.store='memory'.

  Returns:
    {'seq_len', 'shard_size', 'batch_size', 'base_documents', 'train_s', 'corpora':
    {name: {'documents', 'text_mb', 'file_mb'}}, 'rows': [{'corpus', 'processes', 'documents',
    'windows', 'wall_s', 'docs_per_s', 'windows_per_s', 'peak_rss_mib' (per process),
    'max_peak_rss_mib'}], 'rss_small_mib', 'rss_large_mib', 'rss_ratio', 'rss_target',
    'train_steps', 'train_rows': [{'corpus', 'store', 'wall_s', 'peak_rss_mib'}],
    'train_rss_ratio' (large / small, data.store='disk')}.
  """
  owned = root is None
  root = root or tempfile.mkdtemp(prefix='corpus-bench-')
  try:
    base = base_documents(per_package)
    train_s = None
    if workdir is None:
      t = time.perf_counter()
      workdir = train_rater(root, base[::max(1, len(base) // train_docs)][:train_docs])
      train_s = time.perf_counter() - t
      log(f'[corpus] trained the tiny DataRater run in {train_s:.1f} s')
    mean_bytes = np.mean([len(d['text'].encode('utf-8')) for d in base])
    small_docs = max(1, int(round(small_mb * 1e6 / mean_bytes)))
    corpora = {}
    for name, n in (('small', small_docs), ('large', small_docs * factor)):
      path = os.path.join(root, f'{name}.jsonl')
      text = write_corpus(path, base, n)
      corpora[name] = dict(path=path, documents=n, text_mb=text / 1e6,
                           file_mb=os.path.getsize(path) / 1e6)
      log(f'[corpus] {name}: {n} documents, {text / 1e6:.1f} MB of text')
    plan = [('small', 1), ('large', 1)] + ([('large', processes)] if processes > 1 else [])
    rows = []
    for name, procs in plan:
      out = os.path.join(root, f'scores-{name}-{procs}.parquet')
      r = score_run(workdir, corpora[name]['path'], out, procs)
      shutil.rmtree(out + '.shards', ignore_errors=True)
      os.remove(out)
      rows.append(dict(corpus=name, **r, docs_per_s=r['documents'] / r['wall_s'],
                       windows_per_s=r['windows'] / r['wall_s'],
                       max_peak_rss_mib=max(r['peak_rss_mib'])))
      log(f"[corpus] {name} x {procs} process(es): {r['wall_s']:.1f} s, "
          f"{rows[-1]['docs_per_s']:.0f} documents/s, peak RSS {r['peak_rss_mib']} MiB")
    train_plan = [('small', 'disk'), ('large', 'disk')] + (
        [('large', 'memory')] if train_memory_row else [])
    train_rows = []
    for name, store in train_plan:
      r = train_run(corpora[name]['path'], store, train_steps, os.path.join(root, 'train-run'))
      train_rows.append(dict(corpus=name, **r))
      log(f"[corpus] training on {name} (data.store={store}): {r['wall_s']:.1f} s, "
          f"peak RSS {r['peak_rss_mib']:.0f} MiB")
    config = json.load(open(os.path.join(workdir, 'config.json')))
    small = rows[0]['max_peak_rss_mib']
    large = rows[1]['max_peak_rss_mib']
    for c in corpora.values():
      del c['path']
    return dict(seq_len=config['data']['seq_len'], shard_size=1024, batch_size=256,
                base_documents=len(base), train_s=train_s, corpora=corpora, rows=rows,
                rss_small_mib=small, rss_large_mib=large, rss_ratio=large / small,
                rss_target=RSS_TARGET, train_steps=train_steps, train_rows=train_rows,
                train_rss_ratio=train_rows[1]['peak_rss_mib'] / train_rows[0]['peak_rss_mib'])
  finally:
    if owned:
      shutil.rmtree(root, ignore_errors=True)
