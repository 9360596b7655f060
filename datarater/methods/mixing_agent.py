"""Data Mixing Agent (method 'mixing_agent'; config: configs/mixing_agent.py).

"Data Mixing Agent: Learning to Re-weight Domains for Continual Pre-training"
(issue #21), with domains = data sources, at this project's scale: a small
policy network re-decides the source mixture from the training state and is
trained by reinforcement learning on short proxy runs, then applied
unchanged to the run that trains the result model. The maths (state
features, MLP policy, trajectories, REINFORCE with a leave-one-out
baseline, the in-jit batch draw) is datarater/mixing/agent.py. Two phases:

1. 'agent' (`method.agent_steps` steps; trains no model, so the loop
   evaluates nothing there): each step is one RL update. `method.population`
   trajectories are vmapped: each trains a fresh proxy model (the task's model
   with `method.proxy_model.kwargs` over its kwargs, config.optimizer with the
   schedule over the proxy's steps, as RegMix's proxies) for
   `method.proxy_steps` steps of config.batch_size rows; every
   `method.proxy_decision_every` steps the policy reads the proxy's per-source
   meta losses and picks the mixture of the next stretch, with Gaussian noise
   `method.policy_noise` in logit space. Reward: minus the proxy's mean loss
   over the META split after its last step. The policy ascends the
   REINFORCE-LOO gradient with Adam (`method.agent_learning_rate`). The data
   of one update: `Method.sample` draws, for each proxy step and each source,
   B rows of that source uniformly (with replacement; seeded by (seed, step));
   inside the step each row picks its source from the mixture and the next
   unused row of that source's pool (`agent.draw_from_pool`: exactly the
   sampling of static_mixture's 'sample' mode). The P trajectories of one
   update share the proxy's initialisation, the pools and the categorical
   draws (common random numbers); only their action noise differs.
2. 'train' (config.num_steps steps): the task's model from scratch, every
   step's batch drawn from the mixture in force (`data.sampler.
   mixture_indices`, as Aioli's); at step 0 and then every
   `method.decision_every` steps the trained policy, deterministic (no
   noise) and unchanged, reads the model's own per-source meta losses and sets
   the mixture. The policy sees progress t / T and losses relative to the
   first decision's, so the proxy and the target runs read alike even with
   other lengths and model sizes. It is the run's result.

Losses: each source's mean loss over its rows of the meta split (all of
them, in chunks of config.eval_batch_size; `methods.aioli.meta_source_losses`);
the mean held-out loss is their row-count-weighted mean (the meta rows of
sources with training rows). A source without meta rows has loss 0 there.
Sources without training rows take no part (weight 0).

Continual pre-training (`method.pretrain_sources`, the paper's setting): the model is
pre-trained on a source field of sources and continued on the mixture the policy decides;
the phases, the field-balanced reward and the reference arms are in
datarater/methods/_continual.py.

Re-use (`method.policy_from`, a finished mixing_agent run directory): every run
writes the policy it applied to `POLICY_FILE` (agent_policy.msgpack, flax msgpack)
in its run directory. With policy_from set, the 'agent' phase runs no step: the
policy saved there is loaded (checked before anything runs: the number of sources
with training rows and method.policy_hidden must match; the target model, its
size, the dataset and num_steps may differ) and applied unchanged in 'train', and
that run's agent-phase FLOPs and gradient evaluations (its summary's
phases.agent.ledger) are this run's 'agent' ledger, charged to the method as
DataRater's method.rater_from charges the imported meta-training.

Compute: the agent phase's steps and FLOPs (every trajectory's proxy steps and
meta evaluations and the policy update, counted from the compiled vmapped step)
are charged to the method (Pipeline.extra_cost), so `method_ledger` = agent +
train. Its `gradient_evaluations` are the proxies' P * proxy_steps * B rows per
update; `examples_processed` adds their P * (decisions + 1) passes over the
meta split. The 'train' phase's decisions run under `lax.cond`, and XLA's cost
analysis counts both branches, so every train step is charged a meta-split pass
(an upper bound, as Aioli's).

summary.json: `source_weights` (the last mixture decided in 'train'),
`source_weights_time_avg` (the mixture in force averaged over the train
steps: what the model was trained on), `source_weights_trajectory` ([[step,
mixture], ...] of every decision), `decision_meta_losses` ([[step, per-source
meta losses], ...]: what each decision read), `weight_corruption_spearman` (of
the time average with the corruption rates, where known) and `mixing_agent`
(estimator, reward, features, schedule, policy size, the agent's mean reward
per RL update; with policy_from those of the run that trained the policy, plus
`policy_from` and `imported_agent_cost`). Metrics: 'agent/reward', 'agent/reward_std',
'agent/proxy_meta_loss', 'agent/proxy_train_loss', 'agent/grad_norm',
'agent/mixture' (agent phase: the proxies' mean mixture), 'source_weights' (the
mixture each train step drew from) and 'mixing_agent/meta_source_loss';
plots/source_weights.png (train phase) and plots/agent_mixture.png (agent phase).

Config fields (configs/mixing_agent.py documents each): population,
agent_steps, agent_learning_rate, proxy_steps, proxy_decision_every,
proxy_model.kwargs, decision_every, policy_hidden, policy_noise, policy_from,
pretrain_sources, pretrain_steps.
"""

