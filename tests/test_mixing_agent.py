"""Data Mixing Agent: the policy-gradient estimator (datarater.mixing.agent) on hand-checked
bandits, the RL loop on a toy problem with a pure-noise source, and the method
(datarater.methods.mixing_agent) in the loop on digits: summary, trajectory, ledger, errors."""

import copy
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

from conftest import assert_bad_method_field, check_run_dir, load_config
from datarater.data import sampler
from datarater.errors import ConfigError
from datarater.methods import mixing_agent as method
from datarater.mixing import agent
from datarater.run import prepare, train_and_evaluate

# ----------------------------------------------------------------------------- the estimator


def test_reinforce_loo_on_a_hand_computed_case_and_invariant_to_a_reward_shift():
  # R = (1, 2, 6): leave-one-out baselines (4, 3.5, 1.5), advantages (-3, -1.5, 4.5);
  # log_prob_i(theta) = c_i theta, c = (1, 2, 3): g = mean(A_i c_i) = (-3 - 3 + 13.5) / 3.
  c = jnp.asarray([1.0, 2.0, 3.0])
  rewards = jnp.asarray([1.0, 2.0, 6.0])
  np.testing.assert_allclose(agent.leave_one_out_advantages(rewards), [-3.0, -1.5, 4.5])
  g = agent.policy_gradient(lambda theta: c * theta, jnp.float32(0.7), rewards)
  assert float(g) == pytest.approx(2.5, rel=1e-6)
  # The baseline removes any constant part of the rewards exactly (without it: g = 5 + 100 * 2).
  shifted = agent.policy_gradient(lambda theta: c * theta, jnp.float32(0.7), rewards + 100.0)
  assert float(shifted) == pytest.approx(2.5, rel=1e-5)
  with pytest.raises(ValueError, match='rewards'):
    agent.leave_one_out_advantages(jnp.ones(1))


def _bandit(target, shift=0.0):
  """One decision; the proxy 'trains' to the centred logits of the mixture it is given, and
  its held-out loss is their squared distance to the centred target (+ shift): the reward is
  -||a - mean(a) - c|| ^ 2 - shift, a closed form in the action a."""
  def train(state, mixture, t, key):
    del state, t, key
    log_w = jnp.log(mixture)
    return log_w - log_w.mean(), 0.0

  def evaluate(state):
    return jnp.zeros(len(target)), jnp.sum((state - target) ** 2) + shift
  return agent.Environment(lambda key: jnp.zeros(len(target)), train, evaluate)


def test_the_agent_update_matches_the_analytic_gradient_of_a_one_step_bandit():
  """With a = mu + sigma xi, E[R] = -||mu - mean(mu) - c||^2 - sigma^2 (m - 1): at the
  untrained linear policy (mu = 0 for every state) its gradient in the output bias is 2c,
  and in the output weights 2c times the first decision's features (1 on the m mixture
  features m * w = 1, 0 elsewhere). The whole update (vmapped rollouts, features, log-probs,
  REINFORCE-LOO) estimates it from 20,000 trajectories."""
  target = jnp.asarray([1.0, -0.6, -0.4])  # centred
  policy = agent.mlp_policy(3, hidden=())
  params = policy.init(jax.random.key(0))
  sgd = optax.sgd(1.0)

  @jax.jit
  def update(shift):
    new, _, runs, g = agent.agent_step(policy, sgd, params, sgd.init(params),
                                       _bandit(target, shift), jax.random.key(1), 20_000,
                                       num_steps=1, decision_every=1, noise=0.5)
    return new, runs, g
  new, runs, g = update(0.0)
  # sampling tolerance: 4.5 standard errors of the mean of the per-trajectory terms
  # A_i (a_i - mu) / sigma^2 (about 0.023 here)
  terms = (np.asarray(agent.leave_one_out_advantages(runs.reward))[:, None]
           * np.asarray(runs.actions[:, 0]) / 0.5 ** 2)
  tol = 4.5 * terms.std(0) / np.sqrt(len(terms))
  assert (tol < 0.15).all(), tol
  assert (np.abs(np.asarray(g[0]['b']) - 2 * target) < tol).all(), (g[0]['b'], tol)
  features = np.zeros(agent.num_features(3))
  features[6:9] = 1.0
  np.testing.assert_allclose(runs.features[0, 0], features, atol=1e-6)
  assert (np.abs(np.asarray(g[0]['w']) - np.outer(features, 2 * target)) < tol).all()
  # the optimizer step ascends the estimate (SGD at rate 1: params + g)
  np.testing.assert_allclose(new[0]['b'], g[0]['b'], rtol=1e-6)
  # a constant added to every reward changes nothing (same draws): the baseline absorbs it
  _, _, shifted = update(50.0)
  np.testing.assert_allclose(shifted[0]['b'], g[0]['b'], atol=2e-3)


