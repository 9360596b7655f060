"""InfoBatch dynamic data pruning (method 'infobatch'; config: configs/infobatch.py).

Qin et al., "InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data
Pruning", ICLR 2024. Every training example keeps a score, its latest loss
(unseen until first trained on). At the start of epoch e, examples whose score is
below the mean score are pruned at random with probability r; kept below-mean
examples get loss weight 1 / (1 - r), the rest 1 (unbiased in expectation).
Epochs e >= delta * E prune nothing (annealing). The kept examples are
shuffled and cut into fixed-shape batches of `config.batch_size` (the last one
padded with repeated kept examples that get weight 0), so nothing recompiles;
the loss of a batch is sum_i w_i loss_i / b over its b real (unpadded)
examples, b = B except in an epoch's last batch, as a data loader that keeps
the last partial batch would give. Math: datarater/weighting/infobatch.py.

Budget. E = max(1, floor(num_steps / ceil(N / B))) is the number of full-data
epochs that fit into `config.num_steps` steps; InfoBatch trains those E epochs
and, because pruned epochs have fewer batches, finishes in fewer steps. The
loop's remaining step slots are skipped (a `lax.cond` that computes no
gradient and leaves the model unchanged). A skipped slot's train metrics are
0, not NaN (the loop takes a non-finite metric for a diverged step), and its
`infobatch/computed` is 0, so a logged row's `infobatch/computed` is the
fraction of its window's steps that trained. The ledger counts only the steps
that computed a gradient (`wall_seconds` still includes the skipped slots'
host overhead). `gradient_computations_saved` in
summary.json is 1 - (batches computed) / (E ceil(N / B)) over the completed
epochs: the saving against full-data training for the same epochs with the
same fixed-shape batching (0 when no epoch completed).

The epoch plan (order, weights, number kept) lives in the method state and is
recomputed inside the jitted step when an epoch ends; `sample(step, state)`
reads it on the host, so the data order is a pure function of the
checkpointed state and resuming is exact. With a decaying learning-rate
schedule the schedule still spans `num_steps` (not rescaled to the pruned
step count).

Config fields:
  method.prune_ratio  r in [0, 1): pruning probability of below-mean examples (paper: 0.5).
  method.delta        fraction of the E epochs during which to prune, in [0, 1] (paper: 0.875).
Outputs: scores_train.npy (the negated score table, higher = keep; examples
never trained on get the mean of the others), raw_scores_train.npy (the
table), summary `infobatch` {num_epochs, epochs_completed,
steps_computed, full_data_steps, saved_fraction_examples (1 - kept / (N E))}
and `gradient_computations_saved`, plots/kept_fraction.png.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from datarater.errors import require
from datarater.report import plots, scoring
from datarater.train.state import Method, weighted_step
from datarater.weighting import infobatch, tables

DECLARES = dict(family='pruning', label='InfoBatch', scores=True, loss_scores=True)


class State(NamedTuple):
  scores: tables.ExampleTable  # latest loss per example (count 0: never trained on)
  weights: jax.Array         # [N] epoch loss weights: 0 pruned, 1/(1-r) kept below-mean, 1 else
  order: jax.Array           # [N] int32: this epoch's order, kept examples first
  num_kept: jax.Array        # int32: kept examples this epoch
  epoch: jax.Array           # int32: current epoch (E once all epochs are done)
  batch_in_epoch: jax.Array  # int32: batches of this epoch already trained
  kept_done: jax.Array       # int32: examples kept, summed over completed epochs
  steps_computed: jax.Array  # int32: steps that computed a gradient


def num_epochs(num_steps: int, num_examples: int, batch_size: int) -> int:
  """Full-data epochs that fit into a step budget.

  Args:
    num_steps: the step budget.
    num_examples: N.
    batch_size: B.

  Returns:
    E = max(1, floor(num_steps / ceil(N / B))).
  """
  return max(1, num_steps // math.ceil(num_examples / batch_size))


def start_epoch(state: State, key, epoch, num_epochs_: int, prune_ratio: float,
                delta: float) -> State:
  """Plans epoch `epoch` from the current scores (jit-able; `epoch` may be traced).

  Args:
    state: the method State (its score table is read).
    key: PRNG key of this epoch's plan and order.
    epoch: 0-based epoch index.
    num_epochs_: E.
    prune_ratio: r.
    delta: fraction of the epochs that prune.

  Returns:
    State with this epoch's weights, order and number kept, at its first batch.
  """
  k_plan, k_order = jax.random.split(key)
  plan = infobatch.infobatch_epoch_plan(k_plan, state.scores, prune_ratio, epoch, num_epochs_,
                                        delta)
  order, num_kept = infobatch.infobatch_epoch_order(k_order, plan.keep_mask)
  return state._replace(weights=plan.weights, order=order, num_kept=num_kept,
                        epoch=jnp.asarray(epoch, jnp.int32),
                        batch_in_epoch=jnp.zeros((), jnp.int32))


def make(config, task, dataset) -> Method:
  """The InfoBatch Method; fields in the module docstring; ConfigError on a bad one."""
  m = config.method
  require(0 <= m.prune_ratio < 1, 'method.prune_ratio', 'in [0, 1)', m.prune_ratio)
  require(0 <= m.delta <= 1, 'method.delta', 'in [0, 1]', m.delta)
  r, delta = float(m.prune_ratio), float(m.delta)
  n, b = dataset.train.size, config.batch_size
  e_total = num_epochs(config.num_steps, n, b)

  def init(key, train_state):
    del train_state
    state = State(tables.table_init(n), jnp.ones((n,), jnp.float32),
                  jnp.arange(n, dtype=jnp.int32), jnp.asarray(n, jnp.int32),
                  jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32),
                  jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
    return start_epoch(state, key, 0, e_total, r, delta)

  def sample(step, state):
    """The batch of the current epoch at `state.batch_in_epoch` (host-side, fixed shape [B])."""
    del step
    order, num_kept, epoch, pos = jax.device_get(
        (state.order, state.num_kept, state.epoch, state.batch_in_epoch))
    if int(epoch) >= e_total:  # all epochs done: any fixed-shape batch (the step skips it)
      return np.asarray(order[:b], np.int64) if n >= b else np.resize(order, b).astype(np.int64)
    # Batch `pos` of infobatch.infobatch_batches(order, num_kept, b): the kept prefix of the
    # order, cut into batches of b, the last one padded by repeating from the start.
    slots = int(pos) * b + np.arange(b)
    return np.asarray(order[:int(num_kept)][slots % int(num_kept)], np.int64)

  def train(train_state, state, batch, key):
    slots = state.batch_in_epoch * b + jnp.arange(b)
    valid = slots < state.num_kept
    # Padding slots get weight 0; the batch averages over its real examples only.
    w = jnp.where(valid, state.weights[batch['index']], 0.0) / jnp.maximum(valid.sum(), 1)
    train_state, metrics, losses, _, _ = weighted_step(
        task, train_state, batch, lambda losses: (w, None))
    scores = tables.table_record(state.scores, batch['index'], losses, valid)
    state = state._replace(scores=scores, batch_in_epoch=state.batch_in_epoch + 1,
                           steps_computed=state.steps_computed + 1)
    metrics.update({'infobatch/epoch': state.epoch.astype(jnp.float32),
                    'infobatch/kept_fraction': state.num_kept.astype(jnp.float32) / n,
                    'infobatch/computed': jnp.ones((), jnp.float32)})
    epoch_done = state.batch_in_epoch * b >= state.num_kept
    state = jax.lax.cond(
        epoch_done,
        lambda s: start_epoch(s._replace(kept_done=s.kept_done + s.num_kept), key, s.epoch + 1,
                              e_total, r, delta),
        lambda s: s, state)
    return train_state, state, metrics

  def skip(train_state, state, batch, key):
    _, _, shapes = jax.eval_shape(train, train_state, state, batch, key)
    metrics = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    metrics.update({'infobatch/epoch': state.epoch.astype(jnp.float32),
                    'infobatch/kept_fraction': jnp.zeros((), jnp.float32),
                    'infobatch/computed': jnp.zeros((), jnp.float32)})
    return train_state._replace(step=train_state.step + 1), state, metrics

  def step(train_state, state, batch, key):
    return jax.lax.cond(state.epoch < e_total, train, skip, train_state, state, batch, key)

  def finalize(ctx, train_state, state):
    state = jax.device_get(state)
    done = min(int(state.epoch), e_total)  # completed epochs
    # Steps of the completed epochs: every step so far, minus those of the epoch in progress.
    steps_done = int(state.steps_computed) - (int(state.batch_in_epoch) if done < e_total else 0)
    rows = [{'step': row['step'], 'kept': [row['infobatch/kept_fraction']]}
            for row in ctx.run.read_metrics() if row.get('infobatch/computed') == 1.0]
    plots.vector_curves(rows, 'kept', ['kept fraction'], ctx.run.file('plots', 'kept_fraction.png'),
                        f'InfoBatch: fraction of the {n} examples kept per epoch', 'fraction')
    # The table holds losses (high = suspect): scores_train.npy gets their negation.
    out = scoring.report_table(ctx, state.scores._replace(value=-state.scores.value),
                               'InfoBatch score table', raw='InfoBatch score (loss)')
    out['infobatch'] = {
        'num_epochs': e_total, 'epochs_completed': done,
        'steps_computed': int(state.steps_computed),
        'full_data_steps': e_total * math.ceil(n / b),
        'saved_fraction_examples': 1.0 - int(state.kept_done) / (n * done) if done else 0.0}
    out['gradient_computations_saved'] = (
        1.0 - steps_done / (done * math.ceil(n / b)) if done else 0.0)
    print(f'[infobatch] {done} epochs in {int(state.steps_computed)} steps (full data: '
          f'{out["infobatch"]["full_data_steps"]}); gradient computations saved '
          f'{out["gradient_computations_saved"]:.3f}', flush=True)
    return out

  def adjust_ledger(ledger, state):
    """Count only the steps that computed a gradient."""
    computed = int(state.steps_computed)
    return dict(ledger, steps=computed, examples_processed=computed * b,
                gradient_evaluations=computed * b,
                flops=ledger['flops'] * computed / max(ledger['steps'], 1))

  return Method(init=init, step=step, train_batch_size=b, sample=sample, finalize=finalize,
                adjust_ledger=adjust_ledger)
