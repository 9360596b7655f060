"""Exit contract of the entry points (issue 24): bad flags or input give one line `error: ...`,
exit status 2 and nothing written; curate checks the run's data fingerprint; reproduce and
run_one re-run a run whose record was cut short and remake a missing training-curve plot."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, load_config
from datarater.run import train_and_evaluate
from experiments import reproduce
from experiments._runs import run_one


def entry(module, *flags):
  """Runs `python -m experiments.<module> *flags` from the project root."""
  return subprocess.run([sys.executable, '-m', f'experiments.{module}', *flags], cwd=ROOT,
                        env=dict(os.environ, JAX_PLATFORMS='cpu'), capture_output=True,
                        text=True, timeout=300)


def assert_one_line(proc, *names):
  """Exit status 2 and a stderr of exactly one line 'error: ...' containing every name."""
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert len(lines) == 1 and lines[0].startswith('error:'), proc.stderr[-3000:]
  for name in names:
    assert name in lines[0], lines[0]


def listing(folder):
  """Every path under `folder` (to check that nothing was written)."""
  return sorted(os.path.join(r, n) for r, ds, fs in os.walk(folder) for n in ds + fs)


@pytest.fixture(scope='module')
def scored_run(tmp_path_factory):
  """(config, workdir, npz path) of a finished small_loss smoke run on an npz (writes scores)."""
  folder = tmp_path_factory.mktemp('scored')
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 6)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.int64)
  path = str(folder / 'user.npz')
  np.savez(path, x_train=x[:240], y_train=y[:240], x_test=x[240:], y_test=y[240:])
  config = load_config('small_loss', 'dataset=npz,smoke')
  config.data.path = path
  workdir = str(folder / 'run')
  train_and_evaluate(config, workdir)
  return config, workdir, path


def copy_run(scored_run, tmp_path, with_npz=True):
  """(config, workdir, npz path) of a copy of the run in tmp_path; with_npz: also of its npz,
  named by the copy's config.json (curate reads it; a resume would see another config)."""
  config, workdir, path = scored_run
  npz, run = str(tmp_path / 'user.npz'), str(tmp_path / 'run')
  shutil.copytree(workdir, run)
  if not with_npz:
    return config, run, path
  shutil.copy(path, npz)
  with open(os.path.join(run, 'config.json')) as f:
    recorded = json.load(f)
  recorded['data']['path'] = npz
  with open(os.path.join(run, 'config.json'), 'w') as f:
    json.dump(recorded, f)
  config = config.copy_and_resolve_references()
  config.data.path = npz
  return config, run, npz


# ----------------------------------------------------------------------------- curate


@pytest.mark.parametrize('flag,names', [
    ('--keep=half', ('--keep',)),
    ('--out={tmp}/missing/curated.npz', ('--out', 'no directory')),
    ('--out={tmp}/folder.npz', ('--out', 'is a directory')),
    ('--out={tmp}/curated', ('--out', 'must end with .npz')),
])
def test_curate_bad_flags_are_one_line(tmp_path, flag, names):
  os.makedirs(tmp_path / 'folder.npz')
  before = listing(tmp_path)
  proc = entry('curate', f'--workdir={tmp_path}', f'--out={tmp_path}/curated.npz',
               flag.format(tmp=tmp_path))
  assert_one_line(proc, *names)
  assert listing(tmp_path) == before


