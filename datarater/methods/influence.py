"""Influence functions (method 'influence'; config: configs/influence.py).

Koh & Liang, "Understanding Black-box Predictions via Influence Functions",
ICML 2017; math and its approximations in datarater/valuation/influence.py.
Phase 'score' trains the model uniformly for `method.score_steps` steps; at
the trained parameters w, with H the Hessian of the mean training loss over
the training rows (all of them, or `method.hessian_rows` drawn with the seed;
summed in chunks of config.eval_batch_size) on the output layer's parameters
(`method.params='last'`, the rest held fixed; 'all' for every parameter):

  s = (H + damping I)^{-1} grad L_meta(w)      (conjugate gradient on Hessian-vector
                                                products, `method.cg_maxiter`, `method.cg_tol`)
  I(z_i) = -s . grad l(w, z_i)                  (d L_meta / d eps when z_i is up-weighted)

L_meta is the mean loss over the meta split (`dataset.meta`: information='meta
rows'). I > 0 = up-weighting the row raises the validation loss (harmful), so
scores_train.npy holds -I (higher = more valuable, as Shapley and TracIn
values are already) and raw_scores_train.npy I itself. summary.json adds
`valuation_seconds` / `valuation_flops` (CG's while loop, of data-dependent
length, counted once: a lower bound) and `influence` {damping, params,
hessian_rows, the final CG relative residual ||(H + damping I) s - g|| / ||g||}.
With `method.discard_fraction` > 0 the scores drive the shared filtered
retraining (datarater/methods/_filter.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from datarater.errors import is_number, require
from datarater.methods import _filter, _valuation
from datarater.train.evaluation import map_split
from datarater.valuation import influence as inf
from datarater.valuation import tracin as tr

DECLARES = dict(family='scorer', label='influence functions', scores=True,
                information='meta rows')

PARAMS = ('last', 'all')
# The Hessian's rows when method.hessian_rows > 0: numpy stream of this offset from the seed.
HESSIAN_STREAM = 104729


def hessian_rows(config, num_rows: int) -> np.ndarray:
  """The training rows of the Hessian: all, or method.hessian_rows of them drawn with the seed."""
  k = config.method.hessian_rows
  if not k or k >= num_rows:
    return np.arange(num_rows)
  return np.sort(np.random.default_rng([int(config.seed), HESSIAN_STREAM]).choice(
      num_rows, k, replace=False))


def chunked_mean_loss(loss, xs, ys, ws):
  """params -> sum_i w_i l(params, x_i, y_i) / sum_i w_i over chunks [K, b, ...] (lax.scan: memory
  of one chunk); w = 0 on padding rows."""
  def mean_loss(params):
    def body(total, chunk):
      x, y, w = chunk
      return total + jnp.sum(w * jax.vmap(loss, in_axes=(None, 0, 0))(params, x, y)), None
    return jax.lax.scan(body, 0.0, (xs, ys, ws))[0] / jnp.sum(ws)
  return mean_loss


def chunks(split, rows: np.ndarray, size: int):
  """(x [K, size, ...], y [K, size, ...], w [K, size]) of the rows, padded with row 0 at w = 0."""
  k = -(-len(rows) // size)
  idx = np.zeros(k * size, int)
  idx[:len(rows)] = rows
  w = np.zeros(k * size, np.float32)
  w[:len(rows)] = 1.0
  shape = lambda a: a.reshape((k, size) + a.shape[1:])  # noqa: E731
  return shape(split.x[idx]), shape(split.y[idx]), shape(w)


def make(config, task, dataset):
  """The scoring phase, with the filtered retraining when rho > 0."""
  m = config.method
  _valuation.check_steps(config)
  _valuation.check_meta(config, dataset)
  require(m.params in PARAMS, 'method.params', f'one of {PARAMS}', m.params)
  require(is_number(m.damping) and m.damping >= 0, 'method.damping', 'a number >= 0', m.damping)
  require(isinstance(m.cg_maxiter, int) and m.cg_maxiter >= 1, 'method.cg_maxiter',
          'an int >= 1', m.cg_maxiter)
  require(is_number(m.cg_tol) and m.cg_tol > 0, 'method.cg_tol', 'a number > 0', m.cg_tol)
  require(isinstance(m.hessian_rows, int) and m.hessian_rows >= 0, 'method.hessian_rows',
          'an int >= 0 (0 = all training rows)', m.hessian_rows)
  n = dataset.train.size
  loss = _valuation.example_loss(task)
  damping, maxiter, tol = float(m.damping), m.cg_maxiter, float(m.cg_tol)

  def score_fn(ctx, train_state, state):
    del state
    cost = _valuation.Cost()
    params = train_state.params
    selector = (tr.subtree(_valuation.output_path(task, params)) if m.params == 'last'
                else tr.all_params)
    hx, hy, hw = chunks(ctx.dataset.train, hessian_rows(config, n), config.eval_batch_size)
    meta = ctx.dataset.meta

    def solve(params, hx, hy, hw, vx, vy):
      train_loss = chunked_mean_loss(loss, hx, hy, hw)
      g = tr.mean_grad(loss, params, vx, vy, selector)
      s = inf.inverse_hvp(train_loss, params, g, selector=selector, damping=damping,
                          maxiter=maxiter, tol=tol)
      subset, merge = selector(params)
      hs = inf.hvp(lambda q: train_loss(merge(q)), subset, s)
      residual = jax.tree.map(lambda a, b, c: a + damping * b - c, hs, s, g)
      return s, jnp.sqrt(tr.tree_dot(residual, residual) / tr.tree_dot(g, g))

    s, residual = cost.wrap(solve)(params, hx, hy, hw, jnp.asarray(meta.x), jnp.asarray(meta.y))
    fn = cost.wrap(lambda p, s, bt: inf.influence_from_ihvp(loss, p, s, bt['x'], bt['y'],
                                                            selector))
    values = np.asarray(map_split(lambda bt: fn(params, s, bt), ctx.dataset.train, ctx,
                                  batch_size=config.batch_size))
    residual = float(residual)
    print(f'[influence] CG relative residual {residual:.2e}', flush=True)
    return -values, np.ones(n, bool), {**cost.info(), 'influence': {
        'damping': damping, 'params': m.params, 'hessian_rows': int(hw.sum()),
        'cg_relative_residual': residual}}

  # I > 0 = harmful: scores_train.npy holds -I, raw_scores_train.npy I.
  return _filter.scorer_pipeline(config, task, dataset, _valuation.scoring_phase(
      config, task, dataset), score_fn, 'influence on the meta loss', raw='influence')
