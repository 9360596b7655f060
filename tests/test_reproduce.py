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


def test_paired_pvalue_matches_scipy_and_the_closed_form():
  from scipy import stats

  from experiments.reproduce.stats import paired_pvalue
  # differences 2, 3, 4: t = 3 / (1 / sqrt 3) = sqrt 27 on 2 degrees of freedom, where the
  # two-sided p-value has the closed form 1 - |t| / sqrt(t^2 + 2) = 1 - sqrt(27 / 29).
  p = paired_pvalue([3.0, 5.0, 7.0], [1.0, 2.0, 3.0])
  assert p == pytest.approx(1 - (27 / 29) ** 0.5, rel=1e-9)
  assert p == pytest.approx(stats.ttest_rel([3.0, 5.0, 7.0], [1.0, 2.0, 3.0]).pvalue)
  assert paired_pvalue([0.7], [0.5]) is None                 # one pair: no test
  assert paired_pvalue([1.0, 2.0], [1.0, 2.0]) == 1.0        # equal on every seed
  # The same nonzero difference on every seed (zero spread, t undefined): the exact sign-flip
  # test, 2 of the 2**n sign patterns as extreme; scipy's t-test would give p ~ 0 here.
  assert paired_pvalue([4.65 + s for s in range(5)], list(range(5))) == pytest.approx(2 / 32)
  assert paired_pvalue([90.0, 90.0], [0.0, 0.0]) == 0.5
  assert paired_pvalue([-0.95, -0.95, -0.95], [0.0, 0.0, 0.0]) == 0.25


def test_holm_on_a_hand_case():
  from experiments.reproduce.stats import holm
  # Sorted: 0.005, 0.01, 0.03, 0.04 (m = 4) -> 4*0.005 = 0.02, 3*0.01 = 0.03, 2*0.03 = 0.06,
  # then 1*0.04 = 0.04 is raised to the running maximum 0.06 (step-down: it cannot survive once
  # a smaller p-value has failed). None is not a test and does not count in m.
  adjusted = holm([0.01, None, 0.04, 0.03, 0.005])
  assert adjusted == pytest.approx([0.03, None, 0.06, 0.06, 0.02])
  assert [p is not None and p <= 0.05 for p in adjusted] == [True, False, False, False, True]
  assert holm([0.02, 0.9]) == pytest.approx([0.04, 0.9]) and holm([0.6, 0.7, 0.8]) == [1.0] * 3


def _cells(folder):
  """Table cells of table.md and the rows of table.csv (the early-stopped arm of
  datarater_filtering has no compute gain or rater AUROC: n/a there is right)."""
  lines = [l for l in open(folder / 'table.md') if l.startswith('| ') and '---' not in l
           and 'uniform arm (early-stopped' not in l][1:]
  md = [c.strip() for l in lines for c in l.strip().strip('|').split('|')]
  rows = list(csv.DictReader(open(folder / 'table.csv')))
  return md, rows


