"""Cost benchmark: every method's step as a ratio to a plain step, meta-gradient modes vs T, peers.

  python -m experiments.benchmark --out=results/benchmark          # full run
  python -m experiments.benchmark --quick --out=/tmp/bench         # seconds; what the tests run

Writes DIR/benchmark.json (everything measured, the machine, the targets),
DIR/benchmark.md (tables, each target with its figure and status, causes of
missed targets) and DIR/modes_vs_T.png (time and memory of the meta-gradient
per mode vs the unroll length T).

How it measures: every timing is the median of `repeats` blocks of calls of
a compiled program, after compilation and one warm-up call; every time is
reported as a ratio to the plain step of the same model and batch, measured
in the same run, in blocks that alternate with the measured program (load
from other processes then hits both alike). Memory is XLA's static buffer
assignment of the compiled program (`compiled.memory_analysis()`,
`temp_size_in_bytes`: what the backward pass keeps alive), FLOPs are
`datarater.train.flops.compiled_flops` (loop bodies times their trip counts).

Sections:
* modes: the DataRater meta-gradient (`unroll.meta_loss_and_grad`; MLP
  64-256-256-10, B=128, Adam(eps_root=1e-8), MLP rater, 10 warm-up steps) for
  T = 1..32 and every mode: time per inner step / plain weighted Adam step,
  temp memory, compile time, FLOPs, and the gradient's difference from
  'reverse'.
* methods: each registered method's step (built by its own `make` on the
  digits preset with the same MLP and batch) / the uniform method's step.
* scoring: rater forward throughput (examples scored per second) vs training
  throughput (examples per second of the plain step).
* peers (needs `requirements-bench.txt`; skipped with a line without torch):
  the one-step L2RW meta-gradient in PyTorch `torch.func` vs ours at hidden
  256 and 1024, and an end-to-end L2RW run (1500 steps on noisy digits as an
  npz, same model, batch, optimizer and evaluation cadence): whole processes,
  run in alternating pairs.

Bad flags exit with status 2 and one line on stderr, before anything is
written.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from datarater.meta import l2rw, unroll
from datarater.models.mlp import MLP
from datarater.models.rater import MLPRater
from datarater.train import flops as flops_lib
from datarater.weighting import scores as score_ops
from experiments._runs import fail, parse_flags

_OUT = flags.DEFINE_string('out', 'results/benchmark', 'Folder for benchmark.json/.md and plots.')
_QUICK = flags.DEFINE_bool('quick', False, 'Tiny sizes, one repeat, no end-to-end peer run.')

RULES = ('kl_dro', 'cvar', 'chi2_dro', 'group_dro', 'loss_reweight', 'small_loss', 'infobatch',
         'static_mixture', 'doremi')
SCORERS = ('aum', 'el2n', 'forgetting', 'cartography', 'confident_learning')
META_METHODS = ('l2rw', 'mwn', 'scalebio')
# Per-method step ratio targets (issue 11).
METHOD_TARGETS = {'l2rw': 3.5, 'mwn': 3.5, 'scalebio': 3.2, **dict.fromkeys(RULES, 1.05)}
META_TARGET, MEMORY_TARGET, COMPILE_TARGET, E2E_TARGET = 2.5, 3.0, 2.0, 3.0


# ----------------------------------------------------------------------------- timing


def _timed_block(fn: Callable[[], Any], calls: int) -> float:
  t0 = time.perf_counter()
  for _ in range(calls):
    out = fn()
  jax.block_until_ready(out)
  return (time.perf_counter() - t0) / calls


def paired_times(fn: Callable[[], Any], plain: Callable[[], Any], repeats: int,
                 block_s: float = 0.05) -> tuple:
  """Median seconds per call of `fn` and of `plain`, timed in alternating blocks.

  Each block makes as many calls as fill about `block_s` seconds (at least
  one), so that dispatch latency and short load spikes weigh alike on both.

  Args:
    fn, plain: zero-argument calls of compiled programs (already compiled).
    repeats: blocks of each.
    block_s: target duration of one block.

  Returns:
    (median seconds per call of fn, median seconds per call of plain).
  """
  calls = [max(1, int(block_s / min(_timed_block(f, 1) for _ in range(3)))) for f in (fn, plain)]
  a, b = [], []
  for _ in range(repeats):
    a.append(_timed_block(fn, calls[0]))
    b.append(_timed_block(plain, calls[1]))
  return statistics.median(a), statistics.median(b)


def _compile(fn, *args):
  t0 = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - t0


def _temp(compiled) -> Optional[int]:
  stats = compiled.memory_analysis()
  return None if stats is None else int(stats.temp_size_in_bytes)


def _max_abs_diff(a, b) -> float:
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _max_abs(tree) -> float:
  return max(float(np.max(np.abs(np.asarray(x, np.float64)))) for x in jax.tree.leaves(tree))


# ----------------------------------------------------------------------------- meta-gradient modes


def make_problem(layer_sizes: Sequence[int], rater_hidden: Sequence[int], batch_size: int,
                 meta_batch_size: int, max_steps: int, learning_rate: float, seed: int,
                 warmup_steps: int = 10) -> Dict[str, Any]:
  """The meta-gradient problem: models, losses, optimizer, parameters and data.

  Data: Gaussian inputs labelled by a random linear teacher (argmax), drawn
  with numpy; `max_steps` stacked training batches. The inner model first
  takes `warmup_steps` plain Adam steps so that the window starts
  mid-training (from Adam's zero state the first update is ~ lr * sign(g),
  whose derivative in eta is ~0).

  Args:
    layer_sizes: inner MLP sizes (input dim, hidden widths..., classes).
    rater_hidden: hidden widths of the MLP rater.
    batch_size: inner batch size B.
    meta_batch_size: size of the held-out batch.
    max_steps: stacked training batches drawn (the largest T).
    learning_rate: inner Adam learning rate (eps_root=1e-8).
    seed: seeds data, model and rater.
    warmup_steps: plain Adam steps before the unrolled window.

  Returns:
    dict with 'inner_loss_fn', 'outer_loss_fn', 'per_example_loss', 'rater',
    'optimizer', 'eta', 'params', 'opt_state', 'train' ({'x': [max_steps, B,
    d], 'y': [max_steps, B]}) and 'meta' ({'x': [M, d], 'y': [M]}).
  """
  input_dim, *hidden, num_classes = [int(s) for s in layer_sizes]
  model = MLP(tuple(hidden), num_classes)
  rater = MLPRater(tuple(int(h) for h in rater_hidden), num_classes)
  optimizer = optax.adam(learning_rate, eps_root=1e-8)

  def per_example_loss(params, batch):
    logits = model.apply({'params': params}, batch['x'])
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch['y'])

  def inner_loss_fn(params, eta, batch):
    weights = score_ops.batch_softmax(rater.apply({'params': eta}, batch['x'], batch['y']))
    return jnp.sum(weights * per_example_loss(params, batch))

  def outer_loss_fn(params, batch):
    return jnp.mean(per_example_loss(params, batch))

  rng = np.random.default_rng(seed)
  teacher = rng.normal(size=(input_dim, num_classes))

  def draw(*shape):
    x = rng.normal(size=shape + (input_dim,)).astype(np.float32)
    return {'x': jnp.asarray(x), 'y': jnp.asarray(np.argmax(x @ teacher, -1).astype(np.int32))}

  train, meta = draw(max_steps, batch_size), draw(meta_batch_size)
  k_model, k_rater = jax.random.split(jax.random.key(seed))
  params = model.init(k_model, meta['x'][:1])['params']
  eta = rater.init(k_rater, meta['x'][:1], meta['y'][:1])['params']
  opt_state = optimizer.init(params)

  @jax.jit
  def warmup(params, opt_state, batches):
    def step(carry, batch):
      p, s = carry
      updates, s = optimizer.update(jax.grad(outer_loss_fn)(p, batch), s, p)
      return (optax.apply_updates(p, updates), s), None
    return jax.lax.scan(step, (params, opt_state), batches)[0]

  if warmup_steps:
    params, opt_state = warmup(params, opt_state, draw(warmup_steps, batch_size))
  return dict(inner_loss_fn=inner_loss_fn, outer_loss_fn=outer_loss_fn,
              per_example_loss=per_example_loss, rater=rater, optimizer=optimizer, eta=eta,
              params=params, opt_state=opt_state, train=train, meta=meta)


def plain_step_fn(per_example_loss, optimizer):
  """(params, opt_state, batch, weights) -> one Adam step on sum_i w_i loss_i."""
  def step(params, opt_state, batch, weights):
    grads = jax.grad(lambda p: jnp.sum(weights * per_example_loss(p, batch)))(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
  return step


def bench_modes(prob: Dict[str, Any], horizons: Sequence[int], modes: Sequence[str],
                repeats: int, log: Callable[[str], None]) -> Dict[str, Any]:
  """Every (mode, T): time per inner step / plain step, memory, compile time, FLOPs, gradient.

  Args:
    prob: `make_problem`'s dict (with at least max(horizons) batches).
    horizons: unroll lengths T.
    modes: modes of `unroll.MODES`, 'reverse' among them.
    repeats: timed blocks per program.
    log: progress callback.

  Returns:
    {'plain': {...}, 'rows': [one dict per (mode, T)]}.
  """
  batch0 = jax.tree.map(lambda x: x[0], prob['train'])
  weights = jnp.full(batch0['y'].shape, 1.0 / batch0['y'].shape[0])
  plain_args = (prob['params'], prob['opt_state'], batch0, weights)
  plain, plain_compile = _compile(plain_step_fn(prob['per_example_loss'], prob['optimizer']),
                                  *plain_args)
  plain_flops = flops_lib.compiled_flops(plain)
  rows, grads = [], {}
  for t in horizons:
    args = (prob['eta'], prob['params'], prob['opt_state'],
            jax.tree.map(lambda x: x[:t], prob['train']), prob['meta'])
    for mode in modes:
      fn = functools.partial(unroll.meta_loss_and_grad, inner_loss_fn=prob['inner_loss_fn'],
                             outer_loss_fn=prob['outer_loss_fn'], optimizer=prob['optimizer'],
                             mode=mode)
      compiled, compile_s = _compile(lambda *a, fn=fn: fn(*a)[:2], *args)
      loss, grads[mode, t] = compiled(*args)
      step_s, plain_s = paired_times(lambda: compiled(*args), lambda: plain(*plain_args),
                                     repeats)
      fl = flops_lib.compiled_flops(compiled)
      rows.append(dict(
          mode=mode, T=t, exact=mode in unroll.EXACT_MODES, compile_s=compile_s,
          temp_bytes=_temp(compiled), step_s=step_s, plain_s=plain_s,
          ratio_per_inner_step=step_s / t / plain_s, flops=fl,
          flops_ratio_per_inner_step=fl / t / plain_flops, meta_loss=float(loss),
          grad_max_abs_diff_vs_reverse=_max_abs_diff(grads[mode, t], grads['reverse', t]),
          grad_max_abs_reverse=_max_abs(grads['reverse', t])))
      log(f"modes T={t} {mode}: {rows[-1]['ratio_per_inner_step']:.2f}x plain per inner step, "
          f"temp {(rows[-1]['temp_bytes'] or 0) / 2**20:.2f} MiB, compile {compile_s:.1f}s")
  return dict(plain=dict(compile_s=plain_compile, temp_bytes=_temp(plain), flops=plain_flops),
              rows=rows)


def flops_check(prob: Dict[str, Any], t: int) -> Dict[str, float]:
  """FLOPs of the rolled T-step reverse meta-gradient vs XLA's count of a Python-loop unroll.

  Args:
    prob: `make_problem`'s dict.
    t: unroll length.

  Returns:
    {'T', 'rolled': compiled_flops of the rolled program, 'unrolled': XLA's
    cost analysis of the same meta-gradient written as a Python loop (no
    while loop left), 'xla_rolled': XLA's own count of the rolled program
    (loop bodies once)}.
  """
  args = (prob['eta'], prob['params'], prob['opt_state'],
          jax.tree.map(lambda x: x[:t], prob['train']), prob['meta'])
  kwargs = dict(inner_loss_fn=prob['inner_loss_fn'], outer_loss_fn=prob['outer_loss_fn'],
                optimizer=prob['optimizer'])
  rolled, _ = _compile(functools.partial(unroll.meta_loss_and_grad, mode='reverse', **kwargs),
                       *args)

  def python_loop(eta, params, opt_state, train, meta):
    def loss(eta):
      p, s = params, opt_state
      for i in range(t):
        p, s = unroll.inner_step(p, s, eta, jax.tree.map(lambda x: x[i], train),
                                 grad_fn=jax.grad(kwargs['inner_loss_fn']),
                                 optimizer=kwargs['optimizer'])
      return kwargs['outer_loss_fn'](p, meta)
    return jax.value_and_grad(loss)(eta)

  unrolled, _ = _compile(python_loop, *args)
  return dict(T=t, rolled=flops_lib.compiled_flops(rolled),
              unrolled=float(unrolled.cost_analysis()['flops']),
              xla_rolled=float(rolled.cost_analysis()['flops']))


# ----------------------------------------------------------------------------- methods


def _method_config(name: str, quick: bool, batch_size: int):
  import importlib.util
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  spec = importlib.util.spec_from_file_location(f'configs_{name}',
                                                os.path.join(root, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config('dataset=digits' + (',smoke' if quick else ''))
  config.batch_size = batch_size
  return config


def _method_step(name: str, quick: bool, batch_size: int):
  """(compiled step, args, phase name) of method `name` on the digits preset."""
  import dataclasses
  from datarater import train as train_lib
  from datarater.data import sampler
  from datarater.train.state import Method, init_train_state
  config = _method_config(name, quick, batch_size)
  dataset, task, pipeline = train_lib.prepare(config)
  phase = next(p for p in pipeline.phases if isinstance(p.method, Method))
  method = phase.method
  if name == 'doremi':  # time the proxy phase (the method), not the uniform reference
    from datarater.methods import doremi
    phase = pipeline.phases[1]
    method = doremi.make_proxy(config, task, dataset, task.init_params(jax.random.key(0)))
  task = phase.task or task  # e.g. confident_learning's ensemble of k members
  if phase.optimizer is not None:
    task = dataclasses.replace(task, optimizer=phase.optimizer)
  key = jax.random.key(0)
  ts = init_train_state(task, key) if phase.trains_model else None
  ms = method.init(key, ts)
  batch = sampler.gather(dataset.train, sampler.sequential_indices(
      dataset.train.size, method.train_batch_size, config.seed, 0))
  if method.meta_batch_size:
    batch['meta'] = sampler.gather(dataset.meta, sampler.sequential_indices(
        dataset.meta.size, method.meta_batch_size, config.seed, 0, sampler.META))
  args = (ts, ms, jax.tree.map(jnp.asarray, batch), key)
  compiled, _ = _compile(method.step, *args)
  return compiled, args, phase.name


def bench_methods(names: Sequence[str], quick: bool, batch_size: int, repeats: int,
                  log: Callable[[str], None]) -> List[Dict[str, Any]]:
  """Each method's step time / the uniform method's step time (same model and batch).

  Args:
    names: registered method names.
    quick: smoke-sized models.
    batch_size: training batch size.
    repeats: timed blocks per method.
    log: progress callback.

  Returns:
    One row per method: name, phase, seconds, plain seconds, ratio, FLOPs ratio, target.
  """
  plain, plain_args, _ = _method_step('uniform', quick, batch_size)
  plain_flops = flops_lib.compiled_flops(plain)
  rows = []
  for name in names:
    compiled, args, phase = _method_step(name, quick, batch_size)
    step_s, plain_s = paired_times(lambda: compiled(*args), lambda: plain(*plain_args),
                                   repeats)
    rows.append(dict(method=name, phase=phase, step_s=step_s, plain_s=plain_s,
                     ratio=step_s / plain_s,
                     flops_ratio=flops_lib.compiled_flops(compiled) / plain_flops,
                     target=METHOD_TARGETS.get(name)))
    log(f"method {name} ({phase}): {rows[-1]['ratio']:.2f}x plain step")
  return rows


def bench_scoring(prob: Dict[str, Any], num_examples: int, repeats: int) -> Dict[str, float]:
  """Examples scored per second by the rater vs examples trained per second by the plain step."""
  rater, eta = prob['rater'], prob['eta']
  x = jnp.tile(prob['train']['x'].reshape((-1, prob['train']['x'].shape[-1])),
               (num_examples // prob['train']['y'].size + 1, 1))[:num_examples]
  y = jnp.zeros((num_examples,), jnp.int32)
  score, _ = _compile(lambda e, x, y: rater.apply({'params': e}, x, y), eta, x, y)
  batch0 = jax.tree.map(lambda v: v[0], prob['train'])
  weights = jnp.full(batch0['y'].shape, 1.0 / batch0['y'].shape[0])
  plain_args = (prob['params'], prob['opt_state'], batch0, weights)
  plain, _ = _compile(plain_step_fn(prob['per_example_loss'], prob['optimizer']), *plain_args)
  score_s, plain_s = paired_times(lambda: score(eta, x, y), lambda: plain(*plain_args), repeats)
  scored, trained = num_examples / score_s, batch0['y'].shape[0] / plain_s
  return dict(scored_per_s=scored, trained_per_s=trained, ratio=scored / trained,
              score_batch=num_examples)


# ----------------------------------------------------------------------------- peers (PyTorch)


def torch_available() -> bool:
  try:
    import torch  # noqa: F401
  except ImportError:
    return False
  return True


def _torch_l2rw_grad(hidden: int, batch_size: int, seed: int):
  """A zero-argument call of the one-step L2RW meta-gradient in torch.func, and its result."""
  import torch
  from torch.func import functional_call, grad
  torch.manual_seed(seed)
  model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, 10))
  params = {k: v.detach() for k, v in model.named_parameters()}
  g = torch.Generator().manual_seed(seed)
  x, xm = torch.randn(batch_size, 64, generator=g), torch.randn(batch_size, 64, generator=g)
  y, ym = (torch.randint(0, 10, (batch_size,), generator=g) for _ in range(2))
  ce = torch.nn.functional.cross_entropy

  def meta(eps):
    def inner(p):
      return (eps * ce(functional_call(model, p, (x,)), y, reduction='none')).sum()
    gp = grad(inner)(params)
    new = {k: params[k] - 0.1 * gp[k] for k in params}
    return ce(functional_call(model, new, (xm,)), ym)

  meta_grad = grad(meta)
  call = lambda: meta_grad(torch.zeros(batch_size))
  return call


def _jax_l2rw_grad(hidden: int, batch_size: int, seed: int):
  model = MLP((hidden, hidden), 10)
  rng = np.random.default_rng(seed)
  batch = {'x': jnp.asarray(rng.normal(size=(batch_size, 64)), jnp.float32),
           'y': jnp.asarray(rng.integers(0, 10, batch_size), jnp.int32)}
  meta = {'x': jnp.asarray(rng.normal(size=(batch_size, 64)), jnp.float32),
          'y': jnp.asarray(rng.integers(0, 10, batch_size), jnp.int32)}
  params = model.init(jax.random.key(seed), batch['x'][:1])['params']

  def loss(p, b):
    return optax.softmax_cross_entropy_with_integer_labels(model.apply({'params': p}, b['x']),
                                                           b['y'])
  scores = functools.partial(l2rw.l2rw_scores, per_example_loss_fn=loss, lookahead_lr=0.1)
  compiled, _ = _compile(scores, params, batch, meta)
  return lambda: compiled(params, batch, meta)


def bench_peer_step(hiddens: Sequence[int], batch_size: int, repeats: int) -> List[Dict]:
  """One-step L2RW meta-gradient: torch.func seconds / ours, per hidden width."""
  import torch
  torch.set_num_threads(os.cpu_count())
  rows = []
  for hidden in hiddens:
    ours, theirs = _jax_l2rw_grad(hidden, batch_size, 0), _torch_l2rw_grad(hidden, batch_size, 0)
    ours_s, torch_s = paired_times(ours, theirs, repeats)
    rows.append(dict(hidden=hidden, batch_size=batch_size, ours_s=ours_s, torch_s=torch_s,
                     speedup=torch_s / ours_s))
  return rows


def torch_l2rw_run(path: str, steps: int, batch_size: int, hidden: int, lr: float,
                   lookahead_lr: float, eval_every: int, seed: int) -> None:
  """The PyTorch peer of `configs/l2rw.py` on an npz, run as its own process (`python -c`).

  Same model (MLP 64-hidden-hidden-C, ReLU), batch, Adam(lr), L2RW weights from
  a one-step SGD look-ahead with torch.func, evaluation of the meta and test
  splits every `eval_every` steps and at the end. Prints the final test accuracy.
  """
  import numpy as np
  import torch
  from torch.func import functional_call, grad
  torch.manual_seed(seed)
  torch.set_num_threads(os.cpu_count())
  data = np.load(path)
  x, xm, xt = (torch.tensor(data[k], dtype=torch.float32) for k in ('x_train', 'x_meta', 'x_test'))
  y, ym, yt = (torch.tensor(data[k], dtype=torch.long) for k in ('y_train', 'y_meta', 'y_test'))
  classes = int(max(y.max(), yt.max())) + 1
  model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, classes))
  opt = torch.optim.Adam(model.parameters(), lr=lr)
  ce = torch.nn.functional.cross_entropy
  gen = torch.Generator().manual_seed(seed)

  def evaluate(xs, ys):
    with torch.no_grad():
      logits = model(xs)
      return ce(logits, ys).item(), (logits.argmax(-1) == ys).float().mean().item()

  order, pos = torch.randperm(len(y), generator=gen), 0
  for step in range(1, steps + 1):
    if pos + batch_size > len(y):
      order, pos = torch.randperm(len(y), generator=gen), 0
    idx, pos = order[pos:pos + batch_size], pos + batch_size
    midx = torch.randint(0, len(ym), (batch_size,), generator=gen)
    bx, by, mx, my = x[idx], y[idx], xm[midx], ym[midx]
    params = {k: v.detach() for k, v in model.named_parameters()}

    def meta(eps, params=params, bx=bx, by=by, mx=mx, my=my):
      gp = grad(lambda p: (eps * ce(functional_call(model, p, (bx,)), by,
                                    reduction='none')).sum())(params)
      new = {k: params[k] - lookahead_lr * gp[k] for k in params}
      return ce(functional_call(model, new, (mx,)), my)

    u = -grad(meta)(torch.zeros(batch_size))
    w = torch.clamp(u, min=0)
    w = w / (w.sum() + (w.sum() == 0).float())
    opt.zero_grad()
    (w * ce(model(bx), by, reduction='none')).sum().backward()
    opt.step()
    if step % eval_every == 0 or step == steps:
      evaluate(xm, ym)
      acc = evaluate(xt, yt)[1]
  print(f'test_accuracy {acc:.4f}')


def write_noisy_digits(path: str, noise: float = 0.3, seed: int = 0) -> None:
  """Digits (8x8, /16) as an npz: 30% symmetric label noise on train, clean meta and test."""
  from sklearn.datasets import load_digits
  digits = load_digits()
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(digits.target))
  x, y = (digits.data / 16.0).astype(np.float32)[order], digits.target.astype(np.int32)[order]
  x_meta, y_meta, x_test, y_test, x_train, y_train = x[:100], y[:100], x[100:460], y[100:460], \
      x[460:], y[460:].copy()
  flip = rng.random(len(y_train)) < noise
  y_train[flip] = (y_train[flip] + rng.integers(1, 10, flip.sum())) % 10
  np.savez(path, x_train=x_train, y_train=y_train, x_meta=x_meta, y_meta=y_meta,
           x_test=x_test, y_test=y_test)


def bench_end_to_end(pairs: int, steps: int, log: Callable[[str], None]) -> Dict[str, Any]:
  """Whole-process wall seconds of our L2RW run and the torch peer, in alternating pairs."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  tmp = tempfile.mkdtemp(prefix='bench_e2e_')
  npz = os.path.join(tmp, 'noisy_digits.npz')
  write_noisy_digits(npz)
  source = (inspect.getsource(torch_l2rw_run) +
            f'\nimport os\ntorch_l2rw_run({npz!r}, {steps}, 64, 256, 1e-3, 1e-3, 100, 0)\n')
  env = dict(os.environ, PYTHONPATH=root)
  ours_cmd = lambda i: [sys.executable, '-m', 'experiments.train',
                        f'--config=configs/l2rw.py:dataset=npz', f'--config.data.path={npz}',
                        f'--config.num_steps={steps}',                        f'--workdir={os.path.join(tmp, f"run{i}")}']
  rows = []
  for i in range(pairs):
    times = {}
    for who, cmd in (('ours', ours_cmd(i)), ('torch', [sys.executable, '-c', source])):
      t0 = time.perf_counter()
      proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
      times[who] = time.perf_counter() - t0
      if proc.returncode:
        raise RuntimeError(f'{who} end-to-end run failed: {proc.stderr[-2000:]}')
    rows.append(dict(ours_s=times['ours'], torch_s=times['torch'],
                     speedup=times['torch'] / times['ours']))
    log(f"end-to-end pair {i + 1}: ours {times['ours']:.1f}s, torch {times['torch']:.1f}s")
  return dict(steps=steps, batch_size=64, hidden=256, pairs=rows,
              median_speedup=statistics.median(r['speedup'] for r in rows))


