"""Smoke test of the cost benchmark (`python -m experiments.benchmark --quick`).

Runs the quick benchmark once and checks its output: every field, every target
with a figure, the markdown and plot, that what it measured is the
meta-gradient of the problem it claims (every exact mode recomputed here and
equal to reverse on the benchmarked batch), that the modes agree with each
other where they compute the same thing and differ where they should, that
each method row timed that method's own step (FLOPs, which do not depend on
the machine), and that a run not asked for the PyTorch peers never imports
torch. Nothing here depends on timings.
"""

import builtins
import copy
import json
import os
import subprocess
import sys
from unittest import mock

import jax
import numpy as np
import pytest

from conftest import ROOT
from datarater.meta import unroll
from experiments import _runs
from experiments.benchmark import core, modes, report, targets, time_to_result

ROW_FIELDS = {'mode', 'T', 'exact', 'compile_s', 'temp_bytes', 'step_s', 'plain_s',
              'ratio_per_inner_step', 'flops', 'flops_ratio_per_inner_step', 'meta_loss',
              'grad_max_abs_diff_vs_reverse', 'grad_max_abs_reverse'}
TORCH_PEER = 'experiments.benchmark.torch_peer'


@pytest.fixture(scope='module')
def quick_run():
  """The quick benchmark (no peers) and the torch imports it attempted."""
  attempted, real_import = [], builtins.__import__

  def recording_import(name, *args, **kwargs):
    if name == 'torch' or name.startswith('torch.'):
      attempted.append(name)
    return real_import(name, *args, **kwargs)

  peer_loaded_before = TORCH_PEER in sys.modules
  with mock.patch('builtins.__import__', recording_import):
    result = core.run_benchmark(quick=True)
  return result, attempted, not peer_loaded_before and TORCH_PEER in sys.modules


@pytest.fixture(scope='module')
def result(quick_run):
  return quick_run[0]


def test_every_field_present(result):
  assert json.loads(json.dumps(result)) == result  # JSON-serialisable as is
  assert set(result) == {'machine', 'quick', 'repeats', 'sections', 'kept', 'modes',
                         'flops_check', 'methods', 'scoring', 'peers', 'peers_run',
                         'time_to_result', 'targets', 'notes'}
  assert result['peers_run'] is False
  # 'corpus' (minutes) is not part of --quick: tests/test_benchmark_corpus.py runs it tiny.
  assert result['sections'] == list(core.QUICK_SECTIONS) and result['kept'] == {}
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
  assert result['peers'] == {'skipped': core.PEERS_SKIPPED}
  fc = result['flops_check']
  assert fc['T'] == 5 and fc['rolled'] > 0 and fc['unrolled'] > 0
  ttr = result['time_to_result']
  assert [r['job'] for r in ttr['jobs']] == list(time_to_result.QUICK_JOBS)
  assert ttr['import_s'] > 0 and ttr['help_s'] > 0 and 'peer' not in ttr
  for r in ttr['jobs']:
    # The floor is the imports plus the fused steps; a whole process does more than that.
    np.testing.assert_allclose(r['floor_s'], np.median(r['import_all']) + r['fused_s'])
    assert 0 < r['fused_s'] < r['floor_s'] < min(r['cold_s'], r['warm_s'])
    np.testing.assert_allclose(r['warm_ratio'], r['warm_s'] / r['floor_s'])
    assert 'experiments.train --config=configs/' in r['command']


def test_sections_not_run_are_kept_from_the_previous_result(result):
  again = core.run_benchmark(quick=True, sections=('scoring',), previous=result)
  for field in ('modes', 'flops_check', 'peers', 'methods', 'time_to_result'):
    assert again[field] == result[field]
  assert set(again['kept']) == {'modes', 'methods', 'time_to_result'}
  assert again['kept']['modes'] == result['machine'] and again['sections'] == ['scoring']
  assert [t['name'] for t in again['targets']] == [t['name'] for t in result['targets']]
  assert "Section 'modes' is kept from an earlier run" in report.format_markdown(again)
  alone = core.run_benchmark(quick=True, sections=('scoring',))
  assert set(alone) & {'modes', 'methods', 'time_to_result'} == set() and alone['targets'] == []


def test_a_run_without_peers_never_imports_torch(quick_run):
  _, attempted, peer_loaded = quick_run
  assert attempted == [] and not peer_loaded


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
  text = targets.format_targets(result['targets']).splitlines()
  assert len(text) == len(result['targets'])


def test_exact_modes_equal_reverse_on_the_benchmarked_batch(result):
  """Every exact mode's meta-gradient, recomputed here on the quick problem at
  T=5 (two checkpointed segments), equals reverse's; the benchmark's meta
  losses and gradient differences are these."""
  prob = modes.make_problem((8, 16, 3), (4,), 8, 8, 5, 1e-3, 0)
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