def _check_outputs(folder, num_rows):
  """Every markdown cell filled; CSV empty only for uniform's own diff and test."""
  md, rows = _cells(folder)
  assert len(rows) == num_rows
  assert md and all(c not in ('', 'n/a') for c in md), md
  assert all(v != '' for r in rows for k, v in r.items()
             if not (r['method'] == 'uniform' and ('diff' in k or k.endswith(' p')))
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
  # Holm column: the paired t-tests of every non-uniform row, Holm-corrected per metric.
  from experiments.reproduce.stats import holm
  for m in ('final excess risk', 'mean excess risk over steps'):
    ps = [float(r[f'{m} p']) if r[f'{m} p'] else None for r in rows]
    assert sum(p is not None for p in ps) == 6
    assert [float(r[f'{m} Holm p']) if r[f'{m} Holm p'] else None for r in rows] == \
        pytest.approx(holm(ps))
  assert 'final excess risk: Holm p' in open(folder / 'table.md').read()
  # Each run's cells are recorded in its directory, and .gitignore commits that file.
  for (setting, method, seed), cells in results.items():
    run = next(r for r in SUITES['linear_regression'].runs('smoke')
               if (r.setting, r.method) == (setting, method))
    recorded = json.load(open(os.path.join(run_dir(str(folder), run, seed),
                                           reproduce.core.METRICS_FILE)))
    assert recorded == pytest.approx({k: v for k, v in cells.items() if k != reproduce.core.COMPUTE})
  again = run_suite('linear_regression', 'smoke', 2, str(folder))
  progress = capsys.readouterr().out.splitlines()
  assert len(progress) == 16 and all(l.endswith('finished earlier') for l in progress)
  assert again == results
  write_outputs('linear_regression', 'smoke', again, str(folder), 1.0)
  assert list(csv.DictReader(open(folder / 'table.csv'))) == rows


def _fake_metrics(workdir, run, seed):
  """metrics.jsonl: 4 validation evaluations of the fake result phase, at loss 0 from a
  method- and seed-dependent one on (so every run reaches uniform's best)."""
  drop = np.random.default_rng(hash((run.method, seed)) % 2**32).integers(0, 4)
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    for k in range(4):
      loss = 0.0 if k >= drop else 2.0 - 0.1 * k
      f.write(json.dumps({'phase': 'uniform', 'step': 10 * (k + 1), 'valid/loss': loss,
                          'valid/source_loss': [loss] * 5}) + '\n')


def _fake_summary(run, seed, config):
  """A summary with every field the suites read; values depend on method and seed."""
  rng = np.random.default_rng(hash((run.setting, run.method, seed)) % 2**32)
  rates = list(config.data.corruption_rates)
  ledger = {'flops': 100.0 * config.num_steps * (1 + len(run.method) % 3), 'steps': config.num_steps,
            'examples_processed': 16.0 * config.num_steps}
  arm = {'flops': 100.0 * config.num_steps, 'steps': config.num_steps,
         'examples_processed': 16.0 * config.num_steps, 'wall_seconds': 2.0}
  return {'test_accuracy': float(rng.uniform(0.5, 0.9)), 'corruption_rates': rates,
          'ledger': ledger, 'method_ledger': ledger, 'baseline_phase': 'uniform',
          'result_phase': 'uniform', 'discard_fraction': 0.25,
          'phases': {'uniform': {'test_accuracy': 0.6 + 0.01 * seed, 'ledger': arm,
                                 'valid_loss': float(rng.uniform(1, 2)),
                                 'early_stopped': {'test_accuracy': 0.65 + 0.01 * seed}},
                     'meta_train': {'ledger': {**arm, 'flops': 300.0 * config.num_steps}}},
          'source_score_spearman': -0.9, 'kind_auroc': {'label_symmetric': 0.5 + 0.1 * seed},
          'compute': {'net_compute_gain': 0.1 * seed, 'net_compute_gain_incl_extra': -0.1},
          'source_weights': rng.permutation(len(rates)).tolist(),
          'scored_fraction': 1.0, 'score_auroc': 0.5 + 0.1 * seed}


@pytest.mark.parametrize('name', ['noisy_labels', 'long_tail', 'source_mixture',
                                  'datarater_filtering', 'label_error_detection', 'discard_auto'])
def test_table_from_finished_runs(tmp_path, name):
  """Every cell filled when each run's summary (and score files) exist; nothing is trained."""
  from datarater.data import load_dataset
  folder = tmp_path / name / 'smoke'
  runs = SUITES[name].runs('smoke')
  for run in runs:
    for seed in range(2):
      config = reproduce.core.run_config(str(folder), runs, run, seed)
      workdir = run_dir(str(folder), run, seed)
      os.makedirs(workdir)
      with open(os.path.join(workdir, 'summary.json'), 'w') as f:
        json.dump(_fake_summary(run, seed, config), f)
      with open(os.path.join(workdir, 'fingerprint.json'), 'w') as f:
        json.dump({'config': json.loads(config.to_json_best_effort()),
                   'data_sha256': data_sha256(config)}, f)
      _fake_metrics(workdir, run, seed)
      if name == 'label_error_detection':  # DataRater also scores its meta rows; others miss some
        data = load_dataset(config.data, seed)
        n, rng = data.info.num_rows, np.random.default_rng(hash(run.method) % 2**32)
        meta = np.zeros(n, bool)
        meta[data.meta.row] = True
        scored = meta | (rng.random(n) > 0.1) if run.config == 'datarater' else ~meta
        np.save(os.path.join(workdir, 'scores_train.npy'), rng.random(n))
        np.save(os.path.join(workdir, 'scored_rows.npy'), scored)
        np.save(os.path.join(workdir, 'meta_rows.npy'), meta)
  results = run_suite(name, 'smoke', 2, str(folder))
  text = write_outputs(name, 'smoke', results, str(folder), 1.0)
  _check_outputs(folder, len(runs))
  for m in SUITES[name].metrics if SUITES[name].curve else ():  # metric against rate/factor/discard
    assert os.path.getsize(folder / 'plots' / f'curve_{reproduce.slug(m.name)}.png') > 0, m.name
  if name == 'discard_auto':  # auto against the best fixed fraction, per filter
    assert '## Target check' in text and '| digits symmetric 40% | DataRater |' in text
  if name == 'source_mixture':
    assert 'Learned weight per source' in text
    assert os.path.getsize(folder / 'plots' / 'source_weights.png') > 0
  table, _, block = text.partition('## Published (their setting)')
  assert 'CIFAR' not in table.split('|', 1)[1] and 'Pile' not in table.split('|', 1)[1]
  if name in ('noisy_labels', 'long_tail'):  # MW-Net's numbers in their own block, with setting
    assert {'CE', 'L2RW', 'MW-Net'} <= {l.split(' | ')[1] for l in block.splitlines()[5:]
                                        if l.startswith('| CIFAR-10, ')}
    assert 'ResNet-32' in block and 'clean meta images' in block
  if name == 'datarater_filtering':
    # The early-stopped arm has no compute gain or AUROC of its own.
    assert 'n/a' not in ''.join(l for l in table.splitlines() if l.startswith('|')
                                and 'early-stopped' not in l)
    assert 'The Pile, discard 75%, 1B model' in block
    # Per preset: each kind's mean ± sd over seeds and the rater's AUROC on each seed, in order.
    assert '| digits | 2 | label_symmetric 0.550 ± 0.071 | 0.500, 0.600 |' in text
  if name == 'label_error_detection':  # every scorer measured on the same rows
    for setting in {r.setting for r in runs}:
      for seed in range(2):
        counts = {results[(r.setting, r.method, seed)]['rows'] for r in runs if r.setting == setting}
        assert len(counts) == 1 and 0 < counts.pop(), (setting, seed)
    # A clone has the committed small files only: the cells come from reproduce_metrics.json.
    for run in runs:
      os.remove(os.path.join(run_dir(str(folder), run, 0), 'scores_train.npy'))
    assert run_suite(name, 'smoke', 2, str(folder)) == results

  if name in ('noisy_labels', 'long_tail', 'datarater_filtering'):  # read, not run: +5 points
    es = [r for r in csv.DictReader(open(folder / 'table.csv'))
          if 'early-stopped on validation' in r['method']]
    assert es and all(float(r['test acc. % mean']) == pytest.approx(65.5) for r in es)
    if name == 'datarater_filtering':  # paired with the run's own arm: 65.5 vs 60.5
      assert all(float(r['test acc. % diff']) == pytest.approx(5.0) for r in es)


def _assert_mwnet_script_settings(name, run, config):
  """A paper-scale MW-Net-suite run has the settings of the authors' script its header names
  (values read in their code): WRN-28-10 symmetric cells train_WRN-28-10_Meta_PGC.py,
  long tail meta-weight-net-class-imbalance.py, every other ResNet-32 run MW-Net.py; the
  MW-Net runs of the suites with published numbers also the script's weight-net settings
  (the others run our default MW-Net)."""
  wrn = name == 'noisy_labels' and run.key['kind'] == 'symmetric'
  assert dict(config.model.kwargs) == ({'depth': 28, 'widen': 10} if wrn
                                       else {'depth': 32, 'width': 16}), run
  assert config.model.name == ('wrn' if wrn else 'resnet') and config.batch_size == 100, run
  opt, m = config.optimizer, config.method
  assert (opt.learning_rate, opt.momentum, opt.weight_decay, opt.schedule, opt.step_factor) == (
      0.1, 0.9, 5e-4, 'step', 0.1), run
  if wrn:  # 20,000 iterations, lr / 10 at 18k and 19k, Nesterov; V normalised, SGD 1e-3
    assert (config.num_steps, tuple(opt.step_boundaries), opt.name) == (
        20000, (0.9, 0.95), 'nesterov'), run
    vnet = ('nesterov', 1e-3, 5e-4, True)
  elif name == 'long_tail':  # 100 epochs of the long-tailed set, lr / 10 at 80 and 90
    epoch = {200: 112, 100: 124, 50: 140, 20: 170, 10: 204, 1: 499}[run.key['imbalance']]
    assert (config.num_steps, tuple(opt.step_boundaries), opt.name) == (
        100 * epoch, (0.79, 0.89), 'nesterov'), run
    assert config.data.meta_size == 100, run
    vnet = ('nesterov', 1e-5, 5e-4, True)
  else:  # MW-Net.py: 120 epochs = 58,800 steps, lr / 10 at 80 and 100, plain momentum
    assert (config.num_steps, tuple(opt.step_boundaries), opt.name) == (
        58800, (80 / 120, 100 / 120), 'momentum'), run
    vnet = ('adam', 1e-3, 1e-4, False)
  if run.config == 'mwn' and name in ('noisy_labels', 'long_tail'):  # beside published numbers
    assert (m.wnet_optimizer, m.wnet_learning_rate, m.wnet_weight_decay, m.normalize,
            m.lookahead_lr, m.wnet_init) == (*vnet, 'scheduled', 'torch'), run


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
      if config is not None and name != 'datarater_filtering':
        _assert_mwnet_script_settings(name, run, config)
      if config is None or (run.config, run.method, config.model.name) in seen:
        continue
      seen.add((run.config, run.method, config.model.name))
      if name == 'datarater_filtering':  # DataRater's own setting: an LM on natural text
        assert config.data.name == 'wikitext103' and config.model.name == 'transformer', run
        if run.config == 'datarater':  # (the reference rows have no meta settings)
          assert config.method.inner_steps == 2 and config.method.population == 8, run
          assert config.method.meta_steps == 8000 and config.method.outer_clip == 0.01, run
        assert config.data.corruption_rates == () and config.data.examples_per_source == 800_000
        config.data.name, config.data.seq_len, config.data.examples_per_source = (
            'dr_tiny_text', 32, 200)
      else:
        config.data.name = 'dr_tiny_images'
      # Training batches are distinct rows of the split trained on (meta_only: the 20-row meta).
      config.batch_size = min(config.batch_size, 16)
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
                         'label_error_detection', 'linear_regression', 'discard_auto'}
  for name, suite in SUITES.items():
    assert suite is reproduce.core.find_suite(name)
    for scale in reproduce.SCALES:
      runs = suite.runs(scale)
      assert len({run_dir('f', r, 0) for r in runs}) == len(runs), (name, scale)
      assert 'no best over training' in suite.header(scale), (name, scale)  # read at the end
  for name in ('noisy_labels', 'long_tail'):  # beside published numbers that are the best
    assert 'best test accuracy over training' in SUITES[name].header('cpu'), name


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


