"""Imports that overlap other work: heavy libraries a run needs late.

`preload(name, loader)` registers `loader()` (an import) to run on a background
thread; the training loop starts the registered loaders (`start`) once its
first dispatch and the next one's batches are on the devices, so they run
while the main thread waits for the device instead of competing with it for
the interpreter while it traces and compiles (or with the input pipeline's
thread while it makes the next batches: started right after the first
dispatch, they held up the second one's batches by 0.2 s in the L2RW job). `load(name, loader)` waits for that thread, if one was started,
and returns `loader()` (then a cached import). A run preloads orbax (its first
checkpoint) and matplotlib (its closing plot); `--help`, the configs and a run
that fails its checks import neither. A process that ends while a preload
runs (a run stopped by a non-finite value) waits for it at exit: an import cut
short by the interpreter's teardown aborts the process.
"""

from __future__ import annotations

import atexit
import threading
from typing import Callable

_pending: dict = {}   # name -> loader, registered and not started
_threads: dict = {}   # name -> the thread running its loader


def preload(name: str, loader: Callable) -> None:
  """Registers `loader` to run on a background thread at the next `start`."""
  if name not in _threads:
    _pending[name] = loader


def start() -> None:
  """Starts every registered loader on a daemon thread (one thread each)."""
  if _pending and not _threads:
    atexit.register(_join)
  while _pending:
    name, loader = _pending.popitem()
    _threads[name] = threading.Thread(target=loader, name=f'preload-{name}', daemon=True)
    _threads[name].start()


def _join() -> None:
  for thread in _threads.values():
    thread.join()


def load(name: str, loader: Callable):
  """`loader()`, after the preload of `name` (if one was started) has finished."""
  _pending.pop(name, None)
  if name in _threads:
    _threads[name].join()
  return loader()