def test_each_row_takes_its_source_from_the_mixture_and_a_fresh_row_of_that_pool():
  w = jnp.asarray([0.5, 0.3, 0.2, 0.0])
  draw = jax.jit(jax.vmap(lambda k: agent.draw_from_pool(k, w, 64)))
  source, rank = (np.asarray(a) for a in draw(jax.random.split(jax.random.key(0), 400)))
  np.testing.assert_allclose(np.bincount(source.ravel(), minlength=4) / source.size, w,
                             atol=0.01)
  assert (source != 3).all() and (rank >= 0).all() and (rank < 64).all()
  for s, r in zip(source[:50], rank[:50]):  # no pool row twice in a batch
    assert len(set(zip(s.tolist(), r.tolist()))) == 64
  members = sampler.source_members(np.repeat(np.arange(3), [5, 7, 9]), 3)
  idx = method.pool_indices(members, np.array([0, 2]), 4, 6, seed=0, step=3).reshape(4, 2, 6)
  assert set(idx[:, 0].ravel()) <= set(members[0]) and set(idx[:, 1].ravel()) <= set(members[2])


# ----------------------------------------------------------------------------- the RL loop

M, D, B, NOISY = 3, 5, 16, 2


def _toy():
  """Linear regression proxies on 3 sources; source 2's targets are pure noise (independent of
  x), the held-out rows (20 per source) are clean. SGD, 20 steps, a decision every 5."""
  w_star = jnp.asarray(np.random.default_rng(0).normal(size=D), jnp.float32)
  x_meta = jnp.asarray(np.random.default_rng(1).normal(size=(60, D)), jnp.float32)
  group = jnp.repeat(jnp.arange(M), 20)

  def train(v, mixture, t, key):
    del t
    k_src, k_x, k_e = jax.random.split(key, 3)
    source, _ = agent.draw_from_pool(k_src, mixture, B)
    x, e = jax.random.normal(k_x, (B, D)), jax.random.normal(k_e, (B,))
    y = jnp.where(source == NOISY, 3.0 * e, x @ w_star + 0.1 * e)
    loss, g = jax.value_and_grad(lambda v: jnp.mean((x @ v - y) ** 2))(v)
    return v - 0.05 * g, loss

  def evaluate(v):
    err = (x_meta @ (v - w_star)) ** 2
    return jax.ops.segment_sum(err, group, M) / 20, err.mean()
  return agent.Environment(lambda key: 0.1 * jax.random.normal(key, (D,)), train, evaluate)