def test_gitignore_commits_only_the_small_files_of_each_run():
  """results/<suite>/<scale>/runs/...: summary, config, fingerprint and records in git; not the rest."""
  import subprocess
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  run = 'results/noisy_labels/cpu/runs/digits_symmetric_40/l2rw/seed7/'
  for name, ignored in [(f, False) for f in reproduce.core.COMMITTED_FILES] + [
      (f, True) for f in ('metrics.jsonl', 'scores_train.npy', 'checkpoints/100/x', 'plots/a.png',
                          'tensorboard/events', 'lock')]:
    p = subprocess.run(['git', 'check-ignore', '-q', run + name], cwd=root)
    assert p.returncode == (0 if ignored else 1), (name, ignored)


def test_the_calibration_row_uses_the_mnist1d_authors_recipe():
  """One uniform run per seed on the package's default MNIST-1D (generator seed 42) with Adam
  1e-2, batch 100, 8,000 steps and an MLP 100-100, as its own setting; the 1,000-step grid stays."""
  from experiments.reproduce.suites import noisy_labels
  runs = SUITES['noisy_labels'].runs('cpu')
  calibration = [r for r in runs if r.setting == noisy_labels.CALIBRATION]
  assert [r.method for r in calibration] == ['uniform']
  config = calibration[0].make_config(2)
  assert (config.num_steps, config.batch_size, config.optimizer.learning_rate) == (8000, 100, 1e-2)
  assert (config.optimizer.name, tuple(config.model.kwargs.hidden)) == ('adam', (100, 100))
  assert config.data.generator_seed == 42 and tuple(config.data.corruption_rates) == (0.0,)
  assert config.data.valid_size == 0  # their recipe holds no validation rows out
  grid = next(r for r in runs if r.setting == 'mnist1d symmetric 0%' and r.method == 'uniform')
  assert grid.make_config(2).num_steps == 1000 and grid.make_config(2).data.generator_seed == -1
  block = noisy_labels.published('cpu')
  assert [e.ours for e in block if e.value == '68'] == [f'{noisy_labels.CALIBRATION} | uniform']
  assert all(e.ours == '' for e in block if 'CIFAR' in e.setting)  # no CIFAR number by a cpu row


