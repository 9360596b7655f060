"""ScaleBiO per-source data weights in the training loop, with hypergradient baselines.

Learns weights lambda = softmax(p) over the K sources of any dataset that has
`source` ids (the loop's `batch['source']`), for the bilevel problem

    min_p L1(w*(lambda)),   w*(lambda) = argmin_w L2(lambda, w) = sum_k lambda_k lbar_k(w),

with lbar_k the mean per-example loss (`task.per_example_loss`) of source k's
examples in the training batch (`weighting.groups.segment_mean`, global over
devices) and L1 the mean loss on a batch of the `meta` split.

`config.method.hypergradient` picks how p is updated; every estimator sees the
same batches, so estimators are compared on identical data:

* 'penalty' (ScaleBiO / F2SA, `bilevel.scalebio.scalebio`): per step a u-step
  on alpha*L2(lambda, u), a w-step on alpha*L2(lambda, w) + L1(w), and a p-step
  along alpha * J_softmax(p)^T (lbar(w) - lbar(u)). First-order only.
* 'cg' | 'neumann' (`bilevel.implicit`): the implicit-function hypergradient at
  the current w, with conjugate gradient or a Neumann series on Hessian-vector
  products of L2; w takes one step on the weighted loss L2(lambda, w).
* 'unrolled': backprop through `unroll_steps` SGD steps on L2 from the current
  w (same batch); w again takes one step on L2(lambda, w).

The evaluated model is w: it lives in `train_state.params` (its optimizer
state in `train_state.opt_state`), so the loop evaluates it; p, u and their
optimizer states are the method state. The penalty's w also descends L1,
i.e. it trains on the meta batches, so its test metrics
(`summary['phases']['bilevel']`, and `w_test_accuracy` / `w_test_loss`) are
not comparable to a model trained on the training split only; the summary
says so in `bilevel_note`. `retrain` (the default) trains a fresh model on
the training split only, with the learned weights, next to a uniform baseline
with the same initialisation and steps, and reports that model as the
method's result.

Pipeline (`make`): phase 'bilevel' for config.num_steps steps; summary gets
`source_weights` (softmax(p) at the end, source-id order), the time average
`source_weights_time_avg` over all steps, `weight_corruption_spearman` when
the dataset has per-source corruption rates, `bilevel_note` (penalty only,
see above), w's own `w_test_accuracy` and `w_test_loss` and
`plots/source_weights.png`. With `method.retrain` (default True), phases
'retrain' (static weights: loss weighting or resampling,
`methods.static_mixture`) and 'uniform', both for config.num_steps steps from
the same initial parameters; the retrained model is then the run's result
(summary test metrics), compared with 'uniform', and every phase's metrics
and ledger are under `phases`.

Config fields (`config.method.*`, defaults in configs/scalebio.py):
  hypergradient     'penalty' | 'cg' | 'neumann' | 'unrolled'
  alpha             penalty weight > 0 (ScaleBiO: 10 to 100)
  alpha_exponent    alpha_t = alpha * (t + 1)^alpha_exponent (F2SA: 1/7); >= 0
  alpha_max         cap on alpha_t (0: none)
  lambda_update     'adam' (Adam on the logits p) | 'mirror' (exponentiated
                    gradient on lambda)
  lr_lambda         step size of the p update (results are sensitive to it)
  lr_u, lr_w        step sizes of the u and w optimizers
  inner_optimizer   'adam' | 'adamw' | 'sgd' for u and w
  weight_decay      for u and w (decoupled for adamw)
  decay_step_sizes  multiply every step size by (t + 1)^-e, F2SA exponents
  lisa_period, lisa_num_blocks, lisa_always_trainable  LISA: every period
                    steps only num_blocks random top-level parameter blocks
                    (plus the always-trainable ones) of u and w are updated;
                    period 0 = off
  meta_batch_size   meta examples per step (0: config.batch_size)
  cg_maxiter, neumann_terms, neumann_eta, damping  implicit estimators
  unroll_steps, unroll_lr  the unrolled estimator
  retrain           also train a fresh model with the learned weights and a
                    uniform baseline; that model is the result (default True)
  retrain_mode      'loss' (per-example loss weights) | 'sample' (resampling)
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from datarater.bilevel import implicit
from datarater.bilevel import scalebio
from datarater.errors import is_number, require
from datarater.methods import static_mixture, uniform
from datarater.report import detection, plots
from datarater.train.pipeline import Phase, Pipeline
from datarater.train.state import Method, TrainState, train_part
from datarater.weighting import groups

DECLARES = dict(family='bilevel', label='ScaleBiO', source_weights=True, information='meta rows')

ESTIMATORS = ('penalty', 'cg', 'neumann', 'unrolled')
RETRAIN_MODES = ('loss', 'sample')
PHASE = 'bilevel'
# summary.json's label on the penalty's w (phase 'bilevel'), see REVIEW.md.
PENALTY_W_NOTE = ("w_test_accuracy is phase 'bilevel''s w, which also descends the meta loss L1 "
                  "(it trains on the meta split): its test metrics are not comparable to a model "
                  "trained on the train split only; with method.retrain (the default) the result "
                  "is the model retrained with the learned weights")


class State(NamedTuple):
  """Method state; w and its optimizer state are the loop's TrainState.

  Attributes:
    p: [K] zero-mean logits, lambda = softmax(p).
    opt_state_p: optax state of the p optimizer.
    u: the penalty's auxiliary lower-level parameters (() for the baselines).
    opt_state_u: optax state of the u optimizer (() for the baselines).
    key: raw uint32 PRNG key for LISA block draws.
    weight_sum: [K] sum over past steps of the weights each step used.
  """
  p: jax.Array
  opt_state_p: Any
  u: Any
  opt_state_u: Any
  key: jax.Array
  weight_sum: jax.Array


def _check(m, num_devices: int) -> None:
  """Raises ConfigError naming the first bad `config.method` field."""
  choices = {'hypergradient': ESTIMATORS, 'lambda_update': tuple(scalebio.LAMBDA_UPDATES),
             'inner_optimizer': tuple(scalebio.INNER_OPTIMIZERS), 'retrain_mode': RETRAIN_MODES}
  for field, allowed in choices.items():
    require(m[field] in allowed, f'method.{field}', f'one of {allowed}', m[field])
  for field in ('alpha', 'lr_lambda', 'lr_u', 'lr_w', 'neumann_eta', 'unroll_lr'):
    require(is_number(m[field]) and m[field] > 0, f'method.{field}', '> 0', m[field])
  for field in ('alpha_exponent', 'alpha_max', 'weight_decay', 'damping', 'meta_batch_size',
                'lisa_period', 'lisa_num_blocks'):
    require(is_number(m[field]) and m[field] >= 0, f'method.{field}', '>= 0', m[field])
  for field in ('cg_maxiter', 'neumann_terms', 'unroll_steps'):
    require(isinstance(m[field], int) and m[field] >= 1, f'method.{field}', 'an integer >= 1',
            m[field])
  require(m.meta_batch_size % num_devices == 0, 'method.meta_batch_size',
          f'divisible by the {num_devices} devices', m.meta_batch_size)


def _check_lisa(m, params_shapes) -> None:
  """Raises ConfigError unless the LISA block names and count fit the model's blocks."""
  blocks = scalebio.top_level_blocks(params_shapes)
  always = tuple(m.lisa_always_trainable)
  require(all(b in blocks for b in always), 'method.lisa_always_trainable',
          f'names among the top-level parameter blocks {blocks}', always)
  sampled = len(blocks) - len(set(always))
  require(m.lisa_num_blocks <= sampled, 'method.lisa_num_blocks',
          f'at most the {sampled} blocks LISA samples from', m.lisa_num_blocks)


