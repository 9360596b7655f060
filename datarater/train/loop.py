"""The one training loop: data, logging, checkpoints, compute ledger, dispatch.

`train_phase` runs one method for `num_steps` steps. Multi-phase pipelines
(e.g. DataRater: meta-train, then filtered training, then a uniform baseline)
call it once per phase; each phase checkpoints under `checkpoints/<phase>` and
resumes on its own, so re-running a command continues where it stopped (from
the newest checkpoint that restores). Every step is guarded against non-finite
values (datarater.train.guard, config.nonfinite), the model is evaluated every
config.eval_every steps (datarater.train.evaluation), and the compute ledger
records the device count of each stretch of steps.

Dispatch: batches come from a grain pipeline (datarater.data.pipeline) that
computes each dispatch's batches on a background thread, and they are placed
on the devices before the dispatch that needs them. `config.steps_per_dispatch=k`
runs up to k steps in one jitted `lax.scan` over k stacked batches; a
dispatch is cut short at every logging, evaluation and checkpoint step and at
the end of the phase, so those fall on the same steps, and the metrics and
checkpoints equal those of k=1. A method that samples its own batches from
its state (`Method.sample`) runs one step per dispatch, its batch drawn after
the previous step. The devices are kept busy across logging and evaluation: a
boundary's evaluation is dispatched at once (the next dispatch donates the
parameters it reads), and its host side (the divergence check, the logged
window's mean, the evaluation's results, the row and its console line: `report`)
runs once the next dispatch is on the devices. A checkpoint boundary, and one of
a method that samples from its state, reports before it goes on.

Multi-process runs: every process runs this loop on the same global arrays;
each gathers only its rows of each batch, all take part in the checkpoints,
and only the primary writes the run directory's files (datarater.train.rundir).
"""

from __future__ import annotations

import concurrent.futures
import copy
import functools
import math
import os
import shutil
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from datarater import lazy
from datarater.data import pipeline as data_pipeline, sampler
from datarater.errors import Diverged, WorkdirError, require
from datarater.train import sharding
from datarater.train.context import Context, phase_key
from datarater.train.evaluation import evaluate, evaluate_async, make_eval_fn
from datarater.train.flops import compiled_flops
from datarater.train.guard import SKIPPED, Guard, guard_step
from datarater.train.state import Method, TrainState, init_train_state

if TYPE_CHECKING:  # orbax is imported where a checkpoint is made, saved or restored
  import orbax.checkpoint as ocp


class PhaseResult(NamedTuple):
  train_state: TrainState
  method_state: Any
  eval: dict        # final {'meta/...', 'test/...'} metrics
  ledger: dict      # wall_seconds, examples_processed, gradient_evaluations, flops, steps


LEDGER_KEYS = ('wall_seconds', 'examples_processed', 'gradient_evaluations', 'flops', 'steps',
               'skipped_steps')


def step_flops(compiled) -> float:
  """FLOPs of one compiled step, every loop iteration counted, summed over devices."""
  return compiled_flops(compiled) * jax.device_count()


def batch_maker(dataset, method: Method, seed: int, mesh):
  """(step, method_state=None) -> this process's rows of the batch of `step`: the rows of
  `method.split` that `method.sample` picks, or the sequential order's, and, when the method
  has a meta batch, the meta split's rows of that step under 'meta'."""
  train, meta = getattr(dataset, method.split), dataset.meta
  rows = sharding.local_rows(mesh, method.train_batch_size)
  meta_rows = sharding.local_rows(mesh, method.meta_batch_size) if method.meta_batch_size else None

  def host_batch(step, method_state=None):
    if method.sample is not None:
      idx = method.sample(step, method_state)
    else:
      idx = sampler.sequential_indices(train.size, method.train_batch_size, seed, step)
    batch = sampler.gather(train, idx[rows])
    if method.meta_batch_size:
      midx = sampler.sequential_indices(meta.size, method.meta_batch_size, seed, step,
                                        sampler.META)
      batch['meta'] = sampler.gather(meta, midx[meta_rows])
    return batch
  return host_batch


def _count_steps(ledger: dict, steps: int, examples: int, grad_evals: int, flops: float):
  """Adds `steps` steps (negative: removes them) to the ledger and its current segment."""
  ledger['steps'] += steps
  ledger['examples_processed'] += steps * examples
  ledger['gradient_evaluations'] += steps * grad_evals
  ledger['segments'][-1]['to_step'] += steps
  _add_flops(ledger, steps * flops)


