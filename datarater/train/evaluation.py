"""Evaluation over whole splits, sharded over the `data` axis.

`map_split` applies any jitted per-example function to every example of a
split (methods use it to score the training set); `evaluate` reports loss,
accuracy and per-source loss on the meta, valid and test splits (the loop
calls it every config.eval_every steps; an empty valid split,
config.data.valid_size = 0, is left out).
"""

from __future__ import annotations

import collections

import jax
import numpy as np

from datarater.data import sampler
from datarater.data.core import NO_SOURCE, Split
from datarater.train import sharding
from datarater.train.context import Context


IN_FLIGHT = 8  # batches whose results may wait on the devices while map_split_async dispatches


def map_split_async(fn, split: Split, ctx: Context, batch_size: int | None = None,
                    mark_padding: bool = False):
  """Dispatches a jitted per-example fn(batch) -> pytree of [B] arrays over a whole split and
  returns `fetch()`, which brings the results to the host (see `map_split`).

  The arrays `fn` reads may be donated once this returns (the dispatched programs hold them).
  At most IN_FLIGHT batches' results wait on the devices: a longer split fetches its earlier
  batches while it dispatches the later ones.
  """
  bs = batch_size or ctx.config.eval_batch_size
  n = split.size
  rows = sharding.local_rows(ctx.mesh, bs)
  fetched, waiting = [], collections.deque()
  for start in range(0, n, bs):
    idx = np.arange(start, start + bs)[rows]
    batch = sampler.gather(split, np.where(idx < n, idx, 0))
    if mark_padding:
      batch['real'] = idx < n
    waiting.append(fn(sharding.put_batch(batch, ctx.mesh)))
    if len(waiting) > IN_FLIGHT:
      fetched.append(sharding.to_host(waiting.popleft(), ctx.mesh))

  def fetch():
    outs = fetched + [sharding.to_host(out, ctx.mesh) for out in waiting]
    return jax.tree.map(lambda *xs: np.concatenate(xs)[:n], *outs)
  return fetch


def map_split(fn, split: Split, ctx: Context, batch_size: int | None = None,
              mark_padding: bool = False):
  """Applies a jitted per-example fn(batch) -> pytree of [B] arrays over a whole split.

  The split is padded to a multiple of the batch size (with copies of row 0) and sharded
  over `data` (each process gathers its rows); results come back as host numpy arrays of
  length split.size, in every process. With `mark_padding`, each batch also holds
  'real': bool [B], False on the padding rows (for functions whose per-row output depends
  on the other rows of the batch, e.g. ranks within the batch).
  """
  return map_split_async(fn, split, ctx, batch_size, mark_padding)()


def make_eval_fn(task):
  return jax.jit(lambda params, batch: (task.per_example_loss(params, batch),
                                        task.per_example_correct(params, batch)))


def evaluate(task, params, ctx: Context, eval_fn=None, test: bool = True) -> dict:
  """Loss, accuracy and per-source loss on the meta, valid (when not empty) and test splits
  (the test split only with `test`: config.eval_test='last' leaves it to the last step).

  `<split>/source_loss` is None when the split's rows carry no real source
  (NO_SOURCE: the test rows of presets whose sources are random partitions).
  """
  return evaluate_async(task, params, ctx, eval_fn, test)()


def evaluate_async(task, params, ctx: Context, eval_fn=None, test: bool = True):
  """Dispatches `evaluate` and returns the function that fetches its metrics; `params` may
  be donated once this returns (the training loop's next dispatch runs meanwhile)."""
  eval_fn = eval_fn or make_eval_fn(task)
  fetches = {}
  for name in ('meta', 'valid', 'test') if test else ('meta', 'valid'):
    split = getattr(ctx.dataset, name)
    if split.size:
      fetches[name] = (split, map_split_async(lambda b: eval_fn(params, b), split, ctx))

  def metrics() -> dict:
    out = {}
    for name, (split, fetch) in fetches.items():
      loss, correct = fetch()
      out[f'{name}/loss'] = float(loss.mean())
      out[f'{name}/accuracy'] = float(correct.mean())
      out[f'{name}/source_loss'] = None
      if not (split.source == NO_SOURCE).any():
        k = ctx.dataset.info.num_sources
        counts = np.bincount(split.source, minlength=k)
        sums = np.bincount(split.source, weights=loss, minlength=k)
        out[f'{name}/source_loss'] = [float(s / c) if c else float('nan')
                                      for s, c in zip(sums, counts)]
    return out
  return metrics