def make_optimizers(m) -> scalebio.Optimizers:
  """The u, w and p optimizers of `config.method` (w's is the bilevel phase's model optimizer)."""
  return scalebio.make_optimizers(
      lambda_update=m.lambda_update, lr_lambda=m.lr_lambda, lr_u=m.lr_u, lr_w=m.lr_w,
      inner_optimizer=m.inner_optimizer, weight_decay=m.weight_decay,
      decay_step_sizes=m.decay_step_sizes)


def _split(batch):
  return train_part(batch), batch['meta']


def make_bilevel(config, task, dataset) -> Method:
  """The ScaleBiO Method of phase 'bilevel' (see the module docstring for `config.method.*`).

  Args:
    config: the run config.
    task: the Task (model and per-example loss).
    dataset: the Dataset (K = dataset.info.num_sources).

  Returns:
    Method; its `step` expects train_state.opt_state to be the state of
    `make_optimizers(config.method).w` (the phase declares that optimizer).

  Raises:
    ConfigError: one line naming the bad `config.method` field.
  """
  m = config.method
  _check(m, jax.device_count())
  k = dataset.info.num_sources
  meta_bs = m.meta_batch_size or config.batch_size
  opts = make_optimizers(m)
  estimator = m.hypergradient
  lisa = (int(m.lisa_period), int(m.lisa_num_blocks), tuple(m.lisa_always_trainable))
  if lisa[0]:
    _check_lisa(m, jax.eval_shape(task.init_params, jax.random.key(0)))

  def per_source_loss(params, batch):
    return groups.segment_mean(task.per_example_loss(params, batch), batch['source'], k)

  def meta_loss(params, batch):
    return task.per_example_loss(params, batch).mean()

  factory = scalebio.scalebio(
      per_source_loss, meta_loss, alpha=float(m.alpha), alpha_exponent=float(m.alpha_exponent),
      alpha_max=float(m.alpha_max) or None, lambda_update=m.lambda_update, optimizers=opts,
      lisa_period=lisa[0], lisa_num_blocks=lisa[1], lisa_always_trainable=lisa[2])

  def init(key, train_state):
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
      key = jax.random.key_data(key)
    p = jnp.zeros((k,), jnp.float32)
    if estimator == 'penalty':
      u = jax.tree.map(jnp.copy, train_state.params)   # u starts at w, as in ScaleBiO
      opt_state_u = opts.u.init(u)
    else:
      u, opt_state_u = (), ()
    return State(p, opts.p.init(p), u, opt_state_u, key, jnp.zeros((k,), jnp.float32))

  def common_metrics(lam_new, lbar_w, source, l2, l1, grad_p):
    share = groups.group_share(jnp.ones(source.shape, lbar_w.dtype), source, k)
    return {'train/loss': jnp.dot(share, lbar_w),   # the batch's mean per-example loss
            'train/weighted_loss': l2, 'train/meta_loss': l1,
            'bilevel/grad_p_norm': jnp.linalg.norm(grad_p), 'bilevel/grad_p': grad_p,
            'source_weights': lam_new}

  def penalty_step(train_state, state, batch, key):
    del key
    train, meta = _split(batch)
    full = scalebio.ScaleBiOState(
        p=state.p, u=state.u, w=train_state.params, opt_state_p=state.opt_state_p,
        opt_state_u=state.opt_state_u, opt_state_w=train_state.opt_state,
        step=train_state.step, key=state.key)
    full, out = factory.step(full, train, meta)
    metrics = common_metrics(jax.nn.softmax(full.p), out['lbar_w'], train['source'],
                             out['L2_w'], out['L1'], out['grad_p'])
    metrics.update({'bilevel/alpha': out['alpha'], 'bilevel/L2_gap': out['L2_gap'],
                    'bilevel/source_gap': out['lbar_w'] - out['lbar_u']})
    new_state = state._replace(p=full.p, opt_state_p=full.opt_state_p, u=full.u,
                               opt_state_u=full.opt_state_u,
                               weight_sum=state.weight_sum + out['lambda'])
    return TrainState(full.step, full.w, full.opt_state_w), new_state, metrics

  hypergrad = {   # the baselines' estimators of d L1(w*(softmax(p))) / dp
      'cg': functools.partial(implicit.cg_hypergrad, maxiter=m.cg_maxiter, damping=m.damping),
      'neumann': functools.partial(implicit.neumann_hypergrad, num_terms=m.neumann_terms,
                                   eta=m.neumann_eta, damping=m.damping),
      'unrolled': functools.partial(implicit.unrolled_hypergrad, num_steps=m.unroll_steps,
                                    lr=m.unroll_lr),
  }.get(estimator)

  def baseline_step(train_state, state, batch, key):
    del key
    train, meta = _split(batch)
    p, w = state.p, train_state.params
    lam = jax.nn.softmax(p)
    grad_p = hypergrad(per_source_loss, meta_loss, p, w, train, meta)

    def lower(params):  # the lower level trains on the weighted loss L2(lambda, w)
      lbar, _ = per_source_loss(params, train)
      return jnp.dot(lam, lbar), lbar

    (l2, lbar_w), g = jax.value_and_grad(lower, has_aux=True)(w)
    updates, opt_state_w = opts.w.update(g, train_state.opt_state, w)
    if lisa[0]:
      updates = scalebio.apply_mask(
          updates, scalebio.lisa_mask(state.key, train_state.step, w, lisa[1], lisa[0], lisa[2]))
    w_new = optax.apply_updates(w, updates)
    if m.lambda_update == 'adam':
      direction = grad_p
    else:  # J_softmax^T g = lam * (g - <lam, g>): g up to a shift, which softmax ignores
      direction = jnp.where(lam > 0, grad_p / jnp.where(lam > 0, lam, 1.0), 0.0)
    upd_p, opt_state_p = opts.p.update(direction, state.opt_state_p, p)
    p_new = optax.apply_updates(p, upd_p)
    p_new = p_new - p_new.mean()
    metrics = common_metrics(jax.nn.softmax(p_new), lbar_w, train['source'], l2,
                             meta_loss(w, meta), grad_p)
    new_state = state._replace(p=p_new, opt_state_p=opt_state_p, weight_sum=state.weight_sum + lam)
    return TrainState(train_state.step + 1, w_new, opt_state_w), new_state, metrics

  b = config.batch_size
  # Per-example gradient evaluations per step (a Hessian-vector product counts as 2;
  # CG makes one more for its initial residual).
  grad_evals = {'penalty': 2 * b + meta_bs,
                'cg': 2 * b + meta_bs + 2 * (m.cg_maxiter + 1) * b,
                'neumann': 2 * b + meta_bs + 2 * (m.neumann_terms - 1) * b,
                'unrolled': b + meta_bs + 3 * m.unroll_steps * b}[estimator]

  def finalize(ctx, train_state, state):
    info = ctx.dataset.info
    weights = learned_weights(state)
    avg = np.asarray(state.weight_sum, np.float64) / max(int(train_state.step), 1)
    rows = [r for r in ctx.run.read_metrics() if r['phase'] == PHASE]
    names = list(info.source_names)
    if len(info.corruption_rates) == len(names):
      names = [f'{n} (corruption {r:g})' for n, r in zip(names, info.corruption_rates)]
    plots.vector_curves(rows, 'source_weights', names,
                        ctx.run.file('plots', 'source_weights.png'),
                        f'{info.name}: source weights ({estimator}, {info.meta_mode} meta)')
    out = {'hypergradient': estimator, 'source_weights': weights.tolist(),
           'source_weights_time_avg': avg.tolist()}
    rho = detection.rate_spearman(weights, info.corruption_rates)
    line = ' '.join(f'{w:.4f}' for w in weights)
    if rho is not None:
      out['weight_corruption_spearman'] = rho
      line += f'; Spearman vs corruption rate {rho:.3f}'
    print(f'[{PHASE}] source weights {line}', flush=True)
    if estimator == 'penalty':
      out['bilevel_note'] = PENALTY_W_NOTE
      print(f'[{PHASE}] note: {PENALTY_W_NOTE}', flush=True)
    return out

  # init runs once per phase; one jit instead of one compiled kernel per eager op.
  return Method(init=jax.jit(init), step=penalty_step if estimator == 'penalty' else baseline_step,
                train_batch_size=b, meta_batch_size=meta_bs, finalize=finalize,
                grad_evals=grad_evals)


