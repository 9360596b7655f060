"""Data parallelism: 8 simulated CPU devices give the same metrics as 1 device.

Each device count runs in its own process (XLA_FLAGS must be set before JAX starts).
Tolerance: rtol 1e-4 on every logged float (reductions are summed in another order).
"""

import json
import os
import subprocess
import sys

import numpy as np

from conftest import FAST_COMPILE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import json, sys
sys.path.insert(0, 'tests')
import ast
import jax
from conftest import load_config
from datarater.run import train_and_evaluate
config = load_config(sys.argv[1], sys.argv[2])
for kv in sys.argv[4:]:
  k, v = kv.split('=')
  node = config
  *parents, leaf = k.split('.')
  for p in parents:
    node = node[p]
  old = node[leaf]
  if isinstance(old, bool):
    node[leaf] = v.lower() in ('1', 'true')
  elif isinstance(old, str):  # a string field that also takes numbers ('auto' or 0.5)
    try:
      node[leaf] = ast.literal_eval(v)
    except (ValueError, SyntaxError):
      node[leaf] = v
  else:
    node[leaf] = type(old)(v)
train_and_evaluate(config, sys.argv[3])
print('DEVICES', jax.device_count())
"""


def run_on(devices, workdir, config='uniform', arg='dataset=digits,smoke', *overrides):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices} {FAST_COMPILE}')
  proc = subprocess.run([sys.executable, '-c', SCRIPT, config, arg, str(workdir), *overrides],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'DEVICES {devices}' in proc.stdout
  return [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]


def assert_same_rows(a, b, rtol=1e-4, atol=1e-6):
  assert [r['step'] for r in a] == [r['step'] for r in b]
  for ra, rb in zip(a, b):
    assert ra.keys() == rb.keys()
    for k, v in ra.items():
      if isinstance(v, (float, list)):
        np.testing.assert_allclose(rb[k], v, rtol=rtol, atol=atol, err_msg=f'step {ra["step"]} {k}')


def test_uniform_8_devices_matches_1(tmp_path):
  assert_same_rows(run_on(1, tmp_path / 'one'), run_on(8, tmp_path / 'eight'))


def test_batch_not_divisible_by_devices_is_one_line(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f'--xla_force_host_platform_device_count=8 {FAST_COMPILE}')
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.train', '--config=configs/uniform.py:dataset=digits,smoke',
       '--config.batch_size=12', f'--workdir={tmp_path / "r"}'],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2
  assert proc.stderr == 'error: config.batch_size must be divisible by the 8 devices, got 12\n'
