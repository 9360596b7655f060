"""Trains one method: flags only; the logic is datarater.run.train_and_evaluate.

  python -m experiments.train --config=configs/uniform.py:dataset=digits --workdir=runs/x \
      --config.num_steps=100

Several processes (hosts) run the same command. Either name the run's
processes, e.g. two on one machine:

  python -m experiments.train ... --coordinator_address=127.0.0.1:12345 \
      --num_processes=2 --process_id=0     # and --process_id=1 in the other

or start every process with a launcher JAX detects: under SLURM's srun or
Open MPI's mpirun (more than one task) nothing needs adding; on a TPU pod
slice pass --distributed. The workdir must be on a file system every process
sees.

Exit status 2 and one line on stderr for bad input: a config field, flag,
config file, data file or workdir (a workdir in use names the PID holding it).
Exit status 3 and one line for a run stopped by a non-finite value
(config.nonfinite='stop'), naming phase, step and metric.
"""

import functools
import re

from absl import app, flags, logging
from ml_collections import config_flags

from datarater.errors import ConfigError, DataError, Diverged, WorkdirError
from experiments._runs import (define_compilation_cache_flag, fail, finish, parse_flags,
                               use_compilation_cache)

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file, e.g. configs/uniform.py:dataset=digits')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (re-running resumes).')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None,
                                   'Multi-process run: host:port of process 0.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Multi-process run: process count.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Multi-process run: this process, 0-based.')
_DISTRIBUTED = flags.DEFINE_bool('distributed', False,
                                 'Multi-process run configured by the environment (TPU pod '
                                 'slice, or any cluster JAX detects).')
_CACHE = define_compilation_cache_flag()
flags.mark_flags_as_required(['config', 'workdir'])


def _flag_error(error: BaseException) -> str:
  """One line for a flag-parsing error: the "did you mean" hint of a misspelt
  config field, else the innermost message of the exception chain."""
  chain = [error]
  while chain[-1].__cause__ or chain[-1].__context__:
    chain.append(chain[-1].__cause__ or chain[-1].__context__)
  text = ' '.join(str(e).replace('\\n', ' ').replace("\\'", "'") for e in chain)
  hint = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', text)
  if hint:
    return f'--config has no field {hint[2]!r}; did you mean {hint[1]!r}?'
  inner = chain[-1]
  if isinstance(inner, (KeyError, AttributeError)):
    return f'--config has no field {inner}'
  flag = re.match(r'flag (--\S+): ', str(error))
  return f'{flag[1]}: {inner}' if flag and inner is not error else str(inner)


def _load_config():
  if _CONFIG.value is not None:
    _CONFIG.value.get('seed')  # a config file that failed to load raises here


def main(argv):
  del argv  # parse_flags refuses extra arguments
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # keep library INFO logs off the progress lines
  # jax and the project load here, not at import: `--help` and flag errors stay fast.
  from datarater.run import train_and_evaluate  # pylint: disable=import-outside-toplevel
  from datarater.train.sharding import initialize  # pylint: disable=import-outside-toplevel
  use_compilation_cache(_CACHE.value)  # before anything compiles (JAX checks it once)
  initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _DISTRIBUTED.value)
  try:
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except (ConfigError, DataError, WorkdirError) as e:
    fail(2, e)
  except Diverged as e:
    fail(3, f'diverged: {e}')
  finish()


if __name__ == '__main__':
  app.run(main, flags_parser=functools.partial(parse_flags, describe=_flag_error,
                                                 check=_load_config))
