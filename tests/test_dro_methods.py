"""DRO and loss-based methods wired into the loop: run-directory contract, weights
behave as their rule says, global batch statistics across devices, InfoBatch
saves gradient computations with fixed batch shapes, bad hyperparameters name
their field. (The closed forms themselves: test_dro.py, test_loss_rules.py.)"""

import json
import math
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import check_run_dir, load_config
from datarater.data import load_dataset
from datarater.errors import ConfigError
from datarater.run import prepare, train_and_evaluate

B = 16   # smoke batch size
K = 5    # sources of the noisy-sources presets


def _logged(rows, key, phase='train'):
  return [r[key] for r in rows if r['phase'] == phase and key in r]


def _window_sum(rows, key, phase='train'):
  """Sum over steps of a logged metric: rows hold window means, windows end at the rows' steps."""
  steps = [r['step'] for r in rows if r['phase'] == phase and key in r]
  values = np.asarray(_logged(rows, key, phase), np.float64)
  return np.tensordot(np.diff([0] + steps), values, axes=1)


def _prepare_method(config):
  """(dataset, task, Method of the pipeline's first phase) for `config`."""
  data, task, pipeline = prepare(config)
  return data, task, pipeline.phases[0].method


# ----------------------------------------------------------------------------- per-example rules


def _check_per_example(name, summary, rows, workdir):
  assert os.path.exists(os.path.join(workdir, 'plots', 'source_weight_mass.png'))
  mass = np.asarray(summary['source_weight_mass'])
  assert mass.shape == (K,) and np.all(mass >= 0)
  np.testing.assert_allclose(mass.sum(), 1.0, rtol=1e-5)
  ess, support = _logged(rows, 'train/ess'), _logged(rows, 'train/weight_support')
  assert all(0 < e <= B + 1e-4 for e in ess) and all(1 <= s <= B for s in support)
  if name == 'cvar':    # alpha B = 1.6: one example at 1/1.6, the remainder 0.4 on the next
    assert support == [2.0] * len(support)
    np.testing.assert_allclose(_logged(rows, 'train/max_weight'), 1 / 1.6, rtol=1e-6)
  if name == 'kl_dro':   # penalized form: weights are not uniform, KL to uniform > 0
    assert all(kl > 1e-4 for kl in _logged(rows, 'kl_dro/kl_to_uniform'))
  if name == 'chi2_dro':   # constrained, rho = 1 < max D = (B - 1) / 2: the ball binds
    np.testing.assert_allclose(_logged(rows, 'chi2_dro/divergence'), 1.0, rtol=1e-3)
  if name == 'loss_reweight':   # rows average steps [0, 1], [2], [3], [4, 5]; warm-up is 2 steps
    active = _logged(rows, 'loss_reweight/active')
    assert active[0] == 0.0 and active[1:] == [1.0] * (len(active) - 1) and len(active) > 1
    assert ess[0] == pytest.approx(B) and all(e < B - 1e-3 for e in ess[1:])


# cvar's smoke run is the 1-device run of test_cvar_8_devices_match_1.
@pytest.mark.parametrize('name', ['kl_dro', 'chi2_dro', 'loss_reweight'])
def test_per_example_smoke(run_smoke, name):
  _check_per_example(name, *run_smoke(name, scores=True))


@pytest.mark.parametrize('name', ['kl_dro', 'chi2_dro'])
def test_other_form_one_step(name):
  """The non-default form (KL-constrained, chi^2-penalized): one jitted step of the real Method."""
  from datarater.data import sampler
  from datarater.train.state import init_train_state
  from datarater.weighting import dro
  config = load_config(name)
  if name == 'kl_dro':
    config.method.form, config.method.rho = 'constrained', 0.5
  else:
    config.method.form, config.method.lam = 'penalized', 0.4
  data, task, method = _prepare_method(config)
  ts = init_train_state(task, jax.random.key(0))
  batch = sampler.gather(data.train, np.arange(B))
  _, _, metrics = jax.jit(method.step)(ts, method.init(jax.random.key(1), ts), batch,
                                      jax.random.key(2))
  losses = np.asarray(task.per_example_loss(ts.params, batch))
  if name == 'kl_dro':   # rho = 0.5 < log B: the KL ball binds
    np.testing.assert_allclose(metrics['kl_dro/kl_to_uniform'], 0.5, rtol=1e-3)
    q = dro.kl_constrained_weights(losses, 0.5)
  else:
    q = dro.chi2_penalized_weights(losses, 0.4)
  np.testing.assert_allclose(metrics['train/max_weight'], np.max(q), rtol=1e-4)
  np.testing.assert_allclose(metrics['train/weighted_loss'], np.sum(q * losses), rtol=1e-4)


