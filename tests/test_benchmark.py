"""Smoke test of the meta-gradient benchmark (experiments/benchmark.py).

Runs the benchmark on a tiny problem (T in (1, 2), 1 repeat) and checks its
output: structure, memory numbers, and that what it measured is the
meta-gradient of the problem it claims (recomputed here for every mode).
Nothing here depends on timings.
"""

import json
import os

import jax
import numpy as np
import pytest

from datarater.meta import unroll
from experiments import benchmark

HORIZONS = (1, 2)
PROBLEM = dict(layer_sizes=(4, 8, 3), rater_hidden=(), batch_size=6, meta_batch_size=5,
               learning_rate=1e-3, warmup_steps=3, seed=1)
# XLA compilation of the 9 small programs dominates this test. XLA:CPU's older
# (non-fusion-emitter) codegen without LLVM optimisation compiles them about 3x
# faster; compiler options change neither the HLO nor its floating-point semantics.
FAST_COMPILE = {'xla_cpu_use_fusion_emitters': False, 'xla_backend_optimization_level': 0}


@pytest.fixture(scope='module')
def result():
  return benchmark.run_benchmark(modes=unroll.MODES, horizons=HORIZONS, repeats=1,
                                 compiler_options=FAST_COMPILE, **PROBLEM)


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
    assert set(r['ratio_to_reverse']) == {'step_time', 'compile_time', 'temp_size'}


def test_rows_measure_the_meta_gradient_of_the_benchmarked_batch(result):
  """Every mode's meta-gradient, recomputed here on the problem the benchmark built:
  exact modes equal reverse's, first_order is exact for T = 1 only, and the
  benchmark's meta losses and gradient differences are these."""
  prob = benchmark.make_problem(max_steps=max(HORIZONS), compiler_options=FAST_COMPILE,
                                **PROBLEM)
  for t in HORIZONS:
    @jax.jit
    def every_mode(eta, params, opt_state, train, meta):
      return {mode: unroll.meta_loss_and_grad(
          eta, params, opt_state, train, meta, inner_loss_fn=prob['inner_loss_fn'],
          outer_loss_fn=prob['outer_loss_fn'], optimizer=prob['optimizer'], mode=mode)[:2]
              for mode in unroll.MODES}

    out = jax.device_get(every_mode(prob['eta'], prob['params'], prob['opt_state'],
                                    jax.tree.map(lambda x: x[:t], prob['train']), prob['meta']))
    ref = np.concatenate([np.ravel(g) for g in jax.tree.leaves(out['reverse'][1])])
    scale = np.max(np.abs(ref))
    # A non-trivial meta-gradient (the warm-up steps make T = 1 non-degenerate).
    assert scale > 1e-4
    for r in (r for r in result['results'] if r['T'] == t):
      loss, grad = out[r['mode']]
      diff = np.max(np.abs(np.concatenate([np.ravel(g) for g in jax.tree.leaves(grad)]) - ref))
      assert r['meta_loss'] == pytest.approx(float(loss), rel=1e-6), r
      if r['exact'] or t == 1:
        assert diff <= 1e-5 * scale, (r['mode'], t, diff, scale)
        assert r['grad_max_abs_diff_vs_reverse'] <= 1e-5 * scale, r
      else:  # first_order beyond T = 1: an approximation, reported as such.
        assert diff > 1e-2 * scale, (t, diff, scale)
        assert r['grad_max_abs_diff_vs_reverse'] == pytest.approx(diff, rel=1e-3), r


def test_memory_numbers_are_positive_ints(result):
  for r in result['results']:
    for field in ('temp_size_in_bytes', 'argument_size_in_bytes', 'output_size_in_bytes'):
      value = r['memory'][field]
      assert isinstance(value, int) and value > 0, (r['mode'], r['T'], field, value)
  # The arguments hold T stacked batches: they grow with T.
  arg = {r['T']: r['memory']['argument_size_in_bytes'] for r in result['results']
         if r['mode'] == 'reverse'}
  assert arg[2] > arg[1]


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
