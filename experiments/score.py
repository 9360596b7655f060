"""Scores every document of a corpus with a finished DataRater run's rater: flags only.

  python -m experiments.score --workdir=runs/dr_text --out=scores.parquet \\
      [--config.data.path=more/*.jsonl] [--shard_size=1024] [--batch_size=256]

--workdir   a finished DataRater run on dataset=text (config.json and rater_params.msgpack).
            The corpus is the one its config.json names, unless overridden with
            --config.data.<field>=<value> for the fields that say which corpus and how to read
            it: path, text_field, source_field, id_field, corrupted_field, txt_unit,
            max_examples (the run's value applies: --config.data.max_examples=0 scores every
            document). Other fields are the run's (data.seq_len fixes the rater's window); naming
            one, or a field that does not exist, is an error. Formats and fields:
            datarater/data/corpus.py.
--out       the scores, a .parquet file: one row per document of the corpus, in corpus read
            order (files sorted by path, rows in file order), every document (not only the
            run's training split), with the columns
              id           data.id_field's value, or the document's number 0..D-1
              source       the document's source as text (data.source_field's value, or its
                           file / directory, as dataset=text assigns sources)
              score        float32, higher = keep (the direction of scores_train.npy): the mean
                           of the rater's scores of the document's windows; NaN for a document
                           shorter than one window (data.seq_len + 1 bytes or tokens)
              num_windows  how many windows the document was cut into
              scored       num_windows > 0 (False: score is NaN)
              corrupted    data.corrupted_field's value (only when it is given)
            Documents -> windows: a document's UTF-8 bytes b give n = len(b) // (seq_len + 1)
            non-overlapping windows from its first byte, as in training (the last
            len(b) % (seq_len + 1) bytes are not scored; under the run's data.tokenizer, its
            token ids in place of bytes); `experiments.curate --scores` reads
            this file. The schema's metadata records the run, corpus and config it is of.
--shard_size  documents per shard. Shards are written, each complete, to <out>.shards/
            (shard-00000.parquet, ..., and manifest.json saying what they are scores of); a
            re-run skips the shards already written (a killed run resumes; the result has the
            same bytes as an uninterrupted run), and refuses shards of another run, corpus or
            shard size (remove <out>.shards or choose another --out). The corpus is read
            through Hugging Face datasets' memory-mapped Arrow table and decoded one shard at a
            time, so memory holds one shard's documents and windows, not the corpus's.
            <out>.shards may be deleted once <out> is written.
--batch_size  windows per jitted rater call (rounded up to a multiple of the local devices;
            the last batch of a shard is padded, so the rater compiles once).
Several processes: the training entry's flags (--coordinator_address --num_processes
--process_id, or --distributed / a SLURM or Open MPI launch; experiments/train.py). Process p
scores the shards i with i % num_processes == p on its own devices; process 0 waits for every
shard (--wait_timeout seconds, then exit status 1 naming the first missing shard; the written
shards stay) and writes --out. <out> must be on a file system every process sees.
Progress: a line on stderr every few seconds (documents/s, ETA) and at the end.

Exit status 2 and one line on stderr (`error: ...`), nothing written, for bad input: a flag, a
--config field, a run directory that is not a finished DataRater text run, an --out that is not
a writable .parquet path, a corpus that cannot be read (datarater/data/corpus.py's messages).
"""

import os

from absl import app, flags, logging

from datarater.errors import ConfigError, DataError, WorkdirError
from experiments._runs import fail, finish, out_problem, parse_flags

# --config.<field>=<value> arguments, taken out of the command line before absl parses it.
_OVERRIDES = {}


def split_overrides(argv: list) -> list:
  """Moves the --config.<field>=<value> arguments of argv into _OVERRIDES; returns the rest."""
  rest = []
  for arg in argv:
    if arg.startswith('--config'):
      name, eq, value = arg[2:].partition('=')
      if not eq or not name.startswith('config.'):
        fail(2, f'{arg}: give --config.data.<field>=<value>')
      _OVERRIDES[name[len('config.'):]] = value
    else:
      rest.append(arg)
  return rest


def apply_overrides(config, overrides: dict, allowed: tuple):
  """Sets the data.<field> overrides on the run's config (integers where the field holds one).

  Raises:
    ConfigError: naming a field that is not one of data.<allowed>, or a value of the wrong type.
  """
  for name, value in overrides.items():
    group, _, field = name.partition('.')
    if group != 'data' or field not in allowed:
      raise ConfigError(f'--config.{name}: not a field experiments.score overrides (it overrides '
                        f'only {", ".join("data." + f for f in allowed)}; the others are the '
                        'run\'s)')
    if isinstance(config.data.get(field), int) or field == 'max_examples':
      try:
        value = int(value)
      except ValueError:
        raise ConfigError(f'--config.{name}={value}: not an integer') from None
    with config.unlocked():
      config.data[field] = value
  return config


