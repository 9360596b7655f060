"""TracIn (method 'tracin'; config: configs/tracin.py).

Pruthi et al., "Estimating Training Data Influence by Tracing Gradient
Descent", NeurIPS 2020; math in datarater/valuation/tracin.py. Phase 'score'
trains the model uniformly for `method.score_steps` steps and keeps
`method.num_checkpoints` snapshots of its parameters, evenly spaced (after
steps round(c S / C), c = 1..C: the last is the final model), each with the
learning rate of the update that produced it (the optimizer's schedule).
Every training row's value is TracInCP against the meta split (`dataset.meta`:
information='meta rows'):

  sum_c eta_c  grad l(w_c, z_i) . mean_m grad l(w_c, z'_m),

with gradients over the output layer's parameters (`method.params='last'`,
the paper's TracIn-last; the layer is found by intercepting the model's last
nn.Dense, datarater/methods/_valuation.py) or all of them ('all'). With Adam
(the default optimizer here) eta_c grad . grad is the paper's first-order
approximation, not the loss change of an Adam step. TracIn values are already
'higher = more valuable' (a proponent of the validation rows: a step on it
lowered their loss); scores_train.npy holds them as they are. The snapshots
live in the phase's method state (C copies of the parameters, checkpointed
with it). summary.json adds `valuation_seconds` / `valuation_flops`
(validation and per-example gradients) and `tracin` {checkpoint steps, their
learning rates, params}. With `method.discard_fraction` > 0 the scores drive
the shared filtered retraining (datarater/methods/_filter.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from datarater.errors import require
from datarater.methods import _filter, _valuation
from datarater.train.evaluation import map_split
from datarater.train.state import Method, weighted_update
from datarater.train.task import make_schedule
from datarater.valuation import tracin as tr

DECLARES = dict(family='scorer', label='TracIn', scores=True, information='meta rows')

PARAMS = ('last', 'all')


def checkpoint_steps(score_steps: int, num_checkpoints: int) -> np.ndarray:
  """The training steps after which the snapshots are kept: round(c S / C), c = 1..C."""
  return np.round(np.arange(1, num_checkpoints + 1) * score_steps / num_checkpoints).astype(int)


def snapshot_method(config, task, steps: np.ndarray) -> Method:
  """Uniform training whose state holds a copy of the parameters after each of `steps`."""
  ckpt = jnp.asarray(steps, jnp.int32)

  def init(key, train_state):
    del key
    return jax.tree.map(lambda p: jnp.zeros((len(steps),) + p.shape, p.dtype), train_state.params)

  def step(train_state, snapshots, batch, key):
    del key
    uniform = lambda losses: jnp.full_like(losses, 1 / losses.shape[0])  # noqa: E731
    train_state, metrics = weighted_update(task, train_state, batch, uniform)
    hit = ckpt == train_state.step  # [C]: the slot(s) this step fills
    snapshots = jax.tree.map(
        lambda s, p: jnp.where(hit.reshape((-1,) + (1,) * p.ndim), p[None], s),
        snapshots, train_state.params)
    return train_state, snapshots, metrics

  return Method(init=init, step=step, train_batch_size=config.batch_size)


def make(config, task, dataset):
  """The snapshotting phase, with the filtered retraining when rho > 0."""
  m = config.method
  _valuation.check_steps(config, minimum=1)
  _valuation.check_meta(config, dataset)
  require(isinstance(m.num_checkpoints, int) and 1 <= m.num_checkpoints <= m.score_steps,
          'method.num_checkpoints', f'an int in [1, method.score_steps={m.score_steps}]',
          m.num_checkpoints)
  require(m.params in PARAMS, 'method.params', f'one of {PARAMS}', m.params)
  steps = checkpoint_steps(m.score_steps, m.num_checkpoints)
  schedule = make_schedule(config.optimizer, config.num_steps)  # the task optimizer's schedule
  lrs = [float(schedule(s - 1)) for s in steps]  # the step that produced snapshot s used lr(s - 1)
  loss = _valuation.example_loss(task)

  def score_fn(ctx, train_state, snapshots):
    cost = _valuation.Cost()
    snaps = [jax.tree.map(lambda a, c=c: a[c], snapshots) for c in range(len(steps))]
    selector = (tr.subtree(_valuation.output_path(task, train_state.params))
                if m.params == 'last' else tr.all_params)
    meta = ctx.dataset.meta
    val_grad = cost.wrap(lambda p, x, y: tr.mean_grad(loss, p, x, y, selector))
    val_grads = [val_grad(p, jnp.asarray(meta.x), jnp.asarray(meta.y)) for p in snaps]
    checkpoints = list(zip(snaps, lrs))
    fn = cost.wrap(lambda ck, vg, bt: tr.tracin_from_val_grads(loss, ck, vg, bt['x'], bt['y'],
                                                               selector))
    values = np.asarray(map_split(lambda bt: fn(checkpoints, val_grads, bt), ctx.dataset.train,
                                  ctx, batch_size=config.batch_size))
    return values, np.ones(dataset.train.size, bool), {
        **cost.info(), 'tracin': {'checkpoint_steps': steps.tolist(), 'learning_rates': lrs,
                                  'params': m.params}}

  return _filter.scorer_pipeline(config, task, dataset, _valuation.scoring_phase(
      config, task, dataset, snapshot_method(config, task, steps)), score_fn, 'TracIn')
