"""Aioli online source mixing (method 'aioli'; config: configs/aioli.py).

Chen, Hu, Lourie, Cho, Re, "Aioli: A Unified Optimization Framework for
Language Model Data Mixing" (arXiv 2411.05735), Algorithms 1 and 2, with
groups = data sources; the maths (linear dynamic mixing law, LearnParams'
least-squares fit of the interaction matrix A, the exponentiated-gradient
mixture step, the schedule) is datarater/mixing/aioli.py.

One training phase of `config.num_steps` steps in T = `method.rounds` rounds
of R = num_steps // T steps (the last round also takes the remainder). Each
round starts with LearnParams: `method.sweeps` sweeps over the sources, each
visiting every source in a random order (a pure function of seed, round and
sweep) for lp_steps = floor(delta R / (sweeps K)) steps on the perturbed
mixture f e_j + (1 - f) / (K - 1) (1 - e_j), f = `method.one_hot_factor`;
then A is fitted, the mixture takes the step p_j <- p_j exp(eta sum_i A_ij)
(A normalised first, `method.normalize_a`), and the rest of the round trains
on that mixture. Every step's batch is drawn by `Method.sample` from the
mixture in force at that step (each example's source from the mixture, then
a row of that source uniformly: `data.sampler.mixture_indices`, as
static_mixture's 'sample' mode), and the model takes one optimizer step on
the batch's mean loss. The schedule is a pure function of the number of
updates applied (kept in the method state; the step itself unless
config.nonfinite='skip' dropped updates), so a resumed run continues exactly.

Losses: as the paper (per-group validation loss), each source's mean loss on
its rows of the meta split (all of them, in chunks of config.eval_batch_size),
measured only where LearnParams needs it: before the first step of a round
and after the last step of each visit, inside the step under `lax.cond`
(sweeps K + 1 passes over the meta split per round). The compute ledger
overstates this: XLA's cost analysis of the step counts both branches of
the `lax.cond`, so every step is charged a pass over the meta split (on the
digits smoke run about 0.85 MFLOP per step, a training step plus two
meta-split passes); Aioli's FLOPs are an upper bound. A source without meta
rows has loss 0 there, so its row of A is 0. Sources without training rows
take no part (weight 0, never visited).

Config fields (configs/aioli.py):
  method.eta              step size eta >= 0 (paper: 1).
  method.rounds           T >= 1 rounds.
  method.delta            fraction of a round in LearnParams, in (0, 1).
  method.sweeps           k >= 1 sweeps per LearnParams (paper: 2).
  method.one_hot_factor   f in (1/K, 1] (paper's runs: 0.75).
  method.normalize_a      bool: normalise A before the step (paper's runs: True).
  method.ema              gamma in [0, 1): 0 = Algorithm 1's accumulating step;
                          > 0 = the released code's smoothed A from the prior.
Outputs: summary.json `source_weights` (the final mixture p^T),
`source_weights_trajectory` ([[step, p], ...]: each round's mixture and the
step from which it is in force, when no update was skipped) and `aioli`
(schedule, last A raw and normalised); metrics `source_weights` (the current
p), `aioli/mixture` (the mixture the step's batch was drawn from),
`aioli/learn_params` (share of LearnParams steps), `aioli/meta_source_loss`
(the last measured per-source meta loss); plots/source_weights.png and
plots/mixture_in_force.png.
"""

from __future__ import annotations

import functools

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from datarater.data import sampler
from datarater.errors import is_number, require
from datarater.methods import _per_example as per_example
from datarater.mixing import aioli
from datarater.train.state import Method, weighted_step
from datarater.weighting import groups

DECLARES = dict(family='source', label='Aioli', source_weights=True, information='meta rows')


