"""Curate a dataset with the scores of any run that wrote them.

  python -m experiments.curate --workdir=runs/dr --keep=0.8 --out=curated.npz

Reads `scores_train.npy` (one score per row of the training data),
`scored_rows.npy` and the score's direction from the run's summary.json, and
keeps the best-scored `--keep` fraction of the scored rows; rows without a
score (e.g. carved into the meta split by a method that cannot score them)
are kept and counted. For `data.name=npz` it writes the user's npz with every
key: the `*_train` arrays restricted to the kept rows (original order), the
others unchanged. For embedded datasets it writes `kept_rows` and
`dropped_rows` (row indices of the training pool). It prints how many rows it
dropped per source. Bad input exits with status 2 and one line.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from absl import app, flags


class CurateError(ValueError):
  """Bad input; one line naming the flag or file."""


def read_run(workdir: str):
  """(config, scores [R], scored [R] bool, higher_is_corrupted) of a finished run."""
  import ml_collections
  paths = {k: os.path.join(workdir, f) for k, f in (
      ('config', 'config.json'), ('scores', 'scores_train.npy'), ('scored', 'scored_rows.npy'),
      ('summary', 'summary.json'))}
  for k, path in paths.items():
    if not os.path.isfile(path):
      raise CurateError(f'--workdir={workdir}: no {os.path.basename(path)} (a run that '
                        'wrote per-example scores is needed)')
  with open(paths['config']) as f:
    config = json.load(f)
  config.pop('_run', None)
  with open(paths['summary']) as f:
    summary = json.load(f)
  if 'score_higher_is_corrupted' not in summary:
    raise CurateError(f'{paths["summary"]}: no score_higher_is_corrupted (not a scoring run)')
  return (ml_collections.ConfigDict(config), np.load(paths['scores']),
          np.load(paths['scored']).astype(bool), bool(summary['score_higher_is_corrupted']))


def kept_rows(scores: np.ndarray, scored: np.ndarray, keep: float,
              higher_is_corrupted: bool) -> np.ndarray:
  """bool [R]: the best `keep` fraction of the scored rows, plus every unscored row."""
  goodness = -scores if higher_is_corrupted else scores
  idx = np.flatnonzero(scored)
  n_keep = int(round(keep * len(idx)))
  best = idx[np.argsort(-goodness[idx], kind='stable')[:n_keep]]
  mask = ~scored
  mask[best] = True
  return mask


def curate(workdir: str, keep: float, out: str) -> dict:
  """Writes the curated file; returns {'kept', 'rows', 'unscored_kept', 'dropped_per_source'}."""
  from datarater.data import load_dataset
  from datarater.train.scoring import per_row
  if not 0.0 < keep <= 1.0:
    raise CurateError(f'--keep must be in (0, 1], got {keep}')
  config, scores, scored, higher = read_run(workdir)
  data = load_dataset(config.data, config.seed)
  if scores.shape != (data.info.num_rows,) or scored.shape != scores.shape:
    raise CurateError(f'{workdir}/scores_train.npy has {scores.shape[0]} rows; the data of '
                      f'its config has {data.info.num_rows}')
  mask = kept_rows(scores, scored, keep, higher)
  source, _ = per_row(data, data.train.source, data.meta.source, -1)
  names = data.info.source_names
  dropped = {names[k]: int(((source == k) & ~mask).sum()) for k in range(data.info.num_sources)}
  if config.data.name == 'npz':
    user = dict(np.load(config.data.path, allow_pickle=False))
    rows = len(user['y_train'])
    np.savez(out, **{k: (v[mask] if k.endswith('_train') and len(v) == rows else v)
                     for k, v in user.items()})
  else:
    np.savez(out, kept_rows=np.flatnonzero(mask), dropped_rows=np.flatnonzero(~mask))
  return {'kept': int(mask.sum()), 'rows': len(mask), 'unscored_kept': int((~scored).sum()),
          'dropped_per_source': dropped}


def define_flags():
  """Defines the flags (only when run as a script, so tests can import this module)."""
  flags.DEFINE_string('workdir', None, 'Run directory that holds scores_train.npy.')
  flags.DEFINE_float('keep', 0.8, 'Fraction of the scored rows to keep, in (0, 1].')
  flags.DEFINE_string('out', None, 'Output .npz file.')
  flags.mark_flags_as_required(['workdir', 'out'])


def main(argv):
  del argv
  try:
    out = curate(flags.FLAGS.workdir, flags.FLAGS.keep, flags.FLAGS.out)
  except CurateError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  per_source = ', '.join(f'{k} {v}' for k, v in out['dropped_per_source'].items())
  print(f'[curate] kept {out["kept"]} of {out["rows"]} rows ({out["unscored_kept"]} unscored '
        f'rows kept); dropped per source: {per_source}; wrote {flags.FLAGS.out}', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
