"""Benchmark of the meta-gradient modes of `datarater.meta.unroll`.

  python -m experiments.benchmark --out=runs/benchmark.json --plot=runs/benchmark.png

One problem, every mode: an MLP classifier (`layer_sizes`, e.g. 64-512-512-10)
trained for T steps with Adam (eps_root=1e-8) on the DataRater inner loss
sum_x softmax_B(phi_eta(x, y)) * CE(x, y; theta), where phi_eta is a small MLP
rater; the outer loss is the mean cross-entropy on a held-out batch; the
meta-gradient is d outer / d eta (`unroll.meta_loss_and_grad`).

For each (mode, T) this measures, in one process:

* compile time: `jax.jit(f).lower(...)` plus `.compile()` wall seconds;
* memory: XLA's static buffer assignment of the compiled program
  (`compiled.memory_analysis()`, a `CompiledMemoryStats` in jax 0.10.2):
  `temp_size_in_bytes` (scratch buffers, i.e. what the backward pass keeps
  alive: the quantity MixFlow-MG reduces) is the number compared; argument,
  output, alias, generated-code and `peak_memory_in_bytes` are recorded too.
  On the CPU backend of jax 0.10.2 `peak_memory_in_bytes` is about argument +
  output bytes and leaves temp out, so it is not a peak to compare. These are
  compiler numbers, deterministic for a given JAX/XLA build and backend, not
  measured process memory;
* step time: median wall seconds of the compiled call over `repeats` calls
  (after one warm-up call), timed round-robin over all (mode, T) so that load
  from other processes on a shared machine spreads over every mode alike.
  Report these as ratios to 'reverse': absolute seconds depend on the machine
  and its load;
* the max abs difference of the meta-gradient from 'reverse' at the same T
  (exact modes: float rounding; 'first_order': the truncation error).

`run_benchmark` returns a JSON-serialisable dict; `format_table`,
`evaluate_checks` and `plot_memory` turn it into a table, PASS/FAIL target
lines (not assertions: the exit status is 0 either way) and a PNG.

Defaults (MLP 64-512-512-10, B=128, T=1,2,4,8, 5 repeats): runtime and
results are in the README section "Meta-gradient modes benchmark". Memory
numbers are deterministic; step-time ratios vary from run to run on a loaded
machine.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from datarater.meta import unroll
from datarater.models.mlp import MLP
from datarater.models.rater import MLPRater
from datarater.weighting import scores as score_ops

MEMORY_FIELDS = ('temp_size_in_bytes', 'argument_size_in_bytes', 'output_size_in_bytes',
                 'alias_size_in_bytes', 'generated_code_size_in_bytes', 'peak_memory_in_bytes')

_MODES = flags.DEFINE_list('modes', list(unroll.MODES), "Modes to compare; must include 'reverse'.")
_HORIZONS = flags.DEFINE_list('horizons', ['1', '2', '4', '8'], 'Unroll lengths T.')
_LAYERS = flags.DEFINE_list('layer_sizes', ['64', '512', '512', '10'],
                            'Inner MLP: input dim, hidden widths..., classes.')
_RATER = flags.DEFINE_list('rater_hidden', ['64'], 'Hidden widths of the MLP rater.')
_BATCH = flags.DEFINE_integer('batch_size', 128, 'Inner batch size B.')
_META_BATCH = flags.DEFINE_integer('meta_batch_size', 128, 'Outer (meta) batch size.')
_LR = flags.DEFINE_float('learning_rate', 1e-3, 'Inner Adam learning rate (eps_root=1e-8).')
_WARMUP = flags.DEFINE_integer('warmup_steps', 10, 'Plain Adam steps before the unrolled window.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls per (mode, T); the median is reported.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of data and initialisation.')
_GRAD_RTOL = flags.DEFINE_float(
    'grad_rtol', 1e-4, 'Check: exact modes max|g - g_reverse| <= grad_rtol * max|g_reverse|.')
_TIME_SLACK = flags.DEFINE_float(
    'time_slack', 1.25, "Check: 'mixed' step time <= time_slack x 'reverse' at the largest T.")
_OUT = flags.DEFINE_string('out', None, 'Write the results (setup, rows, checks) to this JSON.')
_PLOT = flags.DEFINE_string('plot', None, 'Write a PNG of temp memory and step-time ratio vs T.')


def _check_args(modes, horizons, layer_sizes, rater_hidden, batch_size, meta_batch_size,
                repeats, warmup_steps):
  unknown = [m for m in modes if m not in unroll.MODES]
  if unknown:
    raise ValueError(f'unknown modes {unknown}; expected a subset of {unroll.MODES}.')
  if 'reverse' not in modes:
    raise ValueError("modes must include 'reverse' (every ratio is relative to it).")
  if len(set(modes)) != len(modes):
    raise ValueError(f'duplicate modes in {modes}.')
  if not horizons or len(set(horizons)) != len(horizons) or any(
      isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in horizons):
    raise ValueError(f'horizons must be distinct ints >= 1, got {horizons}.')
  if len(layer_sizes) < 2 or any(int(s) < 1 for s in layer_sizes):
    raise ValueError(f'layer_sizes must be >= 2 positive ints (input, ..., classes), '
                     f'got {layer_sizes}.')
  if int(layer_sizes[-1]) < 2:
    raise ValueError(f'the last layer size is the number of classes, >= 2; got {layer_sizes}.')
  if any(int(s) < 1 for s in rater_hidden):
    raise ValueError(f'rater_hidden must be positive ints, got {rater_hidden}.')
  for name, v in (('batch_size', batch_size), ('meta_batch_size', meta_batch_size),
                  ('repeats', repeats)):
    if v < 1:
      raise ValueError(f'{name} must be >= 1, got {v}.')
  if warmup_steps < 0:
    raise ValueError(f'warmup_steps must be >= 0, got {warmup_steps}.')


def make_problem(layer_sizes: Sequence[int], rater_hidden: Sequence[int], batch_size: int,
                 meta_batch_size: int, max_steps: int, learning_rate: float, seed: int,
                 warmup_steps: int = 10, compiler_options: Optional[Dict[str, Any]] = None):
  """The benchmark problem: models, losses, optimizer, parameters and data.

  Data: Gaussian inputs labelled by a random linear teacher (argmax), drawn
  with numpy (compiles nothing); `max_steps` stacked training batches, of
  which a run with horizon T uses the first T.

  The inner model first takes `warmup_steps` plain Adam steps (uniform
  weights, no meta-gradient) on separate batches, so the unrolled window
  starts mid-training, as DataRater's truncated windows do. From Adam's zero
  state the first update is ~ lr * sign(g), whose derivative in eta is ~0, so
  without warm-up the T = 1 meta-gradient would be near zero and comparing
  modes on it would say little.

  Args:
    layer_sizes: inner MLP sizes (input dim, hidden widths..., classes).
    rater_hidden: hidden widths of the MLP rater.
    batch_size: inner batch size B.
    meta_batch_size: size of the held-out batch.
    max_steps: stacked training batches drawn (the largest T).
    learning_rate: inner Adam learning rate.
    seed: seeds data, model and rater.
    warmup_steps: plain Adam steps before the unrolled window.
    compiler_options: passed to `jax.jit` of the warm-up.

  Returns:
    dict with 'inner_loss_fn', 'outer_loss_fn', 'optimizer', 'eta', 'params',
    'opt_state', 'train' ({'x': [max_steps, B, d], 'y': [max_steps, B]}) and
    'meta' ({'x': [M, d], 'y': [M]}).
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

  train = draw(max_steps, batch_size)
  meta = draw(meta_batch_size)
  k_model, k_rater = jax.random.split(jax.random.key(seed))
  params = model.init(k_model, meta['x'][:1])['params']
  eta = rater.init(k_rater, meta['x'][:1], meta['y'][:1])['params']
  opt_state = optimizer.init(params)
  if warmup_steps > 0:
    @functools.partial(jax.jit, compiler_options=compiler_options)
    def warmup(params, opt_state, batches):
      def step(carry, batch):
        p, s = carry
        g = jax.grad(outer_loss_fn)(p, batch)
        updates, s = optimizer.update(g, s, p)
        return (optax.apply_updates(p, updates), s), None
      return jax.lax.scan(step, (params, opt_state), batches)[0]
    params, opt_state = warmup(params, opt_state, draw(warmup_steps, batch_size))
  return dict(inner_loss_fn=inner_loss_fn, outer_loss_fn=outer_loss_fn, optimizer=optimizer,
              eta=eta, params=params, opt_state=opt_state, train=train, meta=meta)


