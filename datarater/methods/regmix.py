"""RegMix source mixture (method 'regmix'; config: configs/regmix.py).

Liu et al., "RegMix: Data Mixture as Regression for Language Model
Pre-training" (arXiv 2407.01492), with domains = data sources; the maths is
in datarater/mixing/regmix.py. Pipeline (`make`):

1. 'proxies' (`method.proxy_steps` steps): `method.num_proxies` proxy models
   trained as ONE vmapped ensemble (datarater/methods/_ensemble.py: stacked
   parameters, the optimizer vmapped over the members, each member stepping on
   the mean loss of its own B = config.batch_size rows), which the framework
   allows because a Method may draw its own batches (`Method.sample`): member
   m's rows are drawn from its own mixture w_m, each row's source from w_m
   and then a row of that source uniformly (`member_mixture_indices`, the
   draw of static_mixture's 'sample' mode, one random stream per member). One
   phase, one compiled step, instead of one short phase per proxy. The
   mixtures are Dirichlet draws around the sources' shares of the training
   rows (`mixing.regmix.dirichlet_mixtures`: tempered by
   `method.prior_temperature`, strengths log-spaced over
   `method.concentration`). The proxy model is the task's model with
   `method.proxy_model.kwargs` overriding its kwargs (empty: the same model),
   its optimizer config.optimizer with the schedule over proxy_steps. With
   `method.same_init` every proxy starts from the same parameters (those of
   the init stream 'model', i.e. the final model's when the proxy model is the
   task's), so the proxies' losses differ by their mixtures and data order,
   not by their initialisation.
2. Regression (in the proxies' finalize, on the host): each proxy's target is
   its mean loss over the META split (clean or noisy by data.meta_mode: the
   held-out "target" data, as the paper's Pile-CC validation loss) after its
   last step. A seeded `method.holdout_fraction` of the proxies is held out;
   both regressions ('linear', 'gbm') are fitted on the rest and their
   held-out Spearman rank correlation (datarater.report.detection.spearman
   of predicted vs true loss; None with fewer than 2 held out) is reported;
   `method.regression` is the one that chooses: the mean of the
   `method.top_k` lowest-predicted of `method.num_candidates` candidate
   mixtures (`mixing.regmix.choose_mixture`), drawn as the authors' notebook
   draws them: Dir(c * p), p the untempered row-share prior, c =
   `method.candidate_concentration` (theirs: 1). The
   model that chooses is the one fitted without the held-out proxies, i.e.
   the model whose Spearman is reported.
3. 'train' (config.num_steps steps): the task's model trained on the chosen
   mixture by resampling (static_mixture's 'sample' mode, via
   `static_mixture.for_weights`). It is the run's result.

Compute: the proxies' steps and FLOPs (all members, counted from the compiled
vmapped step) are charged to the method (Pipeline.extra_cost, as DoReMi's
proxy), so `method_ledger` = proxies + train. The meta-split evaluation of
each proxy (one forward pass over the meta rows) is, like every evaluation,
not in the ledger; the regressions run on the host.

summary.json: `source_weights` (the chosen mixture, in source-id order),
`weight_corruption_spearman` (of it with the sources' corruption rates, where
known), and `regmix`: the prior, the proxy mixtures and their meta losses,
the fitted and held-out proxy indices, the regression used, the held-out
Spearman of each regression kind, the linear fit's per-source coefficients
(the predicted loss of training on one source alone), the candidates and
top k, the chosen mixture and its predicted loss (and the prior's).

Config fields (configs/regmix.py documents each): num_proxies, proxy_steps,
proxy_model.kwargs, same_init, prior_temperature, concentration,
holdout_fraction, regression, ridge, candidate_concentration, num_candidates,
top_k.
"""

from __future__ import annotations

import dataclasses
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from datarater.data import sampler
from datarater.errors import is_number, require
from datarater.methods import _ensemble, static_mixture
from datarater.mixing import regmix
from datarater.models import build_model
from datarater.report import detection
from datarater.train.evaluation import map_split
from datarater.train.pipeline import Phase, Pipeline
from datarater.train.state import Method, no_state
from datarater.train.task import make_optimizer

