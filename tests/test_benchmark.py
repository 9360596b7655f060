"""Smoke test of the meta-gradient benchmark (datarater.meta.benchmark).

Runs the library function on a tiny problem (T in (1, 2), 1 repeat) and checks
its output: structure, agreement of the exact modes with 'reverse', memory
numbers. Nothing here depends on timings.
"""

import json
import os

import numpy as np
import pytest

from datarater.meta import benchmark
from datarater.meta import unroll

HORIZONS = (1, 2)
# XLA compilation of the 9 small programs dominates this test. XLA:CPU's older
# (non-fusion-emitter) codegen without LLVM optimisation compiles them about 3x
# faster; compiler options change neither the HLO nor its floating-point semantics.
FAST_COMPILE = {'xla_cpu_use_fusion_emitters': False, 'xla_backend_optimization_level': 0}


@pytest.fixture(scope='module')
def result():
  return benchmark.run_benchmark(
      modes=unroll.MODES, horizons=HORIZONS, layer_sizes=(4, 8, 3), rater_hidden=(),
      batch_size=6, meta_batch_size=5, warmup_steps=3, repeats=1, seed=1,
      compiler_options=FAST_COMPILE)


def test_structure(result):
  assert json.loads(json.dumps(result)) == result  # JSON-serialisable as is.
  setup = result['setup']
  assert setup['modes'] == list(unroll.MODES) and setup['horizons'] == list(HORIZONS)
  assert setup['compiler_options'] == FAST_COMPILE
  assert setup['problem']['inner_params'] == 4 * 8 + 8 + 8 * 3 + 3
  rows = result['results']
  assert [(r['mode'], r['T']) for r in rows] == [(m, t) for t in HORIZONS for m in unroll.MODES]
  for r in rows:
    assert r['lower_s'] > 0 and r['compile_s'] > 0
    assert len(r['step_times_s']) == 1 and r['step_s'] == r['step_times_s'][0] > 0
    assert np.isfinite(r['meta_loss']) and r['exact'] == (r['mode'] in unroll.EXACT_MODES)
    ref = next(x for x in rows if x['mode'] == 'reverse' and x['T'] == r['T'])
    ratios = r['ratio_to_reverse']
    assert ratios['step_time'] == pytest.approx(r['step_s'] / ref['step_s'])
    assert ratios['temp_size'] == pytest.approx(
        r['memory']['temp_size_in_bytes'] / ref['memory']['temp_size_in_bytes'])
    if r['mode'] == 'reverse':
      assert ratios == {'step_time': 1.0, 'compile_time': 1.0, 'temp_size': 1.0}


def test_memory_numbers_are_positive_ints(result):
  for r in result['results']:
    for field in ('temp_size_in_bytes', 'argument_size_in_bytes', 'output_size_in_bytes'):
      value = r['memory'][field]
      assert isinstance(value, int) and value > 0, (r['mode'], r['T'], field, value)
  # The arguments hold T stacked batches: they grow with T.
  arg = {r['T']: r['memory']['argument_size_in_bytes'] for r in result['results']
         if r['mode'] == 'reverse'}
  assert arg[2] > arg[1]


def test_exact_modes_agree_with_reverse(result):
  for r in result['results']:
    # A non-trivial meta-gradient (the warm-up steps make T = 1 non-degenerate),
    # so that agreement means something.
    assert r['grad_max_abs_reverse'] > 1e-4, r
    if r['exact']:
      assert r['grad_max_abs_diff_vs_reverse'] <= 1e-5, r
      assert r['meta_loss_abs_diff_vs_reverse'] <= 1e-6, r
  first_order = {r['T']: r['grad_max_abs_diff_vs_reverse'] for r in result['results']
                 if r['mode'] == 'first_order'}
  assert first_order[1] <= 1e-5       # exact for T = 1
  assert first_order[2] > 1e-4        # an approximation beyond: the comparison is not vacuous


def test_checks_table_and_plot(result, tmp_path):
  checks = benchmark.evaluate_checks(result)
  assert checks and all(set(c) == {'name', 'passed', 'detail'} and isinstance(c['passed'], bool)
                        for c in checks)
  grad_checks = [c for c in checks if 'meta-gradient equals reverse' in c['name']]
  assert len(grad_checks) == 2 and all(c['passed'] for c in grad_checks)
  text = benchmark.format_checks(checks)
  assert len(text.splitlines()) == len(checks)
  assert all(line.startswith(('PASS: ', 'FAIL: ')) for line in text.splitlines())

  table = benchmark.format_table(result).splitlines()
  body = [line.split() for line in table if line.split() and line.split()[0] in unroll.MODES]
  assert [(b[0], int(b[1])) for b in body] == [(r['mode'], r['T']) for r in result['results']]

  path = str(tmp_path / 'memory.png')
  benchmark.plot_memory(result, path)
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert os.path.getsize(path) > 1000


@pytest.mark.parametrize('kwargs', [
    dict(modes=('remat', 'mixed')),               # no 'reverse' to compare with
    dict(modes=('reverse', 'backward')),          # unknown mode
    dict(horizons=(0, 2)),
    dict(horizons=(2, 2)),
    dict(layer_sizes=(4,)),
    dict(repeats=0),
])
def test_bad_arguments_raise_before_compiling(kwargs):
  with pytest.raises(ValueError):
    benchmark.run_benchmark(**kwargs)
