"""The reproduction suites: paired intervals, tables with every cell filled, resume, paper configs build."""

import csv
import json
import os

import numpy as np
import pytest

from experiments import reproduce
from experiments.reproduce.core import data_sha256
from experiments.reproduce import SUITES, paired_interval, report, run_dir, run_suite, write_outputs
from experiments.reproduce.suites import source_mixture


def test_paired_interval_on_a_hand_case():
  # differences 2, 3, 4: mean 3, sd 1, t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3)
  mean, lo, hi = paired_interval([3.0, 5.0, 7.0], [1.0, 2.0, 3.0])
  assert mean == pytest.approx(3.0)
  assert (lo, hi) == pytest.approx((3.0 - 2.484138, 3.0 + 2.484138), abs=1e-5)
  assert paired_interval([0.7], [0.5]) == (pytest.approx(0.2), None, None)


def _cells(folder):
  """Table cells of table.md and the rows of table.csv (the early-stopped arm of
  datarater_filtering has no compute gain or rater AUROC: n/a there is right)."""
  lines = [l for l in open(folder / 'table.md') if l.startswith('| ') and '---' not in l
           and 'uniform arm (early-stopped' not in l][1:]
  md = [c.strip() for l in lines for c in l.strip().strip('|').split('|')]
  rows = list(csv.DictReader(open(folder / 'table.csv')))
  return md, rows


def _check_outputs(folder, num_rows):
  """Every markdown cell filled; CSV empty only for no published row and uniform's own diff."""
  md, rows = _cells(folder)
  assert len(rows) == num_rows
  assert md and all(c not in ('', 'n/a') for c in md), md
  assert all(v != '' for r in rows for k, v in r.items()
             if k != 'published' and not (r['method'] == 'uniform' and 'diff' in k)
             and not (r['method'].startswith('uniform arm (early-stopped')
                      and not k.startswith('test acc.')))
  assert os.path.getsize(folder / 'plots' / 'metric.png') > 0


def test_linear_regression_end_to_end_and_resume(tmp_path, capsys):
  folder = tmp_path / 'linear_regression' / 'smoke'
  results = run_suite('linear_regression', 'smoke', 2, str(folder))
  write_outputs('linear_regression', 'smoke', results, str(folder), 1.0)
  _check_outputs(folder, len(SUITES['linear_regression'].runs('smoke')))
  assert os.path.getsize(folder / 'plots' / 'curves.png') > 0
  total, timed, count = reproduce.runs_wall_seconds(str(folder))  # each run timed in its directory
  assert timed == count == 16 and total > 0
  assert f'({timed} of {count} runs timed' in open(folder / 'table.md').read()
  rows = list(csv.DictReader(open(folder / 'table.csv')))
  capsys.readouterr()
  again = run_suite('linear_regression', 'smoke', 2, str(folder))
  progress = capsys.readouterr().out.splitlines()
  assert len(progress) == 16 and all(l.endswith('finished earlier') for l in progress)
  assert again == results
  write_outputs('linear_regression', 'smoke', again, str(folder), 1.0)
  assert list(csv.DictReader(open(folder / 'table.csv'))) == rows


def _fake_summary(run, seed, config):
  """A summary with every field the suites read; values depend on method and seed."""
  rng = np.random.default_rng(hash((run.setting, run.method, seed)) % 2**32)
  rates = list(config.data.corruption_rates)
  return {'test_accuracy': float(rng.uniform(0.5, 0.9)), 'corruption_rates': rates,
          'baseline_phase': 'uniform', 'result_phase': 'uniform',
          'phases': {'uniform': {'test_accuracy': 0.6 + 0.01 * seed,
                                 'early_stopped': {'test_accuracy': 0.65 + 0.01 * seed}}},
          'compute': {'net_compute_gain': 0.1 * seed, 'net_compute_gain_incl_extra': -0.1},
          'source_weights': rng.permutation(len(rates)).tolist(),
          'scored_fraction': 1.0, 'score_auroc': 0.5 + 0.1 * seed}


@pytest.mark.parametrize('name', ['noisy_labels', 'long_tail', 'source_mixture',
                                  'datarater_filtering', 'label_error_detection'])