DECLARES = dict(family='source', label='RegMix', source_weights=True, information='meta rows')

PROXIES, TRAIN = 'proxies', 'train'
TARGET_SPLIT = 'meta'  # the split whose mean loss the regression predicts
# Seed streams (with config.seed) of the proxies' mixtures, their data order, the
# held-out split and the candidate mixtures.
MIXTURE_STREAM, ORDER_STREAM, HOLDOUT_STREAM, CANDIDATE_STREAM = 0x5EA1, 0x5EA2, 0x5EA3, 0x5EA4


@dataclasses.dataclass(frozen=True)
class SharedInitEnsemble(_ensemble.Ensemble):
  """An Ensemble whose M members all start from the member's parameters for `key`."""

  def init(self, key, x):
    params = self.member.init(key, x)['params']
    return {'params': jax.tree.map(lambda p: jnp.broadcast_to(p, (self.size,) + p.shape), params)}


def _whole(v) -> bool:
  return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check(config, dataset) -> None:
  """ConfigError (one line naming the field) for a bad `config.method.*` field.

  Args:
    config: the run config.
    dataset: the Dataset (RegMix needs at least 2 sources with training rows).
  """
  m = config.method
  require(_whole(m.num_proxies) and m.num_proxies >= 2, 'method.num_proxies', 'an int >= 2',
          m.num_proxies)
  require(_whole(m.proxy_steps) and m.proxy_steps >= 1, 'method.proxy_steps', 'an int >= 1',
          m.proxy_steps)
  require(isinstance(m.same_init, bool), 'method.same_init', 'True or False', m.same_init)
  require(is_number(m.prior_temperature) and m.prior_temperature > 0, 'method.prior_temperature',
          'a number > 0', m.prior_temperature)
  c = m.concentration
  require(isinstance(c, (tuple, list)) and len(c) == 2 and all(is_number(v) and v > 0 for v in c)
          and c[0] <= c[1], 'method.concentration', '(low, high) with 0 < low <= high', c)
  h = m.holdout_fraction
  require(is_number(h) and 0 <= h < 1, 'method.holdout_fraction', 'a number in [0, 1)', h)
  fitted = m.num_proxies - int(round(h * m.num_proxies))
  require(fitted >= 2, 'method.holdout_fraction',
          f'small enough to leave at least 2 of the {m.num_proxies} proxies to fit', h)
  require(m.regression in regmix.KINDS, 'method.regression', f'one of {regmix.KINDS}',
          m.regression)
  require(is_number(m.ridge) and m.ridge >= 0, 'method.ridge', 'a number >= 0', m.ridge)
  require(is_number(m.candidate_concentration) and m.candidate_concentration > 0,
          'method.candidate_concentration', 'a number > 0', m.candidate_concentration)
  require(_whole(m.num_candidates) and m.num_candidates >= 1, 'method.num_candidates',
          'an int >= 1', m.num_candidates)
  require(_whole(m.top_k) and 1 <= m.top_k <= m.num_candidates, 'method.top_k',
          f'an int in [1, method.num_candidates={m.num_candidates}]', m.top_k)
  check_proxy_model(config)
  present = int((np.bincount(dataset.train.source, minlength=dataset.info.num_sources) > 0).sum())
  require(present >= 2, 'data.corruption_rates',
          f'at least 2 sources with training rows to mix (the dataset has {present})',
          tuple(config.data.corruption_rates))


def check_proxy_model(config) -> None:
  """ConfigError naming the field for a method.proxy_model.kwargs entry that is not a field of
  config.model.kwargs or not a positive integer (or a tuple of them)."""
  for key, value in config.method.proxy_model.kwargs.items():
    field = f'method.proxy_model.kwargs.{key}'
    require(key in config.model.kwargs, field,
            f'a field of config.model.kwargs ({sorted(config.model.kwargs)})', key)
    ok = (_whole(value) and value > 0) or (
        isinstance(value, (tuple, list)) and len(value) > 0
        and all(_whole(v) and v > 0 for v in value))
    require(ok, field, 'a positive integer or a tuple of them', value)