# ----------------------------------------------------------------------------- report


def machine() -> Dict[str, Any]:
  device = jax.devices()[0]
  return dict(platform=platform.platform(), python=platform.python_version(),
              machine=platform.machine(), cpu_count=os.cpu_count(), jax=jax.__version__,
              device=f'{device.platform}:{device.device_kind}', num_devices=jax.device_count(),
              torch=_torch_version(), xla_flags=os.environ.get('XLA_FLAGS', ''),
              load_average=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None)


def _torch_version() -> Optional[str]:
  if not torch_available():
    return None
  import torch
  return torch.__version__


def evaluate_targets(result: Dict[str, Any]) -> List[Dict[str, Any]]:
  """Every target of issue 11 with its measured figure: [{'name', 'figure', 'target', 'met'}]."""
  out = []

  def add(name, figure, target, met):
    out.append(dict(name=name, figure=figure, target=target, met=bool(met)))

  rows = result['modes']['rows']
  horizons = sorted({r['T'] for r in rows})
  lo, hi = (2, 32) if {2, 32} <= set(horizons) else (horizons[0], horizons[-1])
  at = lambda mode, t: next(r for r in rows if r['mode'] == mode and r['T'] == t)
  exact = [m for m in unroll.EXACT_MODES if any(r['mode'] == m for r in rows)]
  for t in [t for t in (2, 8, 32) if t in horizons] or horizons:
    best = min((at(m, t) for m in exact), key=lambda r: r['ratio_per_inner_step'])
    add(f'meta-step per inner step / plain step, T={t}, best exact mode',
        f"{best['ratio_per_inner_step']:.2f} ({best['mode']}; FLOPs "
        f"{best['flops_ratio_per_inner_step']:.2f})", f'<= {META_TARGET}',
        best['ratio_per_inner_step'] <= META_TARGET)
  if 'checkpointed' in exact:
    x = at('checkpointed', hi)['temp_bytes'] / at('checkpointed', lo)['temp_bytes']
    add(f'checkpointed temp memory T={hi} / T={lo}', f'{x:.2f}', f'<= {MEMORY_TARGET}',
        x <= MEMORY_TARGET)
  worst = max(exact, key=lambda m: at(m, hi)['compile_s'] / at(m, lo)['compile_s'])
  x = at(worst, hi)['compile_s'] / at(worst, lo)['compile_s']
  add(f'compile time T={hi} / T={lo}, worst exact mode', f'{x:.2f} ({worst})',
      f'<= {COMPILE_TARGET}', x <= COMPILE_TARGET)
  for m in exact:
    r = max((at(m, t) for t in horizons),
            key=lambda r: r['grad_max_abs_diff_vs_reverse'] / max(r['grad_max_abs_reverse'], 1e-30))
    rel = r['grad_max_abs_diff_vs_reverse'] / max(r['grad_max_abs_reverse'], 1e-30)
    add(f'{m} meta-gradient equals reverse (max rel diff, all T)', f'{rel:.1e}', '<= 1e-4',
        rel <= 1e-4)
  fc = result['flops_check']
  x = fc['rolled'] / fc['unrolled']
  add(f"FLOPs of the rolled T={fc['T']} unroll / XLA's count of the unrolled one", f'{x:.4f}',
      '1 +- 0.03', abs(x - 1) <= 0.03)
  for r in result['methods']:
    if r['target'] is not None:
      add(f"{r['method']} step / plain step", f"{r['ratio']:.2f} (FLOPs {r['flops_ratio']:.2f})",
          f"<= {r['target']}", r['ratio'] <= r['target'])
  e2e = result['peers'].get('end_to_end')
  if e2e:
    add('end-to-end L2RW, torch.func process / ours (median of pairs)',
        f"{e2e['median_speedup']:.2f}", f'>= {E2E_TARGET}', e2e['median_speedup'] >= E2E_TARGET)
  return out