def _add_flops(ledger: dict, flops: float):
  """Adds `flops` to the ledger and its current segment."""
  ledger['flops'] += flops
  ledger['segments'][-1]['flops'] += flops


class _StepCost:
  """What a step adds to the ledger: its examples, gradient evaluations and FLOPs. The FLOPs
  come from XLA's cost analysis of the compiled one-step program (the same whatever the
  dispatch), which compiles on a background thread after the first dispatch's program, while
  the first dispatches run; the FLOPs of the steps counted before it compiled are added by
  `settle`, which runs before the ledger is saved or returned."""

  def __init__(self, examples: int, grad_evals: int,
               program: concurrent.futures.Future | None):
    self.examples, self.grad_evals, self.program = examples, grad_evals, program
    self.uncounted = 0  # steps counted before the one-step program compiled
    self.value = None if program else 0.0  # no program: a phase with no steps left

  def count(self, ledger: dict, steps: int):
    """Adds `steps` steps (negative: removes them) to the ledger."""
    _count_steps(ledger, steps, self.examples, self.grad_evals, self.value or 0.0)
    if self.value is None:
      self.uncounted += steps

  def settle(self, ledger: dict):
    """Waits for the one-step program and adds the FLOPs of the steps counted before it."""
    if self.value is None:
      self.value = step_flops(self.program.result())
      _add_flops(ledger, self.uncounted * self.value)
      self.uncounted = 0


def _open_segment(ledger: dict, phase: str, start: int):
  """Continues the ledger's last device-count segment, or opens one (said on the console)."""
  devices, segments = jax.device_count(), ledger['segments']
  if segments and segments[-1]['devices'] == devices:
    return
  if segments:
    print(f'[{phase}] resuming on {devices} devices; steps {segments[-1]["from_step"]}-{start} ran '
          f'on {segments[-1]["devices"]} (the ledger keeps FLOPs per device-count segment)',
          flush=True)
  segments.append({'devices': devices, 'from_step': start, 'to_step': start, 'flops': 0.0})


def _orbax():
  import orbax.checkpoint as ocp
  return ocp


class _Checkpoints:
  """The phase's orbax CheckpointManager under checkpoints/<phase>, made at its first use.

  A phase with nothing on disk needs orbax only at its first save: orbax is
  imported on a background thread once the first dispatch runs
  (`datarater.lazy`), off the path to the first step.
  """

  def __init__(self, ctx: Context, phase: str):
    self.directory = ctx.run.shared('checkpoints', phase)
    self._manager = None
    lazy.preload('orbax', _orbax)

  def on_disk(self) -> bool:
    """Whether checkpoints/<phase> holds anything (then orbax reads it)."""
    return os.path.isdir(self.directory) and bool(os.listdir(self.directory))

  @property
  def manager(self) -> ocp.CheckpointManager:
    if self._manager is None:
      ocp = lazy.load('orbax', _orbax)
      self._manager = ocp.CheckpointManager(
          self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))
    return self._manager

  def close(self):
    """Waits for the asynchronous saves and closes the manager (if one was made)."""
    if self._manager is not None:
      self._manager.wait_until_finished()
      self._manager.close()


def _save(checkpoints: _Checkpoints, step: int, state: dict, ledger: dict):
  """Checkpoints the states, the ledger and the data position (every process takes part).

  The save is asynchronous: the ledger is copied, since the loop goes on counting.
  """
  ocp = lazy.load('orbax', _orbax)
  checkpoints.manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), ledger=ocp.args.JsonSave(copy.deepcopy(ledger)),
      data=ocp.args.JsonSave(data_pipeline.position(step))))


def _restore(ctx: Context, phase: str, checkpoints: _Checkpoints, template: dict):
  """The newest checkpoint that restores in every process: (step, state, ledger, data
  position), or (0, None, None, None) if there is none.

  The restored arrays take the shardings of `template`. Newer checkpoints that
  fail to restore (a truncated file, a missing _METADATA) are deleted by the
  primary, and one console line says so.

  Raises:
    WorkdirError: checkpoints exist but none of them restores.
  """
  if not checkpoints.on_disk():
    return 0, None, None, None
  ocp, mngr = lazy.load('orbax', _orbax), checkpoints.manager
  steps = sorted(mngr.all_steps(), reverse=True)
  for i, step in enumerate(steps):
    try:
      out = mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(template), ledger=ocp.args.JsonRestore(),
          data=ocp.args.JsonRestore()))
    except Exception:  # noqa: BLE001 - any unreadable checkpoint falls back to an older one
      out = None
    if not all(sharding.process_flags(out is not None)):
      continue
    if i:
      if ctx.run.primary:
        for bad in steps[:i]:
          shutil.rmtree(ctx.run.shared('checkpoints', phase, str(bad)), ignore_errors=True)
      sharding.barrier(f'restore {phase}')
      mngr.reload()
      print(f'[{phase}] checkpoint at step {steps[0]} does not restore; resuming from step {step}, '
            f'the newest one that does (deleted the broken ones: {steps[:i]})', flush=True)
    return step, out.state, out.ledger, out.data
  if steps:
    raise WorkdirError(f'no checkpoint under {ctx.run.shared("checkpoints", phase)} restores '
                       f'(steps {steps}); use a new workdir')
  return 0, None, None, None


