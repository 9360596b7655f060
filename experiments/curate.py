"""Curate a dataset with the scores of any run that wrote them.

  python -m experiments.curate --workdir=runs/dr --keep=0.8 --out=curated.npz

A corpus (dataset=text) scored document by document with `experiments.score`:

  python -m experiments.curate --workdir=runs/dr_text --scores=scores.parquet --keep=0.7 \
      --out=kept.jsonl [--per_source]

keeps the best-scored documents and writes them in the corpus's own format; its rules are in
experiments/_curate_corpus.py. What follows is the run's own training data (no --scores).

Reads `scores_train.npy` (one score per row of the training data, higher =
more worth keeping, for every method) and `scored_rows.npy`, and keeps the
best-scored `--keep` fraction of the scored rows; rows without a
score (e.g. carved into the meta split by a method that cannot score them)
are kept and counted. For `data.name=npz` it writes the user's npz with every
key: the `*_train` arrays restricted to the kept rows (original order), the
others unchanged. For embedded datasets it writes `kept_rows` and
`dropped_rows` (row indices of the training pool). It prints how many rows it
dropped per source. It refuses data that changed since the run (the data
hash in the run's fingerprint.json) and a run written by an older version
whose scores may have the other direction (`score_higher_is_corrupted` in its
summary.json: re-run it). Bad flags or input exit with status 2
and one line on stderr, and nothing is written.
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import app, flags, logging

from experiments._runs import fail, old_direction, out_problem, parse_flags


class CurateError(ValueError):
  """Bad input; one line naming the flag or file."""


def _read(path: str):
  """The parsed .json file, the array of the .npy file or the arrays (a dict) of the .npz file.

  Raises:
    CurateError: the file is missing or unreadable (e.g. cut short), naming it.
  """
  try:
    if path.endswith('.json'):
      with open(path) as f:
        return json.load(f)
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.lib.npyio.NpzFile):
      with loaded:
        return dict(loaded)
    return loaded
  except (OSError, ValueError, EOFError) as e:
    raise CurateError(f'{path} is unreadable ({type(e).__name__}: {e})') from None


def read_run(workdir: str):
  """(config, scores [R] (higher = keep), scored [R] bool, data_sha256) of a finished run."""
  import ml_collections
  paths = {k: os.path.join(workdir, f) for k, f in (
      ('config', 'config.json'), ('scores', 'scores_train.npy'), ('scored', 'scored_rows.npy'),
      ('summary', 'summary.json'), ('fingerprint', 'fingerprint.json'))}
  for k, path in paths.items():
    if not os.path.isfile(path):
      raise CurateError(f'--workdir={workdir}: no {os.path.basename(path)} (a run that '
                        'wrote per-example scores and fingerprint.json is needed)')
  config = _read(paths['config'])
  config.pop('_run', None)
  summary = _read(paths['summary'])
  stale = old_direction(workdir, summary) if isinstance(summary, dict) else None
  if stale:
    raise CurateError(stale)
  if not isinstance(summary, dict) or 'scored_fraction' not in summary:
    raise CurateError(f'{paths["summary"]}: no scored_fraction (not a scoring run)')
  fingerprint = _read(paths['fingerprint'])
  if not isinstance(fingerprint, dict) or 'data_sha256' not in fingerprint:
    raise CurateError(f'{paths["fingerprint"]}: no data_sha256')
  return (ml_collections.ConfigDict(config), _read(paths['scores']),
          _read(paths['scored']).astype(bool), fingerprint['data_sha256'])


def check_out(out: str) -> None:
  """Refuses an --out that cannot be written as given (before anything is read).

  Raises:
    CurateError: naming --out.
  """
  problem = out_problem(out, '.npz', ' (numpy would add it)')
  if problem:
    raise CurateError(problem)


def load_run_data(config, workdir: str, data_sha256: str):
  """The run's dataset, loaded as the run loaded it, checked against its fingerprint.

  Raises:
    CurateError: the data cannot be loaded (e.g. a moved npz) or is not the
      data the run scored, naming the file.
  """
  from datarater.data import DataError, load_dataset
  from datarater.errors import ConfigError
  from datarater.run import data_fingerprint
  try:
    data = load_dataset(config.data, config.seed)
  except (ConfigError, DataError) as e:
    raise CurateError(f'the data of the run in --workdir={workdir} cannot be loaded: {e}') from None
  if data_fingerprint(data) != data_sha256:
    where = config.data.path if config.data.name == 'npz' else f'data.name={config.data.name!r}'
    raise CurateError(f'{where} is not the data the run in --workdir={workdir} scored (its '
                      'SHA-256 differs from fingerprint.json): the scores would go to other rows')
  return data


def kept_rows(scores: np.ndarray, scored: np.ndarray, keep: float) -> np.ndarray:
  """bool [R]: the `keep` fraction of the scored rows with the highest scores, and unscored rows."""
  from datarater.weighting.scores import best_rows
  idx = np.flatnonzero(scored)
  best = idx[best_rows(scores[idx], int(round(keep * len(idx))))]
  mask = ~scored
  mask[best] = True
  return mask


def curate(workdir: str, keep: float, out: str) -> dict:
  """Writes the curated file; returns {'kept', 'rows', 'unscored_kept', 'dropped_per_source'}."""
  if not 0.0 < keep <= 1.0:
    raise CurateError(f'--keep must be in (0, 1], got {keep}')
  check_out(out)
  config, scores, scored, data_sha256 = read_run(workdir)
  data = load_run_data(config, workdir, data_sha256)
  from datarater.data.core import per_row
  if scores.shape != (data.info.num_rows,) or scored.shape != scores.shape:
    raise CurateError(f'{workdir}/scores_train.npy has shape {scores.shape}; the data of '
                      f'its config has {data.info.num_rows}')
  mask = kept_rows(scores, scored, keep)
  source, _ = per_row(data, data.train.source, data.meta.source, -1)
  names = data.info.source_names
  dropped = {names[k]: int(((source == k) & ~mask).sum()) for k in range(data.info.num_sources)}
  if config.data.name == 'npz':
    user = _read(config.data.path)
    rows = len(user['y_train'])
    arrays = {k: (v[mask] if k.endswith('_train') and len(v) == rows else v)
              for k, v in user.items()}
  else:
    arrays = {'kept_rows': np.flatnonzero(mask), 'dropped_rows': np.flatnonzero(~mask)}
  tmp = f'{out}.tmp'
  try:
    with open(tmp, 'wb') as f:  # a file object: np.savez writes `out` exactly, no suffix added
      np.savez(f, **arrays)
    os.replace(tmp, out)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise CurateError(f'--out={out}: cannot write ({e.strerror or e})') from None
  return {'kept': int(mask.sum()), 'rows': len(mask), 'unscored_kept': int((~scored).sum()),
          'dropped_per_source': dropped}


def define_flags():
  """Defines the flags (only when run as a script, so tests can import this module)."""
  flags.DEFINE_string('workdir', None, 'Run directory that holds scores_train.npy.')
  flags.DEFINE_float('keep', 0.8, 'Fraction of the scored rows to keep, in (0, 1].')
  flags.DEFINE_string('out', None, 'Output .npz file (with --scores: .jsonl, .parquet or .csv, '
                      'the corpus\'s format).')
  flags.DEFINE_string('scores', None, 'Document scores of a corpus (experiments.score\'s .parquet): '
                      'curate that corpus instead of the run\'s training data.')
  flags.DEFINE_bool('per_source', False, 'With --scores: keep the --keep fraction of each '
                    'source\'s documents instead of the corpus\'s.')
  flags.mark_flags_as_required(['workdir', 'out'])


def main_corpus():
  """--scores: curate the scored corpus (experiments/_curate_corpus.py)."""
  from experiments import _curate_corpus
  f = flags.FLAGS
  if not f['verbosity'].present:
    logging.set_verbosity(logging.WARNING)   # datasets' INFO lines off stderr
  try:
    out = _curate_corpus.curate_corpus(f.workdir, f.scores, f.keep, f.out, f.per_source)
  except _curate_corpus.CurateError as e:
    fail(2, e)
  per_source = ', '.join(f'{k} kept {v["kept"]} dropped {v["dropped"]}'
                         for k, v in out['per_source'].items())
  print(f'[curate] kept {out["kept"]} of {out["documents"]} documents ({out["unscored_kept"]} '
        f'without a score kept); per source: {per_source}; wrote {f.out}', flush=True)


def main(argv):
  del argv
  if flags.FLAGS.scores is not None:
    return main_corpus()
  if flags.FLAGS.per_source:
    fail(2, '--per_source needs --scores (a scored corpus)')
  try:
    out = curate(flags.FLAGS.workdir, flags.FLAGS.keep, flags.FLAGS.out)
  except CurateError as e:
    fail(2, e)
  per_source = ', '.join(f'{k} {v}' for k, v in out['dropped_per_source'].items())
  print(f'[curate] kept {out["kept"]} of {out["rows"]} rows ({out["unscored_kept"]} unscored '
        f'rows kept); dropped per source: {per_source}; wrote {flags.FLAGS.out}', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=parse_flags)