def test_each_decision_reads_the_losses_their_change_the_mixture_in_force_and_progress():
  """A rollout's recorded states are `state_features` of its own losses and mixtures: decision d
  reads the losses after stretch d - 1, their change since decision d - 1, m * the mixture of
  stretch d - 1 (uniform before the first) and d / D; scaled by the first mean held-out loss."""
  policy = agent.mlp_policy(M, (4,))
  params = policy.init(jax.random.key(0))
  params[-1] = {'w': jax.random.normal(jax.random.key(1), params[-1]['w'].shape),
                'b': jnp.zeros(M)}
  env = _toy()
  run = jax.jit(lambda p: agent.rollout(policy, p, env, jax.random.key(2), jax.random.key(3),
                                        20, 5, 0.5))(params)
  _, l0 = env.evaluate(env.init(jax.random.fold_in(jax.random.key(2), 0)))
  losses, mixtures = np.asarray(run.losses), np.asarray(run.mixtures)
  assert np.ptp(mixtures[:, 0]) > 0.01  # the mixture moves from decision to decision
  for d in range(4):
    previous = losses[max(d - 1, 0)]
    in_force = mixtures[d - 1] if d else np.full(M, 1 / M)
    np.testing.assert_allclose(run.features[d], np.concatenate(
        [losses[d] / l0, (losses[d] - previous) / l0, M * in_force, [d / 4]]), rtol=1e-5,
        atol=1e-6, err_msg=str(d))
    np.testing.assert_allclose(mixtures[d], jax.nn.softmax(run.actions[d]), rtol=1e-5)
  assert float(run.reward) == pytest.approx(-float(run.final_loss))


def test_the_trained_policy_starves_the_pure_noise_source_and_the_reward_decides_it():
  """40 RL updates of 16 trajectories. The deterministic policy then gives the noise source
  almost no weight, less than each clean source; trained on the NEGATED reward (maximising
  the held-out loss) the same loop piles onto the noise source: the direction comes from
  the reward, not from the loop."""
  policy = agent.mlp_policy(M, (16,))
  adam = optax.adam(0.05)

  @jax.jit
  def learn(sign):
    base = _toy()
    env = base._replace(evaluate=lambda v: (lambda l: (l[0], sign * l[1]))(base.evaluate(v)))

    def one(carry, key):
      params, opt_state = carry
      params, opt_state, runs, _ = agent.agent_step(policy, adam, params, opt_state, env, key,
                                                    16, 20, 5, 0.5)
      return (params, opt_state), runs.reward.mean()
    params = policy.init(jax.random.key(0))
    (params, _), rewards = jax.lax.scan(one, (params, adam.init(params)),
                                        jax.random.split(jax.random.key(1), 40))
    run = agent.rollout(policy, params, _toy(), jax.random.key(2), jax.random.key(3), 20, 5, 0.0)
    return rewards, run.mixtures.mean(0), run.final_loss

  rewards, w, loss = (np.asarray(a) for a in learn(1.0))
  assert rewards[-5:].mean() > rewards[:5].mean()  # the held-out loss fell
  assert w[NOISY] < 0.05 and w[NOISY] < w[0] and w[NOISY] < w[1], w
  _, w_neg, loss_neg = (np.asarray(a) for a in learn(-1.0))
  assert w_neg[NOISY] > 0.9, w_neg
  assert loss < loss_neg


# ----------------------------------------------------------------------------- the method


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
  """The smoke run (digits, 5 sources), recording every mixture the train phase draws from and
  the policy it applies: (summary, rows, workdir, drawn {step: [weights]}, applied)."""
  drawn, applied = {}, {}
  real, make_target = sampler.mixture_indices, method.make_target_method

  def recording(source, weights, batch_size, seed, step, members=None):
    drawn.setdefault(int(step), []).append(np.asarray(weights, np.float64))
    return real(source, weights, batch_size, seed, step, members)

  def spy(config, task, dataset, policy, params, field_of=None):
    applied.update(policy=policy, params=params, meta_source=dataset.meta.source)
    return make_target(config, task, dataset, policy, params, field_of)
  workdir = str(tmp_path_factory.mktemp('mixing_agent') / 'run')
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(sampler, 'mixture_indices', recording)
    patch.setattr(method, 'make_target_method', spy)
    train_and_evaluate(load_config('mixing_agent'), workdir)
  summary, rows = check_run_dir(workdir)
  return summary, rows, workdir, drawn, applied


