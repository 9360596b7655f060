"""The run directory contract, shared by every method.

  config.json       resolved config (+ python/jax versions, device count)
  fingerprint.json  written once by a fresh run: its config and a hash of its
                    data arrays; a resume must match it (datarater.run)
  metrics.jsonl     one JSON object per logged step: {"phase", "step", metrics...}
  tensorboard/      TensorBoard scalars (tensorboardX: no TensorFlow needed)
  checkpoints/      orbax checkpoints, one sub-folder per phase
  summary.json      final metrics, per-source test loss, compute ledger, extras
  plots/*.png       training curves (and method plots)
  diverged.json     only after a run stopped on a non-finite value (errors.Diverged)
  lock              the PID of the one process writing this directory; the
                    writer flocks this file (NFS forwards that lock to its
                    server) and the directory itself (which cannot be unlinked
                    under a live writer: deleting this file lets nobody in)

Multi-process runs: every process opens the run directory, but only the
primary (process 0) takes the lock and writes the files above; the checkpoints
are written by all processes together (orbax coordinates them), and every
process reads the shared files. Another process's `file()` names a private
temporary directory (removed by `close()`), so that a method's own outputs
(plots, score arrays) are written once, by the primary. The lock thus keeps
two runs out of one workdir through their primaries; the processes of one run
are held together by JAX's runtime.

Cleanup rule (`RunDir.remove_if_unresumable`, called when a run fails): a
run removes only what it created, and only while nothing resumable exists.
Once anything is under checkpoints/, a failure leaves the workdir for a re-run
to resume; a directory that existed before the run is never removed (of an
empty one, only the files the run put there are); an empty --workdir is
refused, so the current directory is never a candidate.

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

from datarater.errors import WorkdirError


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


def _lock(path: str, workdir: str) -> list:
  """Takes exclusive flocks on the directory `path` itself and on `path/lock`
  (released by the kernel when the process dies); `path/lock` records this PID.

  The directory lock cannot be deleted from under a live writer (unlike a
  lock file); the lock file, opened for writing, is what NFS forwards to its
  server, so writers on other hosts are kept out too.

  Returns:
    The locked file descriptors.
  """
  fds = []
  try:
    fds.append(os.open(path, os.O_RDONLY | os.O_DIRECTORY))
    fcntl.flock(fds[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)
    fds.append(os.open(os.path.join(path, 'lock'), os.O_RDWR | os.O_CREAT, 0o644))
    fcntl.flock(fds[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    for fd in fds:
      os.close(fd)
    try:
      with open(os.path.join(path, 'lock')) as f:
        pid = f.read(32).strip() or 'unknown'
    except OSError:
      pid = 'unknown'
    raise WorkdirError(f'--workdir={workdir} is in use by process {pid}; '
                       'wait for it to finish or use another workdir') from None
  os.ftruncate(fds[-1], 0)
  os.pwrite(fds[-1], f'{os.getpid()}\n'.encode(), 0)
  return fds


def check_workdir(workdir) -> None:
  """Raises WorkdirError for a workdir that is empty or names a file (before anything is written)."""
  if workdir is None or not str(workdir).strip():
    raise WorkdirError('--workdir is empty: name a run directory (an empty value would mean the '
                       'current directory, which a run never uses implicitly)')
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f'--workdir={workdir} is a file, not a directory')


class RunDir:
  """Writers for one run directory; the primary holds its lock until `close()`.

  Args:
    workdir: the run directory (shared by every process of a multi-process run).
    primary: whether this process writes the run directory (see the module
      docstring); the others write into a private temporary directory.

  Attributes:
    existed: whether the directory existed before this RunDir (then the
      cleanup rule never removes it).
    was_empty: whether it existed and was empty.

  Raises:
    WorkdirError: the workdir is empty, a file, is not writable, or another
      process holds its lock.
  """

  def __init__(self, workdir: str, primary: bool = True):
    check_workdir(workdir)
    self.path = os.path.abspath(workdir)
    self.primary = primary
    self._lock_fd, self._tb, self._tail = None, None, None
    self.existed = os.path.isdir(self.path)
    self.was_empty = self.existed and not os.listdir(self.path)
    self._out = self.path if primary else tempfile.mkdtemp(prefix='datarater_process_')
    try:
      os.makedirs(self.file('plots'), exist_ok=True)
      if primary:
        self._lock_fd = _lock(self.path, workdir)
    except OSError as e:
      raise WorkdirError(f'--workdir={workdir} is not writable ({e.strerror})') from None

  def file(self, *parts) -> str:
    """Path of a file this process writes (the run directory's, in the primary)."""
    return os.path.join(self._out, *parts)

  def shared(self, *parts) -> str:
    """Path in the run directory itself (checkpoints, and files every process reads)."""
    return os.path.join(self.path, *parts)

  def read_json(self, name: str):
    """The parsed JSON file `name` of the run directory, or None if it does not exist.

    Raises:
      WorkdirError: the file is not valid JSON (one line naming it).
    """
    path = self.shared(name)
    if not os.path.exists(path):
      return None
    try:
      with open(path) as f:
        return json.load(f)
    except ValueError as e:
      raise WorkdirError(f'{path} is not valid JSON ({e}); restore or remove it, or use a new '
                         'workdir') from None

  def write_json(self, name: str, data, sort_keys: bool = False) -> None:
    write_atomic(self.file(name), [dumps(data, indent=2, sort_keys=sort_keys)])

  def write_config(self, config, extra: dict):
    self.write_json('config.json', {**json.loads(config.to_json_best_effort()), '_run': extra},
                    sort_keys=True)

  def read_metrics(self) -> list[dict]:
    """Logged rows; a final row cut short by a kill during `log` is dropped.

    Raises:
      WorkdirError: a complete line is not valid JSON (one line naming it).
    """
    path = self.shared('metrics.jsonl')
    if not os.path.exists(path):
      return []
    with open(path, errors='replace') as f:
      lines = f.read().splitlines(keepends=True)
    if lines and not lines[-1].endswith('\n'):
      lines.pop()
    rows = []
    for i, line in enumerate(lines):
      if line.strip():
        try:
          row = json.loads(line)
        except ValueError as e:
          raise WorkdirError(f'{path} line {i + 1} is not valid JSON ({e}); remove that line or '
                             'use a new workdir') from None
        if not isinstance(row, dict) or not {'phase', 'step'} <= set(row):
          raise WorkdirError(f'{path} line {i + 1} is not a metrics row (no phase/step); remove '
                             'that line or use a new workdir')
        rows.append(row)
    return rows

  def truncate_metrics(self, phase: str, step: int):
    """Drops rows of `phase` after `step` (written after its last checkpoint), atomically.

    If rows of later phases follow the dropped ones (a phase resumed from an
    older checkpoint after later phases ran), the phase's re-done rows are
    then inserted where the dropped ones were, so the file keeps the order
    of an uninterrupted run.
    """
    if not self.primary:
      return
    rows = self.read_metrics()
    mine = [i for i, r in enumerate(rows) if r['phase'] == phase]
    dropped = {i for i in mine if rows[i]['step'] > step}
    at = min(dropped) if dropped else (mine[-1] + 1 if mine else len(rows))
    kept = [r for i, r in enumerate(rows) if i not in dropped]
    head, tail = kept[:at], kept[at:]
    self._tail = (head, tail) if tail else None
    if dropped:
      write_atomic(self.file('metrics.jsonl'), (dumps(r) + '\n' for r in kept))

  def log(self, phase: str, step: int, metrics: dict):
    """Appends a row to metrics.jsonl and TensorBoard (primary only)."""
    if not self.primary:
      return
    row = to_jsonable({'phase': phase, 'step': int(step), **metrics})
    if self._tail is None:
      with open(self.file('metrics.jsonl'), 'a') as f:
        f.write(dumps(row) + '\n')
    else:  # a re-done phase: its rows go before the later phases' rows
      head, tail = self._tail
      head.append(row)
      write_atomic(self.file('metrics.jsonl'), (dumps(r) + '\n' for r in head + tail))
    if self._tb is None:
      self._tb = _summary_writer(self.file('tensorboard'))
    for k, v in row.items():
      if isinstance(v, (int, float)) and not isinstance(v, bool) and k != 'step':
        self._tb.add_scalar(f'{phase}/{k}', v, step)
      elif isinstance(v, list) and len(v) <= 64:
        for i, e in enumerate(v):
          if isinstance(e, (int, float)):  # None (non-finite) is not logged
            self._tb.add_scalar(f'{phase}/{k}/{i}', e, step)

  def write_summary(self, summary: dict):
    self.write_json('summary.json', summary)

  def close_tensorboard(self):
    """Flushes and closes the TensorBoard writer. TensorBoard files are auxiliary:
    a failure to write them (a full disk) is one warning line, not a failed run."""
    if self._tb is None:
      return
    tb, self._tb = self._tb, None
    try:
      tb.close()
    except OSError as e:
      print(f'warning: TensorBoard scalars in {self.file("tensorboard")} are incomplete '
            f'({e.strerror or e}); metrics.jsonl holds every logged row', file=sys.stderr,
            flush=True)

  def resumable(self) -> bool:
    """Whether anything is under checkpoints/ (a re-run may resume from it)."""
    folder = self.shared('checkpoints')
    return os.path.isdir(folder) and any(files for _, _, files in os.walk(folder))

  def remove_if_unresumable(self) -> None:
    """The cleanup rule for a failed run (primary only): removes what this run
    created, unless something resumable exists; never a directory that
    existed before the run (of one that was empty, only its new entries)."""
    if not self.primary or self.resumable():
      return
    if not self.existed:
      shutil.rmtree(self.path, ignore_errors=True)
    elif self.was_empty:
      for name in os.listdir(self.path):
        path = os.path.join(self.path, name)
        if os.path.isdir(path) and not os.path.islink(path):
          shutil.rmtree(path, ignore_errors=True)
        else:
          os.remove(path)

  def close(self):
    """Flushes TensorBoard and releases the lock (removes a private directory)."""
    self.close_tensorboard()
    for fd in self._lock_fd or ():
      os.close(fd)
    self._lock_fd = None
    if not self.primary:
      shutil.rmtree(self._out, ignore_errors=True)


def run_metadata() -> dict:
  return {'python': platform.python_version(), 'jax': jax.__version__,
          'devices': jax.device_count(), 'processes': jax.process_count(),
          'platform': jax.default_backend(),
          'argv': sys.argv}


def _summary_writer(logdir: str):
  """tensorboardX's SummaryWriter, imported without PyTorch.

  tensorboardX imports torch at import time whenever it is installed, only to
  accept torch tensors (we log Python floats); that import took 1.6 s of a 6.5 s
  uniform digits run. A None entry in sys.modules makes `import torch` raise
  ImportError, which tensorboardX handles; the entry is removed again at once.
  """
  blocked = 'torch' not in sys.modules
  if blocked:
    sys.modules['torch'] = None
  try:
    from tensorboardX import SummaryWriter
  finally:
    if blocked:
      del sys.modules['torch']
  return SummaryWriter(logdir)