class State(NamedTuple):
  aioli: aioli.AioliState   # over the sources with training rows


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def plan(config, dataset) -> dict:
  """The checked hyperparameters and the derived schedule.

  Returns:
    dict: present (int [m] source ids with training rows), rounds, round_steps, lp_steps,
    learn_steps, sweeps, eta, one_hot_factor, normalize, ema.

  Raises:
    ConfigError: one line naming the bad field.
  """
  m = config.method
  require(is_number(m.eta) and m.eta >= 0, 'method.eta', 'a number >= 0', m.eta)
  require(_is_int(m.sweeps) and m.sweeps >= 1, 'method.sweeps', 'an int >= 1', m.sweeps)
  require(is_number(m.delta) and 0 < m.delta < 1, 'method.delta', 'a number in (0, 1)', m.delta)
  require(isinstance(m.normalize_a, bool), 'method.normalize_a', 'a bool', m.normalize_a)
  require(is_number(m.ema) and 0 <= m.ema < 1, 'method.ema', 'a number in [0, 1)', m.ema)
  n = int(config.num_steps)
  require(_is_int(m.rounds) and 1 <= m.rounds <= n, 'method.rounds',
          f'an int in [1, num_steps={n}]', m.rounds)
  present = present_sources(dataset)
  k = len(present)
  require(k == 1 or (is_number(m.one_hot_factor) and 1.0 / k < m.one_hot_factor <= 1),
          'method.one_hot_factor', f'a number in (1/{k}, 1] ({k} sources)', m.one_hot_factor)
  require(dataset.meta.size > 0, 'data.meta_size',
          '> 0 (Aioli measures the per-source loss on the meta split)',
          config.data.get('meta_size'))
  round_steps = n // m.rounds
  lp_steps = int(np.floor(m.delta * round_steps / (m.sweeps * k)))
  require(lp_steps >= 1, 'method.delta',
          f'>= sweeps x sources / round steps = {m.sweeps} x {k} / {round_steps} (at least '
          f'one step per visit)', m.delta)
  return dict(present=present, rounds=int(m.rounds), round_steps=round_steps, lp_steps=lp_steps,
              learn_steps=aioli.learn_params_steps(k, m.sweeps, lp_steps), sweeps=int(m.sweeps),
              eta=float(m.eta), one_hot_factor=float(m.one_hot_factor),
              normalize=bool(m.normalize_a), ema=float(m.ema))


def present_sources(dataset) -> np.ndarray:
  """int [m] ids of the sources with training rows."""
  counts = np.bincount(dataset.train.source, minlength=dataset.info.num_sources)
  return np.flatnonzero(counts > 0)


def expand_sources(v, present, k: int):
  """[..., m] over the present sources -> [..., K], 0 on the others: jnp (float32) when
  `present` is a jax array (inside jit), numpy (float64) when it is a numpy one."""
  if isinstance(present, np.ndarray):
    out = np.zeros(np.shape(v)[:-1] + (k,), np.float64)
    out[..., present] = v
    return out
  return jnp.zeros(v.shape[:-1] + (k,), jnp.float32).at[..., present].set(v)


def meta_source_losses(task, dataset, present, chunk: int):
  """params -> [m] mean loss of each present source over its meta rows (0 without rows).

  The meta split is a constant of the program, evaluated in chunks of `chunk` rows.
  """
  meta, k = dataset.meta, dataset.info.num_sources
  local = np.full(k + 1, len(present), np.int64)  # source id -> index among present (m: none)
  local[present] = np.arange(len(present))
  n = meta.size
  chunk = max(1, min(chunk, n))
  pad = -n % chunk

  def padded(a, fill=0):
    return np.concatenate([a, np.full((pad,) + a.shape[1:], fill, a.dtype)])
  x = jnp.asarray(padded(meta.x)).reshape(-1, chunk, *meta.x.shape[1:])
  y = jnp.asarray(padded(meta.y)).reshape(-1, chunk, *meta.y.shape[1:])
  group = jnp.asarray(padded(local[meta.source], len(present))).reshape(-1, chunk)

  def fn(params):
    losses = jax.lax.map(lambda b: task.per_example_loss(params, {'x': b[0], 'y': b[1]}), (x, y))
    means, _ = groups.segment_mean(losses.reshape(-1), group.reshape(-1), len(present) + 1)
    return means[:len(present)]
  return fn


