"""Time to result: a whole `experiments.train` process against its floor (issue 23).

A researcher who runs a small experiment waits for the whole process, not for its steps. For
each job (the README's quick-start DataRater run, uniform on digits, and L2RW on a noisy-digits
npz like the hidden tests' jobs, 1,500 steps), measured in the same benchmark run:

* whole process, cold: `python -m experiments.train ...` with an empty compilation cache;
* whole process, warm: the same command again (same cache, new run directory), the case of a
  researcher who re-runs with another seed or rate;
* floor: starting Python with jax, flax and optax imported (a `python -c` process) plus the
  job's training steps, every phase fused in one jitted `lax.scan` over its batches already
  stacked on the device (`fused_seconds`; compilation not counted);
* `python -m experiments.train --help` (import time of the entry point).

Cold and warm runs alternate with a fresh cache per pair. With --peers the L2RW job also runs
as the PyTorch peer (`torch_peer.torch_l2rw_run`, a whole process) in alternating pairs with
ours (warm). Every figure is a median over the pairs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict

import jax
import jax.numpy as jnp
import numpy as np

from datarater.run import make_mesh, prepare
from datarater.train import loop, sharding
from datarater.train.pipeline import phase_task
from datarater.train.context import Context, phase_key
from datarater.train.guard import Guard, guard_step
from datarater.train.rundir import RunDir
from datarater.train.state import TrainState, init_train_state
from experiments import _runs

FLOOR_IMPORTS = 'import jax, flax, optax'
# name -> (config file, config argument, overrides; NPZ is replaced by the npz's path)
NPZ = '<npz>'
JOBS = {
    'DataRater quick start (digits)': ('datarater', 'dataset=digits', {}),
    'uniform (digits)': ('uniform', 'dataset=digits', {}),
    'L2RW (noisy-digits npz, 1,500 steps)': ('l2rw', 'dataset=npz',
                                             {'data.path': NPZ, 'num_steps': 1500}),
}
QUICK_JOBS = ('uniform (digits)', 'L2RW (noisy-digits npz, 1,500 steps)')


def write_noisy_digits(path: str, noise: float = 0.3, seed: int = 0) -> None:
  """Digits (8x8, /16) as an npz: 30% symmetric label noise on train, clean meta and test."""
  from datarater.data.loaders import digits_arrays
  images, target = digits_arrays()
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(target))
  x = (images.reshape(len(target), -1) / 16.0).astype(np.float32)[order]
  y = target.astype(np.int32)[order]
  x_meta, y_meta, x_test, y_test, x_train, y_train = x[:100], y[:100], x[100:460], y[100:460], \
      x[460:], y[460:].copy()
  flip = rng.random(len(y_train)) < noise
  y_train[flip] = (y_train[flip] + rng.integers(1, 10, flip.sum())) % 10
  np.savez(path, x_train=x_train, y_train=y_train, x_meta=x_meta, y_meta=y_meta,
           x_test=x_test, y_test=y_test)


def job_overrides(job: str, npz: str, quick: bool) -> tuple:
  """(config file, config argument, overrides) of `job` (smoke-sized when quick)."""
  name, arg, overrides = JOBS[job]
  overrides = {k: npz if v == NPZ else v for k, v in overrides.items()}
  if quick:
    arg += ',smoke'
    overrides.pop('num_steps', None)
  return name, arg, overrides


def fused_seconds(config, repeats: int) -> float:
  """Seconds of the run's training steps, each phase fused in one jitted lax.scan.

  Builds the run's pipeline (`datarater.run.prepare`), and per phase its initial states
  (as the loop draws them), its batches for every step stacked on the device, and the
  loop's guarded step scanned over all of them; times the compiled program (median of
  `repeats` calls, compilation excluded) and hands its final states to the next phase (a
  filter needs the rater). Evaluation, logging and checkpoints are left out.
  """
  dataset, task, pipeline = prepare(config)
  with tempfile.TemporaryDirectory(prefix='bench_fused_') as workdir:
    ctx = Context(config, dataset, RunDir(workdir), make_mesh(config))
    try:
      return _fused_phases(ctx, task, pipeline, repeats)
    finally:
      ctx.run.close()


def _fused_phases(ctx, task, pipeline, repeats: int) -> float:
  """fused_seconds' loop over the phases (a phase's `finalize` runs after it, untimed: a filter
  phase is built from the rater's scores)."""
  config, dataset, mesh = ctx.config, ctx.dataset, ctx.mesh
  results, total = {}, 0.0
  for phase in pipeline.phases:
    method = phase.method(results) if callable(phase.method) else phase.method
    if phase.trains_model:
      start = results[phase.start_from].train_state.params if phase.start_from else None
      train_state = init_train_state(phase_task(phase, task), phase_key(config.seed, phase.init),
                                     start)
    else:
      train_state = TrainState(jnp.zeros((), jnp.int32), None, None)
    method_key, step_key = jax.random.split(phase_key(config.seed, phase.name))
    method_state = method.init(method_key, train_state)
    guard = Guard(np.int32(0), np.int32(-1), np.int32(-1))
    if phase.steps and method.sample is None:
      host_batch = loop.batch_maker(dataset, method, config.seed, mesh)
      batches = sharding.put_batch(jax.tree.map(
          lambda *xs: np.stack(xs), *(host_batch(s) for s in range(phase.steps))), mesh,
          stacked=True)
      args = (train_state, method_state, guard, batches, step_key, np.int32(0))
      program = jax.jit(loop._scan(guard_step(method.step, 'stop', []), phase.steps))
      with jax.set_mesh(mesh):
        compiled = program.lower(*args).compile()
      times = []
      for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
      total += statistics.median(times)
      train_state, method_state = out[0], out[1]
    elif phase.steps:
      raise ValueError(f'phase {phase.name!r} draws its own batches; no fused floor')
    if method.finalize is not None:
      method.finalize(ctx, train_state, method_state)
    results[phase.name] = loop.PhaseResult(train_state, method_state, {}, {})
  return total