def _mean_metrics(window):
  """Mean of each metric over a logging window, leaving out skipped updates.

  Args:
    window: (metrics, n) per dispatch of n steps; for n > 1 the metrics carry
      a leading axis of steps.
  """
  steps = []
  for metrics, n in jax.device_get(window):
    if n > 1:
      steps.extend(jax.tree.map(lambda x, i=i: x[i], metrics) for i in range(n))
    else:
      steps.append(metrics)
  kept = [m for m in steps if not m.get(SKIPPED)] or steps
  out = jax.tree.map(lambda *xs: np.mean(np.stack(xs), axis=0), *kept)
  if SKIPPED in out:
    out[SKIPPED] = float(sum(m[SKIPPED] for m in steps))
  return out


def _fmt(metrics: dict, limit: int = 4) -> str:
  items = [(k, v) for k, v in metrics.items() if np.ndim(v) == 0][:limit]
  return ' '.join(f'{k}={float(v):.4g}' for k, v in items)


def _diverged(ctx: Context, phase: str, guard: Guard, names: list, done: int,
              checkpoints: _Checkpoints, state: dict, ledger: dict, cost: _StepCost):
  """Stops a run whose update `guard.bad_step` was non-finite (policy 'stop').

  The states are still those before that update (the guarded step froze
  them): they are checkpointed at that step, the divergence is recorded in
  diverged.json (a re-run says the same at once), and Diverged is raised.
  """
  bad, code = (int(v) for v in jax.device_get((guard.bad_step, guard.bad_code)))
  cost.settle(ledger)
  cost.count(ledger, bad - done)
  if bad > (checkpoints.manager.latest_step() or 0):
    _save(checkpoints, bad, state, ledger)
  checkpoints.manager.wait_until_finished()
  good = checkpoints.manager.latest_step()
  checkpoints.close()
  saved = f'last good state checkpointed at step {good}' if good else 'no good step to checkpoint'
  message = (f'phase {phase!r} step {bad + 1}: {names[code]} is not finite (config.nonfinite=stop; '
             f'{saved}; --config.nonfinite=skip skips such updates)')
  ctx.run.write_json('diverged.json', {'phase': phase, 'step': bad + 1, 'what': names[code],
                                       'message': message})
  raise Diverged(message)


AUTO = 0  # config.steps_per_dispatch: choose the steps per dispatch (dispatch_steps)
AUTO_MAX_STEPS = 100       # at most this many steps per automatic dispatch
AUTO_MAX_BYTES = 64 << 20  # ... and at most this many bytes of their stacked batches


