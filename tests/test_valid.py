"""The validation split and the decisions made on it: early stopping, net compute gain,
discard_fraction='auto', and the suites' early-stopped uniform row."""

import numpy as np
import pytest

from datarater.data import load_dataset
from datarater.data.core import MIN_VALID, DataError, check_valid_size, valid_count
from datarater.errors import ConfigError
from datarater.methods import _filter
from datarater.train.loop import PhaseResult
from datarater.train.pipeline import compute_gain, early_stopped
from datarater.weighting.scores import MAX_DISCARD, mixture_discard_fraction
from experiments._runs import load_config


def _data(arg='dataset=digits,smoke', **data):
  config = load_config('uniform', arg)
  for k, v in data.items():
    config.data[k] = v
  return load_dataset(config.data, 0), config


def _bytes(split):
  return {bytes(x.tobytes()) + bytes(y.tobytes()) for x, y in zip(split.x, split.y)}


def test_valid_split_is_disjoint_sized_and_corrupted_like_train():
  """valid = 10% of the corrupted pool after the meta split; its rows are nobody else's;
  it is corrupted at the training rate; meta (clean) and test are what they were."""
  d, _ = _data(**{'corruption_rates': (0.4,)})
  no_valid, _ = _data(**{'corruption_rates': (0.4,), 'valid_size': 0})
  pool = d.train.size + d.valid.size
  assert pool == no_valid.train.size and d.valid.size == valid_count(0.1, pool) == round(0.1 * pool)
  rows = [set(s.row.tolist()) for s in (d.train, d.meta, d.valid)]
  assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
  assert sum(map(len, rows)) == d.info.num_rows
  assert not (_bytes(d.valid) & _bytes(d.test))
  # Corrupted like train (40% symmetric label noise), unlike the clean meta split.
  assert 0.3 < d.valid.corrupted.mean() < 0.5 and not d.meta.corrupted.any()
  # Carved last: the meta split, the test split and every kept training row are unchanged.
  assert np.array_equal(d.meta.row, no_valid.meta.row) and np.array_equal(d.test.y, no_valid.test.y)
  kept = np.isin(no_valid.train.row, d.train.row)
  assert np.array_equal(no_valid.train.y[kept], d.train.y)
  assert no_valid.valid.size == 0


def test_valid_size_as_rows_floor_and_bad_values():
  d, _ = _data(valid_size=37)
  assert d.valid.size == 37
  assert valid_count(0.1, 300) == MIN_VALID and valid_count(0.1, 100) == 25  # floor, capped at N/4
  for bad in (-1, 1.5, float('nan')):
    with pytest.raises(DataError, match='config.data.valid_size'):
      _data(valid_size=bad)
  for bad in (True, 'some', None):
    with pytest.raises(DataError, match='config.data.valid_size'):
      check_valid_size(bad)
  with pytest.raises(DataError, match='config.data.valid_size'):
    _data(valid_size=5000)  # leaves nothing to train on


def test_text_valid_windows_per_source():
  d, config = _data('dataset=stdlib_text,smoke')
  k, n = len(config.data.text_packages), config.data.examples_per_source
  assert d.valid.size == k * valid_count(0.1, n)
  assert np.bincount(d.valid.source).tolist() == [valid_count(0.1, n)] * k
  rows = np.concatenate([d.train.row, d.meta.row, d.valid.row])
  assert len(np.unique(rows)) == len(rows) == d.info.num_rows
  assert not (_bytes(d.valid) & _bytes(d.train))


def test_npz_valid_keys_are_used_as_given(tmp_path):
  rng = np.random.default_rng(0)
  path = tmp_path / 'd.npz'
  x_valid = rng.normal(size=(7, 3)).astype(np.float32)
  np.savez(path, x_train=rng.normal(size=(60, 3)), y_train=rng.integers(0, 2, 60),
           x_test=rng.normal(size=(10, 3)), y_test=rng.integers(0, 2, 10),
           x_valid=x_valid, y_valid=np.array([0, 1, 0, 1, 0, 1, 0]))
  d, _ = _data('dataset=npz,smoke', path=str(path), meta_size=10)
  assert np.array_equal(d.valid.x, x_valid) and (d.valid.row == -1).all()
  assert d.train.size + d.meta.size == 60


def test_valid_metrics_logged_and_early_stopped_reported(run_smoke):
  summary, rows, _ = run_smoke('uniform')
  evals = [r for r in rows if 'test/loss' in r]
  assert evals and all(isinstance(r['valid/loss'], float) and 0 <= r['valid/accuracy'] <= 1
                       for r in evals)
  es = summary['phases']['train']['early_stopped']
  best = max(evals, key=lambda r: (r['valid/accuracy'], -r['step']))
  assert es['step'] == best['step'] and es['test_accuracy'] == best['test/accuracy']