def test_headline_settings_run_the_headline_seeds_and_no_other_does():
  """The settings a suite headlines at cpu scale run max(headline_seeds, seeds) seeds; every
  other setting, every setting at another scale and every suite without headlines run seeds."""
  from datarater.errors import ConfigError
  from experiments.reproduce import setting_seeds
  headline = {'noisy_labels': {'digits symmetric 40%', 'mnist1d symmetric 40%'},
              'long_tail': {'digits imbalance 200'},
              'label_error_detection': {'digits clean meta', 'digits noisy meta'},
              'datarater_filtering': {f'text {p} discard {d}' for p in ('random bytes', 'mixed')
                                      for d in ('auto', '25%', '50%', '75%')}
                                     | {'text random bytes, 4.9x larger model, discard 50%'},
              'source_mixture': {'stdlib_text 5 sources'}}
  for name, suite in SUITES.items():
    counts = setting_seeds(suite, 'cpu', 3, reproduce.DEFAULT_HEADLINE_SEEDS)
    assert counts.keys() == {r.setting for r in suite.runs('cpu')}, name
    assert {s for s, n in counts.items() if n == 10} == headline.get(name, set()), name
    assert set(counts.values()) <= {3, 10}, name
    for scale in ('smoke', 'paper'):
      assert set(setting_seeds(suite, scale, 2, 10).values()) <= {2}, (name, scale)  # {}: no grid
  counts = setting_seeds(SUITES['long_tail'], 'cpu', 12, 10)   # never fewer than --seeds
  assert set(counts.values()) == {12}
  assert set(setting_seeds(SUITES['long_tail'], 'cpu', 3).values()) == {3}  # no headline_seeds
  assert reproduce.DEFAULT_HEADLINE_SEEDS == 10
  bad = reproduce.Suite(SUITES['long_tail'].runs, (), str,
                        headline={'cpu': ('digits imbalance 7',)})
  with pytest.raises(ConfigError, match="'digits imbalance 7', not a setting"):
    setting_seeds(bad, 'cpu', 3, 10)