def test_cvar_8_devices_match_1(tmp_path):
  from test_devices import assert_same_rows, run_on
  fewer = ('eval_every=6', 'checkpoint_every=6')   # same rows, less overhead per process
  one = run_on(1, tmp_path / 'one', 'cvar', 'dataset=digits,smoke', *fewer)
  eight = run_on(8, tmp_path / 'eight', 'cvar', 'dataset=digits,smoke', *fewer)
  assert_same_rows(one, eight)
  from datarater.data import load_dataset
  n = load_dataset(load_config('cvar').data, 0).info.num_rows
  _check_per_example('cvar', *check_run_dir(str(tmp_path / 'one'), n), str(tmp_path / 'one'))
  assert _logged(eight, 'train/weight_support') == _logged(one, 'train/weight_support')
  np.testing.assert_allclose(np.load(tmp_path / 'eight' / 'scores_train.npy'),
                             np.load(tmp_path / 'one' / 'scores_train.npy'), rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- per-source rules


def _check_source_weights(summary, workdir):
  w = np.asarray(summary['source_weights'])
  assert w.shape == (K,) and np.all(w > 0)
  np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-5)
  assert os.path.exists(os.path.join(workdir, 'plots', 'source_weights.png'))
  return w


def test_group_dro_smoke(run_smoke):
  # A large step size so that 6 steps move q visibly toward the noisier (higher-loss) sources.
  eta_q = 1.0
  summary, rows, workdir = run_smoke('group_dro', method__eta_q=eta_q)
  q = _check_source_weights(summary, workdir)
  logged = _logged(rows, 'source_weights')
  assert logged and all(len(v) == K for v in logged)
  assert all(np.isfinite(_logged(rows, 'group_dro/robust_loss')))
  # Ascent on the losses: with C = 0, q_T = softmax(eta_q sum_t L_t) (an absent source's
  # logged loss is 0, its exponent too), so q grows on the sources with the highest loss.
  cumulative = _window_sum(rows, 'train/source_loss')
  np.testing.assert_allclose(q, np.exp(eta_q * cumulative) / np.exp(eta_q * cumulative).sum(),
                             rtol=1e-4)
  assert np.argmax(q) == np.argmax(cumulative) and np.ptp(q) > 0.01
  np.testing.assert_allclose(summary['source_weights_mean'],
                             _window_sum(rows, 'source_weights') / 6, rtol=1e-5)


def test_group_dro_smoke_text(run_smoke):
  summary, _, workdir = run_smoke('group_dro', 'dataset=stdlib_text,smoke')
  assert summary['dataset'] == 'stdlib_text'
  _check_source_weights(summary, workdir)


def test_doremi_pipeline_smoke(run_smoke):
  eta = 1.0   # smoothing 0: alpha_T = softmax(eta sum_t lambda_t) exactly
  summary, rows, workdir = run_smoke('doremi', method__eta=eta, method__smoothing=0.0)
  w = _check_source_weights(summary, workdir)
  assert {r['phase'] for r in rows} == {'reference', 'proxy', 'retrain'}
  # The ledger adds the three phases; the result is the retrained model's.
  phases = summary['phases']
  for phase in ('reference', 'proxy', 'retrain'):
    assert phases[phase]['ledger']['gradient_evaluations'] == 6 * B
  assert summary['ledger']['gradient_evaluations'] == 3 * 6 * B
  assert summary['test_accuracy'] == phases['retrain']['test_accuracy']
  # The update moves alpha toward the sources with the larger clipped excess loss.
  excess = _window_sum(rows, 'doremi/excess_loss', 'proxy')
  assert excess.max() > 0.01
  alpha = np.asarray(summary['final_alpha'])
  np.testing.assert_allclose(alpha, np.exp(eta * excess) / np.exp(eta * excess).sum(), rtol=1e-4)
  assert np.argmax(alpha) == np.argmax(excess) and np.ptp(w) > 1e-3
  # The output is the time average of alpha over the proxy's 6 steps.
  np.testing.assert_allclose(w, _window_sum(rows, 'source_weights', 'proxy') / 6, rtol=1e-5)


