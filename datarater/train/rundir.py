"""The run directory contract, shared by every method.

  config.json       resolved config (+ python/jax versions, device count)
  metrics.jsonl     one JSON object per logged step: {"phase", "step", metrics...}
  tensorboard/      TensorBoard scalars (tensorboardX: no TensorFlow needed)
  checkpoints/      orbax checkpoints, one sub-folder per phase
  summary.json      final metrics, per-source test loss, compute ledger, extras
  plots/*.png       training curves (and method plots)
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys

import jax
import numpy as np


def to_jsonable(x):
  """numpy/jax scalars and arrays -> floats and lists."""
  if isinstance(x, dict):
    return {k: to_jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_jsonable(v) for v in x]
  if isinstance(x, (jax.Array, np.ndarray, np.generic)):
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x.tolist()
  return x


class RunDir:
  """Writers for one run directory."""

  def __init__(self, workdir: str):
    self.path = os.path.abspath(workdir)
    os.makedirs(os.path.join(workdir, 'plots'), exist_ok=True)
    self._tb = None

  def file(self, *parts) -> str:
    return os.path.join(self.path, *parts)

  def write_config(self, config, extra: dict):
    data = json.loads(config.to_json_best_effort())
    data['_run'] = extra
    with open(self.file('config.json'), 'w') as f:
      json.dump(data, f, indent=2, sort_keys=True)

  def read_metrics(self) -> list[dict]:
    if not os.path.exists(self.file('metrics.jsonl')):
      return []
    with open(self.file('metrics.jsonl')) as f:
      return [json.loads(line) for line in f if line.strip()]

  def truncate_metrics(self, phase: str, step: int):
    """Drops rows of `phase` after `step` (written after the last checkpoint)."""
    rows = [r for r in self.read_metrics() if not (r['phase'] == phase and r['step'] > step)]
    with open(self.file('metrics.jsonl'), 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in rows)

  def log(self, phase: str, step: int, metrics: dict):
    row = {'phase': phase, 'step': int(step), **to_jsonable(metrics)}
    with open(self.file('metrics.jsonl'), 'a') as f:
      f.write(json.dumps(row) + '\n')
    if self._tb is None:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(self.file('tensorboard'))
    for k, v in row.items():
      if isinstance(v, (int, float)) and k != 'step' and math.isfinite(v):
        self._tb.add_scalar(f'{phase}/{k}', v, step)
      elif isinstance(v, list) and v and all(isinstance(e, (int, float)) for e in v) and len(v) <= 64:
        for i, e in enumerate(v):
          self._tb.add_scalar(f'{phase}/{k}/{i}', e, step)

  def write_summary(self, summary: dict):
    with open(self.file('summary.json'), 'w') as f:
      json.dump(to_jsonable(summary), f, indent=2)

  def close(self):
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def run_metadata() -> dict:
  return {'python': platform.python_version(), 'jax': jax.__version__,
          'devices': jax.device_count(), 'platform': jax.default_backend(),
          'argv': sys.argv}
