"""A finished DataRater run's rater applied to every document of a corpus (`experiments.score`).

`read_rater_run(workdir)` checks the run directory (a DataRater run on dataset=text that saved
`rater_params.msgpack`) and returns its config; `prepare` opens the corpus the config names
(`corpus.open_text`: read and checked, not decoded) and fixes what the scores are of (the
manifest); `window_scorer` builds the rater's score function; `score_corpus` scores this
process's shards and, in process 0, writes the final Parquet file
(`datarater.data.corpus_scores` states the shard and file layout).

The score of a window is `datarater.methods.datarater.make_rate` with the run's saved parameters:
the function the run scored its training rows with (scores_train.npy; higher = keep), applied to
x = window[:-1], y = window[1:] as int32 bytes. It runs jitted on a fixed batch of `batch_size`
windows (rounded up to a multiple of the local devices, split over them), the last batch of a
shard padded with zero windows, so it compiles once. A rater that sees loss features of the
inner models (method.rater_features) cannot score without them, and is refused.

Processes: shard i is scored by process i % process_count, on that process's own devices (no
collective); process 0 waits for every shard file (polling, `wait_timeout` seconds) and then
writes `out`. Shards already written are skipped, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import NamedTuple

import numpy as np

from datarater.data import corpus, corpus_scores, tokens
from datarater.errors import ConfigError, WorkdirError
from datarater.methods.datarater import RATER_FILE, load_rater, make_rate

# The config.data fields of a run that `experiments.score` may override (the corpus and how it
# is read); every other field is the run's (data.seq_len fixes the rater's window).
CORPUS_FIELDS = ('path', 'text_field', 'source_field', 'id_field', 'corrupted_field', 'txt_unit',
                 'max_examples')


class ScoreTimeout(RuntimeError):
  """Process 0 waited `wait_timeout` seconds for other processes' shards; one-line message."""


def read_rater_run(workdir: str):
  """The ConfigDict of a finished DataRater run on dataset=text.

  Raises:
    WorkdirError: naming --workdir, when it is missing, not such a run, or has no rater file.
  """
  import ml_collections
  if not workdir or not os.path.isdir(workdir):
    raise WorkdirError(f'--workdir={workdir}: no such directory')
  path = os.path.join(workdir, 'config.json')
  try:
    with open(path) as f:
      config = json.load(f)
  except (OSError, ValueError):
    raise WorkdirError(f'--workdir={workdir}: no readable config.json (a finished DataRater run '
                       'directory is needed)') from None
  config.pop('_run', None)
  method = config.get('method', {}).get('name')
  data = config.get('data', {}).get('name')
  if method != 'datarater' or data != 'text':
    raise WorkdirError(f'--workdir={workdir}: a DataRater run on dataset=text is needed, this one '
                       f'ran method {method!r} on dataset {data!r}')
  if not os.path.isfile(os.path.join(workdir, RATER_FILE)):
    raise WorkdirError(f'--workdir={workdir}: no {RATER_FILE} (the run did not finish '
                       'meta-training)')
  if config['method'].get('rater_features'):
    raise WorkdirError(f'--workdir={workdir}: its rater sees loss features of the inner models '
                       f'(method.rater_features={config["method"]["rater_features"]}), which the '
                       'run does not save; only a rater of the example alone can score a corpus')
  return ml_collections.ConfigDict(config)


class Plan(NamedTuple):
  """What `score_corpus` scores: the opened corpus, its shards and the manifest."""
  text: corpus.TextTable
  bounds: list
  manifest: dict
  length: int            # window length, data.seq_len + 1