from __future__ import annotations

import functools
import json
import numbers
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from datarater.data import sampler
from datarater.errors import ConfigError, is_number, require
from datarater.methods import _continual
from datarater.methods import _per_example as per_example
from datarater.methods.aioli import expand_sources, meta_source_losses, present_sources
from datarater.methods.regmix import check_proxy_model, proxy_task
from datarater.mixing import agent
from datarater.report import detection
from datarater.train.pipeline import Phase, Pipeline
from datarater.train.state import Method, weighted_step

DECLARES = dict(family='source', label='Mixing Agent', source_weights=True,
                information='meta rows')

AGENT, TRAIN = 'agent', 'train'
POOL_STREAM = 0xA6E1  # seed stream (with config.seed and the step) of the proxies' row pools
ESTIMATOR = 'REINFORCE with a leave-one-out baseline over the population'
REWARD = 'minus the mean meta-split loss of the proxy after its last step'
POLICY_FILE = 'agent_policy.msgpack'  # the trained policy's parameters (flax msgpack)
IMPORTED_KEYS = ('population', 'agent_steps', 'proxy_steps', 'proxy_decision_every',
                 'policy_noise', 'agent_mean_reward')  # the agent training a reused policy had


def _whole(v) -> bool:
  return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check(config, dataset) -> None:
  """ConfigError (one line naming the field) for a bad `config.method.*` field.

  Args:
    config: the run config.
    dataset: the Dataset (at least 2 sources with training rows, a non-empty meta split).
  """
  m = config.method
  require(_whole(m.population) and m.population >= 2, 'method.population',
          'an int >= 2 (the leave-one-out baseline needs two trajectories)', m.population)
  require(_whole(m.agent_steps) and m.agent_steps >= 1, 'method.agent_steps', 'an int >= 1',
          m.agent_steps)
  require(is_number(m.agent_learning_rate) and m.agent_learning_rate > 0,
          'method.agent_learning_rate', 'a number > 0', m.agent_learning_rate)
  require(_whole(m.proxy_steps) and m.proxy_steps >= 1, 'method.proxy_steps', 'an int >= 1',
          m.proxy_steps)
  e = m.proxy_decision_every
  require(_whole(e) and 1 <= e <= m.proxy_steps and m.proxy_steps % e == 0,
          'method.proxy_decision_every',
          f'an int >= 1 dividing method.proxy_steps={m.proxy_steps}', e)
  n = config.num_steps
  require(_whole(m.decision_every) and 1 <= m.decision_every <= n, 'method.decision_every',
          f'an int in [1, num_steps={n}]', m.decision_every)
  h = m.policy_hidden
  require(isinstance(h, (tuple, list)) and all(_whole(v) and v >= 1 for v in h),
          'method.policy_hidden', 'a tuple of ints >= 1 (() = a linear policy)', h)
  require(is_number(m.policy_noise) and m.policy_noise > 0, 'method.policy_noise',
          'a number > 0', m.policy_noise)
  require(isinstance(m.policy_from, str), 'method.policy_from',
          'a finished mixing_agent run directory or empty', m.policy_from)
  if m.policy_from:
    imported_agent_cost(m.policy_from)
  check_proxy_model(config)
  present = len(present_sources(dataset))
  require(present >= 2, 'data.corruption_rates',
          f'at least 2 sources with training rows to mix (the dataset has {present})',
          tuple(config.data.corruption_rates))
  require(dataset.meta.size > 0, 'data.meta_size',
          '> 0 (the agent reads per-source meta losses and is rewarded on the meta split)',
          config.data.get('meta_size'))