def _memory(compiled) -> Dict[str, int]:
  stats = compiled.memory_analysis()
  if stats is None:  # Some backends report nothing.
    return {}
  out = {}
  for field in MEMORY_FIELDS:
    value = getattr(stats, field, None)
    if value is not None:
      out[field] = int(value)
  return out


def _max_abs_diff(a, b) -> float:
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _max_abs(tree) -> float:
  return max(float(np.max(np.abs(np.asarray(x, np.float64)))) for x in jax.tree.leaves(tree))


def _num_params(tree) -> int:
  return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


def run_benchmark(
    *,
    modes: Sequence[str] = unroll.MODES,
    horizons: Sequence[int] = (1, 2, 4, 8),
    layer_sizes: Sequence[int] = (64, 512, 512, 10),
    rater_hidden: Sequence[int] = (64,),
    batch_size: int = 128,
    meta_batch_size: int = 128,
    learning_rate: float = 1e-3,
    warmup_steps: int = 10,
    repeats: int = 5,
    seed: int = 0,
    compiler_options: Optional[Dict[str, Any]] = None,
    log: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
  """Compiles, runs and times every (mode, T); see the module docstring.

  Args:
    modes: meta-gradient modes of `unroll.MODES`; must include 'reverse'.
    horizons: unroll lengths T.
    layer_sizes: inner MLP sizes (input dim, hidden widths..., classes).
    rater_hidden: hidden widths of the MLP rater.
    batch_size: inner batch size B (the softmax weights are over B).
    meta_batch_size: size of the held-out batch of the outer loss.
    learning_rate: inner Adam learning rate (eps_root=1e-8).
    warmup_steps: plain Adam steps taken before the unrolled window (see
      `make_problem`).
    repeats: timed calls per (mode, T), after one warm-up call.
    seed: seeds data, inner model and rater initialisation.
    compiler_options: passed to `jax.jit` (e.g. to speed up compiles in tests).
    log: optional progress callback (one line per event).

  Returns:
    JSON-serialisable dict: 'setup' (problem, machine and versions),
    'results' (one row per (mode, T), in input order: compile seconds,
    memory fields, step times, meta loss, gradient differences, and ratios to
    'reverse' at the same T).

  Raises:
    ValueError: on malformed arguments.
  """
  modes, horizons = tuple(modes), tuple(int(t) for t in horizons)
  _check_args(modes, horizons, layer_sizes, rater_hidden, batch_size, meta_batch_size, repeats,
              warmup_steps)
  log = log or (lambda _: None)
  prob = make_problem(layer_sizes, rater_hidden, batch_size, meta_batch_size, max(horizons),
                      learning_rate, seed, warmup_steps, compiler_options)
  load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None

  # Compile everything first, recording compile time and memory; then one
  # warm-up call per program (its output is the gradient compared below).
  programs, rows = {}, {}
  for t in horizons:
    train_t = jax.tree.map(lambda x: x[:t], prob['train'])
    args = (prob['eta'], prob['params'], prob['opt_state'], train_t, prob['meta'])
    for mode in modes:
      fn = functools.partial(unroll.meta_loss_and_grad, inner_loss_fn=prob['inner_loss_fn'],
                             outer_loss_fn=prob['outer_loss_fn'], optimizer=prob['optimizer'],
                             mode=mode)
      jitted = jax.jit(lambda *a, fn=fn: fn(*a)[:2], compiler_options=compiler_options)
      t0 = time.perf_counter()
      lowered = jitted.lower(*args)
      t1 = time.perf_counter()
      compiled = lowered.compile()
      t2 = time.perf_counter()
      loss, grad = jax.block_until_ready(compiled(*args))
      programs[mode, t] = (compiled, args)
      rows[mode, t] = dict(mode=mode, T=t, lower_s=t1 - t0, compile_s=t2 - t1,
                           memory=_memory(compiled), meta_loss=float(loss), grad=grad)
      log(f'compiled mode={mode} T={t}: {t2 - t0:.2f}s, '
          f'temp {rows[mode, t]["memory"].get("temp_size_in_bytes", -1) / 2**20:.2f} MiB')

  # Round-robin timing: repeat r times every program once.
  times = {key: [] for key in programs}
  for r in range(repeats):
    for key, (compiled, args) in programs.items():
      t0 = time.perf_counter()
      jax.block_until_ready(compiled(*args))
      times[key].append(time.perf_counter() - t0)
    log(f'timed repeat {r + 1}/{repeats}')

  results = []
  for t in horizons:
    ref = rows['reverse', t]
    ref_time = statistics.median(times['reverse', t])
    for mode in modes:
      row = rows[mode, t]
      row['step_times_s'] = times[mode, t]
      row['step_s'] = statistics.median(times[mode, t])
      row['grad_max_abs_diff_vs_reverse'] = _max_abs_diff(row['grad'], ref['grad'])
      row['grad_max_abs_reverse'] = _max_abs(ref['grad'])
      row['meta_loss_abs_diff_vs_reverse'] = abs(row['meta_loss'] - ref['meta_loss'])
      row['exact'] = mode in unroll.EXACT_MODES
      ratios = {'step_time': row['step_s'] / ref_time,
                'compile_time': (row['lower_s'] + row['compile_s'])
                                / (ref['lower_s'] + ref['compile_s'])}
      if ref['memory'].get('temp_size_in_bytes') and 'temp_size_in_bytes' in row['memory']:
        ratios['temp_size'] = (row['memory']['temp_size_in_bytes']
                               / ref['memory']['temp_size_in_bytes'])
      row['ratio_to_reverse'] = ratios
      results.append(row)
  for row in results:
    del row['grad']

  device = jax.devices()[0]
  setup = dict(
      problem=dict(layer_sizes=[int(s) for s in layer_sizes],
                   rater_hidden=[int(h) for h in rater_hidden], batch_size=batch_size,
                   meta_batch_size=meta_batch_size, learning_rate=learning_rate,
                   optimizer='adam(eps_root=1e-8)', warmup_steps=warmup_steps, seed=seed,
                   inner_params=_num_params(prob['params']),
                   rater_params=_num_params(prob['eta']),
                   inner_loss='sum_B softmax_B(rater(x, y)) * CE', outer_loss='mean CE'),
      modes=list(modes), horizons=list(horizons), repeats=repeats,
      compiler_options=dict(compiler_options or {}), xla_flags=os.environ.get('XLA_FLAGS', ''),
      jax_version=jax.__version__, backend=jax.default_backend(),
      device=f'{device.platform}:{device.device_kind}', num_devices=jax.device_count(),
      cpu_count=os.cpu_count(), python=platform.python_version(),
      machine=platform.machine(),
      load_average_before=list(load_before) if load_before else None,
      load_average_after=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None,
      dtype=str(jnp.asarray(1.0).dtype))
  return dict(setup=setup, results=results)


def _row(result, mode, t):
  for row in result['results']:
    if row['mode'] == mode and row['T'] == t:
      return row
  return None


def _load(setup):
  before = setup.get('load_average_before')
  return f'{before[0]:.1f}' if before else 'n/a'


def format_table(result: Dict[str, Any]) -> str:
  """A fixed-width text table of `run_benchmark`'s result, one line per (mode, T)."""
  s = result['setup']
  p = s['problem']
  head = (f"meta-gradient modes: MLP {'-'.join(map(str, p['layer_sizes']))} "
          f"({p['inner_params']} params), rater MLP hidden {p['rater_hidden']} "
          f"({p['rater_params']} params), B={p['batch_size']}, meta B={p['meta_batch_size']}, "
          f"{p['optimizer']} lr={p['learning_rate']}; {s['device']}, jax {s['jax_version']}, "
          f"{s['cpu_count']} cpus (load avg {_load(s)}), {s['repeats']} timed repeats (median), "
          f"{s['dtype']}")
  cols = ('mode', 'T', 'compile s', 'compile x', 'temp MiB', 'temp x', 'step ms', 'step x',
          'max|dg| vs rev', 'max|g|')
  lines = [head, '  '.join(f'{c:>14}' if i > 1 else f'{c:>11}' for i, c in enumerate(cols))]
  for row in result['results']:
    r = row['ratio_to_reverse']
    temp = row['memory'].get('temp_size_in_bytes')
    vals = (row['mode'], row['T'], f"{row['lower_s'] + row['compile_s']:.2f}",
            f"{r['compile_time']:.2f}",
            f'{temp / 2**20:.2f}' if temp is not None else 'n/a',
            f"{r['temp_size']:.3f}" if 'temp_size' in r else 'n/a',
            f"{row['step_s'] * 1e3:.1f}", f"{r['step_time']:.2f}",
            f"{row['grad_max_abs_diff_vs_reverse']:.2e}", f"{row['grad_max_abs_reverse']:.2e}")
    lines.append('  '.join(f'{v:>14}' if i > 1 else f'{v:>11}' for i, v in enumerate(vals)))
  lines.append("x = ratio to 'reverse' at the same T; temp = XLA temp_size_in_bytes of the "
               "compiled program; step = median wall time of one meta-gradient call.")
  return '\n'.join(lines)


def evaluate_checks(result: Dict[str, Any], *, grad_rtol: float = 1e-4,
                    time_slack: float = 1.25) -> List[Dict[str, Any]]:
  """Targets as PASS/FAIL records (not assertions): [{'name', 'passed', 'detail'}].

  * every exact mode's meta-gradient equals 'reverse' to float rounding:
    max |g - g_reverse| <= grad_rtol * max |g_reverse|, at every T;
  * at the largest T, 'remat' and 'mixed' need less temp memory than 'reverse';
  * temp memory per extra unrolled step (slope from the smallest to the largest
    T) is smaller for 'remat' and 'mixed' than for 'reverse';
  * at the largest T, 'mixed' is at most `time_slack` x slower than 'reverse'
    (it recomputes each step's forward pass; MixFlow-MG reports no slow-down);
  * at the largest T, 'first_order' is faster than 'reverse'.
  Checks whose modes were not run are skipped.
  """
  modes, horizons = result['setup']['modes'], result['setup']['horizons']
  t_lo, t_hi = min(horizons), max(horizons)
  checks = []

  def add(name, passed, detail):
    checks.append(dict(name=name, passed=bool(passed), detail=detail))

  for mode in modes:
    if mode == 'reverse' or mode not in unroll.EXACT_MODES:
      continue
    worst = max((_row(result, mode, t) for t in horizons),
                key=lambda r: r['grad_max_abs_diff_vs_reverse'] / max(r['grad_max_abs_reverse'],
                                                                      1e-30))
    diff, scale = worst['grad_max_abs_diff_vs_reverse'], worst['grad_max_abs_reverse']
    add(f'{mode} meta-gradient equals reverse (max abs diff <= {grad_rtol:g} x max|g|, all T)',
        diff <= grad_rtol * scale, f'worst T={worst["T"]}: {diff:.2e} vs max|g| {scale:.2e}')

  def temp(mode, t):
    return _row(result, mode, t)['memory'].get('temp_size_in_bytes')

  rev_hi = temp('reverse', t_hi)
  for mode in ('remat', 'mixed'):
    if mode not in modes or rev_hi is None:
      continue
    m_hi = temp(mode, t_hi)
    add(f'{mode} uses less temp memory than reverse at T={t_hi}', m_hi < rev_hi,
        f'{m_hi / 2**20:.2f} MiB vs {rev_hi / 2**20:.2f} MiB (x{m_hi / rev_hi:.3f})')
    if t_hi > t_lo:
      slope = (m_hi - temp(mode, t_lo)) / (t_hi - t_lo)
      rev_slope = (rev_hi - temp('reverse', t_lo)) / (t_hi - t_lo)
      add(f'{mode} temp memory per extra unrolled step is below reverse\'s (T={t_lo}..{t_hi})',
          slope < rev_slope, f'{slope / 2**20:.3f} vs {rev_slope / 2**20:.3f} MiB/step')
  if 'mixed' in modes:
    x = _row(result, 'mixed', t_hi)['ratio_to_reverse']['step_time']
    add(f'mixed step time <= {time_slack:g} x reverse at T={t_hi}', x <= time_slack, f'x{x:.2f}')
  if 'first_order' in modes:
    x = _row(result, 'first_order', t_hi)['ratio_to_reverse']['step_time']
    add(f'first_order step time < reverse at T={t_hi}', x < 1.0, f'x{x:.2f}')
  return checks


def format_checks(checks: List[Dict[str, Any]]) -> str:
  return '\n'.join(f"{'PASS' if c['passed'] else 'FAIL'}: {c['name']} ({c['detail']})"
                   for c in checks)


def plot_memory(result: Dict[str, Any], path: str) -> None:
  """PNG: temp memory (MiB) and step-time ratio to 'reverse' vs T, one line per mode."""
  from datarater.train import plots  # noqa: F401  (selects matplotlib's Agg backend)
  import matplotlib.pyplot as plt

  fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(10, 3.8))
  for mode in result['setup']['modes']:
    rows = [r for r in result['results'] if r['mode'] == mode]
    ts = [r['T'] for r in rows]
    ax_mem.plot(ts, [r['memory'].get('temp_size_in_bytes', np.nan) / 2**20 for r in rows],
                marker='o', label=mode)
    ax_time.plot(ts, [r['ratio_to_reverse']['step_time'] for r in rows], marker='o', label=mode)
  p = result['setup']['problem']
  for ax in (ax_mem, ax_time):
    ax.set_xscale('log', base=2)
    ax.set_xlabel('T (unrolled inner steps)')
    ax.grid(alpha=0.3)
  ax_mem.set_ylabel('XLA temp memory (MiB)')
  ax_mem.set_title(f"MLP {'-'.join(map(str, p['layer_sizes']))}, B={p['batch_size']}")
  ax_time.set_ylabel("step time / reverse's")
  ax_time.set_title(f"median of {result['setup']['repeats']}, {result['setup']['device']}")
  ax_mem.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _ints(name, values):
  try:
    return [int(v) for v in values]
  except ValueError:
    raise app.UsageError(f'--{name} must be a comma-separated list of ints, got {values}',
                         exitcode=2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    result = run_benchmark(
        modes=_MODES.value, horizons=_ints('horizons', _HORIZONS.value),
        layer_sizes=_ints('layer_sizes', _LAYERS.value),
        rater_hidden=_ints('rater_hidden', _RATER.value), batch_size=_BATCH.value,
        meta_batch_size=_META_BATCH.value, learning_rate=_LR.value,
        warmup_steps=_WARMUP.value, repeats=_REPEATS.value, seed=_SEED.value,
        log=lambda line: print(line, flush=True))
  except ValueError as e:
    raise app.UsageError(str(e), exitcode=2)
  result['checks'] = evaluate_checks(result, grad_rtol=_GRAD_RTOL.value,
                                     time_slack=_TIME_SLACK.value)
  print(format_table(result))
  print(format_checks(result['checks']))
  for path in (_OUT.value, _PLOT.value):
    if path and os.path.dirname(path):
      os.makedirs(os.path.dirname(path), exist_ok=True)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(result, f, indent=1)
    print(f'wrote {_OUT.value}')
  if _PLOT.value:
    plot_memory(result, _PLOT.value)
    print(f'wrote {_PLOT.value}')


if __name__ == '__main__':
  app.run(main)
