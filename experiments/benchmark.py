"""Benchmarks the meta-gradient modes: flags only; the logic is datarater.meta.benchmark.

  python -m experiments.benchmark --out=runs/benchmark.json --plot=runs/benchmark.png

For each mode of datarater.meta.unroll ('reverse', 'remat', 'mixed',
'first_order') and each unroll length T: compile time, XLA temp memory of the
compiled program, median step time (as ratios to 'reverse', measured in this one
process) and the meta-gradient's max abs difference from 'reverse'. Prints a
table and PASS/FAIL lines for the targets (datarater.meta.benchmark.evaluate_checks);
the exit status is 0 either way. Defaults (MLP 64-512-512-10, B=128, T=1,2,4,8,
5 repeats) took about 4 minutes on 2 CPU cores shared with other jobs (load
average 5-8), about 190 s of it XLA compiling the 16 programs. Memory numbers are
deterministic; step-time ratios vary from run to run on a loaded machine.
"""

import json
import os

from absl import app, flags

from datarater.meta import benchmark
from datarater.meta import unroll

_MODES = flags.DEFINE_list('modes', list(unroll.MODES), "Modes to compare; must include 'reverse'.")
_HORIZONS = flags.DEFINE_list('horizons', ['1', '2', '4', '8'], 'Unroll lengths T.')
_LAYERS = flags.DEFINE_list('layer_sizes', ['64', '512', '512', '10'],
                            'Inner MLP: input dim, hidden widths..., classes.')
_RATER = flags.DEFINE_list('rater_hidden', ['64'], 'Hidden widths of the MLP rater.')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Inner batch size B.')
_META_BATCH = flags.DEFINE_integer('meta_batch_size', 128, 'Outer (meta) batch size.')
_LR = flags.DEFINE_float('learning_rate', 1e-3, 'Inner Adam learning rate (eps_root=1e-8).')
_WARMUP = flags.DEFINE_integer('warmup_steps', 10, 'Plain Adam steps before the unrolled window.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls per (mode, T); the median is reported.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of data and initialisation.')
_GRAD_RTOL = flags.DEFINE_float('grad_rtol', 1e-4,
                                'Check: exact modes max|g - g_reverse| <= grad_rtol * max|g_reverse|.')
_TIME_SLACK = flags.DEFINE_float('time_slack', 1.25,
                                 "Check: 'mixed' step time <= time_slack x 'reverse' at the largest T.")
_OUT = flags.DEFINE_string('out', None, 'Write the results (setup, rows, checks) to this JSON file.')
_PLOT = flags.DEFINE_string('plot', None, 'Write a PNG of temp memory and step-time ratio vs T.')


def _ints(name, values):
  try:
    return [int(v) for v in values]
  except ValueError:
    raise app.UsageError(f'--{name} must be a comma-separated list of ints, got {values}',
                         exitcode=2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    result = benchmark.run_benchmark(
        modes=_MODES.value, horizons=_ints('horizons', _HORIZONS.value),
        layer_sizes=_ints('layer_sizes', _LAYERS.value),
        rater_hidden=_ints('rater_hidden', _RATER.value), batch_size=_BATCH.value,
        meta_batch_size=_META_BATCH.value, learning_rate=_LR.value,
        warmup_steps=_WARMUP.value, repeats=_REPEATS.value, seed=_SEED.value,
        log=lambda line: print(line, flush=True))
  except ValueError as e:
    raise app.UsageError(str(e), exitcode=2)
  result['checks'] = benchmark.evaluate_checks(result, grad_rtol=_GRAD_RTOL.value,
                                               time_slack=_TIME_SLACK.value)
  print(benchmark.format_table(result))
  print(benchmark.format_checks(result['checks']))
  for path in (_OUT.value, _PLOT.value):
    if path and os.path.dirname(path):
      os.makedirs(os.path.dirname(path), exist_ok=True)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(result, f, indent=1)
    print(f'wrote {_OUT.value}')
  if _PLOT.value:
    benchmark.plot_memory(result, _PLOT.value)
    print(f'wrote {_PLOT.value}')


if __name__ == '__main__':
  app.run(main)