def held_out(task, dataset, present, chunk: int, field_of=None):
  """params -> (per-source meta losses [m], their row-count-weighted mean); with `field_of`
  ([m] field ids, continual pre-training) the mean over the fields of each field's
  row-count-weighted mean (`_continual.field_weights`)."""
  per_source = meta_source_losses(task, dataset, present, chunk)
  local = np.full(dataset.info.num_sources, -1)
  local[present] = np.arange(len(present))
  counts = np.bincount(local[dataset.meta.source][local[dataset.meta.source] >= 0],
                       minlength=len(present))
  one_field = np.zeros(len(present), int)
  weights = jnp.asarray(_continual.field_weights(counts, one_field if field_of is None
                                                 else field_of), jnp.float32)

  def fn(params):
    losses = per_source(params)
    return losses, jnp.sum(weights * losses)
  return fn


def pool_indices(members: list, present, proxy_steps: int, batch_size: int, seed: int,
                 step: int) -> np.ndarray:
  """The row pools of agent update `step`: int64 [proxy_steps * m * B] train-row indices.

  Entry (s, j, i) (row-major) is a row of source present[j], uniformly with replacement,
  from the random stream (seed, POOL_STREAM, step).
  """
  rng = np.random.default_rng([seed, POOL_STREAM, step])
  out = np.empty((proxy_steps, len(present), batch_size), np.int64)
  for j, k in enumerate(present):
    out[:, j] = members[k][rng.integers(len(members[k]), size=(proxy_steps, batch_size))]
  return out.reshape(-1)


def save_policy(ctx, params) -> None:
  """Writes the policy's parameters to `POLICY_FILE` in the run directory (flax msgpack;
  the primary process only; a temporary file then os.replace, so it is complete or absent)."""
  if not ctx.run.primary:
    return
  path = ctx.run.file(POLICY_FILE)
  tmp = f'{path}.tmp'
  with open(tmp, 'wb') as f:
    f.write(serialization.to_bytes(jax.device_get(params)))
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def load_policy(run_dir: str, template):
  """The policy parameters a finished mixing_agent run saved (`POLICY_FILE` in `run_dir`).

  Args:
    run_dir: the run directory (method.policy_from).
    template: this run's policy parameters (or their jax.eval_shape).

  Returns:
    The parameters, structured as `template`.

  Raises:
    ConfigError: naming method.policy_from when the file is missing or unreadable, or its
      parameters do not fit this run's policy (the number of sources with training rows and
      method.policy_hidden must match the run that trained it).
  """
  path = os.path.join(run_dir, POLICY_FILE)
  require(os.path.isfile(path), 'method.policy_from',
          f'a finished mixing_agent run directory holding {POLICY_FILE}', run_dir)
  try:
    with open(path, 'rb') as f:
      raw = serialization.msgpack_restore(f.read())
  except (OSError, ValueError) as e:
    raise ConfigError(f'config.method.policy_from={run_dir!r}: {POLICY_FILE} is not readable '
                      f'({type(e).__name__})') from None
  shapes = lambda tree: jax.tree.map(lambda x: tuple(np.shape(x)), tree)  # noqa: E731
  if not isinstance(raw, dict) or shapes(raw) != shapes(serialization.to_state_dict(template)):
    raise ConfigError(f'config.method.policy_from={run_dir!r}: its policy does not fit this '
                      'run\'s (the number of sources with training rows and method.policy_hidden '
                      'must match the run that trained it)')
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32),
                      serialization.from_state_dict(template, raw))