def proxy_task(config, task):
  """The task's Task with the proxy model (method.proxy_model.kwargs over config.model.kwargs)
  and config.optimizer's schedule over method.proxy_steps."""
  kwargs = {**dict(config.model.kwargs), **dict(config.method.proxy_model.kwargs)}
  cfg = type(config.model)({'name': config.model.name, 'kwargs': kwargs})
  return dataclasses.replace(task, model=build_model(cfg, task.info),
                             optimizer=make_optimizer(config.optimizer, config.method.proxy_steps))


def proxy_mixtures(config, dataset) -> tuple:
  """(prior [K], mixtures [M, K]): the row-share prior and the proxies' Dirichlet draws."""
  m = config.method
  prior = regmix.row_prior(dataset.train.source, dataset.info.num_sources)
  return prior, regmix.dirichlet_mixtures(prior, m.num_proxies, [config.seed, MIXTURE_STREAM],
                                          _strengths(m), m.prior_temperature)


def _strengths(m) -> np.ndarray:
  return regmix.log_strengths(float(m.concentration[0]), float(m.concentration[1]))


def member_mixture_indices(mixtures, batch_size: int, seed: int, step: int,
                           members: list) -> np.ndarray:
  """Batch `step` of every proxy: member m's B rows drawn from its mixture w_m.

  Each row's source is drawn from w_m, then a row of that source uniformly (as
  `sampler.mixture_indices`), from the random stream (seed, ORDER_STREAM, m, step).

  Args:
    mixtures: [M, K] the members' mixtures (0 on sources without rows).
    batch_size: B, rows per member.
    seed: the run seed.
    step: the loop step.
    members: K int arrays, the train rows of each source (`sampler.source_members`).

  Returns:
    int64 [M * B] train-row indices, member-major (as _ensemble.ensemble_step reads them).
  """
  out = np.empty((len(mixtures), batch_size), np.int64)
  for m, w in enumerate(mixtures):
    rng = np.random.default_rng([seed, ORDER_STREAM, m, step])
    picks = rng.choice(len(w), size=batch_size, p=w / w.sum())
    for k in np.unique(picks):
      at = picks == k
      out[m, at] = members[k][rng.integers(len(members[k]), size=int(at.sum()))]
  return out.reshape(-1)


def member_losses(ctx, task, params, size: int) -> np.ndarray:
  """[M] each member's mean per-example loss over the TARGET_SPLIT (meta) split."""
  losses = jax.jit(lambda p, b: jax.vmap(task.per_example_loss, (0, None))(p, b).T)
  rows = map_split(lambda batch: losses(params, batch), getattr(ctx.dataset, TARGET_SPLIT), ctx)
  assert rows.shape[1] == size, rows.shape
  return rows.mean(axis=0)


def fit_and_choose(config, prior, mixtures, losses) -> dict:
  """The held-out Spearman of each regression kind, and the chosen mixture (module docstring).

  Args:
    config: the run config (method.holdout_fraction, regression, ridge,
      candidate_concentration, num_candidates, top_k; seed).
    prior: [K] the row-share prior.
    mixtures: [M, K] the proxies' mixtures.
    losses: [M] their meta losses.

  Returns:
    summary.json's `regmix` dict (lists), with 'chosen_mixture' the [K] mixture.
  """
  m = config.method
  x, y = np.asarray(mixtures, np.float64), np.asarray(losses, np.float64)
  fit, held = regmix.holdout_split(len(x), float(m.holdout_fraction),
                                   [config.seed, HOLDOUT_STREAM])
  models, spearman = {}, {}
  for kind in regmix.KINDS:
    models[kind] = regmix.fit_regression(kind, x[fit], y[fit], float(m.ridge), int(config.seed))
    spearman[kind] = (detection.spearman(models[kind].predict(x[held]), y[held])
                      if len(held) >= 2 else None)
  model = models[m.regression]
  candidates = regmix.dirichlet_mixtures(prior, m.num_candidates, [config.seed, CANDIDATE_STREAM],
                                         (float(m.candidate_concentration),))
  choice = regmix.choose_mixture(model.predict, candidates, m.top_k)
  chosen = choice['mixture']
  predicted = model.predict(np.stack([chosen, prior]))
  return {
      'target': f'mean loss on the {TARGET_SPLIT} split after method.proxy_steps steps',
      'prior': prior.tolist(), 'num_proxies': len(x), 'proxy_steps': int(m.proxy_steps),
      'proxy_mixtures': x.tolist(), 'proxy_losses': y.tolist(),
      'fit_proxies': fit.tolist(), 'heldout_proxies': held.tolist(),
      'regression': m.regression, 'heldout_spearman': spearman,
      'linear_coef': models['linear'].coef.tolist(),
      'candidate_concentration': float(m.candidate_concentration),
      'num_candidates': int(m.num_candidates), 'top_k': int(m.top_k),
      'chosen_mixture': chosen.tolist(), 'predicted_loss_chosen': float(predicted[0]),
      'predicted_loss_prior': float(predicted[1]),
  }


