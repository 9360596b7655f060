"""Aioli (Chen et al. 2024): the math (datarater/mixing/aioli.py) on the linear mixing law and
by hand, the schedule, and the method (datarater/methods/aioli.py) in the loop on digits."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import load_config
from datarater.data import load_dataset, sampler
from datarater.errors import ConfigError
from datarater.methods import aioli as aioli_method
from datarater.mixing import aioli
from datarater.weighting import simplex

# ----------------------------------------------------------------------------- the law and A


def _simulate(rule, a_true, losses, steps):
  """Aioli's rounds on a model-free environment that follows the linear law each step."""
  def one(carry, _):
    state, l = carry
    new = aioli.linear_law(l, a_true, rule.mixture_in_force(state)).astype(l.dtype)
    return (rule.update(state, lambda: l, lambda: new), new), None
  (state, l), _ = jax.lax.scan(one, (rule.init(), jnp.asarray(losses, jnp.float32)), None,
                               length=steps)
  return state, l


def test_least_squares_recovers_a_known_interaction_exactly(x64):
  """Noiseless rounds of L(t+1) = L(t) - A p give back A: from any spanning set of mixtures,
  from LearnParams' perturbed mixtures over sweeps, and through the round logic itself."""
  rng = np.random.default_rng(0)
  m = 4
  a_true = rng.normal(size=(m, m))
  mixtures = np.concatenate([aioli.perturbed_mixtures(m, 0.75)] * 2
                            + [rng.dirichlet(np.ones(m), size=3)])
  losses, drops = rng.uniform(2, 3, size=m), []
  for p in mixtures:
    after = aioli.linear_law(losses, a_true, p)
    drops.append(losses - np.asarray(after))
    losses = after
  np.testing.assert_allclose(aioli.fit_interaction(mixtures, np.asarray(drops)), a_true,
                             rtol=0, atol=1e-10)
  # Two sweeps over P: drop_sums[i, j] = group i's drops summed over the visits to P[j].
  design = aioli.perturbed_mixtures(m, 0.75)
  drop_sums = 2 * a_true @ design.T
  np.testing.assert_allclose(aioli.interaction_from_sweeps(drop_sums, 2, design), a_true,
                             rtol=0, atol=1e-10)

  # The round logic, fed the same law step by step (3-step visits: A per visit = 3 A_true).
  order = aioli.perturbation_order(0, 1, 2, m)
  rule = aioli.aioli(order, round_steps=30, lp_steps=3, eta=1.0, one_hot_factor=0.75,
                     normalize=False)
  state, _ = jax.jit(lambda a: _simulate(rule, a, np.full(m, 5.0), 2 * m * 3))(a_true)
  assert int(state.rounds_done) == 1
  np.testing.assert_allclose(state.interaction, 3 * a_true, rtol=1e-4, atol=1e-4)


def test_mixture_update_equals_a_hand_computation_and_stays_on_the_simplex():
  a = np.array([[1.0, -1.0], [2.0, 0.0]])
  # min -1 < 0: shift by +1 -> [[2, 0], [3, 1]], sum 6 -> [[1/3, 0], [1/2, 1/6]]
  np.testing.assert_allclose(aioli.normalize_interaction(a), [[1 / 3, 0], [1 / 2, 1 / 6]],
                             rtol=1e-6)
  np.testing.assert_allclose(aioli.normalize_interaction([[2.0, 0.0], [1.0, 1.0]]),
                             [[0.5, 0.0], [0.25, 0.25]], rtol=1e-6)  # no shift when >= 0
  np.testing.assert_array_equal(aioli.normalize_interaction(np.zeros((2, 2))), np.zeros((2, 2)))
  # p_j <- p_j exp(eta sum_i A_ij): column sums (5/6, 1/6), p = (0.3, 0.7), eta = 2
  p = simplex.EGState(jnp.asarray([0.3, 0.7]))
  got = aioli.mixture_update(p, aioli.normalize_interaction(a), 2.0).weights
  hand = np.array([0.3 * np.exp(2 * 5 / 6), 0.7 * np.exp(2 * 1 / 6)])
  np.testing.assert_allclose(got, hand / hand.sum(), rtol=1e-5)
  for eta in (0.0, 1.0, 50.0):
    w = np.asarray(aioli.mixture_update(p, 100.0 * np.abs(a), eta).weights)
    assert np.all(w >= 0) and np.isfinite(w).all() and w.sum() == pytest.approx(1.0, abs=1e-6)
  np.testing.assert_allclose(aioli.mixture_update(p, a, 0.0).weights, p.weights, rtol=1e-6)


