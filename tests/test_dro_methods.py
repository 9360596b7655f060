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
from datarater.train import ConfigError, prepare, train_and_evaluate

B = 16   # smoke batch size
K = 5    # sources of the noisy-sources presets


def _logged(rows, key, phase='train'):
  return [r[key] for r in rows if r['phase'] == phase and key in r]


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
  data, _, task, method = prepare(config)
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
  n = load_dataset(load_config('cvar').data, 0).train.size
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
  summary, rows, workdir = run_smoke('group_dro', method__eta_q=1.0)
  q = _check_source_weights(summary, workdir)
  assert not np.allclose(q, 1.0 / K)
  logged = _logged(rows, 'source_weights')
  assert logged and all(len(v) == K for v in logged)
  robust = _logged(rows, 'group_dro/robust_loss')
  assert all(np.isfinite(robust))


def test_group_dro_smoke_text(run_smoke):
  summary, _, workdir = run_smoke('group_dro', 'dataset=stdlib_text,smoke')
  assert summary['dataset'] == 'stdlib_text'
  _check_source_weights(summary, workdir)


def test_doremi_pipeline_smoke(run_smoke):
  summary, rows, workdir = run_smoke('doremi')
  w = _check_source_weights(summary, workdir)
  assert {r['phase'] for r in rows} == {'reference', 'proxy', 'retrain'}
  # The ledger adds the three phases; the result is the retrained model's.
  for phase in ('reference', 'proxy', 'retrain'):
    assert summary[phase]['ledger']['gradient_evaluations'] == 6 * B
  assert summary['ledger']['gradient_evaluations'] == 3 * 6 * B
  assert summary['test_accuracy'] == summary['retrain']['test_accuracy']
  # The output is the time average of alpha: rows hold window means, so weight each row by
  # its window length (windows end at log and checkpoint steps).
  steps = [r['step'] for r in rows if r['phase'] == 'proxy' and 'source_weights' in r]
  alphas = np.asarray(_logged(rows, 'source_weights', 'proxy'))
  assert steps[-1] == 6 and alphas.shape == (len(steps), K)
  np.testing.assert_allclose(w, np.average(alphas, axis=0, weights=np.diff([0] + steps)),
                             rtol=1e-5)


# ----------------------------------------------------------------------------- InfoBatch


def _infobatch_setup(num_steps):
  from datarater.train.state import init_train_state
  config = load_config('infobatch')
  config.num_steps = num_steps
  data, _, task, method = prepare(config)
  state = method.init(jax.random.key(0), init_train_state(task, jax.random.key(1)))
  return config, data, method, state


def test_infobatch_sample_fixed_shapes_and_prunes():
  from datarater.weighting import infobatch
  from datarater.methods import infobatch as ib
  config, data, method, state = _infobatch_setup(num_steps=1000)
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
  state = ib.start_epoch(state._replace(scores=scores), jax.random.key(2), 1, e_total, r,
                         config.method.delta)
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


def test_infobatch_run_saves_computations_and_resumes(run_smoke, tmp_path):
  # 11 batches per epoch (N = 1338): 4 epochs fit in 48 steps; checkpoints at 24 and 48.
  overrides = dict(batch_size=128, num_steps=48, eval_every=24, log_every=8, checkpoint_every=24)
  summary, rows, workdir = run_smoke('infobatch', scores=True, **overrides)
  info = summary['infobatch']
  n = len(np.load(os.path.join(workdir, 'scores_train.npy')))
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