def _fake_value(setting, method, seed):
  """A per-seed metric value: uniform 10 + seed, 'better' seed-dependently above it."""
  return 10.0 + seed + (0.5 * seed * seed + 1.0 if method == 'better' else 0.0) + (
      100.0 if setting == 'b' else 0.0)


def _fake_run(setting, method):
  """A callable run writing its summary.json (as linear_regression's runs do)."""
  def run(seed, workdir):
    summary = {'value': _fake_value(setting, method, seed)}
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, 'summary.json'), 'w') as f:
      json.dump(summary, f)
    return summary
  return run


def test_headline_cells_use_the_seeds_they_ran(tmp_path, capsys, monkeypatch):
  """A headline setting runs more seeds than the others: the progress lines count them, each
  row's seeds, mean, sd, paired interval and test are over its own seeds, Holm's family is
  every paired test, the legend says who ran how many, and a finished seed is reused."""
  from experiments.reproduce.stats import holm, mean_std, paired_pvalue
  runs = [reproduce.Run(s, m, _fake_run(s, m), key={'dataset': 'fake'})
          for s in ('a', 'b') for m in ('uniform', 'better')]
  metric = reproduce.Metric('value', lambda s, w, c: s['value'], paired=True)
  suite = reproduce.Suite(lambda scale: runs, (metric,), lambda scale: 'Fake suite.',
                          headline={'smoke': ('a',)})
  monkeypatch.setitem(SUITES, 'fake', suite)
  folder = str(tmp_path / 'fake')
  results = run_suite('fake', 'smoke', 2, folder, headline_seeds=4)
  progress = capsys.readouterr().out.splitlines()
  assert len(progress) == 2 * 4 + 2 * 2 and progress[-1].startswith('[reproduce] 12/12 b | better')
  assert sorted(results) == sorted([('a', m, k) for m in ('uniform', 'better') for k in range(4)]
                                   + [('b', m, k) for m in ('uniform', 'better') for k in range(2)])
  rows = reproduce.table_rows('fake', 'smoke', results)
  assert [(r['setting'], r['method'], r['seeds'], r['value seeds']) for r in rows] == [
      ('a', 'uniform', 4, 4), ('a', 'better', 4, 4), ('b', 'uniform', 2, 2), ('b', 'better', 2, 2)]
  for row in rows:
    n = row['seeds']
    ours = [_fake_value(row['setting'], row['method'], k) for k in range(n)]
    assert (row['value mean'], row['value std']) == pytest.approx(mean_std(ours))
    if row['method'] == 'better':
      base = [_fake_value(row['setting'], 'uniform', k) for k in range(n)]
      assert (row['value diff'], row['value diff lo'], row['value diff hi']) == pytest.approx(
          paired_interval(ours, base))
      assert row['value p'] == pytest.approx(paired_pvalue(ours, base))
  assert rows[1]['value diff'] == pytest.approx(1 + 0.5 * (0 + 1 + 4 + 9) / 4)  # 4 seeds, not 2
  assert [r['value Holm p'] for r in rows] == pytest.approx(holm([r['value p'] for r in rows]))
  text = write_outputs('fake', 'smoke', results, folder, 1.0)
  assert '--suite=fake --scale=smoke --seeds=2 --headline_seeds=4`' in text
  assert 'Seeds per cell: 4 in a (the headline settings); 2 in every other setting' in text
  # More headline seeds later: the finished ones are reused, only the new seed runs.
  again = run_suite('fake', 'smoke', 2, folder, headline_seeds=5)
  progress = capsys.readouterr().out.splitlines()
  fresh = [l for l in progress if not l.endswith('finished earlier')]
  assert len(progress) == 14 and [l.split(': ')[0] for l in fresh] == [
      '[reproduce] 5/14 a | uniform | seed 4', '[reproduce] 10/14 a | better | seed 4']
  assert {k: v for k, v in again.items() if k[2] < 4 or k[0] == 'b'} == results


