"""The one training loop: data, logging, checkpoints, evaluation, sharding.

`train_phase` runs one method for `num_steps` steps. Multi-phase pipelines
(e.g. DataRater: meta-train, then filtered training, then a uniform baseline)
call it once per phase; each phase checkpoints under `checkpoints/<phase>` and
resumes on its own, so re-running a command continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from datarater.data import sampler
from datarater.data.core import Dataset, Split
from datarater.train import sharding
from datarater.train.rundir import RunDir
from datarater.train.state import Method, TrainState, init_train_state


@dataclasses.dataclass
class Context:
  """What a pipeline needs: config, data, run directory and device mesh."""
  config: Any
  dataset: Dataset
  run: RunDir
  mesh: jax.sharding.Mesh

  @property
  def seed(self) -> int:
    return int(self.config.seed)


class PhaseResult(NamedTuple):
  train_state: TrainState
  method_state: Any
  eval: dict        # final {'meta/...', 'test/...'} metrics
  ledger: dict      # wall_seconds, examples_processed, gradient_evaluations, flops, steps


# ----------------------------------------------------------------------------- evaluation


def map_split(fn, split: Split, ctx: Context, batch_size: int | None = None):
  """Applies a jitted per-example fn(batch) -> pytree of [B] arrays over a whole split.

  The split is padded to a multiple of the batch size and sharded over `data`;
  results come back as host numpy arrays of length split.size.
  """
  bs = batch_size or ctx.config.eval_batch_size
  n = split.size
  outs = []
  for start in range(0, n, bs):
    idx = np.arange(start, start + bs)
    idx = np.where(idx < n, idx, 0)
    batch = sharding.put_batch(sampler.gather(split, idx), ctx.mesh)
    outs.append(jax.device_get(fn(batch)))
  return jax.tree.map(lambda *xs: np.concatenate(xs)[:n], *outs)


def make_eval_fn(task):
  return jax.jit(lambda params, batch: (task.per_example_loss(params, batch),
                                        task.per_example_correct(params, batch)))


def evaluate(task, params, ctx: Context, eval_fn=None) -> dict:
  """Loss, accuracy and per-source loss on the meta and test splits."""
  eval_fn = eval_fn or make_eval_fn(task)
  out = {}
  for name in ('meta', 'test'):
    split = getattr(ctx.dataset, name)
    loss, correct = map_split(lambda b: eval_fn(params, b), split, ctx)
    k = ctx.dataset.info.num_sources
    counts = np.bincount(split.source, minlength=k)
    sums = np.bincount(split.source, weights=loss, minlength=k)
    out[f'{name}/loss'] = float(loss.mean())
    out[f'{name}/accuracy'] = float(correct.mean())
    out[f'{name}/source_loss'] = [float(s / c) if c else float('nan') for s, c in zip(sums, counts)]
  return out


# ----------------------------------------------------------------------------- training


LEDGER_KEYS = ('wall_seconds', 'examples_processed', 'gradient_evaluations', 'flops', 'steps')


def _step_flops(compiled) -> float:
  """FLOPs of one step from XLA's cost analysis (summed over devices; 0 if unavailable)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  return float((cost or {}).get('flops', 0.0)) * jax.device_count()


def _arrays(ledger: dict) -> dict:
  return {k: np.asarray(v, np.float64) for k, v in ledger.items()}


def _checkpointer(ctx: Context, phase: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      ctx.run.file('checkpoints', phase),
      options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))


def _mean_metrics(window):
  return jax.tree.map(lambda *xs: np.mean(np.stack(xs), axis=0), *jax.device_get(window))


def _fmt(metrics: dict, limit: int = 4) -> str:
  items = [(k, v) for k, v in metrics.items() if np.ndim(v) == 0][:limit]
  return ' '.join(f'{k}={float(v):.4g}' for k, v in items)


def phase_key(seed: int, name: str) -> jax.Array:
  """PRNG key of a named stream: a stable hash (CRC-32) of the name, folded into the seed."""
  return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()))