def test_modes_agree_where_they_compute_the_same_thing(result):
  """At every T: one meta loss for all modes (the same forward unroll); every
  exact mode's gradient equal to reverse's, first_order's not (so the column
  can tell); first_order does the least arithmetic (no second-order term) and
  checkpointed at least reverse's (it recomputes segments)."""
  rows = result['modes']['rows']
  for t in sorted({r['T'] for r in rows}):
    at = {r['mode']: r for r in rows if r['T'] == t}
    np.testing.assert_allclose([r['meta_loss'] for r in at.values()], at['reverse']['meta_loss'],
                               rtol=1e-6, err_msg=f'T={t}')
    rel = {m: r['grad_max_abs_diff_vs_reverse'] / r['grad_max_abs_reverse'] for m, r in at.items()}
    assert all(rel[m] <= 1e-4 for m in unroll.EXACT_MODES), (t, rel)
    assert rel['first_order'] > 1e-2, (t, rel)
    assert all(at[m]['flops'] > at['first_order']['flops'] for m in unroll.EXACT_MODES), t
    assert at['checkpointed']['flops'] >= at['reverse']['flops'], t


def test_each_method_row_timed_its_own_step(result):
  """FLOPs ratios to the uniform step: a loss rule reweights the same gradient
  (~1x); L2RW adds a look-ahead gradient and its meta-gradient (> 2x)."""
  flops = {r['method']: r['flops_ratio'] for r in result['methods']}
  assert abs(flops['kl_dro'] - 1) < 0.05, flops
  assert flops['l2rw'] > 2, flops
  s = result['scoring']
  assert s['score_batch'] == 256
  np.testing.assert_allclose(s['ratio'], s['scored_per_s'] / s['trained_per_s'])


def test_markdown_and_plot(result, tmp_path):
  text = report.format_markdown(result)
  for t in result['targets']:
    assert t['name'] in text
  assert '](modes_vs_T.png)' in text
  assert '`python -m experiments.benchmark --quick`' in text and core.PEERS_SKIPPED in text
  path = str(tmp_path / 'modes_vs_T.png')
  report.plot_modes(result, path)
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert os.path.getsize(path) > 1000
  report.write_report(result, str(tmp_path))
  assert json.load(open(tmp_path / 'benchmark.json')) == result
  assert open(tmp_path / 'benchmark.md').read() == text


def test_markdown_peers_section(result):
  """The peers' tables (rendered here from made-up rows: no torch needed)."""
  with_peers = copy.deepcopy(result)
  with_peers['peers'] = {'step': [dict(hidden=16, batch_size=8, ours_s=1e-3, torch_s=3e-3,
                                       speedup=3.0)]}
  with_peers['time_to_result']['peer'] = dict(
      steps=10, batch_size=64, hidden=256, median_speedup=2.0,
      pairs=[dict(ours_s=1.0, torch_s=2.0, speedup=2.0)])
  assert '--peers' not in report.format_markdown(with_peers)   # kept peers, this run had none
  with_peers['peers_run'] = True
  text = report.format_markdown(with_peers)
  assert '`python -m experiments.benchmark --quick --peers`' in text
  assert '| 16 | 8 | 1.00 | 3.00 | 3.00 |' in text and '| 1 | 1.0 | 2.0 | 2.00 |' in text
  assert core.PEERS_SKIPPED not in text
  assert 'L2RW npz job, torch.func process / ours' in ' '.join(
      t['name'] for t in targets.evaluate_targets(with_peers))


@pytest.mark.skipif(core.torch_installed(), reason='torch is installed: --peers is valid')
def test_peers_without_torch_is_a_flag_error(tmp_path):
  proc = subprocess.run([sys.executable, '-m', 'experiments.benchmark', '--quick', '--peers',
                         f'--out={tmp_path}/out'], cwd=ROOT, capture_output=True, text=True,
                        env=dict(os.environ, JAX_PLATFORMS='cpu'), timeout=300)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
  assert lines[0].startswith('error: --peers') and 'requirements-bench.txt' in lines[0]
  assert os.listdir(tmp_path) == []


def test_unknown_section_is_a_flag_error(tmp_path):
  proc = subprocess.run([sys.executable, '-m', 'experiments.benchmark', '--quick',
                         '--sections=modes,bogus', f'--out={tmp_path}/out'], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
  assert lines[0].startswith('error: --sections') and 'bogus' in lines[0]
  assert os.listdir(tmp_path) == []


def test_fused_floor_of_a_multi_phase_pipeline():
  """DataRater's floor fuses each of its phases (meta-training, two filtered arms, uniform); a
  filter phase is built from the rater's scores, so the meta phase's finalize runs first."""
  config = time_to_result.job_overrides('DataRater quick start (digits)', '', True)
  seconds = time_to_result.fused_seconds(_runs.load_config(config[0], config[1]), 1)
  assert seconds > 0