def make(config, task, dataset) -> Method:
  """The Aioli Method (module docstring).

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset.

  Returns:
    Method drawing its own batches (`sample`), with `finalize`.

  Raises:
    ConfigError: on a bad `config.method.*` field (or an empty meta split).
  """
  p = plan(config, dataset)
  present, k_all = p['present'], dataset.info.num_sources
  order = aioli.perturbation_order(int(config.seed), p['rounds'], p['sweeps'], len(present))
  rule = aioli.aioli(order, p['round_steps'], p['lp_steps'], p['eta'], p['one_hot_factor'],
                     p['normalize'], p['ema'])
  losses_of = meta_source_losses(task, dataset, present, int(config.eval_batch_size))
  train, b, seed = dataset.train, config.batch_size, int(config.seed)
  members = sampler.source_members(train.source, k_all)  # once, not every step
  expand = functools.partial(expand_sources, present=jnp.asarray(present), k=k_all)
  expand_np = functools.partial(expand_sources, present=present, k=k_all)

  def init(key, train_state):
    del key, train_state
    return State(rule.init())

  def sample(step, state):
    weights = expand_np(np.asarray(rule.mixture_in_force(jax.device_get(state.aioli))))
    return sampler.mixture_indices(train.source, weights, b, seed, step, members)

  def step(train_state, state, batch, key):
    del key
    in_force = rule.mixture_in_force(state.aioli)
    learning = rule.position(state.aioli.step).learning
    params = train_state.params
    train_state, metrics, _, _, _ = weighted_step(
        task, train_state, batch, lambda losses: (jnp.full_like(losses, 1.0 / losses.shape[0]),
                                                  None))
    new = rule.update(state.aioli, lambda: losses_of(params),
                      lambda: losses_of(train_state.params))
    metrics.update({'source_weights': expand(new.mixture.weights),
                    'aioli/mixture': expand(in_force),
                    'aioli/learn_params': jnp.asarray(learning, jnp.float32),
                    'aioli/meta_source_loss': expand(new.last_loss)})
    return train_state, State(new), metrics

  def finalize(ctx, train_state, state):
    s = jax.device_get(state.aioli)
    per_example.plot_source_curve(ctx, 'source_weights', 'source_weights.png',
                                  f'Aioli mixture p (eta={p["eta"]}, {p["rounds"]} rounds)')
    per_example.plot_source_curve(ctx, 'aioli/mixture', 'mixture_in_force.png',
                                  'Aioli: mixture each step draws from (window mean)')
    done = int(s.rounds_done)
    trajectory = [[r * p['round_steps'] + p['learn_steps'], expand_np(s.trajectory[r]).tolist()]
                  for r in range(done)]
    used = np.asarray(aioli.normalize_interaction(s.interaction) if p['normalize']
                      else s.interaction)
    a_raw, a_used = np.zeros((k_all, k_all)), np.zeros((k_all, k_all))
    a_raw[np.ix_(present, present)] = s.interaction
    a_used[np.ix_(present, present)] = used
    final = expand_np(np.asarray(s.mixture.weights, np.float64))
    print(f'[aioli] {done} rounds; mixture {np.round(final, 4).tolist()}', flush=True)
    return {'source_weights': final.tolist(), 'source_weights_trajectory': trajectory,
            'aioli': {'rounds': p['rounds'], 'rounds_done': done,
                      'round_steps': p['round_steps'], 'lp_steps': p['lp_steps'],
                      'learn_params_steps': p['learn_steps'],
                      'delta_effective': p['learn_steps'] / p['round_steps'],
                      'perturbed_mixtures': expand_np(rule.design).tolist(),
                      'visited_sources': present.tolist(),
                      'interaction': a_raw.tolist(), 'interaction_normalized': a_used.tolist()}}

  return Method(init=init, step=step, train_batch_size=b, sample=sample, finalize=finalize)
