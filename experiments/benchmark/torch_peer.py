"""The PyTorch peers: the one-step L2RW meta-gradient and an end-to-end L2RW run in torch.func.

Imports torch at the top: only `core.run_benchmark(peers=True)` (the CLI's
--peers) imports this module, so a benchmark run that does not ask for the
peers never imports torch. Needs `pip install -r requirements-bench.txt`.

* step: the one-step L2RW meta-gradient (SGD look-ahead, d meta loss / d
  per-example weights at zero) in `torch.func` vs ours (`l2rw.l2rw_scores`)
  on an MLP 64-hidden-hidden-10, timed in alternating blocks.
* end to end: our L2RW run (`experiments.train`, `configs/l2rw.py` on the
  noisy-digits npz of `time_to_result.write_noisy_digits`, with a warm
  compilation cache) vs `torch_l2rw_run` (same model, batch, optimizer and
  evaluation cadence), as whole processes run in alternating pairs; called by
  the time-to-result section.
"""

from __future__ import annotations

import functools
import inspect
import os
import statistics
import sys
from typing import Any, Callable, Dict, List, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from torch.func import functional_call, grad

from datarater.meta import l2rw
from datarater.models.mlp import MLP
from experiments.benchmark import time_to_result, timing


def _torch_l2rw_grad(hidden: int, batch_size: int, seed: int) -> Callable[[], Any]:
  """A zero-argument call of the one-step L2RW meta-gradient in torch.func."""
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
  return lambda: meta_grad(torch.zeros(batch_size))


def _jax_l2rw_grad(hidden: int, batch_size: int, seed: int) -> Callable[[], Any]:
  """A zero-argument call of our compiled one-step L2RW meta-gradient (`l2rw.l2rw_scores`)."""
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
  compiled, _ = timing.compile_timed(scores, params, batch, meta)
  return lambda: compiled(params, batch, meta)


def bench_peer_step(hiddens: Sequence[int], batch_size: int, repeats: int) -> List[Dict]:
  """One-step L2RW meta-gradient: torch.func seconds / ours, per hidden width."""
  torch.set_num_threads(os.cpu_count())
  rows = []
  for hidden in hiddens:
    ours, theirs = _jax_l2rw_grad(hidden, batch_size, 0), _torch_l2rw_grad(hidden, batch_size, 0)
    ours_s, torch_s = timing.paired_times(ours, theirs, repeats)
    rows.append(dict(hidden=hidden, batch_size=batch_size, ours_s=ours_s, torch_s=torch_s,
                     speedup=torch_s / ours_s))
  return rows


def torch_l2rw_run(path: str, steps: int, batch_size: int, hidden: int, lr: float,
                   lookahead_lr: float, eval_every: int, seed: int) -> None:
  """The PyTorch peer of `configs/l2rw.py` on an npz, run as its own process (`python -c`).

  Same model (MLP 64-hidden-hidden-C, ReLU), batch, Adam(lr), L2RW weights from
  a one-step SGD look-ahead with torch.func, evaluation of the meta and test
  splits every `eval_every` steps and at the end. Prints the final test accuracy.
  Its source is sent to the process whole (`inspect.getsource`), so it makes
  its own imports.
  """
  import os
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


def bench_end_to_end(pairs: int, steps: int, log: Callable[[str], None], npz: str,
                     ours: Callable[[int], List[str]], env: Dict[str, str]) -> Dict[str, Any]:
  """Whole-process wall seconds of our L2RW run (`ours(i)`: its command line) and the torch
  peer on the same npz, in alternating pairs."""
  source = (inspect.getsource(torch_l2rw_run) +
            f'\ntorch_l2rw_run({npz!r}, {steps}, 64, 256, 1e-3, 1e-3, 100, 0)\n')
  rows = []
  for i in range(pairs):
    times = {who: time_to_result.process_seconds(cmd, env)
             for who, cmd in (('ours', ours(i)), ('torch', [sys.executable, '-c', source]))}
    rows.append(dict(ours_s=times['ours'], torch_s=times['torch'],
                     speedup=times['torch'] / times['ours']))
    log(f"end-to-end pair {i + 1}: ours {times['ours']:.1f}s, torch {times['torch']:.1f}s")
  return dict(steps=steps, batch_size=64, hidden=256, pairs=rows,
              median_speedup=statistics.median(r['speedup'] for r in rows))