def dispatch_steps(config, steps: int, everies: tuple, batch_bytes: int = 0) -> int:
  """Steps per dispatch for a phase with `steps` steps left.

  config.steps_per_dispatch >= 1 is taken as it is. AUTO (0, the default) chooses
  the largest k <= AUTO_MAX_STEPS, with k batches within AUTO_MAX_BYTES, that
  divides every reporting interval (`everies`: log, evaluation, checkpoint) and
  the steps left, so every dispatch has the same length and one scanned program
  serves the phase (`lower_programs`).
  """
  k = int(config.get('steps_per_dispatch', AUTO))
  if k != AUTO:
    return k
  common = math.gcd(steps, *everies)
  cap = min(AUTO_MAX_STEPS, AUTO_MAX_BYTES // max(batch_bytes, 1))
  return max(d for d in range(1, max(min(common, cap), 1) + 1) if common % d == 0)


def check_dispatch(config) -> None:
  """Raises ConfigError unless config.steps_per_dispatch is an integer >= 0 (0 = AUTO)."""
  k = config.get('steps_per_dispatch', AUTO)
  require(isinstance(k, int) and not isinstance(k, bool) and k >= 0, 'steps_per_dispatch',
          'an integer >= 0 (0 = chosen automatically)', k)


def check_batch_sizes(method: Method, dataset, trains_model: bool = True) -> None:
  """Raises DataError unless a model-training phase's batches are distinct rows of the split
  it trains on (method.split; per-example tables take each row once per step). A meta batch,
  and the batches of a phase that trains something else (DataRater's rater: population x
  inner-step batches), may repeat rows of a small split."""
  if trains_model and method.sample is None:
    sampler.check_batch_size(getattr(dataset, method.split).size, method.train_batch_size,
                             f'the {method.split} split')


def _span(done: int, num_steps: int, k: int, everies: tuple) -> int:
  """Steps of the dispatch that starts after `done` steps: at most k, ending at
  the next multiple of each of `everies` and at the end of the phase."""
  return min(k, num_steps - done, *(every - done % every for every in everies))


def _spans(start: int, num_steps: int, k: int, everies: tuple) -> list:
  """(first step, steps) of each dispatch from `start` to the end of the phase."""
  spans = []
  while start < num_steps:
    spans.append((start, _span(start, num_steps, k, everies)))
    start += spans[-1][1]
  return spans


def _one(guarded):
  """One guarded step; step t uses fold_in(key, t), folded inside the program."""
  def one_step(train_state, method_state, guard, batch, key, step):
    return guarded(train_state, method_state, guard, batch, jax.random.fold_in(key, step), step)
  return one_step


def _scan(guarded, n: int):
  """n guarded steps in one lax.scan over n stacked batches; step t uses fold_in(key, t)."""
  def scan_steps(train_state, method_state, guard, batches, key, first):
    def body(carry, xs):
      batch, i = xs
      *carry, metrics = guarded(*carry, batch, jax.random.fold_in(key, first + i), first + i)
      return tuple(carry), metrics
    carry, metrics = jax.lax.scan(body, (train_state, method_state, guard),
                                  (batches, jnp.arange(n, dtype=jnp.int32)))
    return (*carry, metrics)
  return scan_steps


def _lower(guarded, mesh, n: int, args):
  """The jitted program of n guarded steps per dispatch (`_one` or `_scan`), lowered for
  `args` (arrays or ShapeDtypeStructs), under the mesh; states donated."""
  rep = sharding.replicated(mesh)
  fn = _one(guarded) if n == 1 else _scan(guarded, n)
  with jax.set_mesh(mesh):
    return jax.jit(fn, in_shardings=(rep, rep, rep, sharding.data_sharded(mesh, n > 1), rep, rep),
                   out_shardings=(rep, rep, rep, rep), donate_argnums=(0, 1)).lower(*args)


def lower_programs(guarded, mesh, states: tuple, spec, key, start: int, n: int) -> dict:
  """{1: the one-step program} and, for n > 1, {n: the n-step scanned program of the first
  dispatch}, lowered.

  `spec` is one step's batch (ShapeDtypeStructs). `train_phase` compiles them on a
  background thread, the first dispatch's program first and the one-step program (for the
  ledger's FLOPs: `_StepCost`) while the first dispatches run. A scanned program takes about
  as long to compile as the one-step one (cold cache, one after the other: uniform digits
  0.65 s and 0.71 s, L2RW 1.85 s and 1.82 s, DataRater 6.3 s and 6.5 s). Compiling the two at
  once on two threads made whole cold runs slower on a 2-core machine (uniform digits 6.1 s
  against 5.8 s, L2RW 8.7 s against 8.3 s, medians of 3 and 2 alternating runs).
  """
  lowered = {1: _lower(guarded, mesh, 1, (*states, spec, key, np.int32(start)))}
  if n > 1:
    stacked = jax.tree.map(lambda x: jax.ShapeDtypeStruct(
        (n,) + x.shape, x.dtype, sharding=sharding.data_sharded(mesh, True)), spec)
    lowered[n] = _lower(guarded, mesh, n, (*states, stacked, key, np.int32(start)))
  return lowered


def train_phase(ctx: Context, phase: str, method: Method, task, num_steps: int,
                init_stream: str | None = None, trains_model: bool = True,
                init_params: Any = None) -> PhaseResult:
  """Runs `method` for `num_steps` steps with logging, evaluation and checkpoints.

  Every step is guarded by `config.nonfinite` (see `guard_step`); up to
  config.steps_per_dispatch steps run per dispatch (see the module docstring).

  Args:
    ctx: run context.
    phase: phase name (metrics rows, checkpoint sub-folder, console prefix).
    method: the Method to run.
    task: the Task (model, loss, optimizer) being trained.
    num_steps: total steps of this phase (a resumed phase continues to it).
    init_stream: name whose key draws the initial model parameters (phases
      with the same stream start from the same parameters); default (or `phase`
      itself): the phase's own stream '<phase>/init'.
    trains_model: False for phases that train something else (e.g. a rater):
      the TrainState then holds only the step counter and nothing is evaluated.
    init_params: the model's initial parameters (e.g. an earlier phase's final
      ones, to fine-tune them), with a fresh optimizer state; default: drawn
      from `init_stream`.

  Returns:
    PhaseResult with the final states, final evaluation and compute ledger.

  Raises:
    Diverged: a non-finite update under config.nonfinite='stop'.
  """
  cfg = ctx.config
  mesh = ctx.mesh
  policy = cfg.get('nonfinite', 'stop')
  # A phase drawing its own initial parameters (no shared stream, or paired_arms=False) draws
  # them from a stream of its own, not from the key its method and step keys split from.
  stream = init_stream or phase
  init_key = phase_key(ctx.seed, f'{phase}/init' if stream == phase else stream)
  method_key, step_key = jax.random.split(phase_key(ctx.seed, phase))
  evaluate_model = trains_model
  probe = None if trains_model else method.probe
  if trains_model:
    train_state = init_train_state(task, init_key, init_params)
  else:
    train_state = TrainState(jnp.zeros((), jnp.int32), None, None)
  method_state = method.init(method_key, train_state)
  state = sharding.put_replicated({'train_state': train_state, 'method_state': method_state}, mesh)

  checkpoints = _Checkpoints(ctx, phase)
  start, restored, ledger, _ = _restore(ctx, phase, checkpoints, state)  # data position = start
  if start:
    state = sharding.put_replicated(restored, mesh)
    print(f'[{phase}] resumed from step {start}', flush=True)
  else:
    ledger = {**dict.fromkeys(LEDGER_KEYS, 0.0), 'segments': []}
  _open_segment(ledger, phase, start)
  ctx.run.truncate_metrics(phase, start)  # rows logged after the last checkpoint are redone
  # The step donates its inputs: give every leaf its own buffer (an init may share one).
  state = jax.tree.map(lambda x: x.copy(), state)
  train_state, method_state = state['train_state'], state['method_state']
  guard = sharding.put_replicated(Guard(np.int32(ledger['skipped_steps']), np.int32(-1),
                                        np.int32(-1)), mesh)

  names = []
  guarded = guard_step(method.step, policy, names)
  programs = {}  # steps per dispatch -> compiled program
  eval_fn = make_eval_fn(task)
  grad_evals = method.grad_evals if method.grad_evals is not None else method.train_batch_size
  examples = method.train_batch_size + method.meta_batch_size

  check_batch_sizes(method, ctx.dataset, trains_model)
  host_batch = batch_maker(ctx.dataset, method, ctx.seed, mesh)

  # The phase's wall time and the console's first steps/s include compiling.
  window, t_last, s_last = [], time.time(), start
  t_phase = time.time() - ledger['wall_seconds']
  everies = (cfg.log_every, cfg.checkpoint_every) + (
      (cfg.eval_every,) if evaluate_model or probe else ())
  cost, k, batches = _StepCost(examples, grad_evals, None), 1, None
  if start < num_steps:
    spec = sharding.batch_spec(host_batch(start, method_state), mesh)
    if method.sample is None:  # batches that depend only on the step can be stacked
      k = dispatch_steps(cfg, num_steps - start, everies,
                         sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(spec)))
    if k > 1 and cfg.get('steps_per_dispatch', AUTO) == AUTO:
      print(f'[{phase}] {k} steps per dispatch (chosen: config.steps_per_dispatch=0)', flush=True)
    # Compiled on a background thread: the first dispatch's program, then, while the first
    # dispatches run, the one-step program (its cost analysis gives the step's FLOPs).
    first = _span(start, num_steps, k, everies)
    lowered = lower_programs(guarded, mesh, (train_state, method_state, guard), spec, step_key,
                             start, first)
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='compile')
    compiling = pool.submit(lowered[first].compile)
    one_step = compiling if first == 1 else pool.submit(lowered[1].compile)
    pool.shutdown(wait=False)
    # Batches that depend only on the step come from grain, a dispatch's stacked batches
    # ahead of the dispatch (its iterator is made while XLA compiles).
    if method.sample is None:
      batches = data_pipeline.dispatch_batches(host_batch, _spans(start, num_steps, k, everies))
    programs = {first: compiling.result()}
    cost = _StepCost(examples, grad_evals, one_step)

  def place(step):
    """(steps, device batch) of the dispatch starting at `step` (None at the end)."""
    if step >= num_steps:
      return None
    n = _span(step, num_steps, k, everies)
    host = host_batch(step, method_state) if batches is None else next(batches)
    return n, sharding.put_batch(host, mesh, stacked=n > 1)

  evaluation = {}

  def report(at: int, logged: list, bound_guard: Guard, fetch_eval, probed: dict):
    """The host side of the boundary after step `at`: the divergence check, the mean of the
    logged window, the evaluation's metrics, the row and its console line. A boundary
    without a checkpoint or probe runs it once the next dispatch is on the devices."""
    nonlocal evaluation, t_last, s_last
    if policy == 'stop' and int(bound_guard.bad_step) >= 0:
      # Every step after the bad one was a no-op, so the current states are the last good ones.
      _diverged(ctx, phase, bound_guard, names, at, checkpoints,
                {'train_state': train_state, 'method_state': method_state}, ledger, cost)
    row = _mean_metrics(logged) if logged else {}
    if fetch_eval is not None:
      evaluation = fetch_eval()
      row.update(evaluation)
    row.update(probed)
    if not row:  # a probe that reported nothing
      return
    now = time.time()
    rate = (at - s_last) / max(now - t_last, 1e-9)
    eta = (num_steps - at) / max(rate, 1e-9)
    ledger['wall_seconds'] = now - t_phase
    ctx.run.log(phase, at, row)
    print(f'[{phase}] step {at}/{num_steps} {rate:.1f} steps/s ETA {eta:.0f}s {_fmt(row)}',
          flush=True)
    t_last, s_last = now, at

  pending = None  # the last boundary's report, run while the next dispatch computes
  done, upcoming = start, place(start)
  while upcoming is not None:
    step, (n, batch) = done, upcoming
    args = (train_state, method_state, guard, batch, step_key, np.int32(step))
    if n not in programs:  # a shorter dispatch of a fixed steps_per_dispatch
      programs[n] = (cost.program.result() if n == 1 else
                     _lower(guarded, mesh, n, args).compile())
    train_state, method_state, guard, metrics = programs[n](*args)
    if pending is not None:
      pending()
      pending = None
    window.append((metrics, n))
    done = step + n
    upcoming = place(done) if batches is not None else None  # on the devices before it is due
    lazy.start()  # late imports run while the main thread waits for the devices
    cost.count(ledger, n)
    last = done == num_steps
    checkpoint = done % cfg.checkpoint_every == 0 or last
    log = done % cfg.log_every == 0 or checkpoint  # windows restart at checkpoints: exact resume
    evaluate_now = evaluate_model and (done % cfg.eval_every == 0 or last)
    probe_now = probe is not None and (done % cfg.eval_every == 0 or last)
    if log or evaluate_now or probe_now:
      # The evaluation is dispatched now: the next dispatch donates these parameters.
      fetch_eval = evaluate_async(task, train_state.params, ctx, eval_fn,
                                  test=last or cfg.get('eval_test', 'every') == 'every'
                                  ) if evaluate_now else None
      pending = functools.partial(report, done, window if log else [], guard, fetch_eval,
                                  probe(ctx, method_state) if probe_now else {})
      if log:
        window = []
      # Before a checkpoint, and before a method samples its next batch from its state (which
      # waits for the step anyway), the boundary reports at once.
      if checkpoint or probe_now or batches is None:
        pending()
        pending = None
    if checkpoint:
      cost.settle(ledger)
      ledger['wall_seconds'] = time.time() - t_phase
      ledger['skipped_steps'] = float(guard.skipped)
      _save(checkpoints, done, {'train_state': train_state, 'method_state': method_state}, ledger)
    if batches is None:
      upcoming = place(done)
  checkpoints.close()
  cost.settle(ledger)
  if evaluate_model and not evaluation:  # phase was already complete: evaluate restored params
    evaluation = evaluate(task, train_state.params, ctx, eval_fn)
  if method.adjust_ledger is not None:
    ledger = method.adjust_ledger(ledger, sharding.to_host(method_state, mesh))
  return PhaseResult(train_state, method_state, evaluation, ledger)
