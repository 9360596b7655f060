"""DataRater (Calian et al. 2025, arXiv 2505.17895): a meta-learned example rater.

A rater phi_eta scores every example; within an inner batch B the scores
become weights sigma_B(x) = softmax_B(phi(x) / temperature), and inner models
train on sum_x sigma_B(x) * loss(x; theta). The rater is meta-learned: unroll
T inner optimizer updates (`datarater.meta.unroll`), measure the updated
model's loss on a `meta` batch, and backpropagate to eta.

Meta-training (phase 'meta_train'):
  * a population of N inner models (vmapped), each with its own inner
    optimizer state; model i is re-initialised every `reset_period` steps,
    staggered by i * reset_period / N so the population always mixes young and
    old models;
  * each model's meta-gradient goes through its own outer optimizer (Adam with
    decoupled weight decay, global-norm clipping) and the N proposed rater
    parameters are averaged (the paper's description; not the same as one
    Adam step on the averaged meta-gradient, since Adam is not linear);
  * the outer learning rate warms up linearly over `outer_warmup_steps`
    outer steps, starting at outer_learning_rate / outer_warmup_steps on step
    0 (so the first meta step already moves the rater);
  * truncated windows: each meta step unrolls T new inner steps from the
    carried inner state; a model lives reset_period outer steps, i.e.
    reset_period * T inner steps, the horizon of the inner schedule.

Pipeline (`make`): meta-train the rater ('meta_train'); score every training
example (`scores_train.npy`, histograms, AUROC against the ground-truth flag;
datarater.report.scoring); train a fresh model with the shared filter
(datarater/methods/_filter.py; default `method.filter_mode='per_batch'`: draw
ceil(B / (1 - rho)) examples, keep the B best-scored by the live rater) for
`config.num_steps` ('filtered'; with discard_fraction='auto' two filtered arms,
'filtered' and 'filtered_half', the result chosen on validation); train a uniform baseline for the same number
of steps from the same initial parameters ('uniform'); the assembler reports
the paired accuracy gain and the net compute gain (meta-training charged as
extra cost).

Config fields (`config.method.*`): documented in configs/datarater.py.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, NamedTuple

from flax import serialization
import jax
import jax.numpy as jnp
import optax

from datarater.errors import ConfigError, is_number, require
from datarater.meta import datarater_features, unroll
from datarater.methods import _filter
from datarater.models.rater import build_rater
from datarater.report import scoring
from datarater.train import sharding
from datarater.train.evaluation import map_split
from datarater.train.pipeline import Phase, Pipeline
from datarater.train.state import Method, train_part
from datarater.train.task import make_optimizer
from datarater.weighting import scores as score_ops

DECLARES = dict(family='meta', label='DataRater', scores=True, information='meta rows')

RATER_FILE = 'rater_params.msgpack'  # the meta-trained rater's parameters (flax msgpack)


class MetaState(NamedTuple):
  """Meta-training state.

  Attributes:
    eta: rater parameters (shared by the population).
    outer_opt: per-model outer optimizer states, stacked [N].
    params: inner model parameters, stacked [N].
    inner_opt: inner optimizer states, stacked [N].
  """
  eta: Any
  outer_opt: Any
  params: Any
  inner_opt: Any


def _check(config) -> None:
  m = config.method
  for name in ('meta_steps', 'inner_steps', 'inner_batch_size', 'meta_batch_size', 'population',
               'reset_period', 'outer_learning_rate', 'temperature'):
    require(is_number(m[name]) and m[name] > 0, f'method.{name}', '> 0', m[name])
  require(m.mode in unroll.MODES, 'method.mode', f'one of {unroll.MODES}', m.mode)
  require(m.outer_loss in OUTER_LOSSES, 'method.outer_loss', f'one of {OUTER_LOSSES}', m.outer_loss)
  require(is_number(m.outer_trim) and 0 <= m.outer_trim < 1, 'method.outer_trim', 'in [0, 1)',
          m.outer_trim)
  require(is_number(m.outer_trim_low) and 0 <= m.outer_trim_low < 1 - m.outer_trim,
          'method.outer_trim_low', 'in [0, 1 - method.outer_trim)', m.outer_trim_low)
  require(all(f in datarater_features.FEATURES for f in m.rater_features), 'method.rater_features',
          f'a tuple of names from {datarater_features.FEATURES}', m.rater_features)
  require(isinstance(m.rater_from, str), 'method.rater_from', 'a run directory or empty',
          m.rater_from)
  if m.rater_from:
    require(not m.rater_features, 'method.rater_features',
            '() with method.rater_from (a reused rater is scored without inner models)',
            m.rater_features)
    imported_meta_cost(m.rater_from)
  _filter.check(config)
  n = jax.device_count()
  for name in ('inner_batch_size', 'meta_batch_size'):
    require(m[name] * m.population % n == 0, f'method.{name}',
            f'such that {name} * population is divisible by the {n} devices', m[name])
  groups = config.mesh.population if config.get('mesh') else 1
  require(m.population % groups == 0, 'method.population',
          f'divisible by config.mesh.population={groups}', m.population)


OUTER_LOSSES = ('auto', 'cross_entropy', 'mae', 'trimmed_ce', 'rated_ce')


def outer_loss_name(config) -> str:
  """method.outer_loss, with 'auto' resolved: 'trimmed_ce' on a noisy meta split
  (data.meta_mode='noisy'), the paper's 'cross_entropy' on a clean one."""
  name = config.method.outer_loss
  if name != 'auto':
    return name
  return 'trimmed_ce' if config.data.meta_mode == 'noisy' else 'cross_entropy'


