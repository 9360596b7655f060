"""Loss-based rules: Sow et al. reweighting, the group/simplex primitives, group DRO,
DoReMi, InfoBatch."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from datarater.weighting import doremi
from datarater.weighting import group_dro
from datarater.weighting import groups
from datarater.weighting import infobatch
from datarater.weighting import loss_reweight
from datarater.weighting import simplex
from datarater.weighting import tables

# ----------------------------------------------------------------------------
# Dynamic loss-based reweighting (Sow et al. 2025).
# ----------------------------------------------------------------------------

# losses = [1, 2, 3, 5]: max 5, min 1, range 4.
#   delta = 1: h = (2 l - 6) / 4          = [-1, -0.5, 0, 1]
#   delta = 2: h = 2 (2 l - 6) / 4        = [-2, -1,   0, 2]
HAND = {
    # (strategy, delta): f(h)
    ('linupper', 1.0): [0.0, 0.5, 1.0, 1.0],  # min(h + 1, 1)
    ('quadratic', 1.0): [0.0, 0.75, 1.0, 0.0],  # 1 - h^2
    ('extremes', 1.0): [1.0, 0.5, 0.0, 1.0],  # |h|
    ('linupper', 2.0): [0.0, 1.0, 2.0, 2.0],  # min(h + 2, 2)
    ('quadratic', 2.0): [0.0, 0.75, 1.0, 0.0],  # 1 - h^2 / 4
    ('extremes', 2.0): [2.0, 1.0, 0.0, 2.0],  # |h|
}


@pytest.mark.parametrize('strategy,delta', sorted(HAND))
@pytest.mark.parametrize('r', [1.0, 0.4])
def test_loss_reweight_hand_values(strategy, delta, r):
  losses = jnp.array([1.0, 2.0, 3.0, 5.0])
  f = np.array(HAND[(strategy, delta)])
  expected = np.exp(f / r) / np.sum(np.exp(f / r))
  w = loss_reweight.loss_reweight_weights(losses, strategy, delta=delta, r=r)
  np.testing.assert_allclose(w, expected, rtol=1e-6)
  np.testing.assert_allclose(
      loss_reweight.normalized_loss_offsets(losses, delta),
      np.array([-1.0, -0.5, 0.0, 1.0]) * delta, atol=1e-7)
  w_jit = jax.jit(functools.partial(
      loss_reweight.loss_reweight_weights, strategy=strategy, delta=delta,
      r=r))(losses)
  np.testing.assert_allclose(w_jit, expected, rtol=1e-6)


def test_loss_reweight_constant_losses_are_uniform():
  for strategy in loss_reweight.STRATEGIES:
    w = loss_reweight.loss_reweight_weights(jnp.full(5, 2.3), strategy)
    np.testing.assert_allclose(w, np.full(5, 0.2), rtol=1e-6)


def test_warmup_weights_uniform_before_warmup():
  w = jnp.array([0.1, 0.2, 0.7])
  fn = jax.jit(functools.partial(loss_reweight.warmup_weights,
                                 warmup_steps=1000))
  np.testing.assert_allclose(fn(w, step=0), np.full(3, 1 / 3), rtol=1e-6)
  np.testing.assert_allclose(fn(w, step=999), np.full(3, 1 / 3), rtol=1e-6)
  np.testing.assert_allclose(fn(w, step=1000), w)
  np.testing.assert_allclose(
      loss_reweight.warmup_weights(w, step=5, warmup_steps=0), w)


# ----------------------------------------------------------------------------
# Shared primitives: segment mean, exponentiated-gradient step, example weights.
# ----------------------------------------------------------------------------


def test_segment_mean_and_group_example_weights():
  means, counts = groups.segment_mean(jnp.array([1.0, 2.0, 3.0, 10.0]),
                                      jnp.array([1, 1, 1, 3]), 4)
  np.testing.assert_allclose(means, [0.0, 2.0, 0.0, 10.0])
  np.testing.assert_allclose(counts, [0, 3, 0, 1])
  means, counts = groups.segment_mean(jnp.array([1.0, 3.0, 5.0]), jnp.array([0, 0, 1]), 2,
                                      weights=jnp.array([3.0, 1.0, 2.0]))
  np.testing.assert_allclose(means, [1.5, 5.0])
  np.testing.assert_allclose(counts, [4.0, 2.0])
  # q = [0.125, 0.125, 0.25, 0.5]; group 0 has two examples, group 2 one; 1 and 3 absent.
  q = jnp.array([0.125, 0.125, 0.25, 0.5])
  w = simplex.group_example_weights(q, jnp.array([0, 2, 0]), jnp.array([2, 0, 1, 0]))
  # Unnormalized q_g / n_g: [0.125 / 2, 0.25 / 1, 0.125 / 2], sum 0.375.
  np.testing.assert_allclose(w, np.array([0.0625, 0.25, 0.0625]) / 0.375, rtol=1e-6)


def test_exponentiated_gradient_step_mask_and_smoothing():
  eg = simplex.exponentiated_gradient(0.5, smoothing=0.1)
  state = eg.init(3, initial=[2.0, 1.0, 1.0])
  np.testing.assert_allclose(state.weights, [0.5, 0.25, 0.25])
  new = eg.update(jnp.array([1.0, 2.0, 4.0]), state, present=jnp.array([True, False, True]))
  expected = np.array([0.5 * np.exp(0.5), 0.25, 0.25 * np.exp(2.0)])
  expected = 0.9 * expected / expected.sum() + 0.1 / 3
  np.testing.assert_allclose(new.weights, expected, rtol=1e-6)
  # Ascent: the largest gain wins weight, the smallest loses it.
  up = simplex.exponentiated_gradient(1.0).update(jnp.array([0.0, 1.0, 3.0]),
                                                  simplex.EGState(jnp.full(3, 1 / 3)))
  assert up.weights[2] > 1 / 3 > up.weights[0]


# ----------------------------------------------------------------------------
# Group DRO (Sagawa et al. 2020).
# ----------------------------------------------------------------------------


def test_group_dro_two_hand_steps_with_absent_groups():
  eta, c, sizes = 0.1, 1.0, np.array([100.0, 25.0, 4.0])
  state = group_dro.group_dro_init(3)
  step = jax.jit(functools.partial(group_dro.group_dro_step, num_groups=3,
                                   eta_q=eta, C=c, group_sizes=sizes))

  # Batch 1: group 0 losses {1, 3} -> 2.0; group 2 {2, 0.5} -> 1.25; group 1
  # absent (not updated). Exponents: 0.1 (2 + 1/10), 0, 0.1 (1.25 + 1/2).
  state, w, robust, means = step(state, jnp.array([1.0, 3.0, 2.0, 0.5]),
                                 jnp.array([0, 0, 2, 2]))
  q1 = np.array([np.exp(0.21), 1.0, np.exp(0.175)]) / 3
  q1 = q1 / q1.sum()
  np.testing.assert_allclose(means, [2.0, 0.0, 1.25], rtol=1e-6)
  np.testing.assert_allclose(state.weights, q1, rtol=1e-6)
  np.testing.assert_allclose(robust, q1[0] * 2.0 + q1[2] * 1.25, rtol=1e-6)
  w1 = np.array([q1[0] / 2, q1[0] / 2, q1[2] / 2, q1[2] / 2])
  np.testing.assert_allclose(w, w1 / w1.sum(), rtol=1e-6)

  # Batch 2: group 1 {0.4, 1.6} -> 1.0; group 0 {0.9}; group 2 absent.
  # Exponents: 0.1 (0.9 + 0.1), 0.1 (1.0 + 1/5), 0.
  state, w, robust, _ = step(state, jnp.array([0.4, 1.6, 0.9]),
                             jnp.array([1, 1, 0]))
  q2 = q1 * np.array([np.exp(0.1), np.exp(0.12), 1.0])
  q2 = q2 / q2.sum()
  np.testing.assert_allclose(state.weights, q2, rtol=1e-6)
  np.testing.assert_allclose(robust, q2[0] * 0.9 + q2[1] * 1.0, rtol=1e-6)
  w2 = np.array([q2[1] / 2, q2[1] / 2, q2[0]])
  np.testing.assert_allclose(w, w2 / w2.sum(), rtol=1e-6)
  # The absent group kept its unnormalized mass: only renormalization moved it.
  np.testing.assert_allclose(state.weights[2] / state.weights[0],
                             q1[2] / (q1[0] * np.exp(0.1)), rtol=1e-6)


# ----------------------------------------------------------------------------
# DoReMi (Xie et al. 2023).
# ----------------------------------------------------------------------------


def test_doremi_two_hand_steps_with_missing_domains():
  k, eta, c = 3, 1.0, 0.1
  update = jax.jit(functools.partial(doremi.doremi_update, num_groups=k,
                                     eta=eta, smoothing=c))
  state = doremi.doremi_init(k)

  # Step 1: clipped excess [1, 0 | 2, 0.5] -> domain 0: 0.5, domain 1: 1.25,
  # domain 2 missing -> last value 0.
  state = update(state, jnp.array([2.0, 1.0, 3.0, 1.0]),
                 jnp.array([1.0, 2.0, 1.0, 0.5]), jnp.array([0, 0, 1, 1]))
  a1 = np.exp(np.log(1 / 3) + np.array([0.5, 1.25, 0.0]))
  a1 = 0.9 * a1 / a1.sum() + 0.1 / 3
  np.testing.assert_allclose(state.alpha.weights, a1, rtol=1e-6)
  np.testing.assert_allclose(state.last_excess, [0.5, 1.25, 0.0], rtol=1e-6)
  # Toward the domain with the larger excess, away from the one with none.
  assert state.alpha.weights[1] > 1 / 3 > state.alpha.weights[2]

  # Step 2: clipped excess [0, 2 | 0.8] -> domain 2: 1.0, domain 1: 0.8,
  # domain 0 missing -> reuses 0.5.
  state = update(state, jnp.array([0.5, 2.5, 1.0]),
                 jnp.array([1.0, 0.5, 0.2]), jnp.array([2, 2, 1]))
  a2 = a1 * np.exp(np.array([0.5, 0.8, 1.0]))
  a2 = 0.9 * a2 / a2.sum() + 0.1 / 3
  np.testing.assert_allclose(state.alpha.weights, a2, rtol=1e-6)
  np.testing.assert_allclose(state.last_excess, [0.5, 0.8, 1.0], rtol=1e-6)
  assert int(state.average.count) == 2
  np.testing.assert_allclose(doremi.doremi_average_weights(state),
                             (a1 + a2) / 2, rtol=1e-6)


def test_doremi_clips_per_token_not_per_sequence():
  """Two sequences of three tokens; sequence 0 (domain 0) beats the reference on
  some tokens and loses on others, so clipping its mean would give 0."""
  proxy = jnp.array([[3.0, 1.0, 1.0],     # excess +2, -1, -1: mean 0, clipped mean 0
                     [2.0, 2.0, 2.0]])    # domain 1: excess 0.5 on every token
  ref = jnp.array([[1.0, 2.0, 2.0],
                   [1.5, 1.5, 1.5]])
  sources = jnp.array([0, 1])
  excess, counts = doremi.clipped_excess(proxy, ref, sources, 2)
  np.testing.assert_allclose(excess, [2.0 / 3, 0.5], rtol=1e-6)   # per token
  np.testing.assert_allclose(counts, [3, 3])
  per_sequence, _ = doremi.clipped_excess(proxy.mean(1), ref.mean(1), sources, 2)
  np.testing.assert_allclose(per_sequence, [0.0, 0.5], rtol=1e-6)
  # The update uses the per-token excess: domain 0 gains weight over domain 1.
  state = doremi.doremi_update(doremi.doremi_init(2), proxy, ref, sources, 2, eta=1.0,
                               smoothing=0.0)
  np.testing.assert_allclose(state.alpha.weights, jax.nn.softmax(jnp.array([2.0 / 3, 0.5])),
                             rtol=1e-6)


def test_doremi_average_before_any_update():
  state = doremi.doremi_init(4, initial_alpha=[1.0, 1.0, 2.0, 4.0])
  np.testing.assert_allclose(doremi.doremi_average_weights(state),
                             [0.125, 0.125, 0.25, 0.5])


# ----------------------------------------------------------------------------
# InfoBatch (Qin et al. 2024).
# ----------------------------------------------------------------------------

N_EX = 200
R = 0.5


@functools.lru_cache(maxsize=None)
def _plans(num_keys):
  """Plans for many keys on one fixed score table (vmapped, jitted)."""
  rng = np.random.default_rng(0)
  scores = rng.exponential(1.0, N_EX).astype(np.float32)
  count = np.ones(N_EX, np.int32)
  count[:10] = 0  # never seen: their (huge) value must be ignored
  scores[:10] = 1e6
  table = tables.ExampleTable(jnp.asarray(scores), jnp.asarray(count))
  keys = jax.random.split(jax.random.key(0), num_keys)
  plan_fn = jax.jit(jax.vmap(functools.partial(
      infobatch.infobatch_epoch_plan, scores=table,
      prune_ratio=R, epoch=0, num_epochs=8, delta=0.875)))
  plan = plan_fn(keys)
  return np.where(count > 0, scores, np.inf), jax.tree.map(np.asarray, plan)


def test_infobatch_prunes_below_mean_with_probability_r():
  scores, plan = _plans(4000)
  finite = np.isfinite(scores)
  candidates = finite & (scores < scores[finite].mean())
  pruned = ~plan.keep_mask  # [K, N]
  assert not pruned[:, ~candidates].any()  # only below-mean ever pruned
  # Each candidate is pruned with probability r (check the pooled rate).
  rate = pruned[:, candidates].mean()
  se = np.sqrt(R * (1 - R) / pruned[:, candidates].size)
  assert abs(rate - R) < 4 * se, (rate, se)
  # Expected pruned fraction of the dataset: r * #candidates / N (< r).
  frac = pruned.mean(axis=1)
  expected = R * candidates.mean()
  assert abs(frac.mean() - expected) < 4 * frac.std() / np.sqrt(len(frac))
  assert frac.mean() < R
  np.testing.assert_array_equal(plan.num_kept, plan.keep_mask.sum(axis=1))
  # Weights: 1 / (1 - r) for kept candidates, 1 for the rest, 0 if pruned.
  expected_w = np.where(candidates, 1 / (1 - R), 1.0) * plan.keep_mask
  np.testing.assert_allclose(plan.weights, expected_w)


def test_infobatch_rescaled_loss_is_unbiased():
  scores, plan = _plans(4000)
  rng = np.random.default_rng(1)
  losses = rng.gamma(2.0, 1.0, N_EX)  # any per-example losses/grads
  sums = (plan.weights * plan.keep_mask * losses).sum(axis=1)
  full = losses.sum()
  se = sums.std() / np.sqrt(len(sums))
  assert se > 0
  assert abs(sums.mean() - full) < 4 * se, (sums.mean(), full, se)
  # Power check: dropping the 1/(1-r) rescaling is detectably biased.
  naive = (plan.keep_mask * losses).sum(axis=1)
  assert abs(naive.mean() - full) > 20 * se


def test_infobatch_annealing_and_first_epoch():
  scores = tables.ExampleTable(
      jnp.asarray(np.random.default_rng(2).exponential(1.0, 50), jnp.float32),
      jnp.ones(50, jnp.int32))
  plan_fn = jax.jit(functools.partial(infobatch.infobatch_epoch_plan,
                                      prune_ratio=0.9, num_epochs=8,
                                      delta=0.875))
  key = jax.random.key(3)
  for epoch in range(8):
    plan = plan_fn(key, scores, epoch=epoch)
    assert bool(plan.pruning_active) == (epoch < 7)
    if epoch == 7:  # last 1 - delta of epochs: full data, unit weights
      assert bool(plan.keep_mask.all())
      np.testing.assert_array_equal(plan.weights, np.ones(50))
    else:
      assert int(plan.num_kept) < 50
  # First epoch: nothing seen yet, nothing pruned.
  plan = plan_fn(key, tables.table_init(50), epoch=0)
  assert bool(plan.keep_mask.all())


def test_infobatch_epoch_order_batches_and_score_update():
  n, bs = 23, 4
  keep = np.zeros(n, bool)
  keep[[0, 2, 3, 5, 8, 9, 11, 12, 15, 16, 20]] = True  # 11 kept
  order, num_kept = infobatch.infobatch_epoch_order(jax.random.key(0),
                                                    jnp.asarray(keep))
  assert int(num_kept) == 11 and order.shape == (n,)
  assert sorted(np.asarray(order)) == list(range(n))  # a permutation
  assert set(np.asarray(order[:11]).tolist()) == set(np.flatnonzero(keep))
  idx, valid = infobatch.infobatch_batches(order, num_kept, bs)
  assert idx.shape == (3, bs) and valid.shape == (3, bs)
  assert valid.sum() == 11 and not valid[-1, -1]
  assert sorted(idx[valid].tolist()) == np.flatnonzero(keep).tolist()
  assert keep[idx].all()  # padding repeats kept examples
  # Shuffled: a different key gives a different order of the kept set.
  order2, _ = infobatch.infobatch_epoch_order(jax.random.key(1),
                                              jnp.asarray(keep))
  assert not np.array_equal(order[:11], order2[:11])

  table = tables.table_init(n)
  for b in range(idx.shape[0]):
    losses = jnp.asarray(idx[b], jnp.float32) + 0.5  # loss_i = i + 0.5
    losses = jnp.where(jnp.asarray(valid[b]), losses, -1.0)  # junk on pads
    table = tables.table_record(table, idx[b], losses, valid[b])
  np.testing.assert_allclose(table.value[keep], np.flatnonzero(keep) + 0.5)
  np.testing.assert_array_equal(table.count, keep.astype(np.int32))  # pads not counted
  assert np.all(np.asarray(table.value)[~keep] == 0)  # pruned examples keep old scores


def test_table_record_padding_never_overwrites_a_valid_slot():
  """A padding slot repeating an index of the same batch (kept set < batch size)."""
  table = tables.table_init(4)
  for order in ([2, 2], [2, 2, 1]):   # the valid slot first, then its padded repeat
    idx = jnp.asarray(order)
    valid = jnp.asarray([True, False, True][:len(order)])
    out = jax.jit(tables.table_record)(table, idx, jnp.asarray([5.0, -1.0, 7.0][:len(order)]),
                                       valid)
    assert float(out.value[2]) == 5.0 and int(out.count[2]) == 1


def test_infobatch_saved_fraction():
  kept = [100, 60, 60, 100]
  assert infobatch.infobatch_saved_fraction(kept, 100) == pytest.approx(0.2)
  # Fixed-shape batches of 32: 4 + 2 + 2 + 4 of 4 * 4 batches.
  assert infobatch.infobatch_saved_fraction(kept, 100, 32) == pytest.approx(
      0.25)


# ----------------------------------------------------------------------------
# Invalid hyperparameters.
# ----------------------------------------------------------------------------

L = jnp.array([1.0, 2.0, 3.0])
G3 = jnp.array([0, 1, 2])


@pytest.mark.parametrize('call,field', [
    (lambda: loss_reweight.loss_reweight_weights(L, 'cubic'), 'strategy'),
    (lambda: loss_reweight.loss_reweight_weights(L, 'linupper', delta=0.0),
     'delta'),
    (lambda: loss_reweight.loss_reweight_weights(L, 'extremes', r=-1.0), 'r'),
    (lambda: loss_reweight.warmup_weights(L, 0, warmup_steps=-5),
     'warmup_steps'),
    (lambda: group_dro.group_dro_step(group_dro.group_dro_init(3), L, G3, 3, eta_q=-0.1),
     'step_size'),
    (lambda: group_dro.group_dro_step(group_dro.group_dro_init(3), L, G3, 3, C=-1.0,
                                      group_sizes=L), 'C'),
    (lambda: group_dro.group_dro_step(group_dro.group_dro_init(3), L, G3, 3, C=1.0), 'C'),
    (lambda: group_dro.group_dro_init(0), 'num_groups'),
    (lambda: simplex.exponentiated_gradient(1.0, smoothing=1.5), 'smoothing'),
    (lambda: doremi.clipped_excess(L, L[:2], G3, 3), 'proxy and reference losses'),
    (lambda: doremi.doremi_update(doremi.doremi_init(2), L, L,
                                  jnp.array([0, 1, 1]), 2, eta=0.0), 'eta'),
    (lambda: doremi.doremi_update(doremi.doremi_init(2), L, L,
                                  jnp.array([0, 1, 1]), 2, smoothing=1.5),
     'smoothing'),
    (lambda: infobatch.infobatch_epoch_plan(jax.random.key(0), L,
                                            prune_ratio=1.0), 'prune_ratio'),
    (lambda: infobatch.infobatch_epoch_plan(jax.random.key(0), L,
                                            delta=1.2), 'delta'),
    (lambda: infobatch.infobatch_epoch_plan(jax.random.key(0), L,
                                            num_epochs=0), 'num_epochs'),
    (lambda: infobatch.infobatch_batches(jnp.arange(3), 3, 0), 'batch_size'),
])
def test_invalid_hyperparameters(call, field):
  with pytest.raises(ValueError, match=rf'^{field} ') as e:
    call()
  assert 'config.' not in str(e.value)   # the math names its argument, not a config field
