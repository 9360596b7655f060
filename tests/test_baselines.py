"""The reference baselines (meta_only, finetune_meta, oracle, class_balanced), the declared
information, and the compute-matched uniform rows of the reproduction suites."""

import json
import os

import jax
import numpy as np
import pytest

from conftest import load_config
from datarater.data import sampler
from datarater.errors import ConfigError, DataError
from datarater.methods import Declares
from datarater.run import declaration, method_names, prepare
from datarater.train.state import Method, init_train_state
from datarater.weighting.class_balanced import class_counts, effective_number_weights
from experiments.reproduce import core


# ----------------------------------------------------------------------------- class-balanced


def test_effective_number_weights_equal_the_hand_computed_ones():
  # beta 0.5, counts 1, 2, 0, 4: raw (1 - b) / (1 - b^n) = 1, 2/3, -, 8/15 (sum 11/5);
  # times 3 present classes / sum -> 15/11, 10/11, 0, 8/11 (mean one over the present).
  w = effective_number_weights([1, 2, 0, 4], 0.5)
  np.testing.assert_allclose(w, [15 / 11, 10 / 11, 0.0, 8 / 11], rtol=1e-12)
  np.testing.assert_allclose(effective_number_weights([3, 7, 1], 0.0), [1.0, 1.0, 1.0])
  inverse = np.array([1 / 100, 1 / 10]) / np.mean([1 / 100, 1 / 10])  # beta -> 1: 1 / n_c
  np.testing.assert_allclose(effective_number_weights([100, 10], 1 - 1e-9), inverse, rtol=1e-5)
  assert class_counts([0, 2, 2, 3], 5).tolist() == [1, 0, 2, 1, 0]


def test_class_balanced_step_weights_each_loss_by_its_class():
  config = load_config('class_balanced', 'dataset=digits,smoke')
  config.data.imbalance = 20.0
  config.method.beta = 0.99
  dataset, task, method = prepare(config)
  method = method.phases[0].method
  counts = np.bincount(dataset.train.y, minlength=10)
  weights = effective_number_weights(counts, 0.99)
  idx = np.arange(16)
  batch = sampler.gather(dataset.train, idx)
  ts = init_train_state(task, jax.random.key(0))
  _, _, metrics = jax.jit(method.step)(ts, (), batch, None)
  losses = task.per_example_loss(ts.params, batch)
  expected = np.sum(weights[batch['y']] * np.asarray(losses)) / 16
  assert np.ptp(weights[batch['y']]) > 0.1   # the check is not one of equal weights
  np.testing.assert_allclose(metrics['train/weighted_loss'], expected, rtol=1e-5)
  with pytest.raises(ConfigError, match='method.beta'):
    config.method.beta = 1.0
    prepare(config)


# ----------------------------------------------------------------------------- meta_only, oracle


def test_meta_only_never_reads_a_training_row(run_smoke, monkeypatch):
  seen = []
  gather = sampler.gather
  monkeypatch.setattr(sampler, 'gather', lambda split, idx: seen.append(split.size) or
                      gather(split, idx))
  config = load_config('meta_only')
  dataset, _, _ = prepare(config)
  summary, _, _ = run_smoke('meta_only')
  assert len({dataset.meta.size, dataset.train.size, dataset.test.size}) == 3
  # training batches came from the meta split (the test split is gathered for evaluation)
  assert dataset.meta.size in seen and dataset.train.size not in seen
  assert summary['method_ledger']['steps'] == config.num_steps


