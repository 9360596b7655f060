"""Aioli: online source mixing by a linear dynamic mixing law (pure jax / numpy).

Chen, Hu, Lourie, Cho, Re, "Aioli: A Unified Optimization Framework for
Language Model Data Mixing" (2024, arXiv 2411.05735). With m data groups
(here: sources) and a mixture p in the simplex, the paper's linear dynamic
mixing law says that training for one stretch on p changes group i's
validation loss linearly in p:

    L_i(t+1) = L_i(t) - sum_j A^t_ij p_j           (`linear_law`)

A^t_ij: how much training on group j lowers group i's loss, at this point of
training. Aioli minimises the summed loss under this law: training runs in T
rounds of S/T steps each; round t

1. LearnParams (`learn_params_steps`, the first fraction delta of the round):
   `sweeps` (the paper's k) sweeps over the m groups, each sweep in a random
   order (`perturbation_order`). Visiting group j trains `lp_steps` steps on
   the perturbed mixture

       p^(j) = f e_j + (1 - f) / (m - 1) (1 - e_j)    (`perturbed_mixtures`,
                                                       f = one_hot_factor)

   (f = 1: group j alone; f = 1/m would be uniform and tells nothing),
   and records every group's loss drop beta_i = L_i(before) - L_i(after) on
   the validation rows, measured before the visit's first step and after its
   last. Averaged over the sweeps, beta_ij (drop of group i while visiting j)
   = sum_l A_il p^(j)_l, so row i of A solves P A_i = beta_i, P the matrix
   whose rows are the p^(j): the least-squares fit of the law to the visits
   (`fit_interaction`; with the k sweeps' repeated mixtures exactly
   `interaction_from_sweeps`, the released code's row-by-row
   `np.linalg.solve`). A is in units of loss drop per visit (lp_steps steps).
2. The exponentiated-gradient step of Algorithm 1 (`mixture_update`):

       p^t_j  proportional to  p^(t-1)_j exp(eta sum_i A^t_ij)

   (`datarater.weighting.simplex.exponentiated_gradient` with gains = the
   column sums of A: the mirror-ascent step on sum_i L_i(t) - L_i(t+1) =
   sum_j (sum_i A_ij) p_j, the total loss drop the law predicts), after
   normalising A as the released code does in all its runs
   (`--aioli_normalize_A`, `normalize_interaction`):

       A <- A - min_ij A_ij  if min_ij A_ij < 0;   A <- A / sum_ij A_ij

   so every entry is >= 0, the entries sum to one and each group's exponent
   lies in [0, eta] (an all-zero A is left as it is: no move).
   Optional smoothing (`ema` = gamma > 0, the released code's `--ema`):
   Abar^t = (1 - gamma) A^t + gamma Abar^(t-1) (Abar^1 = A^1) and
   p^t proportional to p^0 exp(eta sum_i Abar^t_ij), from the initial mixture
   p^0 instead of p^(t-1). gamma = 0 is Algorithm 1's accumulating update.
3. Training on p^t for the rest of the round.

Hyperparameters, named as in the paper: eta (step size; its runs 1),
sweeps (k; 2), delta (fraction of a round spent in LearnParams), T (rounds),
and the one-hot smoothing f (its runs 0.75).

The schedule (`schedule`) is a pure function of the step t: round
r = min(t // R, T - 1) (the last round takes any remainder of the steps),
offset o = t - r R; o < L = sweeps m lp_steps is LearnParams, visit
v = o // lp_steps, sweep v // m, slot v % m, target order[r, sweep, slot].
`aioli` packs the whole round logic as an optax-style pair: `init` and
`update(state, losses_before, losses_after)` (called once per training step,
the loss functions evaluated only at the steps that measure, under
`jax.lax.cond`), and `mixture_in_force(state)`, the mixture the state's next
step draws its batch from. Everything is jit-able; `update`'s pure functions
also run on numpy inputs. Invalid Python arguments raise ValueError naming
the argument.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from datarater.weighting import simplex


def _check(name: str, ok: bool, requirement: str, value) -> None:
  if not ok:
    raise ValueError(f'{name} must be {requirement}, got {value!r}')


def _is_int(x) -> bool:
  return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


# ----------------------------------------------------------------------------- the law


def linear_law(losses, interaction, mixture):
  """One step of the linear dynamic mixing law: L(t+1) = L(t) - A p.

  Args:
    losses: [m] per-group losses L(t).
    interaction: [m, m] A (A_ij: drop of group i's loss per unit of group j in p).
    mixture: [m] the mixture p trained on.

  Returns:
    [m] L(t+1).
  """
  return jnp.asarray(losses) - jnp.asarray(interaction) @ jnp.asarray(mixture)


def perturbed_mixtures(num_groups: int, one_hot_factor: float) -> np.ndarray:
  """P [m, m]: row j is the mixture visited for group j, f on j and (1 - f) / (m - 1) elsewhere.

  Args:
    num_groups: m >= 1 (m = 1: P = [[1]]).
    one_hot_factor: f in (1/m, 1] (P is invertible exactly when f != 1/m).

  Returns:
    float64 [m, m], rows summing to one.
  """
  _check('num_groups', _is_int(num_groups) and num_groups >= 1, 'an int >= 1', num_groups)
  if num_groups == 1:
    return np.ones((1, 1))
  _check('one_hot_factor', 1.0 / num_groups < one_hot_factor <= 1.0,
         f'in (1/{num_groups}, 1]', one_hot_factor)
  off = (1.0 - one_hot_factor) / (num_groups - 1)
  return np.full((num_groups, num_groups), off) + (one_hot_factor - off) * np.eye(num_groups)


def fit_interaction(mixtures, drops):
  """Least-squares A from visits: drops[r, i] ~ sum_j A_ij mixtures[r, j], row by row.

  Args:
    mixtures: [n, m] the mixture of each visit (n >= m visits spanning R^m
      for a unique fit).
    drops: [n, m] each group's loss drop L_i(before) - L_i(after) over the visit.

  Returns:
    [m, m] A minimising sum_r ||drops[r] - A mixtures[r]||^2 (each row i its own
    least-squares problem over the n visits; minimum-norm if rank deficient).
  """
  mixtures, drops = jnp.asarray(mixtures), jnp.asarray(drops)
  return jnp.linalg.lstsq(mixtures, drops)[0].T


def interaction_from_sweeps(drop_sums, sweeps, design):
  """A from LearnParams' accumulated drops: row i solves P A_i = drop_sums[i] / sweeps.

  Each of the `sweeps` sweeps visits every mixture P[j] once, so the
  least-squares fit over all visits (`fit_interaction`) is the exact solution
  for the mean drops (the released code's `np.linalg.solve(weight_matrix, row)`).

  Args:
    drop_sums: [m, m] entry (i, j): group i's loss drops summed over the visits to P[j].
    sweeps: k, visits per mixture.
    design: [m, m] P (`perturbed_mixtures`), invertible.

  Returns:
    [m, m] A.
  """
  mean = jnp.asarray(drop_sums) / sweeps
  return jnp.linalg.solve(jnp.asarray(design, mean.dtype), mean.T).T


def normalize_interaction(interaction):
  """A - min(A) if min(A) < 0, then divided by the sum of its entries (all zero: unchanged).

  Args:
    interaction: [m, m] A.

  Returns:
    [m, m] non-negative, summing to one (or all zeros).
  """
  a = jnp.asarray(interaction)
  a = a - jnp.minimum(jnp.min(a), 0.0)
  total = jnp.sum(a)
  return jnp.where(total > 0, a / jnp.where(total > 0, total, 1.0), a)


def mixture_update(mixture: simplex.EGState, interaction, eta) -> simplex.EGState:
  """Algorithm 1's step: p_j <- p_j exp(eta sum_i A_ij), renormalised.

  Args:
    mixture: EGState holding p^(t-1) [m].
    interaction: [m, m] A^t (normalised or not).
    eta: step size >= 0.

  Returns:
    EGState with p^t.
  """
  return simplex.exponentiated_gradient(eta).update(jnp.sum(jnp.asarray(interaction), 0), mixture)


# ----------------------------------------------------------------------------- the schedule


class Position(NamedTuple):
  """Where step t falls (ints for a Python t, arrays for a traced one).

  round: r, the round (0-based). offset: t - r R. learning: offset < L (a
  LearnParams step). sweep, slot: the visit's sweep and its place in the sweep
  (meaningful while learning; clipped to the last visit otherwise). round_start:
  offset == 0 (losses measured before the step). visit_end: the last step of a
  visit (losses measured after it). learn_end: the last LearnParams step (A and
  the mixture are updated after it).
  """
  round: object
  offset: object
  learning: object
  sweep: object
  slot: object
  round_start: object
  visit_end: object
  learn_end: object


def learn_params_steps(num_groups: int, sweeps: int, lp_steps: int) -> int:
  """L = sweeps * m * lp_steps: the LearnParams steps at the start of each round."""
  return int(sweeps) * int(num_groups) * int(lp_steps)


def schedule(step, round_steps: int, rounds: int, lp_steps: int, sweeps: int,
             num_groups: int) -> Position:
  """The Position of step t (a pure function of t; Python ints or jnp int arrays).

  Args:
    step: t >= 0.
    round_steps: R, steps per round.
    rounds: T; the last round takes the steps from (T - 1) R on.
    lp_steps: steps per visit.
    sweeps: k.
    num_groups: m.

  Returns:
    Position.
  """
  learn = learn_params_steps(num_groups, sweeps, lp_steps)
  minimum = jnp.minimum if isinstance(step, jax.Array) else min
  r = minimum(step // round_steps, rounds - 1)
  offset = step - r * round_steps
  learning = offset < learn
  visit = minimum(offset // lp_steps, sweeps * num_groups - 1)
  return Position(round=r, offset=offset, learning=learning, sweep=visit // num_groups,
                  slot=visit % num_groups, round_start=offset == 0,
                  visit_end=learning & (offset % lp_steps == lp_steps - 1),
                  learn_end=offset == learn - 1)


def perturbation_order(seed: int, rounds: int, sweeps: int, num_groups: int) -> np.ndarray:
  """int32 [T, k, m]: the order of the groups in each sweep of each round.

  Sweep s of round r is the permutation np.random.default_rng([seed, r, s]).permutation(m),
  so the table for fewer rounds is a prefix of the table for more.
  """
  for name, v in (('rounds', rounds), ('sweeps', sweeps), ('num_groups', num_groups)):
    _check(name, _is_int(v) and v >= 1, 'an int >= 1', v)
  return np.asarray([[np.random.default_rng([int(seed), r, s]).permutation(num_groups)
                      for s in range(sweeps)] for r in range(rounds)], np.int32)


# ----------------------------------------------------------------------------- the round logic


class AioliState(NamedTuple):
  """step: updates applied (int32). mixture: EGState, the current p^t [m].
  last_loss: [m] the groups' losses at the last measurement. drops: [m, m] this
  round's loss drops summed per visited mixture (column j: visits to P[j]).
  interaction: [m, m] the last A^t (the least-squares estimate, not normalised).
  smoothed: [m, m] Abar (ema > 0). rounds_done: int32 mixture updates so far.
  trajectory: [T, m] row r: p after round r's update (zeros until then)."""
  step: jax.Array
  mixture: simplex.EGState
  last_loss: jax.Array
  drops: jax.Array
  interaction: jax.Array
  smoothed: jax.Array
  rounds_done: jax.Array
  trajectory: jax.Array


class Aioli(NamedTuple):
  """init() -> AioliState; update(state, losses_before, losses_after) -> AioliState;
  mixture_in_force(state) -> [m]; position(step) -> Position; design: P [m, m];
  order: [T, k, m]."""
  init: Callable
  update: Callable
  mixture_in_force: Callable
  position: Callable
  design: np.ndarray
  order: np.ndarray


def aioli(order, round_steps: int, lp_steps: int, eta: float, one_hot_factor: float,
          normalize: bool = True, ema: float = 0.0, prior=None) -> Aioli:
  """Aioli's rounds (module docstring) as pure functions over an AioliState.

  Args:
    order: int [T, k, m] (`perturbation_order`): T rounds, k sweeps, m groups.
    round_steps: R > L = k m lp_steps.
    lp_steps: steps per visit (>= 1).
    eta: step size >= 0.
    one_hot_factor: f in (1/m, 1].
    normalize: normalise A before the step (`normalize_interaction`).
    ema: gamma in [0, 1); 0 = Algorithm 1's accumulating update.
    prior: [m] initial mixture p^0 (None: uniform).

  Returns:
    Aioli. `update(state, losses_before, losses_after)`: one training step's
    bookkeeping; losses_before() gives the groups' losses before the step's
    update (called at a round's first step), losses_after() after it (called
    at each visit's last step), both [m]; after the last visit A^t is fitted
    and p updated, so the next step draws from p^t.
  """
  order = np.asarray(order)
  _check('order', order.ndim == 3 and order.size > 0, 'an int array [rounds, sweeps, groups]',
         order.shape)
  rounds, sweeps, m = order.shape
  _check('lp_steps', _is_int(lp_steps) and lp_steps >= 1, 'an int >= 1', lp_steps)
  learn = learn_params_steps(m, sweeps, lp_steps)
  _check('round_steps', _is_int(round_steps) and round_steps > learn,
         f'an int > sweeps * groups * lp_steps = {learn}', round_steps)
  _check('eta', eta >= 0, '>= 0', eta)
  _check('ema', 0 <= ema < 1, 'in [0, 1)', ema)
  design = perturbed_mixtures(m, one_hot_factor)
  p0 = simplex.exponentiated_gradient(0.0).init(m, prior)
  design_j, order_j = jnp.asarray(design, jnp.float32), jnp.asarray(order)

  def position(step):
    return schedule(step, round_steps, rounds, lp_steps, sweeps, m)

  def target(pos):
    return order_j[pos.round, pos.sweep, pos.slot]

  def init():
    zeros = jnp.zeros((m, m), jnp.float32)
    return AioliState(jnp.zeros((), jnp.int32), p0, jnp.zeros((m,), jnp.float32), zeros, zeros,
                      zeros, jnp.zeros((), jnp.int32), jnp.zeros((rounds, m), jnp.float32))

  def mixture_in_force(state):
    pos = position(state.step)
    return jnp.where(pos.learning, design_j[target(pos)], state.mixture.weights)

  def finish(state):
    a = interaction_from_sweeps(state.drops, sweeps, design_j)
    used = normalize_interaction(a) if normalize else a
    if ema > 0:
      smoothed = jnp.where(state.rounds_done == 0, used, (1 - ema) * used + ema * state.smoothed)
      mixture = mixture_update(p0, smoothed, eta)
    else:
      smoothed, mixture = used, mixture_update(state.mixture, used, eta)
    trajectory = state.trajectory.at[state.rounds_done].set(mixture.weights)
    return state._replace(mixture=mixture, interaction=a, smoothed=smoothed,
                          rounds_done=state.rounds_done + 1, trajectory=trajectory)

  def update(state, losses_before, losses_after):
    pos = position(state.step)
    as_f32 = lambda f: lambda: jnp.asarray(f(), jnp.float32)  # noqa: E731
    before = jax.lax.cond(pos.round_start, as_f32(losses_before), lambda: state.last_loss)
    drops = jnp.where(pos.round_start, 0.0, state.drops)
    after = jax.lax.cond(pos.visit_end, as_f32(losses_after), lambda: before)
    drops = drops.at[:, target(pos)].add(jnp.where(pos.visit_end, before - after, 0.0))
    state = state._replace(step=state.step + 1, last_loss=after, drops=drops)
    return jax.lax.cond(pos.learn_end, finish, lambda s: s, state)

  return Aioli(init=init, update=update, mixture_in_force=mixture_in_force, position=position,
               design=design, order=order)