def _imported_summary(run_dir: str) -> dict:
  path = os.path.join(run_dir, 'summary.json')
  require(os.path.isfile(path), 'method.policy_from', 'a finished run directory (summary.json)',
          run_dir)
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError:
    raise ConfigError(f'config.method.policy_from={run_dir!r}: its summary.json is not valid '
                      'JSON') from None


def imported_agent_cost(run_dir: str) -> dict:
  """The agent-phase compute of the run whose policy `method.policy_from` reuses (its summary's
  phases.agent.ledger, plus phases.proxy_pretrain.ledger of a continual run: FLOPs and
  gradient evaluations), charged to this run's method so the compute comparisons stay honest
  (as DataRater's method.rater_from)."""
  summary = _imported_summary(run_dir)
  phases = summary.get('phases', {})
  ledger = phases.get(AGENT, {}).get('ledger')
  require(summary.get('method') == 'mixing_agent' and ledger is not None, 'method.policy_from',
          'a mixing_agent run that trained its policy (summary.json phases.agent.ledger)',
          run_dir)
  # a continual run's proxies continued a pre-trained proxy, charged with the agent
  proxy = phases.get(_continual.PROXY_PRETRAIN, {}).get('ledger') or {}
  return {k: float(ledger.get(k, 0.0)) + float(proxy.get(k, 0.0))
          for k in ('flops', 'gradient_evaluations')}


def imported_agent_report(run_dir: str) -> dict:
  """The agent training the reused policy had (`IMPORTED_KEYS` of its summary's mixing_agent)."""
  info = _imported_summary(run_dir).get('mixing_agent') or {}
  return {k: info.get(k) for k in IMPORTED_KEYS}


class AgentState(NamedTuple):
  """params: the policy's. opt_state: Adam's. rewards: [agent_steps] mean reward per update."""
  params: object
  opt_state: object
  rewards: jax.Array


class TargetState(NamedTuple):
  """step: updates applied. mixture [m]: in force. losses [m]: per-source meta losses at the
  last decision. scale: the mean meta loss at the first decision. mixture_sum [m]: the sum
  over steps of the mixture in force. decisions: decisions made. trajectory [D, m]: the
  mixtures decided. decision_losses [D, m]: the losses each decision read."""
  step: jax.Array
  mixture: jax.Array
  losses: jax.Array
  scale: jax.Array
  mixture_sum: jax.Array
  decisions: jax.Array
  trajectory: jax.Array
  decision_losses: jax.Array