def test_eval_test_last_evaluates_the_test_split_once_and_trains_the_same(run_smoke):
  """eval_test='last': validation at every evaluation, the test split at the last step only,
  the same final metrics as 'every'; a bad value is one ConfigError naming the field."""
  every, every_rows, _ = run_smoke('uniform', eval_every=2)
  last, rows, _ = run_smoke('uniform', tag='last', eval_every=2, eval_test='last')
  evals = [r for r in rows if 'valid/loss' in r]
  assert len(evals) == len([r for r in every_rows if 'valid/loss' in r]) > 2
  assert [r['step'] for r in rows if 'test/loss' in r] == [evals[-1]['step']]
  assert [r['valid/loss'] for r in evals] == [r['valid/loss'] for r in every_rows
                                              if 'valid/loss' in r]
  assert last['test_accuracy'] == every['test_accuracy']
  assert last['test_loss'] == every['test_loss']
  with pytest.raises(ConfigError, match='eval_test'):
    run_smoke('uniform', tag='bad', eval_test='never')


def _rows(phase, points):
  """metrics rows of `phase`: (step, valid loss, valid accuracy, test accuracy), plus a
  train-only row that carries no evaluation."""
  out = [{'phase': phase, 'step': 1, 'train/loss': 9.0}]
  out += [{'phase': phase, 'step': s, 'valid/loss': vl, 'valid/accuracy': va,
           'test/accuracy': ta, 'test/loss': 1 - ta} for s, vl, va, ta in points]
  return out


def test_early_stopped_picks_best_valid_accuracy_earliest_on_ties():
  rows = _rows('u', [(10, 1.0, 0.5, 0.6), (20, 0.8, 0.7, 0.65), (30, 0.9, 0.7, 0.9),
                     (40, 1.2, 0.6, 0.95)]) + _rows('other', [(20, 0.1, 0.99, 0.99)])
  es = early_stopped(rows, 'u')
  assert es == {'step': 20, 'valid_accuracy': 0.7, 'valid_loss': 0.8, 'test_accuracy': 0.65,
                'test_loss': pytest.approx(0.35)}
  assert early_stopped(_rows('u', []), 'u') is None


def _result(steps, flops_per_step):
  return PhaseResult(None, None, {}, {'steps': steps, 'flops': steps * flops_per_step})


def test_compute_gain_targets_the_baselines_best_validation_loss():
  """Target: uniform's best validation loss (0.5 at step 40, though it ends at 0.9); the
  filtered phase first reaches it at step 20: gain 1 - 20 * 3 / (40 * 2)."""
  rows = (_rows('uniform', [(20, 0.7, 0, 0), (40, 0.5, 0, 0), (60, 0.5, 0, 0), (80, 0.9, 0, 0)])
          + _rows('filtered', [(20, 0.5, 0, 0), (40, 0.4, 0, 0), (60, 0.3, 0, 0), (80, 0.2, 0, 0)]))
  c = compute_gain(rows, _result(80, 3.0), _result(80, 2.0), 'filtered', 'uniform', extra_flops=8)
  assert c['target_valid_loss'] == 0.5 and c['baseline_steps_to_target'] == 40
  assert c['steps_to_target'] == 20 and c['eval_every'] == 20 and c['num_evals'] == 4
  assert c['net_compute_gain'] == pytest.approx(1 - 60 / 80)
  assert c['net_compute_gain_incl_extra'] == pytest.approx(1 - 68 / 80)
  never = [dict(r, **{'valid/loss': 0.6}) if r['phase'] == 'filtered' and 'valid/loss' in r
           else r for r in rows]
  assert compute_gain(never, _result(80, 3.0), _result(80, 2.0), 'filtered',
                      'uniform')['net_compute_gain'] is None
  none = compute_gain([], _result(80, 3.0), _result(80, 2.0), 'filtered', 'uniform')
  assert none['net_compute_gain'] is None and 'valid_size=0' in none['reason']


def test_mixture_estimate_on_synthetic_scores():
  rng = np.random.default_rng(0)
  noisy = mixture_discard_fraction(np.r_[rng.normal(2, 0.5, 1200), rng.normal(-2, 0.7, 800)])
  assert noisy['estimated_fraction'] == pytest.approx(0.4, abs=0.02) and noisy['separation'] > 2
  flipped = mixture_discard_fraction(np.r_[rng.normal(2, 0.5, 800), rng.normal(-2, 0.7, 1200)])
  assert flipped['estimated_fraction'] == pytest.approx(0.6, abs=0.02)  # the LOW component
  clean = mixture_discard_fraction(rng.normal(size=2000))  # one population: reported as such
  assert clean['separation'] < 2 and 0 <= clean['estimated_fraction'] <= MAX_DISCARD


