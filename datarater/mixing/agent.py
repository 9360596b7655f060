"""Data Mixing Agent: a learned policy that re-decides the source mixture during training.

Seed paper: "Data Mixing Agent: Learning to Re-weight Domains for Continual
Pre-training" (issue #21). Its idea: a small policy network maps the state of
a training run (per-domain evaluation losses, how they move, the current
mixture) to the next mixture; it is trained by reinforcement learning on many
short proxy runs against a held-out evaluation reward, then applied unchanged
to a new run. ../shared/REFERENCES.md holds no entry for this paper, so its
network, its RL algorithm and its scale are NOT reproduced here; this module
is this project's construction of the idea at CPU scale (pure jax / optax /
numpy, no config, no I/O):

1. The state (`state_features`), at a decision at step t of a run of T steps,
   over the m sources:

       [ l / L0,  (l - l_prev) / L0,  m * w,  t / T ]        (3 m + 1 numbers)

   l [m]: each source's mean loss on its held-out (meta) rows now; l_prev:
   the same at the previous decision (l itself at the first); w: the mixture
   in force until now (uniform before the first decision); L0: the mean
   held-out loss at the first decision. Dividing by L0 and using the progress
   t / T make the state scale-free, so a policy trained on short proxy runs of
   a small model reads a long run of a larger model on the same sources.
2. The policy (`mlp_policy`): an MLP (tanh hidden layers) from the state to m
   logits, the mixture being their softmax (`mixture_of`). The last layer
   starts at zero: the untrained policy is the uniform mixture. Its output
   layer's bias can carry a per-source preference (sources are fixed, named
   domains, as in the paper), the rest reacts to the state.
   During RL the action is a Gaussian in logit space, a = mu(s) + sigma xi,
   xi ~ N(0, I), mixture softmax(a) (`act`); applied to a new run the policy
   is deterministic, a = mu(s) (sigma = 0).
3. A trajectory (`rollout`): a short run of a proxy model given as an
   `Environment` of pure functions (init, one training step on a batch drawn
   from a mixture, per-source held-out losses). Every `decision_every` steps
   the policy chooses the mixture for the next stretch; the reward is MINUS
   THE HELD-OUT LOSS AT THE END of the trajectory (mean over all held-out
   rows; lower final held-out loss = higher reward). No intermediate rewards.
4. The RL update (`agent_step`): REINFORCE (the score-function, or
   likelihood-ratio, policy-gradient estimator; Williams 1992) with a
   leave-one-out baseline over a population of P trajectories vmapped on one
   host (`policy_gradient`, "RLOO": Kool, van Hoof, Welling 2019):

       g = (1/P) sum_i A_i grad_theta sum_d log pi_theta(a_id | s_id),
       A_i = R_i - (1/(P-1)) sum_{j != i} R_j.

   The baseline of member i uses only the other members' rewards, so it does
   not depend on member i's actions and g stays unbiased for the gradient of
   the expected reward; it removes the common part of the rewards (all proxies
   end near the same loss), and g is exactly invariant to a constant shift of
   every reward. Why REINFORCE and not an evolution-strategies estimator: the
   exploration is in the actions (m logits per decision) rather than in every
   policy parameter, the reward is a black box (no differentiation through
   the proxy's training), and the population baseline costs nothing. The P
   trajectories of one update share their proxy's initialisation and data
   draws (common random numbers: the categorical draws of a batch use the
   same key), so their rewards differ by the mixtures chosen; the states of
   trajectory i are whatever its own actions led to. The update ascends g
   with any optax optimizer (the method: Adam).

`draw_from_pool` is the batch draw the proxies use inside a jitted step: each
of B rows picks its source from the mixture, then the next unused row of that
source's pool of B rows drawn (uniformly, with replacement) beforehand.

Invalid Python arguments raise ValueError naming the argument.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

FEATURES_PER_SOURCE = ('loss / L0', 'loss change since the last decision / L0',
                       'mixture in force x number of sources')
GLOBAL_FEATURES = ('progress t / T',)


def _check(name: str, ok: bool, requirement: str, value) -> None:
  if not ok:
    raise ValueError(f'{name} must be {requirement}, got {value!r}')


def _is_int(x) -> bool:
  return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


# ----------------------------------------------------------------------------- state and policy


def num_features(num_sources: int) -> int:
  """3 m + 1: the length of `state_features` for m sources."""
  return len(FEATURES_PER_SOURCE) * num_sources + len(GLOBAL_FEATURES)


def state_features(losses, previous, mixture, progress, scale):
  """The policy's input at a decision (module docstring, item 1).

  Args:
    losses: [m] each source's held-out loss now.
    previous: [m] the same at the previous decision (`losses` at the first).
    mixture: [m] the mixture in force until now.
    progress: t / T in [0, 1].
    scale: L0 > 0, the mean held-out loss at the first decision (<= 0: 1 is used).

  Returns:
    [3 m + 1] float32.
  """
  losses = jnp.asarray(losses, jnp.float32)
  scale = jnp.asarray(scale, jnp.float32)
  scale = jnp.where(scale > 0, scale, 1.0)
  m = losses.shape[-1]
  return jnp.concatenate([losses / scale, (losses - jnp.asarray(previous, jnp.float32)) / scale,
                          m * jnp.asarray(mixture, jnp.float32),
                          jnp.reshape(jnp.asarray(progress, jnp.float32), (1,))])


class Policy(NamedTuple):
  """init(key) -> params (a list of {'w', 'b'} layers); apply(params, features [F]) -> logits
  [m]; num_sources: m; hidden: the hidden widths."""
  init: Callable
  apply: Callable
  num_sources: int
  hidden: tuple


def mlp_policy(num_sources: int, hidden=(32,)) -> Policy:
  """The policy network: features [3 m + 1] -> tanh hidden layers -> m logits.

  Hidden layers start LeCun-normal (std 1/sqrt(fan in)) with zero biases; the
  output layer starts at zero, so the untrained policy's mixture is uniform.

  Args:
    num_sources: m >= 1.
    hidden: widths of the hidden layers (() = a linear policy).

  Returns:
    Policy.
  """
  _check('num_sources', _is_int(num_sources) and num_sources >= 1, 'an int >= 1', num_sources)
  hidden = tuple(hidden)
  _check('hidden', all(_is_int(h) and h >= 1 for h in hidden), 'a tuple of ints >= 1', hidden)
  sizes = (num_features(num_sources),) + hidden + (num_sources,)

  def init(key):
    layers = []
    keys = jax.random.split(key, len(sizes) - 1)
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
      last = i == len(sizes) - 2
      w = (jnp.zeros((n_in, n_out)) if last
           else jax.random.normal(k, (n_in, n_out)) / math.sqrt(n_in))
      layers.append({'w': w.astype(jnp.float32), 'b': jnp.zeros((n_out,), jnp.float32)})
    return layers

  def apply(params, features):
    h = jnp.asarray(features, jnp.float32)
    for layer in params[:-1]:
      h = jnp.tanh(h @ layer['w'] + layer['b'])
    return h @ params[-1]['w'] + params[-1]['b']

  return Policy(init, apply, num_sources, hidden)


def num_parameters(params) -> int:
  """Number of scalars in a params pytree."""
  return int(sum(np.size(p) for p in jax.tree.leaves(params)))


def mixture_of(logits):
  """softmax(logits): the mixture on the simplex."""
  return jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1)


def act(policy: Policy, params, features, key, noise):
  """One decision: (action a = mu(s) + noise xi [m], mixture softmax(a) [m]); noise 0: a = mu(s)."""
  mean = policy.apply(params, features)
  action = mean + noise * jax.random.normal(key, mean.shape, mean.dtype)
  return action, mixture_of(action)


def gaussian_log_prob(actions, mean, noise):
  """log N(actions; mean, noise^2 I), summed over the last axis."""
  z = (jnp.asarray(actions) - jnp.asarray(mean)) / noise
  d = jnp.shape(z)[-1]
  return -0.5 * jnp.sum(z * z, axis=-1) - d * (jnp.log(noise) + 0.5 * jnp.log(2 * jnp.pi))


# ----------------------------------------------------------------------------- the estimator


def leave_one_out_advantages(rewards):
  """A_i = R_i - mean_{j != i} R_j = P / (P - 1) (R_i - mean R), for P >= 2 rewards."""
  r = jnp.asarray(rewards, jnp.float32)
  p = r.shape[0]
  if p < 2:
    raise ValueError(f'rewards must hold at least 2 values (a leave-one-out baseline), got {p}')
  return (r - (jnp.sum(r) - r) / (p - 1))


def policy_gradient(log_prob_fn: Callable, params, rewards):
  """REINFORCE with the leave-one-out baseline: an estimate of grad_theta E[R].

  g = (1/P) sum_i A_i grad_theta log_prob_fn(theta)_i, A = `leave_one_out_advantages(rewards)`
  (held constant). Ascend it to raise the expected reward.

  Args:
    log_prob_fn: params -> [P], log-probability under `params` of each member's actions
      (summed over its decisions; states and actions held fixed).
    params: the policy parameters theta.
    rewards: [P] each member's reward.

  Returns:
    g, a pytree like `params`.
  """
  advantages = jax.lax.stop_gradient(leave_one_out_advantages(rewards))
  return jax.grad(lambda p: jnp.mean(advantages * log_prob_fn(p)))(params)


# ----------------------------------------------------------------------------- trajectories


class Environment(NamedTuple):
  """A proxy training run as pure functions (all jit-able).

  init: key -> env_state (the proxy model and its optimizer state).
  train: (env_state, mixture [m], step int32, key) -> (env_state, train loss): one
    optimizer step on a batch drawn from `mixture`.
  evaluate: env_state -> (per-source held-out losses [m], mean held-out loss).
  """
  init: Callable
  train: Callable
  evaluate: Callable


class Trajectory(NamedTuple):
  """reward: minus the final mean held-out loss. features [D, F], actions [D, m], mixtures
  [D, m]: the states, actions and mixtures of the D decisions. losses [D + 1, m]: per-source
  held-out losses at each decision and at the end. final_loss: the final mean held-out loss.
  train_loss [D]: mean proxy training loss of each stretch."""
  reward: jax.Array
  features: jax.Array
  actions: jax.Array
  mixtures: jax.Array
  losses: jax.Array
  final_loss: jax.Array
  train_loss: jax.Array


def check_schedule(num_steps: int, decision_every: int) -> int:
  """D = num_steps / decision_every decisions (ValueError unless it divides evenly)."""
  _check('num_steps', _is_int(num_steps) and num_steps >= 1, 'an int >= 1', num_steps)
  _check('decision_every', _is_int(decision_every) and 1 <= decision_every <= num_steps
         and num_steps % decision_every == 0, f'an int >= 1 dividing num_steps={num_steps}',
         decision_every)
  return num_steps // decision_every


def rollout(policy: Policy, params, env: Environment, env_key, noise_key, num_steps: int,
            decision_every: int, noise) -> Trajectory:
  """One proxy trajectory under the policy (module docstring, item 3).

  The proxy starts from env.init(fold_in(env_key, 0)); step t draws its batch with
  fold_in(env_key, t + 1), so trajectories with the same env_key see the same
  initialisation and draws (common random numbers). Decision d at step d * decision_every
  samples its action with fold_in(noise_key, d).

  Args:
    policy, params: the policy and its parameters.
    env: the Environment.
    env_key: key of the proxy's initialisation and data.
    noise_key: key of the action noise.
    num_steps: T proxy steps.
    decision_every: steps between decisions (dividing T).
    noise: sigma >= 0 of the Gaussian in logit space (0: the deterministic policy).

  Returns:
    Trajectory.
  """
  decisions = check_schedule(num_steps, decision_every)
  m = policy.num_sources
  state = env.init(jax.random.fold_in(env_key, 0))
  losses, overall = env.evaluate(state)
  uniform = jnp.full((m,), 1.0 / m, jnp.float32)

  def stretch(carry, d):
    state, now, previous, mixture = carry
    features = state_features(now, previous, mixture, d * decision_every / num_steps, overall)
    action, mixture = act(policy, params, features, jax.random.fold_in(noise_key, d), noise)

    def train(state, i):
      t = d * decision_every + i
      return env.train(state, mixture, t, jax.random.fold_in(env_key, t + 1))
    state, train_loss = jax.lax.scan(train, state, jnp.arange(decision_every))
    after, final = env.evaluate(state)
    out = (features, action, mixture, after, final, jnp.mean(train_loss))
    return (state, after, now, mixture), out

  _, (features, actions, mixtures, after, finals, train_loss) = jax.lax.scan(
      stretch, (state, losses, losses, uniform), jnp.arange(decisions))
  final = finals[-1]
  return Trajectory(reward=-final, features=features, actions=actions, mixtures=mixtures,
                    losses=jnp.concatenate([losses[None], after]), final_loss=final,
                    train_loss=train_loss)


def trajectory_log_prob(policy: Policy, params, features, actions, noise):
  """sum over decisions of log pi_params(actions[d] | features[d]); features [..., D, F]."""
  mean = jnp.vectorize(lambda f: policy.apply(params, f), signature='(f)->(m)')(features)
  return jnp.sum(gaussian_log_prob(actions, mean, noise), axis=-1)


def agent_step(policy: Policy, optimizer: optax.GradientTransformation, params, opt_state,
               env: Environment, key, population: int, num_steps: int, decision_every: int,
               noise):
  """One RL update: P trajectories vmapped, REINFORCE-LOO gradient, one optimizer step (ascent).

  Args:
    policy: the Policy.
    optimizer: an optax optimizer of the policy parameters (minimises; the step is taken on -g).
    params, opt_state: the policy parameters and the optimizer state.
    env: the proxy Environment.
    key: this update's key (split into the shared env key and P noise keys).
    population: P >= 2.
    num_steps, decision_every: each trajectory's schedule.
    noise: sigma > 0.

  Returns:
    (params, opt_state, trajectories: Trajectory with a leading [P] axis, g: the gradient
    estimate).
  """
  _check('population', _is_int(population) and population >= 2, 'an int >= 2', population)
  env_key, noise_key = jax.random.split(key)
  run = lambda k: rollout(policy, params, env, env_key, k, num_steps,  # noqa: E731
                          decision_every, noise)
  trajectories = jax.vmap(run)(jax.random.split(noise_key, population))
  log_prob = lambda p: trajectory_log_prob(policy, p, trajectories.features,  # noqa: E731
                                           trajectories.actions, noise)
  grads = policy_gradient(log_prob, params, trajectories.reward)
  updates, opt_state = optimizer.update(jax.tree.map(jnp.negative, grads), opt_state, params)
  return optax.apply_updates(params, updates), opt_state, trajectories, grads


# ----------------------------------------------------------------------------- batches


def draw_from_pool(key, mixture, size: int):
  """Each of `size` rows picks a source from `mixture` and the next unused row of its pool.

  With a pool of `size` rows per source, drawn beforehand uniformly (with replacement) from
  that source's rows, row i takes pool[source[i], rank[i]]: exactly "draw the source from the
  mixture, then a row of that source uniformly", and no pool row is used twice in one batch.

  Args:
    key: PRNG key of the categorical draws.
    mixture: [m] probabilities (zeros allowed).
    size: B rows.

  Returns:
    (source [B] int32, rank [B] int32): rank[i] = #{j < i: source[j] = source[i]} < B.
  """
  w = jnp.asarray(mixture, jnp.float32)
  source = jax.random.categorical(key, jnp.log(w), shape=(size,)).astype(jnp.int32)
  hits = (source[:, None] == jnp.arange(w.shape[0])[None, :]).astype(jnp.int32)
  rank = jnp.take_along_axis(jnp.cumsum(hits, axis=0) - 1, source[:, None], axis=1)[:, 0]
  return source, rank