def test_curate_refuses_a_truncated_score_file(scored_run, tmp_path):
  _, run, _ = copy_run(scored_run, tmp_path)
  scores = os.path.join(run, 'scores_train.npy')
  size = os.path.getsize(scores)
  with open(scores, 'r+b') as f:
    f.truncate(size // 2)
  before = listing(tmp_path)
  assert_one_line(entry('curate', f'--workdir={run}', f'--out={tmp_path}/c.npz'),
                  'scores_train.npy')
  assert listing(tmp_path) == before


def test_curate_refuses_a_moved_npz(scored_run, tmp_path):
  _, run, npz = copy_run(scored_run, tmp_path)
  os.remove(npz)
  before = listing(tmp_path)
  assert_one_line(entry('curate', f'--workdir={run}', f'--out={tmp_path}/c.npz'), npz)
  assert listing(tmp_path) == before


def test_curate_refuses_data_that_changed_since_the_run(scored_run, tmp_path):
  from experiments.curate import curate
  _, run, npz = copy_run(scored_run, tmp_path)
  stats = curate(run, 0.5, str(tmp_path / 'same.npz'))  # unchanged data: the hash matches
  assert stats['rows'] == 240
  arrays = dict(np.load(npz))
  arrays['x_train'] = arrays['x_train'][::-1].copy()  # same shapes, other rows
  np.savez(npz, **arrays)
  before = listing(tmp_path)
  assert_one_line(entry('curate', f'--workdir={run}', f'--out={tmp_path}/c.npz'), npz)
  assert listing(tmp_path) == before


# ----------------------------------------------------------------------------- detect


@pytest.mark.parametrize('flag,name', [
    ('--dataset=bogus', '--dataset'),
    ('--seed=-1', '--seed'),
    ('--out={tmp}/a_file', '--out'),
    ('--meta_mode=bogus', '--meta_mode'),
    ('--scorers=', '--scorers'),
])
def test_detect_bad_flags_write_nothing(tmp_path, flag, name):
  (tmp_path / 'a_file').write_text('keep me')
  before = listing(tmp_path)
  proc = entry('detect', '--smoke', '--scorers=aum', f'--out={tmp_path}/out',
               flag.format(tmp=tmp_path))
  assert_one_line(proc, name)
  assert listing(tmp_path) == before and (tmp_path / 'a_file').read_text() == 'keep me'


# ----------------------------------------------------------------------------- reproduce, benchmark


@pytest.mark.parametrize('flag,name', [
    ('--suite=bogus', '--suite'),
    ('--out={tmp}/a_file', '--out'),
    ('--seeds=two', '--seeds'),
])
def test_reproduce_bad_flags_write_nothing(tmp_path, flag, name):
  (tmp_path / 'a_file').write_text('keep me')
  before = listing(tmp_path)
  proc = entry('reproduce', '--suite=linear_regression', '--scale=smoke', '--compilation_cache=',
               f'--out={tmp_path}/out', flag.format(tmp=tmp_path))
  assert_one_line(proc, name)
  assert listing(tmp_path) == before


@pytest.mark.parametrize('flag,name', [
    ('--quick=maybe', '--quick'),
    ('--no_such_flag', 'no_such_flag'),
    ('--out={tmp}/a_file', '--out'),
])
def test_benchmark_bad_flags_write_nothing(tmp_path, flag, name):
  (tmp_path / 'a_file').write_text('keep me')
  before = listing(tmp_path)
  proc = entry('benchmark', '--quick', f'--out={tmp_path}/out', flag.format(tmp=tmp_path))
  assert_one_line(proc, name)
  assert listing(tmp_path) == before


def test_reproduce_reruns_a_run_whose_record_was_cut_short(tmp_path, capsys):
  folder = str(tmp_path / 'suite')
  results = reproduce.run_suite('linear_regression', 'smoke', 1, folder)
  runs = reproduce.SUITES['linear_regression'].runs('smoke')
  cut, untimed = (reproduce.run_dir(folder, r, 0) for r in runs[:2])
  for path in (os.path.join(cut, 'summary.json'), os.path.join(untimed, reproduce.WALL_FILE)):
    text = open(path).read()
    with open(path, 'w') as f:
      f.write(text[:len(text) // 2])  # a kill mid-write of a plain open('w')
  capsys.readouterr()
  again = reproduce.run_suite('linear_regression', 'smoke', 1, folder)
  progress = capsys.readouterr().out.splitlines()
  assert again == results
  assert not progress[0].endswith('finished earlier')  # re-run
  assert all(line.endswith('finished earlier') for line in progress[1:])
  assert json.load(open(os.path.join(cut, 'summary.json')))['curve']
  total, timed, count = reproduce.runs_wall_seconds(folder)
  assert (timed, count) == (len(runs) - 1, len(runs)) and total > 0  # the cut record: untimed
  reproduce.write_outputs('linear_regression', 'smoke', again, folder, 1.0)


# ----------------------------------------------------------------------------- run_one


def test_run_one_reruns_a_run_killed_before_its_plots_or_within_its_summary(scored_run, tmp_path,
                                                                          monkeypatch):
  """summary.json is written last: a run killed at its plots has none, and run_one
  resumes it to every artifact; a summary cut short counts as unfinished too."""
  from datarater.report import plots
  config, run, _ = copy_run(scored_run, tmp_path, with_npz=False)
  summary = json.load(open(os.path.join(run, 'summary.json')))
  curves = os.path.join(run, 'plots', 'training_curves.png')
  os.remove(curves)
  os.remove(os.path.join(run, 'summary.json'))
  real = plots.training_curves

  def killed(*args):
    raise KeyboardInterrupt
  monkeypatch.setattr(plots, 'training_curves', killed)
  with pytest.raises(KeyboardInterrupt):
    run_one(config, run)
  assert not os.path.exists(os.path.join(run, 'summary.json'))
  monkeypatch.setattr(plots, 'training_curves', real)
  assert run_one(config, run)['test_accuracy'] == summary['test_accuracy']
  assert os.path.getsize(curves) > 0
  path = os.path.join(run, 'summary.json')
  text = open(path).read()
  with open(path, 'w') as f:
    f.write(text[:len(text) // 2])
  again = run_one(config, run)  # resumes from the last checkpoint and writes the summary
  assert again['test_accuracy'] == summary['test_accuracy']
  assert json.load(open(path))['test_accuracy'] == summary['test_accuracy']