def make_agent_phase(config, task, dataset, policy, report: dict, field_of=None,
                     proxy_init=None) -> tuple:
  """The 'agent' Method (RL updates on proxy trajectories) and its Task (the proxy's).

  Args:
    config: the run config.
    task: the run's Task.
    dataset: the Dataset.
    policy: the agent.Policy.
    report: a dict the finalize fills with the training record (read by phase 'train').
    field_of: continual pre-training's [m] field ids (field-balanced reward), or None.
    proxy_init: the pre-trained proxy parameters every trajectory continues from (continual
      pre-training), or None (a fresh proxy per update).

  Returns:
    (Method, proxy Task).
  """
  m_cfg = config.method
  present = present_sources(dataset)
  m, b, seed = len(present), int(config.batch_size), int(config.seed)
  p, steps, every = int(m_cfg.population), int(m_cfg.proxy_steps), int(m_cfg.proxy_decision_every)
  noise, agent_steps = float(m_cfg.policy_noise), int(m_cfg.agent_steps)
  proxy = proxy_task(config, task)
  evaluate = held_out(proxy, dataset, present, int(config.eval_batch_size), field_of)
  optimizer = optax.adam(float(m_cfg.agent_learning_rate))
  members = sampler.source_members(dataset.train.source, dataset.info.num_sources)
  decisions = steps // every
  present_j = jnp.asarray(present)
  k_all = dataset.info.num_sources

  def environment(pool):
    def init(key):
      params = proxy.init_params(key) if proxy_init is None else proxy_init
      return params, proxy.optimizer.init(params)

    def train(state, mixture, t, key):
      params, opt_state = state
      source, rank = agent.draw_from_pool(key, mixture, b)
      batch = {'x': pool['x'][t][source, rank], 'y': pool['y'][t][source, rank]}
      loss, grads = jax.value_and_grad(lambda q: proxy.per_example_loss(q, batch).mean())(params)
      updates, opt_state = proxy.optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    return agent.Environment(init, train, lambda state: evaluate(state[0]))

  def init(key, train_state):
    del train_state
    params = policy.init(key)
    return AgentState(params, optimizer.init(params), jnp.zeros((agent_steps,), jnp.float32))

  def sample(step, state):
    del state
    return pool_indices(members, present, steps, b, seed, step)

  def step(train_state, state, batch, key):
    pool = {k: batch[k].reshape((steps, m, b) + batch[k].shape[1:]) for k in ('x', 'y')}
    params, opt_state, runs, grads = agent.agent_step(
        policy, optimizer, state.params, state.opt_state, environment(pool), key, p, steps,
        every, noise)
    i = jnp.minimum(train_state.step, agent_steps - 1)
    mixture = expand_sources(runs.mixtures.mean((0, 1)), present_j, k_all)
    metrics = {'agent/reward': runs.reward.mean(), 'agent/reward_std': runs.reward.std(),
               'agent/proxy_meta_loss': runs.final_loss.mean(),
               'agent/proxy_train_loss': runs.train_loss.mean(),
               'agent/grad_norm': optax.global_norm(grads), 'agent/mixture': mixture}
    state = AgentState(params, opt_state, state.rewards.at[i].set(runs.reward.mean()))
    return train_state._replace(step=train_state.step + 1), state, metrics

  per_update = p * (steps * b + (decisions + 1) * dataset.meta.size)

  def adjust_ledger(ledger, state):
    del state
    return {**ledger, 'examples_processed': ledger['steps'] * per_update}

  def finalize(ctx, train_state, state):
    del train_state
    per_example.plot_source_curve(ctx, 'agent/mixture', 'agent_mixture.png',
                                  'Mixing Agent: mean proxy mixture per RL update (window mean)')
    save_policy(ctx, state.params)
    rewards = np.asarray(jax.device_get(state.rewards), np.float64)
    report.clear()
    report.update(rewards=rewards.tolist(),
                  policy_parameters=agent.num_parameters(state.params))
    window = max(1, min(5, len(rewards) // 2)) if len(rewards) > 1 else 1
    print(f'[mixing_agent] {len(rewards)} RL updates of {p} proxy trajectories; mean reward '
          f'{rewards[:window].mean():.4f} (first {window}) -> {rewards[-window:].mean():.4f} '
          f'(last {window})', flush=True)
    return {}

  method = Method(init=init, step=step, train_batch_size=steps * m * b, sample=sample,
                  finalize=finalize, grad_evals=p * steps * b, adjust_ledger=adjust_ledger)
  return method, proxy


def make_target_method(config, task, dataset, policy, params, field_of=None) -> Method:
  """The 'train' Method: the task's model on the mixture the policy decides (phase 2).

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset.
    policy: the agent.Policy.
    params: its trained parameters (applied unchanged, deterministic).
    field_of: continual pre-training's [m] field ids (field-balanced mean loss), or None.

  Returns:
    Method drawing its own batches (`sample`), with `finalize`.
  """
  present = present_sources(dataset)
  m, k_all, b, seed = len(present), dataset.info.num_sources, config.batch_size, int(config.seed)
  n, every = int(config.num_steps), int(config.method.decision_every)
  num_decisions = -(-n // every)
  evaluate = held_out(task, dataset, present, int(config.eval_batch_size), field_of)
  members = sampler.source_members(dataset.train.source, k_all)
  params = jax.tree.map(jnp.asarray, params)
  expand = functools.partial(expand_sources, present=jnp.asarray(present), k=k_all)
  expand_np = functools.partial(expand_sources, present=present, k=k_all)

  def decide(state, model_params, t):
    """state with the policy's mixture for the steps from t on (losses of `model_params`)."""
    losses, _ = evaluate(model_params)
    features = agent.state_features(losses, state.losses, state.mixture, t / n, state.scale)
    mixture = agent.mixture_of(policy.apply(params, features))
    return state._replace(mixture=mixture, losses=losses, decisions=state.decisions + 1,
                          trajectory=state.trajectory.at[state.decisions].set(mixture),
                          decision_losses=state.decision_losses.at[state.decisions].set(losses))

  @jax.jit
  def first(model_params):
    losses, overall = evaluate(model_params)
    uniform = jnp.full((m,), 1.0 / m, jnp.float32)
    zeros = jnp.zeros((num_decisions, m), jnp.float32)
    state = TargetState(jnp.zeros((), jnp.int32), uniform, losses, overall,
                        jnp.zeros((m,), jnp.float32), jnp.zeros((), jnp.int32), zeros, zeros)
    return decide(state, model_params, 0)

  def init(key, train_state):
    del key
    return first(train_state.params)

  def sample(step, state):
    weights = expand_np(np.asarray(jax.device_get(state.mixture), np.float64))
    return sampler.mixture_indices(dataset.train.source, weights, b, seed, step, members)

  def step(train_state, state, batch, key):
    del key
    in_force = state.mixture
    train_state, metrics, _, _, _ = weighted_step(
        task, train_state, batch, lambda losses: (jnp.full_like(losses, 1.0 / losses.shape[0]),
                                                  None))
    t = state.step + 1
    state = state._replace(step=t, mixture_sum=state.mixture_sum + in_force)
    state = jax.lax.cond((t % every == 0) & (t < n),
                         lambda s: decide(s, train_state.params, t), lambda s: s, state)
    metrics.update({'source_weights': expand(in_force),
                    'mixing_agent/meta_source_loss': expand(state.losses)})
    return train_state, state, metrics

  def finalize(ctx, train_state, state):
    del train_state
    s = jax.device_get(state)
    per_example.plot_source_curve(ctx, 'source_weights', 'source_weights.png',
                                  'Mixing Agent: mixture each step draws from (window mean)')
    done = int(s.decisions)
    final = expand_np(np.asarray(s.mixture, np.float64))
    average = expand_np(np.asarray(s.mixture_sum, np.float64) / max(int(s.step), 1))
    trajectory = [[j * every, expand_np(s.trajectory[j]).tolist()] for j in range(done)]
    print(f'[mixing_agent] {done} decisions; final mixture {np.round(final, 4).tolist()}, '
          f'time average {np.round(average, 4).tolist()}', flush=True)
    out = {'source_weights': final.tolist(), 'source_weights_time_avg': average.tolist(),
           'source_weights_trajectory': trajectory,
           'decision_meta_losses': [[j * every, expand_np(s.decision_losses[j]).tolist()]
                                    for j in range(done)]}
    spearman = detection.rate_spearman(average, ctx.dataset.info.corruption_rates)
    if spearman is not None:
      out['weight_corruption_spearman'] = spearman
    return out

  return Method(init=init, step=step, train_batch_size=b, sample=sample, finalize=finalize)


def import_phase(trainer: Method, config, policy, report: dict) -> Method:
  """The 'agent' Method with method.policy_from: it runs no step (the phase has 0 steps);
  its init holds the saved policy (loaded and checked now, before anything runs), its finalize
  writes it to this run's `POLICY_FILE` and its ledger is the imported run's agent cost."""
  run_dir = config.method.policy_from
  loaded = load_policy(run_dir, jax.eval_shape(policy.init, jax.random.key(0)))
  cost = imported_agent_cost(run_dir)
  imported = imported_agent_report(run_dir)
  optimizer = optax.adam(float(config.method.agent_learning_rate))

  def init(key, train_state):
    del key, train_state
    return AgentState(loaded, optimizer.init(loaded), jnp.zeros((0,), jnp.float32))

  def charge_import(ledger, state):
    del state
    return {**ledger, **{k: ledger[k] + v for k, v in cost.items()}}

  def finalize(ctx, train_state, state):
    del train_state
    save_policy(ctx, state.params)
    report.clear()
    report.update(imported, policy_parameters=agent.num_parameters(state.params),
                  policy_from=run_dir, imported_agent_cost=cost)
    print(f'[mixing_agent] policy from {run_dir} (no agent phase; its agent cost, '
          f'{cost["flops"]:.3g} FLOPs, charged to this run)', flush=True)
    return {}

  return trainer._replace(init=init, finalize=finalize, adjust_ledger=charge_import)


def make(config, task, dataset) -> Pipeline:
  """agent (RL on vmapped proxy trajectories) -> train with the policy applied unchanged.

  With method.policy_from the 'agent' phase runs no step: the policy a finished run saved is
  applied, and that run's agent-phase cost is this phase's ledger (charged to the method).

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset.

  Returns:
    The Pipeline (result 'train'; the agent phase charged as extra cost).

  Raises:
    ConfigError: on a bad `config.method.*` field (method.policy_from: a missing run or
      policy file, or a policy that does not fit this run's).
  """
  check(config, dataset)
  m = config.method
  present = present_sources(dataset)
  field_of = _continual.fields(config, present, dataset.meta.source)
  policy = agent.mlp_policy(len(present), tuple(int(h) for h in m.policy_hidden))
  report = {}
  if field_of is not None and not m.policy_from:  # trajectories continue the pre-trained proxy
    proxy = proxy_task(config, task)

    def trainer(results):
      return make_agent_phase(config, task, dataset, policy, report, field_of,
                              results[_continual.PROXY_PRETRAIN].train_state.params)[0]
  else:
    trainer, proxy = make_agent_phase(config, task, dataset, policy, report, field_of)
    if m.policy_from:
      trainer = import_phase(trainer, config, policy, report)

  def target(results):
    params = results[AGENT].method_state.params
    method = make_target_method(config, task, dataset, policy, params, field_of)
    finalize = method.finalize

    def with_report(ctx, train_state, state):
      out = finalize(ctx, train_state, state)
      trained = {'population': int(m.population), 'agent_steps': int(m.agent_steps),
                 'proxy_steps': int(m.proxy_steps),
                 'proxy_decision_every': int(m.proxy_decision_every),
                 'policy_noise': float(m.policy_noise), 'agent_mean_reward': report.get('rewards')}
      if m.policy_from:  # the agent training of the run the policy comes from
        trained = {**{k: report.get(k) for k in IMPORTED_KEYS},
                   'policy_from': report.get('policy_from'),
                   'imported_agent_cost': report.get('imported_agent_cost')}
      out['mixing_agent'] = {
          'estimator': ESTIMATOR,
          'reward': REWARD if field_of is None else _continual.REWARD, 'features': [
              *agent.FEATURES_PER_SOURCE, *agent.GLOBAL_FEATURES],
          **trained, 'decision_every': int(m.decision_every),
          'policy_hidden': list(m.policy_hidden),
          'policy_parameters': report.get('policy_parameters'),
          'policy_file': POLICY_FILE, 'sources': present.tolist()}
      return out
    return method._replace(finalize=with_report)

  agent_phase = Phase(AGENT, trainer, 0 if m.policy_from else int(m.agent_steps),
                      trains_model=False, task=proxy)
  if field_of is None:
    return Pipeline((agent_phase, Phase(TRAIN, target, config.num_steps)), result=TRAIN,
                    extra_cost=(AGENT,))
  pretrain = _continual.pretrain_phases(config, task, proxy, dataset, present, field_of,
                                        with_proxy=not m.policy_from)
  phases = (*pretrain, agent_phase,
            Phase(TRAIN, target, config.num_steps, start_from=_continual.PRETRAIN),
            *_continual.arm_phases(config, task, dataset, present, field_of))
  return Pipeline(phases, result=TRAIN, baseline='all_sources',
                  report=_continual.report(dataset, present, field_of),
                  extra_cost=(AGENT,) + tuple(p.name for p in pretrain[1:]))
