"""Reliability (issue 9): non-finite policy, strict JSON, atomic rewrites, one
writer per workdir, checkpoint fallback, data checks, resume fingerprints,
one-line CLI errors, device count per ledger segment. One test per defect."""

import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import FAST_COMPILE, ROOT, load_config
from datarater.data import DataError, load_dataset, sampler
from datarater.errors import ConfigError, Diverged, WorkdirError
from datarater.run import train_and_evaluate
from datarater.train import rundir as rundir_lib
from datarater.train.context import Context
from datarater.train.guard import SKIPPED
from datarater.train.loop import train_phase
from datarater.train.rundir import RunDir
from datarater.train.sharding import make_mesh
from datarater.train.state import Method
from datarater.train.task import make_task

SMOKE = 'configs/uniform.py:dataset=digits,smoke'


def cli(workdir, *flags, devices=None, config=SMOKE):
  """Runs experiments.train; returns (returncode, stdout, the stderr lines starting 'error:')."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  if devices:
    env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices} {FAST_COMPILE}'
  proc = subprocess.run([sys.executable, '-m', 'experiments.train', f'--config={config}',
                         f'--workdir={workdir}', *flags],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  return proc.returncode, proc.stdout, errors


def strict_json(path):
  """Parses a .json or .jsonl file, rejecting NaN/Infinity tokens."""
  def reject(token):
    raise ValueError(f'{path}: non-standard JSON token {token}')
  with open(path) as f:
    lines = f.read().splitlines() if path.endswith('.jsonl') else [f.read()]
  return [json.loads(l, parse_constant=reject) for l in lines if l.strip()]


def rows(workdir):
  return strict_json(os.path.join(workdir, 'metrics.jsonl'))


# ----------------------------------------------------------------------------- 1. non-finite


def _counting_method(nan_at: int, dataset, seed: int) -> Method:
  """Adds 1 to a counter every step; the batch of step `nan_at` (0-based) makes it NaN."""
  poison = sampler.sequential_indices(dataset.train.size, 16, seed, nan_at)[0]

  def step(train_state, count, batch, key):
    del key
    bad = batch['index'][0] == poison
    new = jnp.where(bad, jnp.nan, count + 1.0)
    return train_state._replace(step=train_state.step + 1), new, {'train/loss': new}
  return Method(init=lambda key, ts: jnp.zeros(()), step=step, train_batch_size=16)


def _ctx(tmp_path, policy):
  config = load_config('uniform')
  config.nonfinite = policy
  dataset = load_dataset(config.data, config.seed)
  return Context(config, dataset, RunDir(str(tmp_path / policy)), make_mesh()), config, dataset


def test_skip_policy_drops_only_the_bad_update(tmp_path):
  ctx, config, dataset = _ctx(tmp_path, 'skip')
  method = _counting_method(2, dataset, config.seed)
  result = train_phase(ctx, 'count', method, make_task(config, dataset.info), 6, trains_model=False)
  assert float(result.method_state) == 5.0          # 6 steps, the NaN one skipped
  assert result.ledger['skipped_steps'] == 1
  assert [r[SKIPPED] for r in ctx.run.read_metrics()] == [0, 1, 0, 0]  # per logging window


def test_stop_policy_keeps_and_checkpoints_the_last_good_state(tmp_path):
  ctx, config, dataset = _ctx(tmp_path, 'stop')
  with pytest.raises(Diverged, match=r"phase 'count' step 3: metric train/loss is not finite"):
    train_phase(ctx, 'count', _counting_method(2, dataset, config.seed),
                make_task(config, dataset.info), 6, trains_model=False)
  assert sorted(os.listdir(ctx.run.file('checkpoints', 'count'))) == ['2']
  saved = ocp.CheckpointManager(ctx.run.file('checkpoints', 'count')).restore(
      2, args=ocp.args.Composite(state=ocp.args.StandardRestore(), ledger=ocp.args.JsonRestore()))
  assert float(saved.state['method_state']) == 2.0 and saved.ledger['steps'] == 2
  assert json.load(open(ctx.run.file('diverged.json')))['step'] == 3


def test_diverged_cli_exits_3_and_rerun_says_so_at_once(tmp_path):
  """sgd at lr 1e20 goes NaN at step 2: exit 3, one line; a re-run repeats it
  before training; resuming with nonfinite=skip finishes, all files strict JSON."""
  workdir = str(tmp_path / 'run')
  code, _, err = cli(workdir, '--config.optimizer.name=sgd',
                     '--config.optimizer.learning_rate=1e20')
  assert code == 3 and len(err) == 1, err
  assert "phase 'train' step 2: metric train/loss is not finite" in err[0]
  assert 'checkpointed at step 1' in err[0]
  config = load_config('uniform')
  config.optimizer.name, config.optimizer.learning_rate = 'sgd', 1e20
  with pytest.raises(Diverged) as e:
    train_and_evaluate(config, workdir)
  assert err[0] == f'error: diverged: {e.value}'
  config.nonfinite = 'skip'
  summary = train_and_evaluate(config, workdir)
  assert summary['ledger']['skipped_steps'] == 5
  for name in ('config.json', 'summary.json', 'fingerprint.json', 'metrics.jsonl'):
    strict_json(os.path.join(workdir, name))
  assert rows(workdir)[-1]['test/loss'] is None and not os.path.exists(f'{workdir}/diverged.json')


def test_nan_rater_stops_in_meta_training(tmp_path):
  config = load_config('datarater')
  config.method.outer_learning_rate = 1e30
  config.method.inner_steps = 1
  with pytest.raises(Diverged, match=r"phase 'meta_train' step \d+: metric meta/"):
    train_and_evaluate(config, str(tmp_path / 'dr'))
  with pytest.raises(Diverged, match='meta_train'):   # the re-run, before any compilation
    train_and_evaluate(config, str(tmp_path / 'dr'))


@pytest.mark.parametrize('field,value', [('optimizer.learning_rate', float('nan')),
                                         ('optimizer.learning_rate', float('inf')),
                                         ('optimizer.grad_clip', float('nan')),
                                         ('data.corruption_rates', (0.1, float('nan')))])
def test_nonfinite_config_values_are_refused(tmp_path, field, value):
  config = load_config('uniform')
  *parents, leaf = field.split('.')
  node = config
  for p in parents:
    node = node[p]
  node[leaf] = value
  with pytest.raises(ConfigError, match=rf'config\.{field}.* must be a finite number'):
    train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_no_tensorboard_warning_for_nonfinite_values(tmp_path, caplog):
  run = RunDir(str(tmp_path))
  run.log('train', 1, {'test/loss': float('nan'), 'test/source_loss': [1.0, float('inf')]})
  run.close()
  assert 'NaN or Inf' not in caplog.text
  assert strict_json(run.file('metrics.jsonl'))[0]['test/source_loss'] == [1.0, None]


# ----------------------------------------------------------------------------- 2. atomic rewrites


def test_crash_during_truncate_keeps_every_row(tmp_path, monkeypatch):
  run = RunDir(str(tmp_path))
  for step in range(1, 201):
    run.log('train', step, {'train/loss': 1.0 / step})
  before = open(run.file('metrics.jsonl')).read()
  calls = []
  real = rundir_lib.dumps

  def dies_midway(*args, **kwargs):   # a kill while the rows are being rewritten
    calls.append(1)
    if len(calls) > 50:
      raise KeyboardInterrupt
    return real(*args, **kwargs)
  monkeypatch.setattr(rundir_lib, 'dumps', dies_midway)
  with pytest.raises(KeyboardInterrupt):
    run.truncate_metrics('train', 100)
  assert open(run.file('metrics.jsonl')).read() == before
  monkeypatch.undo()
  run.truncate_metrics('train', 100)
  assert [r['step'] for r in run.read_metrics()] == list(range(1, 101))


# ----------------------------------------------------------------------------- 3. lock


def test_one_process_per_workdir_and_a_killed_holder_does_not_block(tmp_path):
  workdir = str(tmp_path / 'run')
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from datarater.train.rundir import RunDir; '
       'RunDir(sys.argv[1]); print("locked", flush=True); time.sleep(300)', workdir],
      cwd=ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    code, _, err = cli(workdir)
    assert code == 2 and len(err) == 1, err
    assert workdir in err[0] and f'in use by process {holder.pid}' in err[0]
  finally:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
  RunDir(workdir).close()   # the kernel released the killed process's flock


# ------------------------------------------------------------------------- 4. checkpoint fallback


def test_broken_latest_checkpoint_falls_back_and_resumes_exactly(tmp_path, capsys):
  config = load_config('uniform')
  reference = str(tmp_path / 'ref')
  train_and_evaluate(config, reference)
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference, workdir)
  step6 = os.path.join(workdir, 'checkpoints', 'train', '6')
  blobs = [os.path.join(d, f) for d, _, fs in os.walk(step6) for f in fs if os.sep + 'd' in d]
  for breakage in ('truncate', 'metadata'):
    if breakage == 'truncate':
      for blob in blobs:
        open(blob, 'r+b').truncate(3)
    else:
      os.remove(os.path.join(step6, 'state', '_METADATA'))
    capsys.readouterr()
    train_and_evaluate(config, workdir)
    out = capsys.readouterr().out
    assert 'checkpoint at step 6 does not restore; resuming from step 3' in out
    assert rows(workdir) == rows(reference)


# ----------------------------------------------------------------------------- 5. data checks


def test_test_fraction_zero_is_refused(tmp_path):
  config = load_config('uniform')
  config.data.test_fraction = 0.0
  with pytest.raises(ConfigError, match='config.data.test_fraction'):
    train_and_evaluate(config, str(tmp_path / 'run'))


# ------------------------------------------------------------------------- 6. resume fingerprint


def _npz(path, shift=0):
  rng = np.random.default_rng(shift)
  np.savez(path, x_train=rng.normal(size=(80, 4)).astype(np.float32),
           y_train=np.arange(80) % 3, x_test=rng.normal(size=(20, 4)).astype(np.float32),
           y_test=np.arange(20) % 3)


def test_resume_that_would_change_results_is_refused(tmp_path):
  data = str(tmp_path / 'd.npz')
  _npz(data)
  config = load_config('uniform', 'dataset=npz,smoke')
  config.data.path, config.data.meta_size = data, 10
  config.optimizer.schedule = 'cosine'
  workdir = str(tmp_path / 'run')
  train_and_evaluate(config, workdir)
  saved = open(os.path.join(workdir, 'config.json')).read()
  config.num_steps = 3
  with pytest.raises(ConfigError, match=r'config.num_steps=3: .*checkpointed at step 6'):
    train_and_evaluate(config, workdir)
  config.num_steps = 12
  with pytest.raises(ConfigError, match=r"config.num_steps cannot change .*'cosine'"):
    train_and_evaluate(config, workdir)
  assert open(os.path.join(workdir, 'config.json')).read() == saved
  config.num_steps = 6
  os.remove(os.path.join(workdir, 'config.json'))
  config.batch_size = 32
  with pytest.raises(ConfigError, match='config.batch_size'):
    train_and_evaluate(config, workdir)
  config.batch_size = 16
  _npz(data, shift=1)                                  # same path, other arrays
  with pytest.raises(DataError, match='different data'):
    train_and_evaluate(config, workdir)


# ----------------------------------------------------------------------------- 7. CLI errors


@pytest.mark.parametrize('flags,needle', [
    (('--config.num_step=5',), "no field 'num_step'; did you mean 'num_steps'?"),
    (('--config.num_steps=abc',), '--config.num_steps=abc'),
    (('--config=configs/nope.py',), 'configs/nope.py'),
])
def test_cli_flag_errors_exit_2_with_one_line(tmp_path, flags, needle):
  code, _, err = cli(tmp_path / 'run', *flags)
  assert code == 2 and len(err) == 1 and needle in err[0], err
  assert not (tmp_path / 'run').exists()


def test_unusable_workdir_is_one_line(tmp_path):
  afile = tmp_path / 'afile'
  afile.write_text('x')
  with pytest.raises(WorkdirError, match='is a file, not a directory'):
    RunDir(str(afile))
  if os.geteuid() == 0:
    readonly = '/sys/datarater_readonly_test'   # root ignores permission bits; sysfs is read-only
  else:
    os.chmod(tmp_path, 0o500)
    readonly = str(tmp_path / 'run')
  with pytest.raises(WorkdirError, match='is not writable'):
    RunDir(readonly)


@pytest.mark.parametrize('field,value,needle', [
    ('seed', -1, 'config.seed'),
    ('data.imbalance', 0.0, 'config.data.imbalance'),
    ('model.kwargs.hidden', (0,), 'config.model.kwargs.hidden[0]'),
    ('optimizer.warmup_steps', -1, 'config.optimizer.warmup_steps'),
    ('optimizer.step_boundaries', (0.8, 0.5), 'config.optimizer.step_boundaries'),
    ('optimizer.step_boundaries', (1.5,), 'config.optimizer.step_boundaries'),
    ('optimizer.step_factor', 0.0, 'config.optimizer.step_factor'),
    ('optimizer.schedule', 'step', 'config.optimizer.step_boundaries'),  # step needs boundaries
])
def test_out_of_range_values_are_one_line_config_errors(tmp_path, field, value, needle):
  config = load_config('uniform')
  *parents, leaf = field.split('.')
  node = config
  for p in parents:
    node = node[p]
  node[leaf] = value
  with pytest.raises(ConfigError) as e:
    train_and_evaluate(config, str(tmp_path / 'run'))
  assert needle in str(e.value) and '\n' not in str(e.value)


# ----------------------------------------------------------------------------- 8. device count


def test_resume_on_another_device_count_is_recorded(tmp_path):
  workdir = str(tmp_path / 'run')
  config = load_config('uniform')
  config.num_steps = 3
  train_and_evaluate(config, workdir)
  code, out, err = cli(workdir, devices=2)
  assert code == 0, err
  assert 'resuming on 2 devices; steps 0-3 ran on 1' in out
  segments = json.load(open(os.path.join(workdir, 'summary.json')))['phases']['train']['ledger'][
      'segments']
  assert [(s['devices'], s['from_step'], s['to_step']) for s in segments] == [(1, 0, 3), (2, 3, 6)]


def test_a_phase_without_a_shared_stream_draws_its_init_from_its_own_key(tmp_path):
  """(paired_arms=False passes the phase's own name.) Its initial parameters come from the
  stream '<phase>/init', not from the key its method and step keys are split from."""
  from datarater.methods import uniform
  from datarater.train.context import phase_key
  from datarater.train.state import init_train_state
  ctx, config, dataset = _ctx(tmp_path, 'stop')
  task = make_task(config, dataset.info)
  result = train_phase(ctx, 'solo', uniform.make(config, task, dataset), task, 0,
                       init_stream='solo')
  own = init_train_state(task, phase_key(config.seed, 'solo/init')).params
  parent = init_train_state(task, phase_key(config.seed, 'solo')).params
  for got, want in zip(*map(jax.tree.leaves, (result.train_state.params, own))):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(own),
                                                      jax.tree.leaves(parent)))
