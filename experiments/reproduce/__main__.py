"""Command line of the reproduction suites (see the package docstring).

  python -m experiments.reproduce --suite=NAME --scale=smoke|cpu|paper [--seeds=N]
      [--headline_seeds=H] [--settings=REGEX] [--out=results]

--seeds runs seeds 0..N-1 of every cell; the settings a suite headlines
(Suite.headline at that scale, e.g. long_tail's imbalance 200 at cpu scale) run
max(H, N) seeds (--headline_seeds, default 10). --settings=REGEX runs only the
settings it finds and writes no table (to split a suite over processes or
machines sharing --out); a run without it reuses them and writes the table.

Bad flags exit with status 2 and one line on stderr before anything is
written; bad input found later (e.g. a finished run made with another config)
exits 2 with one line too; a run stopped by a non-finite value exits with
status 3.
"""

from __future__ import annotations

import os
import re
import time

from absl import app, flags, logging

from experiments._runs import (define_compilation_cache_flag, fail, parse_flags,
                               use_compilation_cache)
from experiments.reproduce.core import DEFAULT_HEADLINE_SEEDS, DEFAULT_SEEDS, SCALES, run_suite
from experiments.reproduce.report import write_outputs
from experiments.reproduce.suites import SUITES


def define_flags():
  """Defines the flags (only when run as a script, so tests can import this module)."""
  flags.DEFINE_enum('suite', None, list(SUITES), 'Suite to run.')
  flags.DEFINE_enum('scale', 'cpu', list(SCALES), 'Grid size.')
  flags.DEFINE_integer('seeds', None, 'Seeds per cell (default: 2 smoke, 3 cpu/paper).')
  flags.DEFINE_integer('headline_seeds', DEFAULT_HEADLINE_SEEDS,
                       'Seeds per cell of the settings the suite headlines at this scale '
                       '(its Suite.headline; never fewer than --seeds); other settings run '
                       '--seeds.')
  flags.DEFINE_string('settings', '', 'Run only the settings this regular expression finds '
                      '(re.search) and write no table; "" = every setting and the table.')
  flags.DEFINE_string('out', 'results', 'Output root.')
  define_compilation_cache_flag()


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # keep library INFO logs off the progress lines
  if flags.FLAGS.suite is None:
    fail(2, f'--suite is required; one of {list(SUITES)}')
  seeds = DEFAULT_SEEDS[flags.FLAGS.scale] if flags.FLAGS.seeds is None else flags.FLAGS.seeds
  if seeds < 1:
    fail(2, f'--seeds={seeds} must be at least 1')
  if flags.FLAGS.headline_seeds < 1:
    fail(2, f'--headline_seeds={flags.FLAGS.headline_seeds} must be at least 1')
  try:
    re.compile(flags.FLAGS.settings)
  except re.error as e:
    fail(2, f'--settings={flags.FLAGS.settings!r} is not a regular expression ({e})')
  use_compilation_cache(flags.FLAGS.compilation_cache)
  folder = os.path.join(flags.FLAGS.out, flags.FLAGS.suite, flags.FLAGS.scale)
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    fail(2, f'--out={flags.FLAGS.out}: cannot create {folder} ({e.strerror or e})')
  t0 = time.time()
  from datarater.errors import ConfigError, DataError, Diverged, WorkdirError
  try:
    results = run_suite(flags.FLAGS.suite, flags.FLAGS.scale, seeds, folder,
                        flags.FLAGS.headline_seeds, flags.FLAGS.settings)
  except (ConfigError, DataError, WorkdirError) as e:
    fail(2, e)
  except Diverged as e:
    fail(3, f'diverged: {e}')
  if flags.FLAGS.settings:
    print(f'[reproduce] --settings={flags.FLAGS.settings!r}: {len(results)} runs finished; no '
          'table written (run without --settings to write it from the finished runs)', flush=True)
  else:
    print(write_outputs(flags.FLAGS.suite, flags.FLAGS.scale, results, folder,
                        time.time() - t0), flush=True)
  print(f'[reproduce] suite {flags.FLAGS.suite} ({flags.FLAGS.scale}): wall time '
        f'{time.time() - t0:.0f} s', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=parse_flags)