def check_out(out: str) -> None:
  """Refuses an --out that cannot be written (before anything is read)."""
  problem = out_problem(out, '.parquet')
  if problem:
    raise ConfigError(problem)


def setup(workdir: str, out: str, overrides: dict, shard_size: int, batch_size: int):
  """The run's config with the overrides and the scoring plan, after every check that needs no
  device (nothing is written).

  Raises:
    ConfigError / DataError / WorkdirError: one line naming the flag, field or file.
  """
  check_out(out)
  for name, value in (('shard_size', shard_size), ('batch_size', batch_size)):
    if value <= 0:
      raise ConfigError(f'--{name}={value} must be > 0')
  from datarater.methods import _corpus_rater as rater_lib
  config = rater_lib.read_rater_run(workdir)
  config = apply_overrides(config, overrides, rater_lib.CORPUS_FIELDS)
  plan = rater_lib.prepare(config, workdir, shard_size)
  from datarater.data.corpus_scores import check_manifest
  check_manifest(out, plan.manifest, create=False)   # shards of another scoring: refused now
  return config, plan


def define_flags():
  """Defines the flags (only when run as a script, so tests can import this module)."""
  flags.DEFINE_string('workdir', None, 'A finished DataRater run on dataset=text.')
  flags.DEFINE_string('out', None, 'The scores: a .parquet file (shards in <out>.shards/).')
  flags.DEFINE_integer('shard_size', 1024, 'Documents per shard (> 0).')
  flags.DEFINE_integer('batch_size', 256, 'Windows per jitted rater call (> 0).')
  flags.DEFINE_float('wait_timeout', 3600.0,
                     'Seconds process 0 waits for the other processes\' shards.')
  flags.DEFINE_string('coordinator_address', None, 'Multi-process run: host:port of process 0.')
  flags.DEFINE_integer('num_processes', None, 'Multi-process run: process count.')
  flags.DEFINE_integer('process_id', None, 'Multi-process run: this process, 0-based.')
  flags.DEFINE_bool('distributed', False, 'Multi-process run configured by the environment.')
  flags.mark_flags_as_required(['workdir', 'out'])


def main(argv):
  del argv
  f = flags.FLAGS
  if not f['verbosity'].present:
    logging.set_verbosity(logging.WARNING)   # library INFO lines off stderr
  try:
    config, plan = setup(f.workdir, f.out, _OVERRIDES, f.shard_size, f.batch_size)
  except (ConfigError, DataError, WorkdirError) as e:
    fail(2, e)
  from datarater.methods import _corpus_rater as rater_lib
  from datarater.train.sharding import initialize
  initialize(f.coordinator_address, f.num_processes, f.process_id, f.distributed)
  import jax
  try:
    result = rater_lib.score_corpus(config, f.workdir, f.out, plan, f.batch_size,
                                    jax.process_index(), jax.process_count(), f.wait_timeout)
  except (ConfigError, DataError, WorkdirError) as e:
    fail(2, e)
  except rater_lib.ScoreTimeout as e:
    fail(1, e)
  if result['written']:
    print(f'[score] wrote {f.out}: {result["documents"]} documents ({result["shards"]} shards)',
          flush=True)
    report_ground_truth(f.out)
  finish()


def report_ground_truth(out: str) -> None:
  """With data.corrupted_field given: prints the documents' AUROC of "low score = corrupted"
  (scored documents only) and the mean score of the clean and corrupted documents per source."""
  import numpy as np
  import pyarrow.parquet as pq
  from datarater.report.detection import auroc
  if 'corrupted' not in pq.read_schema(out).names:
    return
  table = pq.read_table(out, columns=['score', 'corrupted', 'source'])
  score = table.column('score').to_numpy()
  bad = table.column('corrupted').to_numpy(zero_copy_only=False).astype(bool)
  source = table.column('source').to_numpy(zero_copy_only=False)
  ok = np.isfinite(score)
  value = auroc(bad[ok], score[ok])
  print(f'[score] document AUROC (low score = corrupted, ground truth data.corrupted_field): '
        f'{"n/a (one class)" if value is None else f"{value:.4f}"}', flush=True)
  for name in sorted(set(source)):
    cells = [f'{kind} {score[ok & (source == name) & flag].mean():.3f}'
             for kind, flag in (('clean', ~bad), ('corrupted', bad))
             if (ok & (source == name) & flag).any()]
    print(f'[score] {name}: mean score ' + ', '.join(cells), flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=lambda argv: parse_flags(split_overrides(argv)))