def make_rate(config, task, rater):
  """The rater's scores of a batch, given the losses of the model it weights when it needs them.

  Args:
    config: run config (`method.rater_features`: loss features the rater sees).
    task: the Task (computes the losses when they are not given).
    rater: the rater flax module.

  Returns:
    rate(eta, batch, params=None, losses=None) -> [B] scores. With
    `method.rater_features` the rater also sees
    `datarater_features.loss_features` of `losses` (per-example losses of
    the model being trained; computed from `params` if not given), taken over the
    batch's real rows when it marks them (`batch['real']`, evaluation padding).
  """
  names = tuple(config.method.rater_features)

  def rate(eta, batch, params=None, losses=None):
    feats = None
    if names:
      losses = task.per_example_loss(params, batch) if losses is None else losses
      feats = datarater_features.loss_features(losses, names, batch.get('real'))
    return rater.apply({'params': eta}, batch['x'], batch['y'], feats)

  return rate


def outer_schedule(learning_rate: float, warmup_steps: int) -> optax.Schedule:
  """Linear warm-up that starts above 0: lr * min(step + 1, W) / W, W = max(warmup_steps, 1).

  Step 0 already uses lr / W (a warm-up from 0 would make the first meta step a no-op).

  Args:
    learning_rate: peak outer learning rate.
    warmup_steps: outer steps until the peak is reached.

  Returns:
    An optax schedule of the outer step.
  """
  w = max(int(warmup_steps), 1)
  return lambda count: learning_rate * jnp.minimum(count + 1, w) / w