def test_doremi_clips_per_token_on_text():
  """One proxy step on stdlib_text: lambda is the per-token clipped excess of the two models."""
  import optax
  from datarater.data import sampler
  from datarater.methods import doremi as doremi_method
  from datarater.train.state import init_train_state
  from datarater.weighting import doremi
  config = load_config('doremi', 'dataset=stdlib_text,smoke')
  data, task, _ = prepare(config)
  ref = init_train_state(task, jax.random.key(5)).params
  method = doremi_method.make_proxy(config, task, data, ref)
  ts = init_train_state(task, jax.random.key(0))
  batch = sampler.gather(data.train, np.linspace(0, data.train.size - 1, B).astype(int))
  _, state, metrics = jax.jit(method.step)(ts, method.init(jax.random.key(1), ts), batch,
                                          jax.random.key(2))
  tokens = lambda p: optax.softmax_cross_entropy_with_integer_labels(  # noqa: E731
      task.logits(p, batch['x']), batch['y'])
  proxy_tokens, ref_tokens = tokens(ts.params), tokens(ref)
  assert proxy_tokens.ndim == 2
  per_token, _ = doremi.clipped_excess(proxy_tokens, ref_tokens, batch['source'], K)
  per_sequence, _ = doremi.clipped_excess(proxy_tokens.mean(1), ref_tokens.mean(1),
                                          batch['source'], K)
  assert np.abs(per_token - per_sequence).max() > 1e-3   # the two clippings differ here
  np.testing.assert_allclose(state.doremi.last_excess, per_token, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(metrics['doremi/excess_loss'], per_token, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- InfoBatch


def _infobatch_setup(num_steps):
  from datarater.train.state import init_train_state
  config = load_config('infobatch')
  config.num_steps = num_steps
  data, task, method = _prepare_method(config)
  ts = init_train_state(task, jax.random.key(1))
  return config, data, task, method, ts, method.init(jax.random.key(0), ts)


def test_infobatch_sample_fixed_shapes_and_prunes():
  from datarater.methods import infobatch as ib
  from datarater.weighting import infobatch, tables
  config, data, _, method, _, state = _infobatch_setup(num_steps=1000)
  n, r = data.train.size, config.method.prune_ratio
  e_total = ib.num_epochs(1000, n, B)
  assert e_total == 1000 // math.ceil(n / B) > 1
  full_batches = math.ceil(n / B)
  # Epoch 0: nothing seen, nothing pruned; every batch has shape [B], all examples covered.
  epoch0 = [method.sample(s, state._replace(batch_in_epoch=s)) for s in range(full_batches)]
  assert all(i.shape == (B,) for i in epoch0)
  assert set(np.concatenate(epoch0).tolist()) == set(range(n))
  # Epoch 1 with known scores: only below-mean examples may be pruned.
  scores = np.random.default_rng(0).exponential(size=n).astype(np.float32)
  state = ib.start_epoch(state._replace(scores=tables.ExampleTable(scores, np.ones(n, np.int32))),
                         jax.random.key(2), 1, e_total, r, config.method.delta)
  kept = int(state.num_kept)
  pruned = np.setdiff1d(np.arange(n), np.asarray(state.order)[:kept])
  assert 0 < len(pruned) and np.all(scores[pruned] < scores.mean())
  batches = [method.sample(1000, state._replace(batch_in_epoch=j))
             for j in range(math.ceil(kept / B))]
  assert all(i.shape == (B,) for i in batches)
  np.testing.assert_array_equal(np.stack(batches),
                                infobatch.infobatch_batches(state.order, kept, B)[0])
  assert len(batches) < full_batches      # fewer gradient computations for the epoch
  assert set(np.concatenate(batches).tolist()) == set(range(n)) - set(pruned.tolist())
  weights = np.asarray(state.weights)
  kept_low = np.setdiff1d(np.flatnonzero(scores < scores.mean()), pruned)
  np.testing.assert_allclose(weights[kept_low], 1 / (1 - r))
  assert np.all(weights[pruned] == 0)


def test_infobatch_padded_last_batch_averages_over_real_examples():
  """The last batch of a pruned epoch is padded to B; its loss divides by the real examples."""
  from datarater.data import sampler
  from datarater.methods import infobatch as ib
  from datarater.weighting import tables
  config, data, task, method, ts, state = _infobatch_setup(num_steps=1000)
  n = data.train.size
  scores = np.random.default_rng(0).exponential(size=n).astype(np.float32)
  state = ib.start_epoch(state._replace(scores=tables.ExampleTable(scores, np.ones(n, np.int32))),
                         jax.random.key(3), 1, ib.num_epochs(1000, n, B),
                         config.method.prune_ratio, config.method.delta)
  kept = int(state.num_kept)   # key 3: 3 real examples in the last batch
  last = math.ceil(kept / B) - 1
  real = kept - last * B
  assert 0 < real < B, real
  state = state._replace(batch_in_epoch=np.int32(last))
  batch = sampler.gather(data.train, method.sample(0, state))
  _, new, metrics = jax.jit(method.step)(ts, state, batch, jax.random.key(3))
  losses = np.asarray(task.per_example_loss(ts.params, batch), np.float64)
  w = np.asarray(state.weights)[batch['index']][:real]
  np.testing.assert_allclose(metrics['train/weighted_loss'], np.sum(w * losses[:real]) / real,
                             rtol=1e-5)
  # Padding slots update no score, and the epoch ends after its last batch.
  np.testing.assert_array_equal(np.asarray(new.scores.count) - 1,
                                np.bincount(batch['index'][:real], minlength=n))
  assert int(new.epoch) == 2


def test_infobatch_run_saves_computations_and_resumes(run_smoke, tmp_path):
  # 10 batches per epoch (N = 1204 after the meta and validation splits): 4 epochs fit in 48
  # steps; checkpoints at 24 and 48.
  overrides = dict(batch_size=128, num_steps=48, eval_every=24, log_every=8, checkpoint_every=24)
  summary, rows, workdir = run_smoke('infobatch', scores=True, **overrides)
  info = summary['infobatch']
  n = load_dataset(load_config('infobatch').data, 0).train.size   # train rows
  assert n == 1204
  assert info['num_epochs'] == 48 // math.ceil(n / 128) == info['epochs_completed']
  assert info['full_data_steps'] == info['num_epochs'] * math.ceil(n / 128)
  computed = info['steps_computed']
  assert computed < info['full_data_steps']
  assert summary['gradient_computations_saved'] == pytest.approx(
      1 - computed / info['full_data_steps'])
  assert 0 < info['saved_fraction_examples'] < 0.5
  assert summary['ledger']['gradient_evaluations'] == computed * 128
  assert summary['ledger']['steps'] == computed
  # After the last epoch the remaining slots compute nothing.
  flags = _logged(rows, 'infobatch/computed')
  assert flags[-1] == 0.0 and flags[0] == 1.0
  # Resume from the step-24 checkpoint (the sampler reads the checkpointed plan): same rows.
  shutil.rmtree(os.path.join(workdir, 'checkpoints', 'train', '48'))
  config = load_config('infobatch')
  for k, v in overrides.items():
    config[k] = v
  train_and_evaluate(config, workdir)
  again = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert [r['step'] for r in again] == [r['step'] for r in rows]
  for a, b in zip(rows, again):
    for k, v in a.items():
      if isinstance(v, float):
        np.testing.assert_allclose(b[k], v, rtol=1e-6, err_msg=f'step {a["step"]} {k}')


# ----------------------------------------------------------------------------- bad hyperparameters


@pytest.mark.parametrize('name,field,value', [
    ('kl_dro', 'temperature', 0.0),
    ('kl_dro', 'form', 'wasserstein'),
    ('cvar', 'alpha', 0.0),
    ('cvar', 'alpha', 1.5),
    ('chi2_dro', 'rho', -1.0),
    ('chi2_dro', 'form', 'both'),
    ('loss_reweight', 'strategy', 'median'),
    ('loss_reweight', 'r', 0.0),
    ('loss_reweight', 'warmup_steps', -1),
    ('group_dro', 'eta_q', -0.1),
    ('doremi', 'eta', 0.0),
    ('doremi', 'smoothing', 2.0),
    ('infobatch', 'prune_ratio', 1.0),
    ('infobatch', 'delta', 1.5),
])
def test_bad_hyperparameter_names_field(tmp_path, name, field, value):
  config = load_config(name)
  config.method[field] = value
  with pytest.raises(ConfigError) as e:
    train_and_evaluate(config, str(tmp_path / 'run'))
  message = str(e.value)
  assert f'config.method.{field}' in message and '\n' not in message
  assert not (tmp_path / 'run').exists()


def test_constrained_forms_check_their_own_field(tmp_path):
  config = load_config('kl_dro')
  config.method.form = 'constrained'
  config.method.rho = 0.0
  config.method.temperature = -1.0   # unused by the constrained form
  with pytest.raises(ConfigError, match=r'config\.method\.rho'):
    prepare(config)
  config = load_config('chi2_dro')
  config.method.form = 'penalized'
  config.method.lam = 0.0
  with pytest.raises(ConfigError, match=r'config\.method\.lam'):
    prepare(config)