def process_seconds(cmd, env=None, statuses=(0,)) -> float:
  """Wall seconds of a process run from the repository root (raises unless it exits with one
  of `statuses`)."""
  t0 = time.perf_counter()
  proc = subprocess.run(cmd, cwd=_runs.ROOT, env=env, capture_output=True, text=True)
  seconds = time.perf_counter() - t0
  if proc.returncode not in statuses:
    raise RuntimeError(f'{" ".join(cmd)} failed: {proc.stderr[-2000:]}')
  return seconds


def train_command(job: str, npz: str, workdir: str, cache: str, quick: bool) -> list:
  """The `python -m experiments.train` command line of `job`."""
  name, arg, overrides = job_overrides(job, npz, quick)
  return ([sys.executable, '-m', 'experiments.train', f'--config=configs/{name}.py:{arg}',
           f'--workdir={workdir}', f'--compilation_cache={cache}'] +
          [f'--config.{k}={v}' for k, v in overrides.items()])


def bench_time_to_result(quick: bool, pairs: int, log: Callable[[str], None],
                         peers: bool = False, peer_pairs: int = 5) -> Dict[str, Any]:
  """Every job's whole-process seconds (cold, warm), its floor, and the ratios; --help time;
  with `peers`, the L2RW job against its PyTorch peer in alternating pairs."""
  tmp = tempfile.mkdtemp(prefix='bench_ttr_')
  npz = os.path.join(tmp, 'noisy_digits.npz')
  write_noisy_digits(npz)
  env = dict(os.environ, PYTHONPATH=_runs.ROOT)
  repeats = 1 if quick else pairs + 2
  imports = [process_seconds([sys.executable, '-c', FLOOR_IMPORTS], env)
             for _ in range(repeats)]
  helps = [process_seconds([sys.executable, '-m', 'experiments.train', '--help'], env, (0, 1))
           for _ in range(repeats)]   # (absl's --help exits with status 1)
  out = dict(pairs=pairs, import_s=statistics.median(imports),
             help_s=statistics.median(helps), jobs=[])
  log(f'time to result: python + {FLOOR_IMPORTS}: {out["import_s"]:.2f}s; '
      f'experiments.train --help: {out["help_s"]:.2f}s')
  for job in (QUICK_JOBS if quick else JOBS):
    name, arg, overrides = job_overrides(job, npz, quick)
    fused = fused_seconds(_runs.override(_runs.load_config(name, arg), overrides), 3)
    cold, warm, floor_imports = [], [], []
    for i in range(pairs):
      # The floor's imports are timed in each pair too: a job timed minutes after the section's
      # start (the DataRater job runs first, for minutes) meets the machine they meet.
      floor_imports.append(process_seconds([sys.executable, '-c', FLOOR_IMPORTS], env))
      cache = os.path.join(tmp, f'cache_{len(out["jobs"])}_{i}')
      for times, run in ((cold, 'cold'), (warm, 'warm')):
        workdir = os.path.join(tmp, f'run_{len(out["jobs"])}_{i}_{run}')
        times.append(process_seconds(train_command(job, npz, workdir, cache, quick), env))
    job_imports = statistics.median(floor_imports)
    floor = job_imports + fused
    row = dict(job=job, command=' '.join(train_command(job, 'NPZ', 'DIR', 'CACHE', quick)[1:]),
               import_s=job_imports, import_all=floor_imports,
               fused_s=fused, floor_s=floor, cold_s=statistics.median(cold),
               warm_s=statistics.median(warm), cold_all=cold, warm_all=warm)
    row.update(cold_ratio=row['cold_s'] / floor, warm_ratio=row['warm_s'] / floor)
    out['jobs'].append(row)
    log(f"time to result, {job}: cold {row['cold_s']:.1f}s, warm {row['warm_s']:.1f}s, floor "
        f"{floor:.2f}s (steps fused {fused:.2f}s): {row['cold_ratio']:.2f}x / "
        f"{row['warm_ratio']:.2f}x")
  if peers:
    from experiments.benchmark import torch_peer  # imports torch
    ours = lambda i: train_command(QUICK_JOBS[1], npz, os.path.join(tmp, f'peer_{i}'),  # noqa
                                   os.path.join(tmp, 'peer_cache'), False)
    process_seconds(ours('warmup'), env)   # fills the cache: every timed run of ours is warm
    out['peer'] = torch_peer.bench_end_to_end(peer_pairs, 1500, log, npz, ours, env)
  return out