def test_auto_choice_takes_the_best_arm_on_final_validation_accuracy():
  """Decided on the final validation accuracy (the final models are reported): the uniform
  arm's early peak (0.80) does not count against a filtered model that ends better; ties go
  to the arm that discards less; test accuracy is never looked at."""
  est = {'estimated_fraction': 0.4, 'separation': 3.0}
  rhos = {'filtered': 0.4, 'filtered_half': 0.2}
  uni = _rows('uniform', [(10, 1.0, 0.80, 0.9), (20, 1.0, 0.70, 0.7)])

  def arms(full, half):
    return (_rows('filtered', [(10, 1.0, 0.72, 0.1), (20, 1.0, full, 0.1)]) +
            _rows('filtered_half', [(10, 1.0, 0.72, 0.99), (20, 1.0, half, 0.99)]))

  result, extras = _filter.auto_choice(est, rhos, uni + arms(0.75, 0.73))
  assert result == 'filtered' and extras['discard_fraction'] == 0.4
  assert extras['discard_fraction_auto']['valid_accuracy'] == {
      'uniform': 0.70, 'filtered_half': 0.73, 'filtered': 0.75}
  result, extras = _filter.auto_choice(est, rhos, uni + arms(0.73, 0.75))
  assert result == 'filtered_half' and extras['discard_fraction'] == 0.2
  result, _ = _filter.auto_choice(est, rhos, uni + arms(0.75, 0.75))  # tie: less discard
  assert result == 'filtered_half'
  result, extras = _filter.auto_choice(est, rhos, uni + arms(0.70, 0.70))  # tie with uniform
  assert result == 'uniform' and extras['discard_fraction'] == 0.0


@pytest.mark.parametrize('name', ['aum', 'datarater', 'score_filter'])
def test_auto_without_a_validation_split_is_refused(name, tmp_path):
  from datarater.run import prepare
  config = load_config(name, 'dataset=digits,smoke')
  assert config.method.discard_fraction == 'auto'  # the default of every filter
  config.data.valid_size = 0
  if name == 'score_filter':
    d, _ = _data(valid_size=0)
    np.save(tmp_path / 's.npy', np.zeros(d.info.num_rows))
    config.method.scores_path = str(tmp_path / 's.npy')
  with pytest.raises(ConfigError, match='config.data.valid_size'):
    prepare(config)
  config.method.discard_fraction = 0.3  # a number still works without one
  prepare(config)


def test_auto_run_records_estimate_arms_choice_and_result(run_smoke):
  summary, rows, _ = run_smoke('el2n', num_steps=12, eval_every=4,
                               **{'data__corruption_rates': (0.4,)})
  auto = summary['discard_fraction_auto']
  arms = ('uniform', 'filtered_half', 'filtered')
  assert set(summary['phases']) >= set(arms) and set(auto['arms']) == set(arms[1:])
  assert auto['arms']['filtered_half'] <= auto['arms']['filtered']
  assert summary['result_phase'] == auto['result_phase'] in arms
  assert summary['discard_fraction'] == auto['arms'].get(auto['result_phase'], 0.0)
  assert summary['test_accuracy'] == summary['phases'][auto['result_phase']]['test_accuracy']
  final = {p: [r for r in rows if r['phase'] == p and 'valid/accuracy' in r][-1]['valid/accuracy']
           for p in arms}
  assert final[auto['result_phase']] == max(final.values())
  # every arm was needed to decide: all are charged to the method
  assert summary['method_ledger']['flops'] == sum(p['ledger']['flops']
                                                  for p in summary['phases'].values())