def train_phase(ctx: Context, phase: str, method: Method, task, num_steps: int,
                init_stream: str | None = None, trains_model: bool = True) -> PhaseResult:
  """Runs `method` for `num_steps` steps with logging, evaluation and checkpoints.

  Args:
    ctx: run context.
    phase: phase name (metrics rows, checkpoint sub-folder, console prefix).
    method: the Method to run.
    task: the Task (model, loss, optimizer) being trained.
    num_steps: total steps of this phase (a resumed phase continues to it).
    init_stream: name whose key draws the initial model parameters (phases
      with the same stream start from the same parameters); default: `phase`.
    trains_model: False for phases that train something else (e.g. a rater):
      the TrainState then holds only the step counter and nothing is evaluated.

  Returns:
    PhaseResult with the final states, final evaluation and compute ledger.
  """
  cfg = ctx.config
  mesh = ctx.mesh
  init_key = phase_key(ctx.seed, init_stream or phase)
  method_key, step_key = jax.random.split(phase_key(ctx.seed, phase))
  evaluate_model = trains_model
  if trains_model:
    train_state = init_train_state(task, init_key)
  else:
    train_state = TrainState(jnp.zeros((), jnp.int32), None, None)
  method_state = method.init(method_key, train_state)
  ledger = dict.fromkeys(LEDGER_KEYS, 0.0)
  state = sharding.put_replicated({'train_state': train_state, 'method_state': method_state}, mesh)
  # The step donates its inputs: give every leaf its own buffer (an init may share one).
  state = jax.tree.map(lambda x: x.copy(), state)

  mngr = _checkpointer(ctx, phase)
  start = mngr.latest_step() or 0
  if start:
    restored = mngr.restore(start, args=ocp.args.StandardRestore({**state, 'ledger': _arrays(ledger)}))
    ledger = {k: float(v) for k, v in restored.pop('ledger').items()}
    state = sharding.put_replicated(restored, mesh)
    print(f'[{phase}] resumed from step {start}', flush=True)
  ctx.run.truncate_metrics(phase, start)  # rows logged after the last checkpoint are redone
  train_state, method_state = state['train_state'], state['method_state']

  rep, data = sharding.replicated(mesh), sharding.data_sharded(mesh)
  step_fn = jax.jit(method.step, in_shardings=(rep, rep, data, rep), out_shardings=(rep, rep, rep),
                    donate_argnums=(0, 1))
  eval_fn = make_eval_fn(task)
  train = ctx.dataset.train
  grad_evals = method.grad_evals if method.grad_evals is not None else method.train_batch_size
  examples = method.train_batch_size + method.meta_batch_size

  window, t_last, s_last, flops = [], time.time(), start, None
  t_phase = time.time() - ledger['wall_seconds']
  evaluation = {}
  for step in range(start, num_steps):
    if method.sample is not None:
      idx = method.sample(step, method_state)
    else:
      idx = sampler.sequential_indices(train.size, method.train_batch_size, ctx.seed, step)
    host_batch = sampler.gather(train, idx)
    if method.meta_batch_size:
      midx = sampler.sequential_indices(ctx.dataset.meta.size, method.meta_batch_size, ctx.seed,
                                        step, sampler.META)
      host_batch['meta'] = sampler.gather(ctx.dataset.meta, midx)
    batch = sharding.put_batch(host_batch, mesh)
    args = (train_state, method_state, batch, jax.random.fold_in(step_key, step))
    if flops is None:  # compile once; XLA's cost analysis gives the step's FLOPs
      step_fn = step_fn.lower(*args).compile()
      flops = _step_flops(step_fn)
    train_state, method_state, metrics = step_fn(*args)
    window.append(metrics)
    done = step + 1
    ledger['steps'] = done
    ledger['examples_processed'] += examples
    ledger['gradient_evaluations'] += grad_evals
    ledger['flops'] += flops
    last = done == num_steps
    checkpoint = done % cfg.checkpoint_every == 0 or last
    row = {}
    if done % cfg.log_every == 0 or checkpoint:  # windows restart at checkpoints, so resume is exact
      row.update(_mean_metrics(window))
      window = []
    if evaluate_model and (done % cfg.eval_every == 0 or last):
      evaluation = evaluate(task, train_state.params, ctx, eval_fn)
      row.update(evaluation)
    if row:
      now = time.time()
      rate = (done - s_last) / max(now - t_last, 1e-9)
      eta = (num_steps - done) / max(rate, 1e-9)
      ledger['wall_seconds'] = now - t_phase
      ctx.run.log(phase, done, row)
      print(f'[{phase}] step {done}/{num_steps} {rate:.1f} steps/s ETA {eta:.0f}s {_fmt(row)}',
            flush=True)
      t_last, s_last = now, done
    if checkpoint:
      ledger['wall_seconds'] = time.time() - t_phase
      mngr.save(done, args=ocp.args.StandardSave(
          {'train_state': train_state, 'method_state': method_state, 'ledger': _arrays(ledger)}))
  mngr.wait_until_finished()
  mngr.close()
  if evaluate_model and not evaluation:  # phase was already complete: evaluate restored params
    evaluation = evaluate(task, train_state.params, ctx, eval_fn)
  if method.adjust_ledger is not None:
    ledger = method.adjust_ledger(ledger, jax.device_get(method_state))
  return PhaseResult(train_state, method_state, evaluation, ledger)
