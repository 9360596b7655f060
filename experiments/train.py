"""Trains one method: flags only; the logic is datarater.train.train_and_evaluate.

  python -m experiments.train --config=configs/uniform.py:dataset=digits --workdir=runs/x \
      --config.num_steps=100

Bad config values or data exit with status 2 and one line naming the problem.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from datarater.data import DataError
from datarater.train import ConfigError, train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file, e.g. configs/uniform.py:dataset=digits')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (re-running resumes).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # keep library INFO logs off the progress lines
  try:
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (ConfigError, DataError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  app.run(main)