def test_suite_early_stopped_row_reads_the_uniform_runs_summary():
  from experiments.reproduce.suites import SUITES
  from experiments.reproduce.suites._common import EARLY_STOPPED, early_stopped_view
  summary = {'result_phase': 'train', 'phases': {'train': {
      'test_accuracy': 0.5, 'early_stopped': {'test_accuracy': 0.8, 'test_loss': 0.3}}}}
  assert early_stopped_view()(summary) == {'test_accuracy': 0.8, 'test_loss': 0.3}
  assert early_stopped_view()({**summary, 'ledger': {'flops': 2}})['ledger'] == {'flops': 2}
  arm = {'result_phase': 'filtered', 'baseline_phase': 'uniform', 'phases': {
      'filtered': {'early_stopped': {'test_accuracy': 0.1}},
      'uniform': {'test_accuracy': 0.5, 'early_stopped': {'test_accuracy': 0.7}}}}
  assert early_stopped_view('uniform')(arm)['test_accuracy'] == 0.7
  for name in ('noisy_labels', 'long_tail'):
    runs = SUITES[name].runs('cpu')
    for setting in {r.setting for r in runs} - {'mnist1d calibration (authors\' recipe)'}:
      rows = [r for r in runs if r.setting == setting]
      es = [r for r in rows if r.method == EARLY_STOPPED]
      assert len(es) == 1 and es[0].reads == 'uniform' and rows.index(es[0]) > [
          r.method for r in rows].index('uniform'), (name, setting)
  # datarater_filtering: one early-stopped row per preset, in the run that meta-trains the rater
  # (the uniform arm is the same run for every discard fraction of a seed).
  runs = SUITES['datarater_filtering'].runs('cpu')
  assert sorted(r.setting for r in runs if r.reads == 'DataRater') == [
      'text mixed discard auto', 'text random bytes discard auto']


def test_per_batch_fraction_covers_the_batch_to_batch_spread():
  """rho = f + 2 sd of the low share among m = ceil(B / (1 - rho)) candidates; 0 stays 0."""
  assert _filter.per_batch_fraction(0.0, 64) == 0.0
  rho = _filter.per_batch_fraction(0.37, 64)
  m = _filter.oversampled_batch_size(64, rho)
  assert rho >= 0.37 + 2 * np.sqrt(0.37 * 0.63 / m) > rho - 0.01
  assert _filter.per_batch_fraction(0.37, 1024) < rho   # a larger batch varies less


@pytest.mark.parametrize('arg,data', [
    ('dataset=digits,smoke', {'corruption_rates': (0.4,)}),
    ('dataset=digits,smoke', {'corruption_rates': (0.4,), 'meta_mode': 'noisy'}),
    ('dataset=stdlib_text,smoke', {'corruption': 'random_bytes', 'meta_mode': 'noisy'})])
def test_clean_valid_mode_takes_the_same_rows_uncorrupted(arg, data):
  """valid_mode='clean': the validation rows of the noisy mode, as they were before the
  corruption; train, meta and test are unchanged."""
  noisy, _ = _data(arg, **data)
  clean, _ = _data(arg, valid_mode='clean', **data)
  assert noisy.valid.corrupted.any() and not clean.valid.corrupted.any()
  assert clean.info.valid_mode == 'clean' and noisy.info.valid_mode == 'noisy'
  assert np.array_equal(clean.valid.row, noisy.valid.row)
  assert np.array_equal(clean.valid.source, noisy.valid.source)
  for split in ('train', 'meta', 'test'):
    for a, b in zip(getattr(clean, split), getattr(noisy, split)):
      assert np.array_equal(a, b)
  kept = ~noisy.valid.corrupted
  assert np.array_equal(clean.valid.x[kept], noisy.valid.x[kept])
  assert np.array_equal(clean.valid.y[kept], noisy.valid.y[kept])
  changed = noisy.valid.corrupted
  differ = (clean.valid.y[changed] != noisy.valid.y[changed]).reshape(changed.sum(), -1).any(1)
  if clean.info.task == 'lm':
    differ |= (clean.valid.x[changed] != noisy.valid.x[changed]).any(1)
  assert differ.all()
  with pytest.raises(DataError, match='config.data.valid_mode'):
    _data(arg, valid_mode='trusted', **data)


def test_map_split_over_more_batches_than_in_flight_equals_the_rows_one_by_one(tmp_path):
  """map_split pads, dispatches and fetches in order: more batches than IN_FLIGHT (some
  fetched while later ones are dispatched) give each row's value, in row order."""
  import jax
  from datarater.train import evaluation
  from datarater.train.context import Context
  from datarater.train.rundir import RunDir
  from datarater.train.sharding import make_mesh
  config = load_config('uniform', 'dataset=digits,smoke')
  dataset = load_dataset(config.data, config.seed)
  ctx = Context(config, dataset, RunDir(str(tmp_path)), make_mesh())
  split = dataset.meta
  bs = 5
  assert -(-split.size // bs) > evaluation.IN_FLIGHT
  fn = jax.jit(lambda b: {'sum': b['x'].reshape(b['x'].shape[0], -1).sum(-1), 'i': b['index']})
  out = evaluation.map_split(fn, split, ctx, batch_size=bs)
  np.testing.assert_array_equal(out['i'], np.arange(split.size))
  np.testing.assert_allclose(out['sum'], split.x.reshape(split.size, -1).sum(-1), rtol=1e-6)