def prepare(config, workdir: str, shard_size: int) -> Plan:
  """Opens the corpus of `config.data` and fixes the manifest; touches no device.

  Raises:
    DataError / ConfigError: the corpus cannot be read (one line, from datarater.data.corpus).
  """
  text = corpus.open_text(config.data)
  n = text.table.num_rows
  if config.data.max_examples and n == config.data.max_examples:
    print(f'note: data.max_examples={config.data.max_examples} caps the corpus at its first '
          f'{n} documents (--config.data.max_examples=0 scores them all)', file=sys.stderr,
          flush=True)
  data = {k: config.data.get(k) for k in CORPUS_FIELDS}
  data['path'] = os.path.abspath(os.path.expanduser(config.data.path))
  resolved = config.to_dict()
  resolved['data']['path'] = data['path']   # the same corpus from any working directory
  manifest = {
      'rater_sha256': corpus_scores.file_sha256(os.path.join(workdir, RATER_FILE)),
      'config_sha256': _sha256_json(resolved),
      'data': data, 'seq_len': int(config.data.seq_len),
      'corpus_files': corpus_scores.corpus_files(config.data.path),
      'num_documents': n, 'shard_size': int(shard_size)}
  if config.data.get('tokenizer', ''):   # the run's tokenizer file, checked and recorded
    tokens.load_tokenizer(config.data.tokenizer)
    manifest['tokenizer_sha256'] = corpus_scores.file_sha256(
        os.path.expanduser(config.data.tokenizer))
  return Plan(text, corpus_scores.shard_bounds(n, shard_size), manifest,
              int(config.data.seq_len) + 1)


def _sha256_json(value) -> str:
  import hashlib
  return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