def format_targets(targets: List[Dict[str, Any]]) -> str:
  return '\n'.join(f"{'met    ' if t['met'] else 'NOT MET'}  {t['name']}: {t['figure']} "
                   f"(target {t['target']})" for t in targets)


def format_markdown(result: Dict[str, Any]) -> str:
  """benchmark.md: setup, targets, and one table per section."""
  m = result['machine']
  lines = ['# Cost benchmark', '',
           f"`python -m experiments.benchmark{' --quick' if result['quick'] else ''}` on "
           f"{m['device']} ({m['cpu_count']} CPUs, {m['platform']}), jax {m['jax']}, torch "
           f"{m['torch'] or 'not installed'}; load average at start "
           f"{m['load_average'][0] if m['load_average'] else 'n/a'}. Times are medians of "
           f"{result['repeats']} blocks after compilation, as ratios to the plain step of the "
           'same model and batch timed in alternating blocks in the same run.', '',
           '## Targets', '', '| target | figure | required | status |', '|---|---|---|---|']
  lines += [f"| {t['name']} | {t['figure']} | {t['target']} | {'met' if t['met'] else 'NOT MET'} |"
            for t in result['targets']]
  lines += ['', '## Meta-gradient modes vs T', '', '![time and memory vs T](modes_vs_T.png)', '',
            '| mode | T | time / inner step / plain | FLOPs / inner step / plain | temp MiB | '
            'compile s | max abs grad diff vs reverse |', '|---|---|---|---|---|---|---|']
  for r in result['modes']['rows']:
    lines.append(f"| {r['mode']} | {r['T']} | {r['ratio_per_inner_step']:.2f} | "
                 f"{r['flops_ratio_per_inner_step']:.2f} | {(r['temp_bytes'] or 0) / 2**20:.2f} | "
                 f"{r['compile_s']:.1f} | {r['grad_max_abs_diff_vs_reverse']:.1e} |")
  lines += ['', '## Methods: step / uniform step (digits preset, same MLP and batch)', '',
            '| method | phase timed | time ratio | FLOPs ratio | target |', '|---|---|---|---|---|']
  lines += [f"| {r['method']} | {r['phase']} | {r['ratio']:.2f} | {r['flops_ratio']:.2f} | "
            f"{r['target'] or '-'} |" for r in result['methods']]
  s = result['scoring']
  lines += ['', '## Rater scoring throughput', '',
            f"{s['scored_per_s']:.3g} examples scored/s (batches of {s['score_batch']}) vs "
            f"{s['trained_per_s']:.3g} examples trained/s by the plain step: "
            f"{s['ratio']:.1f}x.", '', '## Peers (PyTorch)', '']
  peers = result['peers']
  if peers.get('skipped'):
    lines.append(peers['skipped'])
  else:
    lines += ['| one-step L2RW meta-gradient, hidden | batch | ours ms | torch.func ms | '
              'torch / ours |', '|---|---|---|---|---|']
    lines += [f"| {r['hidden']} | {r['batch_size']} | {r['ours_s'] * 1e3:.2f} | "
              f"{r['torch_s'] * 1e3:.2f} | {r['speedup']:.2f} |" for r in peers['step']]
    e2e = peers.get('end_to_end')
    if e2e:
      lines += ['', f"End-to-end L2RW ({e2e['steps']} steps, noisy digits npz, MLP "
                f"64-{e2e['hidden']}-{e2e['hidden']}-10, B={e2e['batch_size']}, Adam, evaluation "
                'every 100 steps), whole process seconds:', '',
                '| pair | ours s | torch.func s | torch / ours |', '|---|---|---|---|']
      lines += [f"| {i + 1} | {r['ours_s']:.1f} | {r['torch_s']:.1f} | {r['speedup']:.2f} |"
                for i, r in enumerate(e2e['pairs'])]
  if result.get('notes'):
    lines += ['', '## Where a target is missed', '', result['notes']]
  return '\n'.join(lines) + '\n'