def make_meta_trainer(config, task, dataset, rater) -> Method:
  """The meta-training phase as a Method: one outer step per loop step.

  Args:
    config: run config (`config.method` fields: configs/datarater.py).
    task: the Task whose models the population trains.
    dataset: the Dataset (one training example fixes the rater's input shapes).
    rater: the rater flax module.

  Returns:
    Method whose state is a `MetaState`; the TrainState is only a step counter.
  """
  m = config.method
  n, t, b, bm = m.population, m.inner_steps, m.inner_batch_size, m.meta_batch_size
  # A model lives reset_period outer steps of T inner updates each.
  inner_opt = make_optimizer(m.inner_optimizer, m.reset_period * t)
  outer_opt = optax.chain(
      optax.clip_by_global_norm(m.outer_clip) if m.outer_clip else optax.identity(),
      optax.adamw(outer_schedule(m.outer_learning_rate, m.outer_warmup_steps),
                  weight_decay=m.outer_weight_decay))

  rate = make_rate(config, task, rater)

  def inner_loss(params, eta, batch):
    losses = task.per_example_loss(params, batch)
    return jnp.sum(score_ops.batch_softmax(rate(eta, batch, losses=losses), m.temperature) * losses)

  loss_name = outer_loss_name(config)

  def outer_loss(params, batch):
    if loss_name == 'mae':
      return datarater_features.mae_loss(task.logits(params, batch['x']), batch['y']).mean()
    losses = task.per_example_loss(params, batch)
    if loss_name == 'trimmed_ce':
      return datarater_features.trimmed_mean(losses, m.outer_trim, m.outer_trim_low)
    if loss_name == 'rated_ce':
      return datarater_features.rated_trimmed_mean(losses, batch['score'], m.outer_trim,
                                                   m.outer_trim_low, m.temperature)
    return losses.mean()

  grad_fn = functools.partial(unroll.meta_loss_and_grad, inner_loss_fn=inner_loss,
                              outer_loss_fn=outer_loss, optimizer=inner_opt, mode=m.mode)

  def fresh_models(key):
    params = jax.vmap(task.init_params)(jax.random.split(key, n))
    return params, jax.vmap(inner_opt.init)(params)

  x0, y0 = dataset.train.x[:1], dataset.train.y[:1]
  f0 = jnp.zeros((1, len(m.rater_features))) if m.rater_features else None

  @jax.jit
  def init_state(key, eta=None):
    k_rater, k_models = jax.random.split(key)
    eta = rater.init(k_rater, x0, y0, f0)['params'] if eta is None else eta
    params, opt = fresh_models(k_models)
    outer = jax.vmap(lambda _: outer_opt.init(eta))(jnp.arange(n))
    return MetaState(eta, outer, params, opt)

  # method.rater_from: the saved rater, checked against this run's rater before anything runs.
  loaded = load_rater(m.rater_from, jax.eval_shape(
      lambda: rater.init(jax.random.key(0), x0, y0, f0)['params'])) if m.rater_from else None

  def init(key, train_state):
    del train_state
    return init_state(key, loaded)

  def step(train_state, state, batch, key):
    step_i = train_state.step
    # Staggered resets: model i restarts when (step + i * period / N) % period == 0.
    offsets = (jnp.arange(n) * m.reset_period) // n
    reset = ((step_i + offsets) % m.reset_period == 0) & (step_i > 0)

    def with_resets(models):
      def pick(new, old):
        return jnp.where(reset.reshape((n,) + (1,) * (old.ndim - 1)), new, old)
      return jax.tree.map(pick, fresh_models(key), models)

    # Fresh models are initialised only on the steps where some model resets.
    params, opt = jax.lax.cond(reset.any(), with_resets, lambda models: models,
                               (state.params, state.inner_opt))
    train = {k: v.reshape((n, t, b) + v.shape[1:]) for k, v in train_part(batch).items()}
    meta = {k: v.reshape((n, bm) + v.shape[1:]) for k, v in batch['meta'].items()}
    # With config.mesh.population > 1, each group of devices trains its own models.
    if loss_name == 'rated_ce':   # the current rater's scores of each model's meta rows
      meta['score'] = jax.vmap(lambda p, b: rate(state.eta, b, params=p))(params, meta)
    params, opt, train, meta = sharding.population_split((params, opt, train, meta))
    losses, grads, (params, opt) = jax.vmap(grad_fn, in_axes=(None, 0, 0, 0, 0))(
        state.eta, params, opt, train, meta)
    updates, outer = jax.vmap(outer_opt.update, in_axes=(0, 0, None))(grads, state.outer_opt,
                                                                       state.eta)
    eta = jax.tree.map(lambda e, u: e + u.mean(axis=0), state.eta, updates)
    metrics = {'meta/outer_loss': losses.mean(),
               'meta/grad_norm': optax.global_norm(jax.tree.map(lambda g: g.mean(0), grads)),
               'meta/resets': reset.sum()}
    return train_state._replace(step=step_i + 1), MetaState(eta, outer, params, opt), metrics

  return Method(init=init, step=step, train_batch_size=n * t * b, meta_batch_size=n * bm,
                grad_evals=n * (t * b + bm))


def load_rater(run_dir: str, template):
  """The rater parameters a finished DataRater run saved (`RATER_FILE` in `run_dir`).

  Raises:
    ConfigError: naming method.rater_from when the file is missing or its parameters do not
      fit this run's rater (method.rater.*, the data's input shape).
  """
  path = os.path.join(run_dir, RATER_FILE)
  require(os.path.isfile(path), 'method.rater_from',
          f'a finished DataRater run directory holding {RATER_FILE}', run_dir)
  with open(path, 'rb') as f:
    raw = serialization.msgpack_restore(f.read())
  shapes = lambda tree: jax.tree.map(lambda x: tuple(x.shape), tree)  # noqa: E731
  if shapes(raw) != shapes(template):
    raise ConfigError(f'config.method.rater_from={run_dir!r}: its rater does not fit this run\'s '
                      '(method.rater.name/kwargs, method.rater_features and the input shape must '
                      'match the run that trained it)')
  return jax.tree.map(jnp.asarray, raw)