def make_proxies(config, task, dataset, fitted: dict) -> tuple:
  """The 'proxies' Method and the ensemble Task it trains; its finalize fills `fitted`.

  Args:
    config: the run config.
    task: the run's Task.
    dataset: the Dataset.
    fitted: a dict the finalize writes the `regmix` report into (read by phase 'train').

  Returns:
    (Method, ensemble Task).
  """
  m = config.method
  size, b = int(m.num_proxies), int(config.batch_size)
  one = proxy_task(config, task)
  ensemble = _ensemble.ensemble_task(one, size)
  if m.same_init:
    ensemble = dataclasses.replace(ensemble, model=SharedInitEnsemble(one.model, size))
  prior, mixtures = proxy_mixtures(config, dataset)
  train = dataset.train
  members = sampler.source_members(train.source, dataset.info.num_sources)

  def step(train_state, state, batch, key):
    del key
    train_state, metrics = _ensemble.ensemble_step(one, train_state, batch, size)
    return train_state, state, metrics

  def sample(step_, state):
    del state
    return member_mixture_indices(mixtures, b, config.seed, step_, members)

  def finalize(ctx, train_state, state):
    del state
    losses = member_losses(ctx, one, train_state.params, size)
    fitted.clear()
    fitted.update(fit_and_choose(config, prior, mixtures, losses))
    rho = fitted['heldout_spearman']
    print(f'[regmix] held-out Spearman (predicted vs {TARGET_SPLIT} loss of '
          f'{len(fitted["heldout_proxies"])} proxies): '
          + ', '.join(f'{k} {"n/a" if v is None else f"{v:.3f}"}' for k, v in rho.items())
          + f'; chosen mixture ({m.regression}) {np.round(fitted["chosen_mixture"], 4).tolist()}',
          flush=True)
    out = {'regmix': dict(fitted)}
    spearman = detection.rate_spearman(fitted['chosen_mixture'], ctx.dataset.info.corruption_rates)
    if spearman is not None:
      out['weight_corruption_spearman'] = spearman
    return out

  return Method(init=no_state, step=step, train_batch_size=size * b, sample=sample,
                finalize=finalize), ensemble


def make(config, task, dataset) -> Pipeline:
  """proxies (vmapped, each on its own random mixture) -> train on the chosen mixture.

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset.

  Returns:
    The Pipeline (result 'train'; the proxies charged as extra cost).

  Raises:
    ConfigError: on a bad `config.method.*` field.
  """
  check(config, dataset)
  fitted = {}
  proxies, ensemble = make_proxies(config, task, dataset, fitted)

  def final(results):
    del results  # the proxies' finalize (run before this phase starts) filled `fitted`
    return static_mixture.for_weights(config, task, dataset,
                                      np.asarray(fitted['chosen_mixture']), 'sample')

  phases = (Phase(PROXIES, proxies, int(config.method.proxy_steps), task=ensemble),
            Phase(TRAIN, final, config.num_steps))
  return Pipeline(phases, result=TRAIN, extra_cost=(PROXIES,))