def learned_weights(state) -> np.ndarray:
  """lambda = softmax(p) of a ScaleBiO state, in source-id order."""
  p = np.asarray(jax.device_get(state.p), np.float64)
  weights = np.exp(p - p.max())
  return weights / weights.sum()


def make(config, task, dataset) -> Pipeline:
  """Phase 'bilevel'; with `method.retrain`, also 'retrain' and 'uniform' (paired).

  The bilevel phase trains w with the method's own optimizer (`lr_w`); its w
  also descends the meta loss, so with `retrain` (the default) the run's
  result is the retrained model, compared with the uniform model from the same
  initial parameters. Without `retrain` the result is w (trained on meta data
  too: not comparable to uniform). Either way w's test accuracy and loss are
  in the summary as `w_test_accuracy` and `w_test_loss`.
  """
  bilevel = make_bilevel(config, task, dataset)
  m, n = config.method, config.num_steps
  phases = [Phase(PHASE, bilevel, n, optimizer=make_optimizers(m).w)]
  def w_metrics(ctx, results):
    ev = results[PHASE].eval
    return {'w_test_accuracy': ev['test/accuracy'], 'w_test_loss': ev['test/loss']}

  if not m.retrain:
    return Pipeline(tuple(phases), result=PHASE, report=w_metrics)
  phases += [
      Phase('retrain', lambda r: static_mixture.for_weights(
          config, task, dataset, learned_weights(r[PHASE].method_state), m.retrain_mode), n),
      Phase('uniform', uniform.make(config, task, dataset), n),
  ]
  return Pipeline(tuple(phases), result='retrain', baseline='uniform',
                  extra_cost=(PHASE,),
                  report=lambda ctx, r: {**w_metrics(ctx, r), 'retrain_mode': m.retrain_mode})