def test_table_from_finished_runs(tmp_path, name):
  """Every cell filled when each run's summary (and score files) exist; nothing is trained."""
  from datarater.data import load_dataset
  folder = tmp_path / name / 'smoke'
  runs = SUITES[name].runs('smoke')
  for run in runs:
    for seed in range(2):
      config = run.make_config(seed)
      workdir = run_dir(str(folder), run, seed)
      os.makedirs(workdir)
      with open(os.path.join(workdir, 'summary.json'), 'w') as f:
        json.dump(_fake_summary(run, seed, config), f)
      with open(os.path.join(workdir, 'fingerprint.json'), 'w') as f:
        json.dump({'config': json.loads(config.to_json_best_effort()),
                   'data_sha256': data_sha256(config)}, f)
      if name == 'label_error_detection':
        n = load_dataset(config.data, seed).info.num_rows
        np.save(os.path.join(workdir, 'scores_train.npy'), np.random.default_rng(seed).random(n))
        np.save(os.path.join(workdir, 'scored_rows.npy'), np.arange(n))
  results = run_suite(name, 'smoke', 2, str(folder))
  text = write_outputs(name, 'smoke', results, str(folder), 1.0)
  _check_outputs(folder, len(runs))
  for m in SUITES[name].metrics if SUITES[name].curve else ():  # metric against rate/factor/discard
    assert os.path.getsize(folder / 'plots' / f'curve_{reproduce.slug(m.name)}.png') > 0, m.name
  if name == 'source_mixture':
    assert 'Learned weight per source' in text
    assert os.path.getsize(folder / 'plots' / 'source_weights.png') > 0
  if name in ('noisy_labels', 'long_tail'):  # MW-Net's published rows beside ours
    published = {r['method']: r['published'] for r in csv.DictReader(open(folder / 'table.csv'))}
    assert all(published[m].endswith('(CIFAR-10, ResNet-32)') or 'WRN' in published[m]
               for m in ('uniform', 'L2RW', 'MW-Net'))
    assert all(v == '' for m, v in published.items() if m not in ('uniform', 'L2RW', 'MW-Net'))
  if name == 'datarater_filtering':  # the early-stopped arm has no compute gain or AUROC
    assert 'n/a' not in ''.join(l for l in text.splitlines() if l.startswith('|')
                                and 'early-stopped' not in l) and 'Pile' in text
  if name in ('noisy_labels', 'long_tail', 'datarater_filtering'):  # read, not run: +5 points
    table = list(csv.DictReader(open(folder / 'table.csv')))
    es = [r for r in table if 'early-stopped on validation' in r['method']]
    assert es and all(float(r['test acc. % mean']) == pytest.approx(65.5) for r in es)
    if name == 'datarater_filtering':  # paired with the run's own arm: 65.5 vs 60.5
      assert all(float(r['test acc. % diff']) == pytest.approx(5.0) for r in es)


def test_paper_configs_build_on_tiny_tfds(tmp_path):
  """Each paper-scale (suite, method, model) config builds (data, task, pipeline) on a tiny TFDS builder."""
  from tfds_tiny import DrTinyImages, DrTinyText

  from datarater.run import prepare
  DrTinyImages(data_dir=str(tmp_path)).download_and_prepare(file_format='array_record')
  DrTinyText(data_dir=str(tmp_path)).download_and_prepare(file_format='array_record')
  seen = set()
  for name, suite in SUITES.items():
    for run in suite.runs('paper'):
      config = run.make_config(0)
      if config is None or (run.config, run.method, config.model.name) in seen:
        continue
      seen.add((run.config, run.method, config.model.name))
      if name == 'datarater_filtering':  # DataRater's own setting: an LM on natural text
        assert config.data.name == 'wikitext103' and config.model.name == 'transformer', run
        assert config.method.inner_steps == 2 and config.method.population == 8, run
        assert config.method.meta_steps == 8000 and config.method.outer_clip == 0.01, run
        assert config.data.corruption_rates == () and config.data.examples_per_source == 800_000
        config.data.name, config.data.seq_len, config.data.examples_per_source = (
            'dr_tiny_text', 32, 200)
      else:
        # MW-Net's architectures: WRN-28-10 for uniform noise, ResNet-32 for flip noise and long tail.
        wrn = name == 'noisy_labels' and run.key['kind'] == 'symmetric'
        assert dict(config.model.kwargs) == ({'depth': 28, 'widen': 10} if wrn
                                             else {'depth': 32, 'width': 16}), run
        assert config.model.name == ('wrn' if wrn else 'resnet') and config.batch_size == 100, run
        assert config.num_steps == 58800 and config.optimizer.name == 'nesterov', run
        assert config.optimizer.schedule == 'step', run
        config.data.name = 'dr_tiny_images'
      config.data.data_dir, config.data.meta_size = str(tmp_path), 20
      _, _, pipeline = prepare(config)
      assert pipeline.phases, run
  assert len(seen) >= 29


