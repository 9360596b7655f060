"""Shared plumbing of the closed-form, loss-based weighting methods.

The math lives in `dro.py`, `loss_reweight.py`, `group_dro.py`, `doremi.py`
and `infobatch.py`; the method modules (`*_method.py`, one per registered
method) wire it into the loop with the pieces here:

* `make_per_example_method`: a Method from a rule `(losses, step) ->
  (weights, metrics)` computed under stop_gradient on the global batch. It
  keeps a per-example table of the latest training loss (written as
  `scores_train.npy`), logs the weights' ESS / max / support size and the
  share of weight each source gets (`train/source_weight_mass`, plotted).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from datarater.train import plots, scoring
from datarater.train import state as state_lib
from datarater.train.state import Method


def source_mass(weights, sources, num_sources: int):
  """Share of the batch's total weight that falls on each source, [K] summing to one."""
  mass = jax.ops.segment_sum(weights, sources, num_segments=num_sources)
  return mass / jnp.maximum(mass.sum(), 1e-12)


def write_scores(ctx, scores: np.ndarray, title: str) -> dict:
  """`scoring.report_scores` of a latest-loss table (NaN = never trained on; high = corrupted)."""
  scores = np.asarray(jax.device_get(scores), np.float64)
  return scoring.report_scores(ctx, np.nan_to_num(scores), title, seen=np.isfinite(scores),
                               higher_is_corrupted=True)


def plot_source_curve(ctx, key: str, filename: str, title: str, ylabel: str = 'weight'):
  """Plots a logged per-source vector metric over steps into plots/<filename>."""
  plots.vector_curves(ctx.run.read_metrics(), key, list(ctx.dataset.info.source_names),
                      ctx.run.file('plots', filename), title, ylabel)


class LossTable(NamedTuple):
  """State of a per-example rule.

  loss: [N] latest training loss of each train example (NaN until first trained on).
  mass_sum: [K] sum over steps of the per-source weight share.
  steps: int32 number of steps taken.
  """
  loss: jax.Array
  mass_sum: jax.Array
  steps: jax.Array


def make_per_example_method(config, task, dataset, rule: Callable, title: str) -> Method:
  """A Method that weights each batch by `rule` and keeps a latest-loss table.

  Args:
    config: the run config (uses batch_size).
    task: the Task.
    dataset: the Dataset (train size and number of sources).
    rule: (losses [B], step int32 scalar) -> (weights [B] summing to one,
      dict of extra scalar metrics). Called under jit on stop-gradient losses
      of the global batch (reductions inside are global across devices).
    title: method name for plot titles.

  Returns:
    Method with `finalize` writing scores_train.npy (latest loss per train
    example; examples never drawn get the mean of the others), the plot
    plots/source_weight_mass.png and summary extras `source_weight_mass`
    (per-source share of the weight, averaged over all steps) and those of
    `datarater.train.scoring.report_scores`.
  """
  n, k = dataset.train.size, dataset.info.num_sources

  def init(key, train_state):
    del key, train_state
    return LossTable(jnp.full((n,), jnp.nan, jnp.float32), jnp.zeros((k,), jnp.float32),
                     jnp.zeros((), jnp.int32))

  def step(train_state, state, batch, key):
    del key
    train_state_new, metrics, losses, weights, extra = state_lib.weighted_step(
        task, train_state, batch, lambda losses: rule(losses, train_state.step))
    mass = source_mass(weights, batch['source'], k)
    metrics.update(extra)
    metrics['train/source_weight_mass'] = mass
    state = LossTable(state.loss.at[batch['index']].set(losses.astype(jnp.float32)),
                      state.mass_sum + mass, state.steps + 1)
    return train_state_new, state, metrics

  def finalize(ctx, train_state, state):
    state = jax.device_get(state)
    plot_source_curve(ctx, 'train/source_weight_mass', 'source_weight_mass.png',
                      f'{title}: share of batch weight per source', 'weight share')
    out = write_scores(ctx, state.loss, f'{title}: latest training loss')
    out['source_weight_mass'] = (state.mass_sum / max(int(state.steps), 1)).tolist()
    return out

  return Method(init=init, step=step, train_batch_size=config.batch_size, finalize=finalize)