def plot_modes(result: Dict[str, Any], path: str) -> None:
  """PNG: meta-gradient time per inner step / plain step and temp memory vs T, per mode."""
  from datarater.train import plots  # noqa: F401  (selects matplotlib's Agg backend)
  import matplotlib.pyplot as plt
  fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 3.8))
  rows = result['modes']['rows']
  for mode in dict.fromkeys(r['mode'] for r in rows):
    mine = [r for r in rows if r['mode'] == mode]
    ts = [r['T'] for r in mine]
    ax_t.plot(ts, [r['ratio_per_inner_step'] for r in mine], marker='o', label=mode)
    ax_m.plot(ts, [(r['temp_bytes'] or 0) / 2**20 for r in mine], marker='o', label=mode)
  for ax in (ax_t, ax_m):
    ax.set_xscale('log', base=2)
    ax.set_xlabel('T (unrolled inner steps)')
    ax.grid(alpha=0.3)
  ax_t.axhline(META_TARGET, color='gray', ls='--', lw=1)
  ax_t.set_ylabel('time per inner step / plain Adam step')
  ax_m.set_ylabel('XLA temp memory (MiB)')
  ax_t.legend(fontsize=8)
  fig.suptitle(f"DataRater meta-gradient, {result['machine']['device']}")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def run_benchmark(quick: bool = False, log: Callable[[str], None] = lambda _: None,
                  notes: str = '') -> Dict[str, Any]:
  """Runs every section (see the module docstring).

  Args:
    quick: tiny sizes, T in (2, 5) (5: two checkpointed segments), one repeat,
      no end-to-end peer run.
    log: progress callback.
    notes: markdown explaining missed targets, copied into the result.

  Returns:
    JSON-serialisable dict: machine, quick, repeats, modes, flops_check,
    methods, scoring, peers, targets, notes.
  """
  repeats = 1 if quick else 9
  horizons = (2, 5) if quick else (1, 2, 4, 8, 16, 32)
  layers = (8, 16, 3) if quick else (64, 256, 256, 10)
  batch = 8 if quick else 128
  prob = make_problem(layers, (4,) if quick else (64,), batch, batch, max(horizons), 1e-3, 0)
  result = dict(machine=machine(), quick=quick, repeats=repeats)
  result['modes'] = bench_modes(prob, horizons, unroll.MODES, repeats, log)
  result['flops_check'] = flops_check(prob, min(8, max(horizons)))
  names = (('l2rw', 'kl_dro', 'aum') if quick else
           META_METHODS + RULES + SCORERS)
  result['methods'] = bench_methods(names, quick, 16 if quick else 128, repeats, log)
  result['scoring'] = bench_scoring(prob, 256 if quick else 8192, repeats)
  if not torch_available():
    result['peers'] = dict(skipped='PyTorch is not installed (pip install -r '
                                   'requirements-bench.txt): peers skipped.')
  else:
    result['peers'] = dict(step=bench_peer_step((16,) if quick else (256, 1024),
                                                8 if quick else 128, repeats))
    if not quick:
      result['peers']['end_to_end'] = bench_end_to_end(3, 1500, log)
  result['targets'] = evaluate_targets(result)
  result['notes'] = notes
  return result


NOTES_FILE = 'notes.md'  # hand-written causes of missed targets, kept beside the results


def main(argv):
  del argv  # parse_flags refuses extra arguments
  out = _OUT.value
  try:
    os.makedirs(out, exist_ok=True)
  except OSError as e:
    fail(2, f'--out={out}: cannot create the folder ({e.strerror or e})')
  notes_path = os.path.join(out, NOTES_FILE)
  notes = open(notes_path).read() if os.path.exists(notes_path) else ''
  result = run_benchmark(_QUICK.value, log=lambda line: print(line, flush=True), notes=notes)
  print(format_targets(result['targets']))
  with open(os.path.join(out, 'benchmark.json'), 'w') as f:
    json.dump(result, f, indent=1)
  with open(os.path.join(out, 'benchmark.md'), 'w') as f:
    f.write(format_markdown(result))
  plot_modes(result, os.path.join(out, 'modes_vs_T.png'))
  print(f'wrote {out}/benchmark.json, benchmark.md, modes_vs_T.png')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
