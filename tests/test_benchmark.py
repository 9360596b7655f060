"""Smoke test of the cost benchmark (experiments/benchmark.py --quick).

Runs the quick benchmark once and checks its output: every field, every target
with a figure, the markdown and plot, and that what it measured is the
meta-gradient of the problem it claims (every exact mode recomputed here and
equal to reverse on the benchmarked batch). Nothing here depends on timings.
"""

import json
import os

import jax
import numpy as np
import pytest

from datarater.meta import unroll
from experiments import benchmark

ROW_FIELDS = {'mode', 'T', 'exact', 'compile_s', 'temp_bytes', 'step_s', 'plain_s',
              'ratio_per_inner_step', 'flops', 'flops_ratio_per_inner_step', 'meta_loss',
              'grad_max_abs_diff_vs_reverse', 'grad_max_abs_reverse'}


@pytest.fixture(scope='module')
def result():
  return benchmark.run_benchmark(quick=True)


def test_every_field_present(result):
  assert json.loads(json.dumps(result)) == result  # JSON-serialisable as is
  assert set(result) == {'machine', 'quick', 'repeats', 'modes', 'flops_check', 'methods',
                         'scoring', 'peers', 'targets', 'notes'}
  assert {'cpu_count', 'device', 'jax', 'platform', 'torch'} <= set(result['machine'])
  rows = result['modes']['rows']
  assert [(r['mode'], r['T']) for r in rows] == [(m, t) for t in (2, 5) for m in unroll.MODES]
  for r in rows:
    assert set(r) == ROW_FIELDS
    assert r['step_s'] > 0 and r['plain_s'] > 0 and r['temp_bytes'] > 0 and r['flops'] > 0
    assert r['exact'] == (r['mode'] in unroll.EXACT_MODES)
  for r in result['methods']:
    assert r['ratio'] > 0 and r['flops_ratio'] > 0 and r['phase']
  assert result['scoring']['scored_per_s'] > 0 and result['scoring']['trained_per_s'] > 0
  peers = result['peers']
  assert peers.get('skipped') or [r['hidden'] for r in peers['step']] == [16]
  fc = result['flops_check']
  assert fc['T'] == 5 and fc['rolled'] > 0 and fc['unrolled'] > 0


def test_targets_listed_with_figures(result):
  names = [t['name'] for t in result['targets']]
  assert any('meta-step per inner step' in n for n in names)
  assert any('checkpointed temp memory' in n for n in names)
  assert any('compile time' in n for n in names)
  assert any('FLOPs of the rolled' in n for n in names)
  assert {f'{m} meta-gradient equals reverse (max rel diff, all T)'
          for m in unroll.EXACT_MODES} <= set(names)
  assert {f"{r['method']} step / plain step" for r in result['methods']
          if r['target'] is not None} <= set(names)
  for t in result['targets']:
    assert t['figure'] and t['target'] and isinstance(t['met'], bool)
  grad_checks = [t for t in result['targets'] if 'equals reverse' in t['name']]
  assert all(t['met'] for t in grad_checks)
  text = benchmark.format_targets(result['targets']).splitlines()
  assert len(text) == len(result['targets'])


def test_exact_modes_equal_reverse_on_the_benchmarked_batch(result):
  """Every exact mode's meta-gradient, recomputed here on the quick problem at
  T=5 (two checkpointed segments), equals reverse's; the benchmark's meta
  losses and gradient differences are these."""
  prob = benchmark.make_problem((8, 16, 3), (4,), 8, 8, 5, 1e-3, 0)
  args = (prob['eta'], prob['params'], prob['opt_state'], prob['train'], prob['meta'])

  @jax.jit
  def every_mode(*args):
    return {m: unroll.meta_loss_and_grad(*args, inner_loss_fn=prob['inner_loss_fn'],
                                         outer_loss_fn=prob['outer_loss_fn'],
                                         optimizer=prob['optimizer'], mode=m)[:2]
            for m in unroll.MODES}

  out = every_mode(*args)
  flat = lambda tree: np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])
  ref = flat(out['reverse'][1])
  assert np.linalg.norm(ref) > 0
  for mode in unroll.EXACT_MODES:
    np.testing.assert_allclose(flat(out[mode][1]), ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max(),
                               err_msg=mode)
  assert np.abs(flat(out['first_order'][1]) - ref).max() > 1e-4 * np.abs(ref).max()
  rows = {(r['mode'], r['T']): r for r in result['modes']['rows']}
  for mode in unroll.MODES:
    np.testing.assert_allclose(rows[mode, 5]['meta_loss'], float(out[mode][0]), rtol=1e-5)
    diff = np.abs(flat(out[mode][1]) - ref).max()
    np.testing.assert_allclose(rows[mode, 5]['grad_max_abs_diff_vs_reverse'], diff,
                               atol=1e-6 * np.abs(ref).max())


def test_markdown_and_plot(result, tmp_path):
  text = benchmark.format_markdown(result)
  for t in result['targets']:
    assert t['name'] in text
  assert '](modes_vs_T.png)' in text
  path = str(tmp_path / 'modes_vs_T.png')
  benchmark.plot_modes(result, path)
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert os.path.getsize(path) > 1000
