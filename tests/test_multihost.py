"""Multi-process runs (JAX's multi-controller runtime, gloo collectives on CPU):
2 processes x 2 devices give the summary.json of 1 process x 4 devices, and a
2-process run killed mid-way resumes exactly when both processes are re-run.

Tolerance: rtol 1e-5 (atol 1e-7). Both layouts run the same 4-way
data-parallel program, but a 2-process program is compiled for 2 local
devices and reduces across processes through gloo, so float32 sums may be
added in another order (measured: the last bit of a few per-example losses).

Every process is a subprocess with a bounded wait: a hung peer fails the test.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from conftest import FAST_COMPILE, ROOT

TIMEOUT = 240  # seconds for a whole group of processes
RTOL, ATOL = 1e-5, 1e-7

# Runs every (config, overrides, workdir) of argv[4] in order, in one process of
# argv[3] (port, or '' for a single process); unknown fields are added.
DRIVER = """
import json, sys
sys.path.insert(0, 'tests')
from datarater.train import sharding
pid, nproc, port, runs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
if port:
  sharding.initialize(f'127.0.0.1:{port}', nproc, pid, timeout_s=60)
import ml_collections
from conftest import load_config
from datarater.run import train_and_evaluate
for name, overrides, workdir in runs:
  config = load_config(name)
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    node = config
    for p in parents:
      if p not in node:
        node[p] = ml_collections.ConfigDict()
      node = node[p]
    node[leaf] = tuple(value) if isinstance(value, list) else value
  train_and_evaluate(config, workdir)
"""

# Long enough to be killed mid-run: checkpoints every 50 of 300 steps.
LONG = {'num_steps': 300, 'log_every': 10, 'eval_every': 100, 'checkpoint_every': 50}
METHODS = [('uniform', LONG), ('datarater', {'mesh.population': 2}), ('scalebio', {}),
           ('kl_dro', {}), ('infobatch', {})]


def _port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(runs, processes: int, devices: int):
  """Starts `processes` driver processes with `devices` CPU devices each."""
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices} {FAST_COMPILE}')
  port = str(_port()) if processes > 1 else ''
  return [subprocess.Popen([sys.executable, '-c', DRIVER, str(i), str(processes), port,
                            json.dumps(runs)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True) for i in range(processes)]


def _kill(procs):
  for p in procs:
    if p.poll() is None:
      p.kill()
  for p in procs:
    p.communicate()


def _wait(procs, deadline):
  """Waits for every process (until `deadline`); asserts each exited 0."""
  try:
    outs = [p.communicate(timeout=max(deadline - time.time(), 1))[0] for p in procs]
  except subprocess.TimeoutExpired:
    _kill(procs)
    raise AssertionError('a process did not finish in time (a hung peer?)') from None
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


def _assert_close(a, b, path='summary'):
  """Every number of two summary.json trees agrees (wall-clock times excepted)."""
  if isinstance(a, dict):
    assert a.keys() == b.keys(), path
    for k in a:
      if k != 'wall_seconds':
        _assert_close(a[k], b[k], f'{path}.{k}')
  elif isinstance(a, list):
    assert len(a) == len(b), path
    for i, (x, y) in enumerate(zip(a, b)):
      _assert_close(x, y, f'{path}[{i}]')
  elif isinstance(a, (int, float)) and not isinstance(a, bool):
    np.testing.assert_allclose(np.asarray(b, float), np.asarray(a, float), rtol=RTOL, atol=ATOL,
                               err_msg=path)
  else:
    assert a == b, path


def _read(workdir, name):
  with open(os.path.join(workdir, name)) as f:
    return [json.loads(l) for l in f] if name.endswith('.jsonl') else json.load(f)


def test_two_processes_match_one_and_resume_exactly_after_kill(tmp_path):
  deadline = time.time() + TIMEOUT
  runs = {layout: [(name, overrides, str(tmp_path / layout / name))
                   for name, overrides in METHODS] for layout in ('one', 'two')}
  one = _start(runs['one'], processes=1, devices=4)
  two = _start(runs['two'], processes=2, devices=2)
  killed_dir = str(tmp_path / 'killed')
  try:
    _wait(two, deadline)
    # Kill both processes of a run once it has checkpointed step 50: stop one
    # (the other then blocks in the next collective), kill both.
    killed = _start([('uniform', LONG, killed_dir)], processes=2, devices=2)
    folder = os.path.join(killed_dir, 'checkpoints', 'train')
    while not (os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder))):
      assert time.time() < deadline and all(p.poll() is None for p in killed), 'no checkpoint'
      time.sleep(0.01)
    os.kill(killed[1].pid, signal.SIGSTOP)
    _kill(killed)
    assert not os.path.exists(os.path.join(killed_dir, 'summary.json'))
    outs = _wait(_start([('uniform', LONG, killed_dir)], processes=2, devices=2), deadline)
    assert 'resumed from step' in outs[0]
    _wait(one, deadline)
  finally:
    _kill(one + two)
  assert _read(killed_dir, 'metrics.jsonl') == _read(runs['two'][0][2], 'metrics.jsonl')
  for (name, _, a), (_, _, b) in zip(runs['one'], runs['two']):
    _assert_close(_read(a, 'summary.json'), _read(b, 'summary.json'), name)
    assert sorted(os.listdir(b)) == sorted(os.listdir(a)), name  # only the primary writes
