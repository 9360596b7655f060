"""The meta-gradient problem and its sections: modes vs T, the FLOPs check, rater scoring.

The problem is the DataRater meta-gradient (`unroll.meta_loss_and_grad`): an
MLP trained by Adam(eps_root=1e-8) on batches weighted by an MLP rater, the
outer loss measured on a held-out batch. Every time here is a ratio to the
plain weighted Adam step of the same model and batch (`compiled_plain_step`).
FLOPs are `datarater.train.flops.compiled_flops` (loop bodies times their trip
counts).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from datarater.meta import unroll
from datarater.models.mlp import MLP
from datarater.models.rater import MLPRater
from datarater.train import flops as flops_lib
from datarater.weighting import scores as score_ops
from experiments.benchmark import timing


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


def compiled_plain_step(prob: Dict[str, Any]) -> tuple:
  """The plain step every section is timed against: uniform weights on the first batch.

  Args:
    prob: `make_problem`'s dict.

  Returns:
    (compiled plain step, its arguments, compile seconds).
  """
  batch0 = jax.tree.map(lambda x: x[0], prob['train'])
  weights = jnp.full(batch0['y'].shape, 1.0 / batch0['y'].shape[0])
  args = (prob['params'], prob['opt_state'], batch0, weights)
  compiled, compile_s = timing.compile_timed(
      plain_step_fn(prob['per_example_loss'], prob['optimizer']), *args)
  return compiled, args, compile_s


def _window_args(prob: Dict[str, Any], t: int) -> tuple:
  """Arguments of `unroll.meta_loss_and_grad` over the first `t` training batches."""
  return (prob['eta'], prob['params'], prob['opt_state'],
          jax.tree.map(lambda x: x[:t], prob['train']), prob['meta'])


def _losses(prob: Dict[str, Any]) -> Dict[str, Any]:
  return dict(inner_loss_fn=prob['inner_loss_fn'], outer_loss_fn=prob['outer_loss_fn'],
              optimizer=prob['optimizer'])


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
  plain, plain_args, plain_compile = compiled_plain_step(prob)
  plain_flops = flops_lib.compiled_flops(plain)
  rows, grads = [], {}
  for t in horizons:
    args = _window_args(prob, t)
    for mode in modes:
      fn = functools.partial(unroll.meta_loss_and_grad, **_losses(prob), mode=mode)
      compiled, compile_s = timing.compile_timed(lambda *a, fn=fn: fn(*a)[:2], *args)
      loss, grads[mode, t] = compiled(*args)
      step_s, plain_s = timing.paired_times(lambda: compiled(*args), lambda: plain(*plain_args),
                                            repeats)
      fl = flops_lib.compiled_flops(compiled)
      rows.append(dict(
          mode=mode, T=t, exact=mode in unroll.EXACT_MODES, compile_s=compile_s,
          temp_bytes=timing.temp_bytes(compiled), step_s=step_s, plain_s=plain_s,
          ratio_per_inner_step=step_s / t / plain_s, flops=fl,
          flops_ratio_per_inner_step=fl / t / plain_flops, meta_loss=float(loss),
          grad_max_abs_diff_vs_reverse=timing.max_abs_diff(grads[mode, t], grads['reverse', t]),
          grad_max_abs_reverse=timing.max_abs(grads['reverse', t])))
      log(f"modes T={t} {mode}: {rows[-1]['ratio_per_inner_step']:.2f}x plain per inner step, "
          f"temp {(rows[-1]['temp_bytes'] or 0) / 2**20:.2f} MiB, compile {compile_s:.1f}s")
  return dict(plain=dict(compile_s=plain_compile, temp_bytes=timing.temp_bytes(plain),
                         flops=plain_flops),
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
  args, kwargs = _window_args(prob, t), _losses(prob)
  rolled, _ = timing.compile_timed(
      functools.partial(unroll.meta_loss_and_grad, mode='reverse', **kwargs), *args)

  def python_loop(eta, params, opt_state, train, meta):
    def loss(eta):
      p, s = params, opt_state
      for i in range(t):
        p, s = unroll.inner_step(p, s, eta, jax.tree.map(lambda x: x[i], train),
                                 grad_fn=jax.grad(kwargs['inner_loss_fn']),
                                 optimizer=kwargs['optimizer'])
      return kwargs['outer_loss_fn'](p, meta)
    return jax.value_and_grad(loss)(eta)

  unrolled, _ = timing.compile_timed(python_loop, *args)
  return dict(T=t, rolled=flops_lib.compiled_flops(rolled),
              unrolled=float(unrolled.cost_analysis()['flops']),
              xla_rolled=float(rolled.cost_analysis()['flops']))


def bench_scoring(prob: Dict[str, Any], num_examples: int, repeats: int) -> Dict[str, float]:
  """Examples scored per second by the rater vs examples trained per second by the plain step."""
  rater, eta = prob['rater'], prob['eta']
  x = jnp.tile(prob['train']['x'].reshape((-1, prob['train']['x'].shape[-1])),
               (num_examples // prob['train']['y'].size + 1, 1))[:num_examples]
  y = jnp.zeros((num_examples,), jnp.int32)
  score, _ = timing.compile_timed(lambda e, x, y: rater.apply({'params': e}, x, y), eta, x, y)
  plain, plain_args, _ = compiled_plain_step(prob)
  score_s, plain_s = timing.paired_times(lambda: score(eta, x, y), lambda: plain(*plain_args),
                                         repeats)
  scored, trained = num_examples / score_s, prob['train']['y'].shape[1] / plain_s
  return dict(scored_per_s=scored, trained_per_s=trained, ratio=scored / trained,
              score_batch=num_examples)