def check_decisions(summary, policy, params, meta_source, n, every=3):
  """Each decision of the train phase is `policy` with `params`, noise-free, on the losses the
  run logged (`decision_meta_losses`): decision j reads them, their change since decision j - 1,
  the mixture in force (uniform before the first) and progress every * j / n, scaled by the
  first decision's mean meta loss."""
  w = np.asarray([v for _, v in summary['source_weights_trajectory']])
  losses = np.asarray([v for _, v in summary['decision_meta_losses']])
  k = w.shape[1]
  share = np.bincount(meta_source, minlength=k) / len(meta_source)
  scale = float(share @ losses[0])
  for j in range(len(w)):
    previous, in_force = (losses[j - 1], w[j - 1]) if j else (losses[0], np.full(k, 1 / k))
    features = agent.state_features(losses[j], previous, in_force, every * j / n, scale)
    np.testing.assert_allclose(w[j], agent.mixture_of(policy.apply(params, features)),
                               rtol=1e-5, err_msg=str(j))


def read_policy(workdir, policy):
  with open(os.path.join(workdir, method.POLICY_FILE), 'rb') as f:
    return serialization.from_bytes(policy.init(jax.random.key(0)), f.read())


def test_smoke_run_writes_the_mixture_trajectory_and_charges_the_agent(smoke):
  summary, rows, workdir, drawn, applied = smoke
  config = load_config('mixing_agent')
  m, n, b = config.method, config.num_steps, config.batch_size

  # the trajectory: a decision at steps 0 and 3, every batch drawn from the mixture in force
  traj = summary['source_weights_trajectory']
  assert [s for s, _ in traj] == [0, 3]
  w = np.asarray([v for _, v in traj])
  assert w.shape == (2, 5) and np.all(w > 0)
  np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
  np.testing.assert_allclose(summary['source_weights'], w[-1], atol=1e-7)
  assert sorted(drawn) == list(range(n))
  for t, weights in drawn.items():
    for v in weights:
      np.testing.assert_allclose(v, w[t // 3], rtol=1e-6, err_msg=str(t))
  np.testing.assert_allclose(summary['source_weights_time_avg'], w.mean(0), atol=1e-6)
  # each decision is the trained policy, unchanged and noise-free, on the model's own losses
  policy, params = applied['policy'], applied['params']
  assert np.abs(np.asarray(params[-1]['w'])).max() > 0  # the agent phase moved it from uniform
  check_decisions(summary, policy, params, applied['meta_source'], n)
  for plot in ('source_weights.png', 'agent_mixture.png'):
    assert os.path.exists(os.path.join(workdir, 'plots', plot))
  logged = [r['source_weights'] for r in rows if r['phase'] == 'train' and 'source_weights' in r]
  assert logged and np.allclose(np.sum(logged, axis=1), 1.0, atol=1e-5)
  # the trained policy is saved in the run directory (flax msgpack), written atomically
  saved = read_policy(workdir, policy)
  jax.tree.map(np.testing.assert_array_equal, saved, jax.device_get(params))
  assert not os.path.exists(os.path.join(workdir, method.POLICY_FILE + '.tmp'))

  # the agent's RL updates: a reward per update, logged; its compute is the method's
  info = summary['mixing_agent']
  assert len(info['agent_mean_reward']) == m.agent_steps and info['policy_parameters'] > 0
  assert 'REINFORCE' in info['estimator'] and 'policy_from' not in info
  rewards = [r['agent/reward'] for r in rows if r['phase'] == 'agent' and 'agent/reward' in r]
  assert rewards and all(-10 < r < 0 for r in rewards)
  phases, ledger = summary['phases'], summary['method_ledger']
  agent_ledger = phases['agent']['ledger']
  assert agent_ledger['steps'] == m.agent_steps
  assert agent_ledger['gradient_evaluations'] == m.agent_steps * m.population * m.proxy_steps * b
  for key in ('flops', 'steps', 'examples_processed', 'gradient_evaluations'):
    assert ledger[key] == pytest.approx(agent_ledger[key] + phases['train']['ledger'][key])
  assert agent_ledger['flops'] > phases['train']['ledger']['flops'] > 0
  assert summary['result_phase'] == 'train'


def test_a_saved_policy_drives_a_wider_model_unchanged_and_its_agent_cost_is_charged(
    smoke, tmp_path):
  """method.policy_from: no agent phase; the saved policy makes every decision of a run of a
  wider, deeper MLP on the same 5 sources; the agent FLOPs and gradient evaluations of the run
  that trained it are charged to this run's method and stated in summary.json."""
  first, _, source_dir, _, applied = smoke
  config = load_config('mixing_agent')
  config.method.policy_from = source_dir
  config.model.kwargs.hidden = (64, 64)
  workdir = str(tmp_path / 'reused')
  train_and_evaluate(config, workdir)
  summary, rows = check_run_dir(workdir)

  assert {r['phase'] for r in rows} == {'train'}  # the agent phase ran no step
  policy = applied['policy']
  params = read_policy(source_dir, policy)
  assert np.abs(np.asarray(params[-1]['w'])).max() > 0
  assert len(summary['source_weights_trajectory']) == 2
  check_decisions(summary, policy, params, applied['meta_source'], config.num_steps)
  # the run saves the policy it applied (so it can be reused in turn: its agent ledger is the cost)
  jax.tree.map(np.testing.assert_array_equal, read_policy(workdir, policy), params)

  imported = first['phases']['agent']['ledger']
  phases, ledger = summary['phases'], summary['method_ledger']
  assert phases['agent']['ledger']['steps'] == 0
  for key in ('flops', 'gradient_evaluations'):
    assert phases['agent']['ledger'][key] == pytest.approx(imported[key])
    assert ledger[key] == pytest.approx(imported[key] + phases['train']['ledger'][key])
  assert ledger['flops'] > imported['flops'] > 0
  assert phases['train']['ledger']['flops'] > first['phases']['train']['ledger']['flops']
  info = summary['mixing_agent']
  assert info['policy_from'] == source_dir
  assert info['imported_agent_cost'] == pytest.approx(
      {k: imported[k] for k in ('flops', 'gradient_evaluations')})
  assert info['agent_mean_reward'] == first['mixing_agent']['agent_mean_reward']
  assert info['agent_steps'] == first['mixing_agent']['agent_steps']
  assert not os.path.exists(os.path.join(workdir, 'plots', 'agent_mixture.png'))


def test_a_policy_that_does_not_fit_or_is_missing_names_policy_from(smoke, built, tmp_path):
  """Another policy_hidden, a run directory without the policy file, or no run at all: one
  ConfigError naming method.policy_from, raised before anything is written."""
  _, _, source_dir, _, _ = smoke
  config, task, dataset = built
  no_file = tmp_path / 'no_file'
  no_file.mkdir()
  with open(os.path.join(source_dir, 'summary.json')) as f:
    (no_file / 'summary.json').write_text(f.read())
  for run_dir, hidden in ((source_dir, (4,)), (source_dir, ()), (source_dir, (8, 8)),
                          (str(no_file), (8,)), (str(tmp_path / 'no_run'), (8,))):
    bad = copy.deepcopy(config)
    bad.method.policy_from, bad.method.policy_hidden = run_dir, hidden
    with pytest.raises(ConfigError, match='config.method.policy_from') as e:
      method.make(bad, task, dataset)
    assert '\n' not in str(e.value), e.value
  bad = load_config('mixing_agent')
  bad.method.policy_from, bad.method.policy_hidden = source_dir, (4,)
  with pytest.raises(ConfigError, match='config.method.policy_from'):
    train_and_evaluate(bad, str(tmp_path / 'r'))
  assert not os.path.exists(tmp_path / 'r')


def test_text_proxies_are_small_transformers_by_default():
  config = load_config('mixing_agent', 'dataset=stdlib_text')
  assert config.model.name == 'transformer'
  assert dict(config.method.proxy_model.kwargs) == {'d_model': 32, 'num_layers': 1,
                                                    'num_heads': 2, 'mlp_ratio': 2}
  for arg in ('dataset=stdlib_text,smoke', 'dataset=digits'):  # the smoke model; not text
    assert dict(load_config('mixing_agent', arg).method.proxy_model.kwargs) == {}, arg


BAD = [('policy_from', 3), ('population', 1), ('agent_steps', 0), ('agent_learning_rate', 0.0),
       ('proxy_steps', 0), ('proxy_decision_every', 3), ('decision_every', 0),
       ('decision_every', 7), ('policy_hidden', (0,)), ('policy_hidden', 8),
       ('policy_noise', 0.0), ('proxy_model.kwargs', {'width': 8})]


@pytest.fixture(scope='module')
def built():
  config = load_config('mixing_agent')
  dataset, task, _ = prepare(config)
  return config, task, dataset


@pytest.mark.parametrize('field,value', BAD)
def test_a_bad_field_is_a_one_line_config_error_naming_it(built, field, value):
  assert_bad_method_field(method.make, *built, field, value)


# ------------------------------------------------------------ continual pre-training


def test_field_weights_average_the_two_fields_row_count_weighted_means():
  from datarater.methods._continual import field_weights
  w = field_weights([2, 6, 1, 3], [0, 0, 1, 1])
  np.testing.assert_allclose(w, [0.125, 0.375, 0.125, 0.375])
  losses = np.array([1.0, 2.0, 3.0, 5.0])
  assert w @ losses == pytest.approx(((2 + 12) / 8 + (3 + 15) / 4) / 2)
  np.testing.assert_allclose(field_weights([2, 6, 0], [0, 0, 0]), [0.25, 0.75, 0.0])
  np.testing.assert_allclose(field_weights([0, 0, 4], [0, 0, 1]), [0.25, 0.25, 0.5])


@pytest.mark.parametrize('value', [(7,), (-1,), (0, 0), (0, 1, 2, 3, 4), ('a',), (True,), None,
                                   '', 2])
def test_bad_pretrain_sources_name_the_field(built, value):
  config, task, dataset = built
  config = copy.deepcopy(config)
  config.method.pretrain_steps = 3
  assert_bad_method_field(method.make, config, task, dataset, 'pretrain_sources', value)


def test_pretrain_steps_is_checked_with_and_without_pretrain_sources(built):
  config, task, dataset = built
  assert_bad_method_field(method.make, config, task, dataset, 'pretrain_steps', 5)  # no sources
  config = copy.deepcopy(config)
  config.method.pretrain_sources = (0, 1)
  assert_bad_method_field(method.make, config, task, dataset, 'pretrain_steps', 0)


def test_a_field_without_meta_rows_is_refused(built):
  """The reward averages the two fields' meta losses: a field with no meta rows is refused."""
  config, task, dataset = built
  config = copy.deepcopy(config)
  config.method.pretrain_steps = 3
  meta = dataset.meta._replace(source=np.where(dataset.meta.source >= 3, 0, dataset.meta.source))
  no_target_meta = dataset._replace(meta=meta)
  assert_bad_method_field(method.make, config, task, no_target_meta, 'pretrain_sources', (0, 1, 2))
  method.make(config_with(config, pretrain_sources=(0, 1, 2)), task, dataset)  # with meta: fine


def config_with(config, **fields):
  config = copy.deepcopy(config)
  for k, v in fields.items():
    config.method[k] = v
  return config


def test_continual_pretraining_pretrains_on_the_source_field_and_continues_every_arm(tmp_path):
  """pretrain_sources=(0, 1, 2): 'pretrain' and 'proxy_pretrain' draw source-field rows only,
  'target_only' target-field rows only; the agent's first decision reads the pre-trained
  model's meta losses (the result continues it); the proxy pre-training is charged to the
  method and the field-balanced losses are reported for every arm."""
  config = load_config('mixing_agent')
  config.method.pretrain_sources, config.method.pretrain_steps = (0, 1, 2), 4
  dataset, task, pipeline = prepare(config)
  names = [p.name for p in pipeline.phases]
  assert names == ['pretrain', 'proxy_pretrain', 'agent', 'train', 'target_only', 'all_sources']
  assert [p.start_from for p in pipeline.phases[3:]] == ['pretrain'] * 3
  source = dataset.train.source
  for phase, field in (('pretrain', {0, 1, 2}), ('proxy_pretrain', {0, 1, 2}),
                       ('target_only', {3, 4})):
    method_ = next(p for p in pipeline.phases if p.name == phase).method
    drawn = np.concatenate([method_.sample(step, None) for step in range(20)])
    assert set(source[drawn].tolist()) == field, phase

  workdir = str(tmp_path / 'cpt')
  summary = train_and_evaluate(config, workdir)
  _, rows = check_run_dir(workdir)
  pretrained = [r for r in rows if r['phase'] == 'pretrain' and r.get('meta/source_loss')][-1]
  np.testing.assert_allclose(summary['decision_meta_losses'][0][1],
                             pretrained['meta/source_loss'], rtol=1e-4)
  phases, ledger = summary['phases'], summary['method_ledger']
  assert ledger['steps'] == sum(phases[p]['ledger']['steps']
                                for p in ('proxy_pretrain', 'agent', 'train'))
  assert phases['pretrain']['ledger']['steps'] == 4
  report = summary['continual']
  assert report['source_field'] == [0, 1, 2] and report['target_field'] == [3, 4]
  for arm in ('pretrain', 'train', 'target_only', 'all_sources'):
    assert report[arm]['test'] is None  # digits' test rows carry no source
    valid = report[arm]['valid']
    assert valid['mean'] == pytest.approx((valid['source_field'] + valid['target_field']) / 2)
  assert summary['mixing_agent']['reward'].startswith('minus the mean over the source and')
  # the report over runs (here the one run twice: a zero-width paired interval)
  from experiments import continual_report
  lines = continual_report.table([summary, summary])
  assert lines[0].startswith('Valid loss over 2 runs; source field = sources [0, 1, 2]')
  agent_row = next(line for line in lines if line.startswith('| Mixing Agent'))
  diff = report['train']['valid']['mean'] - report['all_sources']['valid']['mean']
  assert f'{diff:+.4f} [{diff:+.4f}, {diff:+.4f}]' in agent_row
  assert continual_report.main(['x', str(tmp_path / 'missing')]) == 2
  png = tmp_path / 'continual.png'
  (tmp_path / 'again').mkdir()
  (tmp_path / 'again' / 'summary.json').write_text(json.dumps(summary))
  assert continual_report.main(['x', f'--plot={png}', workdir, str(tmp_path / 'again')]) == 0
  assert png.stat().st_size > 0


def test_a_reused_continual_policy_charges_its_proxy_pretraining_too(tmp_path):
  ledger = lambda f, g: {'ledger': {'flops': f, 'gradient_evaluations': g}}  # noqa: E731
  summary = {'method': 'mixing_agent', 'phases': {'agent': ledger(10.0, 4.0),
                                                  'proxy_pretrain': ledger(3.0, 2.0)}}
  (tmp_path / 'summary.json').write_text(json.dumps(summary))
  assert method.imported_agent_cost(str(tmp_path)) == {'flops': 13.0, 'gradient_evaluations': 6.0}
  del summary['phases']['proxy_pretrain']
  (tmp_path / 'summary.json').write_text(json.dumps(summary))
  assert method.imported_agent_cost(str(tmp_path)) == {'flops': 10.0, 'gradient_evaluations': 4.0}


@pytest.mark.parametrize('setting', ['base', 'larger_model', 'new_data'])
def test_the_readme_continual_tables_are_the_committed_runs(setting):
  """README.md's continual pre-training tables are what continual_report prints for the
  committed runs (results/mixing_agent_continual/<setting>/seed0..2)."""
  from experiments import continual_report
  from experiments._runs import ROOT
  runs = [os.path.join(ROOT, 'results', 'mixing_agent_continual', setting, f'seed{s}')
          for s in range(3)]
  lines = continual_report.table([continual_report.read(d) for d in runs])
  with open(os.path.join(ROOT, 'README.md')) as f:
    readme = f.read()
  for line in lines:
    if line.startswith('| ') or line.startswith("The agent's"):
      assert line.replace("The agent's", '') in readme, line