def test_settings_runs_only_the_settings_it_finds(tmp_path, capsys, monkeypatch):
  """--settings splits a suite: each part runs its settings only; a later run of the whole
  suite reuses them; a pattern that finds nothing is a ConfigError naming the settings."""
  from datarater.errors import ConfigError
  runs = [reproduce.Run(s, m, _fake_run(s, m), key={'dataset': 'fake'})
          for s in ('digits 40%', 'mnist1d 40%') for m in ('uniform', 'better')]
  metric = reproduce.Metric('value', lambda s, w, c: s['value'], paired=True)
  monkeypatch.setitem(SUITES, 'fake', reproduce.Suite(lambda scale: runs, (metric,),
                                                      lambda scale: 'Fake suite.'))
  folder = str(tmp_path / 'fake')
  part = run_suite('fake', 'smoke', 2, folder, settings='^digits')
  assert {k[0] for k in part} == {'digits 40%'} and len(part) == 4
  assert not os.path.exists(os.path.join(folder, 'runs', 'mnist1d_40'))
  capsys.readouterr()
  whole = run_suite('fake', 'smoke', 2, folder)
  progress = capsys.readouterr().out.splitlines()
  assert sum(l.endswith('finished earlier') for l in progress) == 4 and len(whole) == 8
  with pytest.raises(ConfigError, match="matches no setting of fake.*digits 40%, mnist1d 40%"):
    run_suite('fake', 'smoke', 2, folder, settings='cifar')


