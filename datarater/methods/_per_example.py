"""Shared plumbing of the closed-form, loss-based weighting methods.

The math lives in `datarater/weighting/` (dro.py, loss_reweight.py); the
method modules (kl_dro, cvar, chi2_dro, loss_reweight) wire it into the loop
with `make_per_example_method`: a Method from a rule `(losses, step) ->
(weights, metrics)` computed under stop_gradient on the global batch. It keeps
a per-example table of the latest training loss (written negated as
`scores_train.npy`, higher = keep, and as is as `raw_scores_train.npy`), logs
the weights' ESS / max / support size and the share of weight each source gets
(`train/source_weight_mass`, plotted).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax

from datarater.report import plots, scoring
from datarater.train import state as state_lib
from datarater.train.state import Method
from datarater.weighting import groups, tables


def plot_source_curve(ctx, key: str, filename: str, title: str, ylabel: str = 'weight'):
  """Plots a logged per-source vector metric over steps into plots/<filename>."""
  plots.vector_curves(ctx.run.read_metrics(), key, list(ctx.dataset.info.source_names),
                      ctx.run.file('plots', filename), title, ylabel)


class RuleState(NamedTuple):
  """State of a per-example rule.

  loss: ExampleTable of the latest training loss of each train example.
  mass: Mean over steps of the per-source share of the batch weight, [K].
  """
  loss: tables.ExampleTable
  mass: tables.Mean


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
    Method with `finalize` writing scores_train.npy (minus the latest loss
    per train example, higher = keep; examples never drawn get the mean of
    the others) and raw_scores_train.npy (the latest loss), the plot
    plots/source_weight_mass.png and summary extras `source_weight_mass`
    (per-source share of the weight, averaged over all steps) and those of
    `datarater.report.scoring.report_scores`.
  """
  n, k = dataset.train.size, dataset.info.num_sources

  def init(key, train_state):
    del key, train_state
    return RuleState(tables.table_init(n), tables.mean_init((k,)))

  def step(train_state, state, batch, key):
    del key
    train_state_new, metrics, losses, weights, extra = state_lib.weighted_step(
        task, train_state, batch, lambda losses: rule(losses, train_state.step))
    mass = groups.group_share(weights, batch['source'], k)
    metrics.update(extra)
    metrics['train/source_weight_mass'] = mass
    state = RuleState(tables.table_record(state.loss, batch['index'], losses),
                      tables.mean_update(state.mass, mass))
    return train_state_new, state, metrics

  def finalize(ctx, train_state, state):
    state = jax.device_get(state)
    plot_source_curve(ctx, 'train/source_weight_mass', 'source_weight_mass.png',
                      f'{title}: share of batch weight per source', 'weight share')
    # A high loss is suspect: scores_train.npy holds the negated loss (higher = keep).
    out = scoring.report_table(ctx, state.loss._replace(value=-state.loss.value),
                               f'{title}: latest training loss', raw='latest training loss')
    out['source_weight_mass'] = tables.mean_value(state.mass).tolist()
    return out

  return Method(init=init, step=step, train_batch_size=config.batch_size, finalize=finalize)