class WindowScorer:
  """scorer(windows [n, L], bytes or token ids) -> float32 [n]: the run's rater on each window.

  Attributes:
    batch_size: windows per jitted call (a multiple of the local devices).
    traces: how many times the jitted function was traced (1 after any number of calls).
  """

  def __init__(self, config, workdir: str, batch_size: int):
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P
    from datarater.data.core import DatasetInfo
    from datarater.models.rater import build_rater
    seq_len = int(config.data.seq_len)
    vocab = tokens.vocab_size(tokens.load(config.data))
    info = DatasetInfo(name='text', task='lm', num_classes=vocab,
                       input_shape=(seq_len,),
                       num_sources=0, source_names=(), corruption='none', corruption_rates=(),
                       meta_mode=config.data.meta_mode, num_rows=0)
    rater = build_rater(config.method.rater, info)
    x0 = jnp.zeros((1, seq_len), jnp.int32)
    template = jax.eval_shape(lambda: rater.init(jax.random.key(0), x0, x0, None)['params'])
    try:
      eta = load_rater(workdir, template)
    except ConfigError:
      raise WorkdirError(f'--workdir={workdir}: {RATER_FILE} does not fit the rater of its '
                         'config.json (method.rater, data.seq_len)') from None
    except Exception as e:  # noqa: BLE001 - an unreadable file is one user-facing error
      raise WorkdirError(f'--workdir={workdir}: cannot read {RATER_FILE} ({type(e).__name__})') \
          from None
    devices = jax.local_devices()
    mesh = Mesh(np.asarray(devices), ('data',), axis_types=(AxisType.Auto,))
    self.batch_size = -(-int(batch_size) // len(devices)) * len(devices)
    self.length = seq_len + 1
    self._rows = NamedSharding(mesh, P('data'))
    self._eta = jax.device_put(eta, NamedSharding(mesh, P()))
    self.traces = 0
    rate = make_rate(config, None, rater)

    def score(eta, windows):
      self.traces += 1
      w = windows.astype(jnp.int32)
      return rate(eta, {'x': w[:, :-1], 'y': w[:, 1:]}).astype(jnp.float32)

    self._score = jax.jit(score)
    self._put = jax.device_put

  def __call__(self, windows: np.ndarray) -> np.ndarray:
    n, b = len(windows), self.batch_size
    outs = []
    for start in range(0, n, b):
      chunk = windows[start:start + b]
      if len(chunk) < b:    # the last batch: padded with zero windows, whose scores are dropped
        chunk = np.concatenate([chunk, np.zeros((b - len(chunk), self.length), chunk.dtype)])
      outs.append(self._score(self._eta, self._put(chunk, self._rows)))
    if not outs:
      return np.zeros(0, np.float32)
    return np.concatenate([np.asarray(o) for o in outs])[:n]


class Progress:
  """'[score] d/D documents, r documents/s, ETA s' on a stream, every `every` seconds and at the
  end."""

  def __init__(self, total: int, label: str, stream=None, every: float = 5.0):
    self.total, self.label, self.every = total, label, every
    self.stream = stream or sys.stderr
    self.done = 0
    self.start = self.last = time.monotonic()

  def update(self, n: int) -> None:
    self.done += n
    now = time.monotonic()
    if now - self.last >= self.every:
      self.last = now
      self.line(now)

  def line(self, now: float | None = None, end: str = '') -> None:
    elapsed = max((now or time.monotonic()) - self.start, 1e-9)
    rate = self.done / elapsed
    eta = (self.total - self.done) / rate if rate > 0 else float('inf')
    eta_text = f'ETA {eta:.0f}s' if np.isfinite(eta) else 'ETA ?'
    print(f'[score] {self.label}{self.done}/{self.total} documents, {rate:.1f} documents/s, '
          f'{f"{elapsed:.1f}s" if end else eta_text}{end}', file=self.stream, flush=True)


def score_corpus(config, workdir: str, out: str, plan: Plan, batch_size: int = 256,
                 process_index: int = 0, process_count: int = 1, wait_timeout: float = 3600.0,
                 poll: float = 0.5, progress_every: float = 5.0, stream=None) -> dict:
  """Scores this process's shards of `plan`; process 0 then writes `out`.

  Args:
    config: the run's config with the corpus overrides (`read_rater_run`).
    workdir: the run directory (its rater file).
    out: the final .parquet file; shards go to `<out>.shards/`.
    plan: `prepare(config, workdir, shard_size)`.
    batch_size: windows per jitted call (rounded up to a multiple of the local devices).
    process_index, process_count: this process and how many score (shard i is process
      i % process_count's).
    wait_timeout: seconds process 0 waits for the other processes' shards.
    poll: seconds between two looks at the shard directory.
    progress_every: seconds between two progress lines.
    stream: where progress goes (stderr).

  Returns:
    {'documents': D, 'shards': S, 'scored_shards': shards this call scored, 'compiles': times
    the rater's jitted function was traced (1), 'written': out or None (processes other
    than 0)}.

  Raises:
    WorkdirError: the rater does not fit, or `<out>.shards` holds another scoring's shards.
    ScoreTimeout: process 0 gave up waiting for other processes' shards.
  """
  scorer = WindowScorer(config, workdir, batch_size)
  tokenizer = tokens.load(config.data)   # once, not per shard
  corpus_scores.check_manifest(out, plan.manifest)
  mine = [i for i in range(len(plan.bounds)) if i % process_count == process_index]
  todo = corpus_scores.missing_shards(out, mine)
  label = f'process {process_index}: ' if process_count > 1 else ''
  progress = Progress(sum(b - a for a, b in (plan.bounds[i] for i in todo)), label, stream,
                      progress_every)
  for i in todo:
    corpus_scores.remove_leftovers(corpus_scores.shard_path(out, i))   # of a killed run
    start, stop = plan.bounds[i]
    rows = corpus.text_rows(plan.text, start, stop)
    windows, _, counts = corpus_scores.windows_of(tokens.encode(rows.docs, tokenizer),
                                                  plan.length)
    scores = corpus_scores.document_scores(scorer(windows), counts)
    corpus_scores.write_table(corpus_scores.shard_table(rows, scores, counts),
                              corpus_scores.shard_path(out, i))
    progress.update(stop - start)
  progress.line(end=f' ({len(todo)} of this process\'s {len(mine)} shards scored, '
                f'{len(mine) - len(todo)} already written)')
  result = {'documents': plan.manifest['num_documents'], 'shards': len(plan.bounds),
            'scored_shards': len(todo), 'compiles': scorer.traces, 'written': None}
  if process_index != 0:
    return result
  deadline = time.monotonic() + wait_timeout
  while True:
    missing = corpus_scores.missing_shards(out, range(len(plan.bounds)))
    if not missing:
      break
    if time.monotonic() > deadline:
      raise ScoreTimeout(f'waited {wait_timeout:g}s for {len(missing)} shards of the other '
                         f'processes (first missing: {corpus_scores.shard_path(out, missing[0])}); '
                         'the shards written are kept: re-run the processes to finish')
    time.sleep(poll)
  corpus_scores.remove_leftovers(out)
  corpus_scores.assemble(out, len(plan.bounds), plan.manifest)
  return {**result, 'written': out}