@pytest.mark.parametrize('flag,needle', [('--seeds=0', '--seeds=0'), (None, '--suite is required'),
                                         ('--headline_seeds=0', '--headline_seeds=0'),
                                         ('--settings=(', '--settings=')])
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


def test_speed_to_uniform_best_is_the_first_step_at_uniforms_best_over_uniforms(tmp_path):
  """DoReMi's measure in source_mixture, on hand-made curves of the clean sources (rates 0:
  sources 0 and 2, whose mean is the loss; the noisy source 1 is ignored): uniform is best
  (1.0) at step 20; the method first reaches <= 1.0 at step 10 (0.5x the steps); its FLOPs
  add its other phases (a 300-FLOP proxy) to 10 steps of its result phase at 4 FLOPs per
  step."""
  from experiments.reproduce.suites.source_mixture import speed_to_uniform_best
  setting = tmp_path / 'runs' / 'digits'

  def write(method, phase, curve, ledger, method_flops):
    d = setting / method / 'seed0'
    d.mkdir(parents=True)
    with open(d / 'metrics.jsonl', 'w') as f:
      f.write(json.dumps({'phase': 'other', 'step': 10, 'valid/loss': 0.0}) + '\n')
      for step, loss in curve:  # sources 0 and 2 average to `loss`; source 1 is far below
        f.write(json.dumps({'phase': phase, 'step': step, 'valid/loss': 0.0,
                            'valid/source_loss': [loss - 0.1, -5.0, loss + 0.1]}) + '\n')
    summary = {'result_phase': phase, 'phases': {phase: {'ledger': ledger}},
               'corruption_rates': [0.0, 0.5, 0.0],
               'method_ledger': {'flops': method_flops}}
    with open(d / 'summary.json', 'w') as f:
      json.dump(summary, f)
    return str(d), summary

  write('uniform', 'train', [(10, 2.0), (20, 1.0), (30, 1.0), (40, 1.2)],
        {'flops': 80.0, 'steps': 40}, 80.0)
  workdir, summary = write('mix', 'retrain', [(10, 0.9), (20, 0.5)],
                           {'flops': 160.0, 'steps': 40}, 460.0)
  out = speed_to_uniform_best(summary, workdir)
  assert out['steps'] == pytest.approx(10 / 20)
  assert out['flops'] == pytest.approx((10 * 4.0 + 300.0) / (20 * 2.0))
  workdir, summary = write('slow', 'train', [(10, 1.5), (40, 1.01)], {'flops': 80.0, 'steps': 40},
                           80.0)
  assert speed_to_uniform_best(summary, workdir) == {'steps': None, 'flops': None}