# ----------------------------------------------------------------------------- the loop


def test_aioli_moves_towards_the_source_that_helps_all_losses_and_beats_uniform():
  """Source 1's data lowers every source's loss most (largest column sum of A): the mixture
  moves to it round after round, and the summed loss ends below the static uniform mixture's."""
  a_true = 1e-3 * jnp.asarray([[2.0, 1.5, 0.0],
                               [0.5, 3.0, 0.5],
                               [0.0, 1.5, 1.0]])
  rounds, round_steps, steps = 5, 40, 200
  order = aioli.perturbation_order(1, rounds, 2, 3)
  rule = aioli.aioli(order, round_steps, lp_steps=2, eta=1.0, one_hot_factor=0.75)
  losses0 = jnp.full((3,), 3.0)
  state, losses = jax.jit(lambda a, l: _simulate(rule, a, l, steps))(a_true, losses0)
  traj = np.asarray(state.trajectory)
  assert int(state.rounds_done) == rounds
  assert np.all(np.argmax(traj, 1) == 1)
  assert np.all(np.diff(traj[:, 1]) > 0) and traj[-1, 1] > 0.7
  np.testing.assert_allclose(traj.sum(1), 1.0, rtol=1e-5)
  uniform = np.asarray(losses0) - steps * np.asarray(a_true) @ np.full(3, 1 / 3)
  assert float(jnp.sum(losses)) < uniform.sum() - 0.05

  # ema > 0 (the released code's variant): p^t from p^0 and the smoothed A, no accumulation;
  # under a fixed law every round fits the same A, so every round gives the same mixture.
  smooth = aioli.aioli(order, round_steps, lp_steps=2, eta=1.0, one_hot_factor=0.75, ema=0.5)
  state, _ = jax.jit(lambda a, l: _simulate(smooth, a, l, steps))(a_true, losses0)
  gains = np.asarray(aioli.normalize_interaction(state.interaction)).sum(0)
  np.testing.assert_allclose(state.trajectory, np.tile(np.exp(gains) / np.exp(gains).sum(),
                                                       (rounds, 1)), rtol=1e-5)
  np.testing.assert_allclose(traj[0], state.trajectory[0], rtol=1e-5)  # round 1 alike


# ----------------------------------------------------------------------------- the schedule


def test_schedule_is_a_pure_function_of_the_step():
  """R = 10, T = 2 rounds over 23 steps (the last round takes steps 10-22), m = 3 sources,
  1 sweep of 2-step visits: LearnParams is offsets 0-5 of each round."""
  kw = dict(round_steps=10, rounds=2, lp_steps=2, sweeps=1, num_groups=3)
  want = {  # step: (round, offset, learning, slot, round_start, visit_end, learn_end)
      0: (0, 0, True, 0, True, False, False), 1: (0, 1, True, 0, False, True, False),
      2: (0, 2, True, 1, False, False, False), 5: (0, 5, True, 2, False, True, True),
      6: (0, 6, False, 2, False, False, False), 9: (0, 9, False, 2, False, False, False),
      10: (1, 0, True, 0, True, False, False), 15: (1, 5, True, 2, False, True, True),
      22: (1, 12, False, 2, False, False, False)}
  for t, (r, o, learning, slot, start, visit_end, learn_end) in want.items():
    pos = aioli.schedule(t, **kw)
    assert (pos.round, pos.offset, pos.learning, pos.slot, pos.round_start, pos.visit_end,
            pos.learn_end) == (r, o, learning, slot, start, visit_end, learn_end), t
  traced = jax.jit(lambda t: aioli.schedule(t, **kw))
  for t in range(23):
    assert tuple(int(v) for v in traced(jnp.int32(t))) == tuple(
        int(v) for v in aioli.schedule(t, **kw)), t
  order = aioli.perturbation_order(7, 3, 2, 4)
  np.testing.assert_array_equal(order, aioli.perturbation_order(7, 3, 2, 4))
  np.testing.assert_array_equal(order[:2], aioli.perturbation_order(7, 2, 2, 4))  # a prefix
  assert all(sorted(row) == [0, 1, 2, 3] for row in order.reshape(-1, 4))
  rule = aioli.aioli(order, 30, lp_steps=3, eta=1.0, one_hot_factor=0.7)
  state = rule.init()._replace(step=jnp.int32(30 + 3 * 5 + 1))  # round 1, sweep 1, slot 1
  np.testing.assert_allclose(rule.mixture_in_force(state), rule.design[order[1, 1, 1]])