def test_every_suite_has_the_uniform_baseline_or_its_own_arm():
  for name in ('noisy_labels', 'long_tail', 'source_mixture', 'linear_regression'):
    runs = SUITES[name].runs('cpu')
    for setting in {r.setting for r in runs}:
      assert any(r.setting == setting and r.method == 'uniform' for r in runs), (name, setting)
  assert reproduce.DEFAULT_SEEDS == {'smoke': 2, 'cpu': 3, 'paper': 3}


def test_every_suite_module_is_registered_with_distinct_run_directories():
  """suites/<name>.py is the suite <name>; its runs never share a run directory at any scale."""
  assert set(SUITES) == {'noisy_labels', 'long_tail', 'source_mixture', 'datarater_filtering',
                         'label_error_detection', 'linear_regression'}
  for name, suite in SUITES.items():
    assert suite is reproduce.core.find_suite(name)
    for scale in reproduce.SCALES:
      runs = suite.runs(scale)
      assert len({run_dir('f', r, 0) for r in runs}) == len(runs), (name, scale)
      assert suite.header(scale), (name, scale)


def test_published_lookup_does_not_match_a_longer_number():
  from experiments.reproduce import find_published
  assert find_published('mwnet_long_tail', 'CE', 'imbalance 20') == '82.23'
  assert find_published('mwnet_long_tail', 'CE', 'imbalance 200') == '65.68'
  assert find_published('mwnet_long_tail', 'CE', 'imbalance 1') == '92.89'


def test_cell_says_how_many_seeds_have_a_value():
  """A mean over fewer seeds than the row has (a compute gain never reached) says so."""
  m = reproduce.Metric('gain', None)
  vals = [79.2, None, None]
  row = {'seeds': 3, 'gain seeds': sum(v is not None for v in vals)}
  row['gain mean'], row['gain std'] = reproduce.mean_std(vals)
  assert report._cell(row, m) == '79.20 (1 of 3 seeds)'
  row.update({'gain seeds': 3, 'gain mean': 1.5, 'gain std': 0.25})
  assert report._cell(row, m) == '1.50 ± 0.250'


def test_learned_source_weights_prefer_the_time_average():
  """Group DRO records its final q and its mean over steps; the table uses the mean, as it says."""
  s = {'source_weights': [0.0, 1.0], 'source_weights_mean': [0.6, 0.4]}
  assert source_mixture._weights(s) == [0.6, 0.4]
  s = {'source_weights_time_avg': [1.0], 'source_weights': [0.0]}
  assert source_mixture._weights(s) == [1.0]
  assert source_mixture._weights({'source_mean_score': [-1.0]}) == [-1.0]


def test_a_finished_run_made_with_another_config_is_not_reused(tmp_path):
  """A grid that changed since a run finished: one-line error naming the run and the field."""
  from datarater.errors import ConfigError
  run = SUITES['long_tail'].runs('smoke')[0]
  config = run.make_config(0)
  workdir = run_dir(str(tmp_path), run, 0)
  os.makedirs(workdir)
  with open(os.path.join(workdir, 'summary.json'), 'w') as f:
    json.dump(_fake_summary(run, 0, config), f)
  with pytest.raises(ConfigError, match='without fingerprint.json'):
    reproduce.check_finished(config, workdir)
  old = json.loads(config.to_json_best_effort())
  with open(os.path.join(workdir, 'fingerprint.json'), 'w') as f:
    json.dump({'config': old, 'data_sha256': 'made from another data recipe'}, f)
  with pytest.raises(ConfigError, match='finished run on other data'):
    reproduce.check_finished(config, workdir)                     # same config, other data
  with open(os.path.join(workdir, 'fingerprint.json'), 'w') as f:
    json.dump({'config': old, 'data_sha256': data_sha256(config)}, f)
  reproduce.check_finished(config, workdir)                       # same config and data: reused
  config.log_every = 1                                            # bookkeeping only: reused
  reproduce.check_finished(config, workdir)
  config.num_steps += 1
  with pytest.raises(ConfigError, match='different config.num_steps') as e:
    reproduce.check_finished(config, workdir)
  assert workdir in str(e.value) and '\n' not in str(e.value)


@pytest.mark.parametrize('flag,needle', [('--seeds=0', '--seeds=0'), (None, '--suite is required')])
def test_cli_errors_exit_2_with_one_line_before_writing(tmp_path, flag, needle):
  import subprocess
  import sys
  args = [sys.executable, '-m', 'experiments.reproduce', f'--out={tmp_path / "out"}']
  args += ['--suite=long_tail', flag] if flag else []
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  p = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120)
  err = [l for l in p.stderr.splitlines() if l.strip()]
  assert p.returncode == 2 and len(err) == 1 and needle in err[0], p.stderr
  assert not (tmp_path / 'out').exists()