def imported_meta_cost(run_dir: str) -> dict:
  """The meta-training compute of the run whose rater `method.rater_from` reuses (its summary's
  meta_train ledger), charged to this run's method so "incl. meta" gains stay honest."""
  path = os.path.join(run_dir, 'summary.json')
  require(os.path.isfile(path), 'method.rater_from', 'a finished run directory (summary.json)',
          run_dir)
  with open(path) as f:
    ledger = json.load(f).get('phases', {}).get('meta_train', {}).get('ledger')
  require(ledger is not None, 'method.rater_from', 'a DataRater run that meta-trained its rater',
          run_dir)
  return {k: float(ledger.get(k, 0.0)) for k in ('flops', 'gradient_evaluations')}


def filter_score(config, task, rater):
  """The filtered phase's score function: the live rater (`_filter.make_filter`).

  With 'per_batch' (default, the paper's filter) it scores each oversampled
  batch of ceil(B / (1 - rho)) examples and the model trains on the top B;
  with method.rater_features the rater sees the losses of the model being
  trained.

  Args:
    config: run config (`method.rater_features`).
    task: the Task being trained.
    rater: the rater flax module.

  Returns:
    (train_state, eta, batch) -> [b] scores, higher = keep.
  """
  rate = make_rate(config, task, rater)
  return lambda train_state, eta, batch: rate(eta, batch, params=train_state.params)


def make(config, task, dataset) -> Pipeline:
  """Meta-train -> score -> filtered training, paired with a uniform baseline.

  Args:
    config: run config (`config.method` fields: configs/datarater.py).
    task: the Task being trained.
    dataset: the Dataset.

  Returns:
    Pipeline of the phases 'meta_train', 'filtered' ('auto': and 'filtered_half') and
    (with config.method.baseline) 'uniform'.

  Raises:
    ConfigError: one line naming the bad `config.method` field.
  """
  _check(config)
  m = config.method
  rater = build_rater(m.rater, dataset.info)
  meta_trainer = make_meta_trainer(config, task, dataset, rater)
  rated = {}  # the rater's scores of the training rows (discard_fraction='auto' reads them)
  rate = make_rate(config, task, rater)

  @jax.jit
  def score(state, batch):
    """The rater's scores; with loss features, the mean over the N inner models' losses."""
    if m.rater_features:
      return jax.vmap(lambda p: rate(state.eta, batch, params=p))(state.params).mean(0)
    return rate(state.eta, batch)

  def score_split(state, split, ctx):
    return map_split(lambda b: score(state, b), split, ctx, mark_padding=True)

  def probe(ctx, state):
    """The rater's AUROC and per-source Spearman on the training rows, during meta-training."""
    q = scoring.score_quality(ctx.dataset, score_split(state, ctx.dataset.train, ctx))
    out = {'meta/rater_auroc': q['score_auroc'], 'meta/source_spearman': q['source_score_spearman']}
    return {k: v for k, v in out.items() if v is not None}

  def finalize_meta(ctx, train_state, state):
    del train_state
    # The rater scores any example: the meta split's rows get real scores too.
    rated['train'] = score_split(state, ctx.dataset.train, ctx)
    out = scoring.report_scores(ctx, rated['train'], 'DataRater score',
                                meta_scores=score_split(state, ctx.dataset.meta, ctx))
    if jax.process_index() == 0:
      with open(ctx.run.file(RATER_FILE), 'wb') as f:
        f.write(serialization.to_bytes(jax.device_get(state.eta)))
    print(f'[datarater] rater AUROC {out["score_auroc"]}', flush=True)
    return {**out, 'outer_loss': outer_loss_name(config)}

  def charge_import(ledger, state):
    """With method.rater_from: the reused rater's meta-training compute, charged to this run."""
    del state
    return {**ledger, **{k: ledger[k] + v for k, v in imported_meta_cost(m.rater_from).items()}}

  # With method.rater_from the phase runs no step: its init loads the rater, its finalize
  # scores the training rows as after meta-training.
  meta = Phase('meta_train', meta_trainer._replace(
      finalize=finalize_meta, probe=probe,
      adjust_ledger=charge_import if m.rater_from else None),
      0 if m.rater_from else m.meta_steps, trains_model=False)
  return _filter.filter_pipeline(config, task, dataset, (meta,), filter_score(config, task, rater),
                                 lambda results: results['meta_train'].method_state.eta,
                                 baseline=m.baseline, train_scores=lambda results: rated['train'])
