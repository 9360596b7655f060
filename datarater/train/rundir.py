"""The run directory contract, shared by every method.

  config.json       resolved config (+ python/jax versions, device count)
  fingerprint.json  written once by a fresh run: its config and a hash of its
                    data arrays; a resume must match it (datarater.train)
  metrics.jsonl     one JSON object per logged step: {"phase", "step", metrics...}
  tensorboard/      TensorBoard scalars (tensorboardX: no TensorFlow needed)
  checkpoints/      orbax checkpoints, one sub-folder per phase
  summary.json      final metrics, per-source test loss, compute ledger, extras
  plots/*.png       training curves (and method plots)
  diverged.json     only after a run stopped on a non-finite value (loop.Diverged)
  lock              holds the PID of the one process writing this directory

Multi-process runs: every process opens the run directory, but only the
primary (process 0) takes the lock and writes the files above; the checkpoints
are written by all processes together (orbax coordinates them), and every
process reads the shared files. Another process's `file()` names a private
temporary directory (removed by `close()`), so that a method's own outputs
(plots, score arrays) are written once, by the primary. The lock thus keeps
two runs out of one workdir through their primaries; the processes of one run
are held together by JAX's runtime.

Every JSON file is strict JSON (a non-finite float is written as null), and
every file that is rewritten (config.json, summary.json, fingerprint.json,
diverged.json, metrics.jsonl when rows are dropped on resume) is written to a
temporary file and renamed over the old one, so a kill leaves either the old
or the new file, never a partial one.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import shutil
import sys
import tempfile

import jax
import numpy as np


class WorkdirError(ValueError):
  """The run directory cannot be used; the message is one line naming it."""


def to_jsonable(x):
  """numpy/jax scalars and arrays -> Python numbers and lists; non-finite floats -> None."""
  if isinstance(x, dict):
    return {k: to_jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_jsonable(v) for v in x]
  if isinstance(x, (jax.Array, np.ndarray, np.generic)):
    return to_jsonable(np.asarray(x).tolist())
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def dumps(x, **kwargs) -> str:
  """Strict JSON text of `x` (never NaN/Infinity tokens)."""
  return json.dumps(to_jsonable(x), allow_nan=False, **kwargs)


def write_atomic(path: str, chunks) -> None:
  """Writes the strings `chunks` to `path` through a temporary file and an atomic rename."""
  tmp = f'{path}.tmp'
  with open(tmp, 'w') as f:
    for chunk in chunks:
      f.write(chunk)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def _lock(path: str, workdir: str) -> int:
  """Takes an exclusive flock on `path` (released by the kernel when the process dies)."""
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    pid = os.read(fd, 32).decode(errors='replace').strip() or 'unknown'
    os.close(fd)
    raise WorkdirError(f'--workdir={workdir} is in use by process {pid} (lock file {path}); '
                       'wait for it to finish or use another workdir') from None
  os.ftruncate(fd, 0)
  os.write(fd, f'{os.getpid()}\n'.encode())
  return fd


class RunDir:
  """Writers for one run directory; the primary holds its lock until `close()`.

  Args:
    workdir: the run directory (shared by every process of a multi-process run).
    primary: whether this process writes the run directory (see the module
      docstring); the others write into a private temporary directory.

  Raises:
    WorkdirError: the workdir is a file, is not writable, or another process
      holds its lock.
  """

  def __init__(self, workdir: str, primary: bool = True):
    self.path = os.path.abspath(workdir)
    self.primary = primary
    self._lock_fd, self._tb = None, None
    if os.path.exists(self.path) and not os.path.isdir(self.path):
      raise WorkdirError(f'--workdir={workdir} is a file, not a directory')
    self._out = self.path if primary else tempfile.mkdtemp(prefix='datarater_process_')
    try:
      os.makedirs(self.file('plots'), exist_ok=True)
      if primary:
        self._lock_fd = _lock(self.file('lock'), workdir)
    except OSError as e:
      raise WorkdirError(f'--workdir={workdir} is not writable ({e.strerror})') from None

  def file(self, *parts) -> str:
    """Path of a file this process writes (the run directory's, in the primary)."""
    return os.path.join(self._out, *parts)

  def shared(self, *parts) -> str:
    """Path in the run directory itself (checkpoints, and files every process reads)."""
    return os.path.join(self.path, *parts)

  def read_json(self, name: str):
    """The parsed JSON file `name` of the run directory, or None if it does not exist."""
    if not os.path.exists(self.shared(name)):
      return None
    with open(self.shared(name)) as f:
      return json.load(f)

  def write_json(self, name: str, data, sort_keys: bool = False) -> None:
    write_atomic(self.file(name), [dumps(data, indent=2, sort_keys=sort_keys)])

  def write_config(self, config, extra: dict):
    self.write_json('config.json', {**json.loads(config.to_json_best_effort()), '_run': extra},
                    sort_keys=True)

  def read_metrics(self) -> list[dict]:
    """Logged rows; a final row cut short by a kill during `log` is dropped."""
    if not os.path.exists(self.shared('metrics.jsonl')):
      return []
    with open(self.shared('metrics.jsonl')) as f:
      lines = f.read().splitlines(keepends=True)
    if lines and not lines[-1].endswith('\n'):
      lines.pop()
    return [json.loads(line) for line in lines if line.strip()]

  def truncate_metrics(self, phase: str, step: int):
    """Drops rows of `phase` after `step` (written after the last checkpoint), atomically."""
    if not self.primary:
      return
    rows = [r for r in self.read_metrics() if not (r['phase'] == phase and r['step'] > step)]
    write_atomic(self.file('metrics.jsonl'), (dumps(r) + '\n' for r in rows))

  def log(self, phase: str, step: int, metrics: dict):
    """Appends a row to metrics.jsonl and TensorBoard (primary only)."""
    if not self.primary:
      return
    row = to_jsonable({'phase': phase, 'step': int(step), **metrics})
    with open(self.file('metrics.jsonl'), 'a') as f:
      f.write(dumps(row) + '\n')
    if self._tb is None:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(self.file('tensorboard'))
    for k, v in row.items():
      if isinstance(v, (int, float)) and not isinstance(v, bool) and k != 'step':
        self._tb.add_scalar(f'{phase}/{k}', v, step)
      elif isinstance(v, list) and len(v) <= 64:
        for i, e in enumerate(v):
          if isinstance(e, (int, float)):  # None (non-finite) is not logged
            self._tb.add_scalar(f'{phase}/{k}/{i}', e, step)

  def write_summary(self, summary: dict):
    self.write_json('summary.json', summary)

  def close(self):
    """Flushes TensorBoard and releases the lock (removes a private directory)."""
    if self._tb is not None:
      self._tb.close()
      self._tb = None
    if self._lock_fd is not None:
      os.close(self._lock_fd)
      self._lock_fd = None
    if not self.primary:
      shutil.rmtree(self._out, ignore_errors=True)


def run_metadata() -> dict:
  return {'python': platform.python_version(), 'jax': jax.__version__,
          'devices': jax.device_count(), 'processes': jax.process_count(),
          'platform': jax.default_backend(),
          'argv': sys.argv}