def test_math_refuses_bad_arguments():
  with pytest.raises(ValueError, match='one_hot_factor'):
    aioli.perturbed_mixtures(3, 1 / 3)
  with pytest.raises(ValueError, match='round_steps'):
    aioli.aioli(aioli.perturbation_order(0, 1, 2, 3), 12, lp_steps=2, eta=1.0, one_hot_factor=0.8)


# ----------------------------------------------------------------------------- the method


def test_smoke_run_draws_every_batch_from_the_mixture_in_force(run_smoke, monkeypatch):
  drawn = {}
  real = sampler.mixture_indices

  def recording(source, weights, batch_size, seed, step, members=None):
    drawn.setdefault(int(step), []).append(np.asarray(weights, np.float64))
    return real(source, weights, batch_size, seed, step, members)
  monkeypatch.setattr(sampler, 'mixture_indices', recording)
  summary, rows, workdir = run_smoke('aioli', num_steps=14, method__rounds=2)

  info = summary['aioli']
  assert (info['round_steps'], info['lp_steps'], info['learn_params_steps']) == (7, 1, 5)
  w = np.asarray(summary['source_weights'])
  assert w.shape == (5,) and np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-6)
  traj = summary['source_weights_trajectory']
  assert [s for s, _ in traj] == [5, 12]
  np.testing.assert_allclose(traj[-1][1], w, rtol=1e-6)
  assert np.isfinite(info['interaction']).all() and np.asarray(info['interaction']).any()
  for plot in ('source_weights.png', 'mixture_in_force.png'):
    assert os.path.exists(os.path.join(workdir, 'plots', plot))

  order = aioli.perturbation_order(0, 2, 1, 5)
  design = aioli.perturbed_mixtures(5, 0.75)
  assert sorted(drawn) == list(range(14))
  expected = {}
  for t in range(14):
    r, o = divmod(t, 7)
    expected[t] = design[order[r, 0, o]] if o < 5 else np.asarray(traj[r][1])
    for weights in drawn[t]:
      np.testing.assert_allclose(weights, expected[t], rtol=1e-6, atol=1e-7, err_msg=str(t))
  # The logged mixture is each logging window's mean of the mixtures drawn from.
  logged = [r for r in rows if 'aioli/mixture' in r]
  previous = 0
  for row in logged:
    window = [expected[t] for t in range(previous, row['step'])]
    np.testing.assert_allclose(row['aioli/mixture'], np.mean(window, 0), rtol=1e-5, atol=1e-6)
    previous = row['step']
  assert previous == 14
  with open(os.path.join(workdir, 'config.json')) as f:
    assert json.load(f)['method']['name'] == 'aioli'


@pytest.fixture(scope='module')
def digits():
  config = load_config('aioli')
  return config, load_dataset(config.data, config.seed)


@pytest.mark.parametrize('field, value', [
    ('eta', -1.0), ('rounds', 0), ('rounds', 7), ('delta', 0.0), ('delta', 1.0), ('delta', 0.5),
    ('sweeps', 0), ('one_hot_factor', 0.2), ('one_hot_factor', 1.5), ('normalize_a', 1),
    ('ema', 1.0)])
def test_bad_fields_give_a_one_line_config_error_naming_the_field(digits, field, value):
  config, dataset = digits
  config = config.copy_and_resolve_references()
  method = config.method.to_dict()
  method[field] = value  # also values of another type than the field's (no flag parsing)
  config.method = ml_collections.ConfigDict(method)
  with pytest.raises(ConfigError, match=f'config.method.{field} ') as err:
    aioli_method.make(config, None, dataset)
  assert '\n' not in str(err.value)