def test_oracle_draws_every_clean_row_and_no_corrupted_one():
  config = load_config('oracle')
  dataset, _, pipeline = prepare(config)
  method = pipeline.phases[0].method
  corrupted = dataset.train.corrupted
  assert corrupted.any() and (~corrupted).any()
  b, clean = config.batch_size, np.flatnonzero(~corrupted)
  drawn = np.concatenate([method.sample(step, ()) for step in range(2 * len(clean) // b + 1)])
  assert not corrupted[drawn].any()
  assert set(drawn.tolist()) == set(clean.tolist())   # every clean row, over two passes
  assert 'corrupted' not in sampler.gather(dataset.train, drawn[:4])
  config.data.corruption_rates = (1.0,)
  with pytest.raises(DataError, match='no clean rows'):
    prepare(config)


# ----------------------------------------------------------------------------- finetune_meta


def test_finetune_starts_from_the_uniform_phase_and_changes_it(run_smoke):
  tiny, _, _ = run_smoke('finetune_meta', method__finetune_lr_factor=1e-9)
  # a fresh model would be at chance (test loss ~2.3); with a vanishing learning rate the
  # fine-tuned model is the uniform phase's
  assert tiny['result_phase'] == 'finetune' and tiny['baseline_phase'] == 'uniform'
  assert tiny['test_loss'] == pytest.approx(tiny['phases']['uniform']['test_loss'], abs=1e-5)


def test_finetune_result_differs_from_its_uniform_phase_and_is_charged_both(run_smoke):
  summary, rows, _ = run_smoke('finetune_meta', method__finetune_lr_factor=10.0)
  uniform = summary['phases']['uniform']
  assert abs(summary['test_loss'] - uniform['test_loss']) > 1e-3
  assert summary['method_ledger']['flops'] == pytest.approx(summary['ledger']['flops'])
  assert summary['method_ledger']['steps'] == 6 + 3   # smoke: num_steps + finetune_steps
  assert {r['phase'] for r in rows} == {'uniform', 'finetune'}


def test_finetune_fields_are_checked():
  config = load_config('finetune_meta')
  config.method.finetune_steps = 0
  with pytest.raises(ConfigError, match='method.finetune_steps'):
    prepare(config)
  config.method.finetune_steps, config.method.finetune_lr_factor = 3, 0.0
  with pytest.raises(ConfigError, match='method.finetune_lr_factor'):
    prepare(config)


# ----------------------------------------------------------------------------- information


def _uses_meta_rows(pipeline) -> bool:
  methods = [p.method for p in pipeline.phases if isinstance(p.method, Method)]
  return any(m.meta_batch_size > 0 or m.split == 'meta' for m in methods)


def test_a_method_that_reads_meta_rows_declares_it():
  """Declared information matches what the built phases fetch (phases built later are
  not checked)."""
  assert Declares('baseline', 'x').information == 'none'
  for name in method_names():
    if name == 'score_filter':  # needs another run's score file
      continue
    config = load_config(name)
    _, _, pipeline = prepare(config)
    if _uses_meta_rows(pipeline):
      assert declaration(name).information == 'meta rows', name
  assert declaration('oracle').information == 'ground truth'


# ----------------------------------------------------------------------------- compute-matched


def _write(folder, run, seed, summary):
  workdir = core.run_dir(folder, run, seed)
  os.makedirs(workdir)
  with open(os.path.join(workdir, 'summary.json'), 'w') as f:
    json.dump(summary, f)


def test_compute_matched_steps_are_the_flops_ratio_times_uniform_steps(tmp_path):
  folder = str(tmp_path)
  uniform = core.Run('s', 'uniform', 'uniform')
  method = core.Run('s', 'L2RW', 'l2rw')
  matched = core.Run('s', 'uniform, FLOPs of L2RW', 'uniform', match_compute='L2RW')
  runs = [uniform, method, matched]
  ledger = {'flops': 325.0e6, 'steps': 500, 'examples_processed': 32000}
  _write(folder, uniform, 0, {'ledger': ledger, 'method_ledger': ledger})
  # a run recorded before method_ledger: its own uniform arm (baseline_phase) is left out
  _write(folder, method, 0, {'ledger': {'flops': 1026.55e6 + 325e6, 'steps': 1000},
                             'baseline_phase': 'uniform',
                             'phases': {'uniform': {'ledger': ledger}}})
  ratio = 1026.55e6 / 325.0e6
  assert core.matched_steps(folder, runs, matched, 0) == round(ratio * 500) == 1579
  config = core.run_config(folder, runs, matched, 0)
  assert config.num_steps == 1579 and config.method.name == 'uniform'
  with pytest.raises(ConfigError, match='earlier in the grid'):
    core.matched_steps(folder, [matched, uniform, method], matched, 0)
  with pytest.raises(ConfigError, match='no readable summary'):
    core.matched_steps(folder, runs, matched, 1)


def test_table_rows_report_flops_relative_to_the_uniform_run_or_own_arm():
  from experiments.reproduce import report
  run = core.Run('s', 'DataRater', 'datarater')
  arm = {'flops': 10.0, 'examples_processed': 4.0}
  results = {('s', 'DataRater', 0): {core.COMPUTE: {'method': {'flops': 30.0,
                                                               'examples_processed': 8.0},
                                                    'arm': arm}},
             ('s', 'DataRater', 1): {core.COMPUTE: {'method': {'flops': 50.0,
                                                               'examples_processed': 8.0},
                                                    'arm': arm}}}
  assert report.compute_ratios(run, [0, 1], results) == {'FLOPs / uniform': 4.0,
                                                         'examples / uniform': 2.0}
  results[('s', 'uniform', 0)] = {core.COMPUTE: {'method': {'flops': 5.0,
                                                            'examples_processed': 8.0},
                                                 'arm': None}}
  results[('s', 'uniform', 1)] = results[('s', 'uniform', 0)]
  assert report.compute_ratios(run, [0, 1], results) == {'FLOPs / uniform': 8.0,
                                                         'examples / uniform': 1.0}
  assert report.information(run) == 'clean meta rows'


def test_method_ledger_leaves_out_a_paired_uniform_arm(run_smoke):
  summary, _, _ = run_smoke('el2n', method__discard_fraction=0.5)
  assert summary['baseline_phase'] == 'uniform'
  arm = summary['phases']['uniform']['ledger']
  for key in ('flops', 'steps', 'examples_processed'):
    assert summary['method_ledger'][key] == pytest.approx(summary['ledger'][key] - arm[key])
  assert summary['method_ledger']['flops'] > arm['flops'] > 0  # scoring + filtered phases
