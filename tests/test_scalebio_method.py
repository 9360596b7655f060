"""ScaleBiO wired into the loop: smoke runs write the run directory and report
the retrained model (not w) as the result, a short run learns weights that fall
with the corruption rate, one step on a real batch equals autodiff of the
penalty (and of the unrolled hypergradient), method states restore from
checkpoints, 8 devices give the 1-device weights and metrics, and bad
hyperparameters fail with one line naming the field."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config
from datarater.methods import scalebio as scalebio_method
from datarater.data import load_dataset
from datarater.data.sampler import gather
from datarater.errors import ConfigError
from datarater.report import detection
from datarater.run import prepare, train_and_evaluate
from datarater.train.state import TrainState
from datarater.train.task import make_task
from test_devices import assert_same_rows, run_on

# A short digits run that already orders the sources (see test_learned_weights_...).
LEARN_STEPS, LEARN_LR = 80, 0.05


def _on_simplex(w, k=5):
  w = np.asarray(w)
  assert w.shape == (k,) and np.all(w >= 0) and abs(w.sum() - 1) < 1e-6, w


def _rows(workdir):
  return [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]


def test_smoke_digits_with_retrain(run_smoke):
  summary, rows, workdir = run_smoke('scalebio')   # retrain is the default
  _on_simplex(summary['source_weights'])
  _on_simplex(summary['source_weights_time_avg'])
  assert np.abs(np.asarray(summary['source_weights']) - 0.2).max() > 1e-4  # p moved
  logged = [r for r in rows if r['phase'] == 'bilevel']
  assert [r['step'] for r in logged] == [2, 3, 4, 6]
  for r in logged:
    _on_simplex(r['source_weights'])
  assert os.path.getsize(os.path.join(workdir, 'plots', 'source_weights.png')) > 0
  assert {r['phase'] for r in rows} == {'bilevel', 'retrain', 'uniform'}
  # The result is the retrained model, compared with uniform; w (which also
  # trained on the meta split) is only under phases, labelled as such.
  phases = summary['phases']
  assert (summary['result_phase'], summary['baseline_phase']) == ('retrain', 'uniform')
  assert summary['test_loss'] == phases['retrain']['test_loss'] != phases['bilevel']['test_loss']
  assert summary['test_accuracy'] == phases['retrain']['test_accuracy']
  assert summary['accuracy_gain_vs_baseline'] == pytest.approx(
      phases['retrain']['test_accuracy'] - phases['uniform']['test_accuracy'])
  assert 'meta' in summary['bilevel_note'] and summary['retrain_mode'] == 'loss'
  assert summary['w_test_accuracy'] == phases['bilevel']['test_accuracy']  # w, apart
  assert summary['w_test_loss'] == phases['bilevel']['test_loss']
  ledger = summary['ledger']
  assert ledger['steps'] == 18   # three phases of 6 steps
  assert [phases[p]['ledger']['steps'] for p in ('bilevel', 'retrain', 'uniform')] == [6, 6, 6]
  # penalty: u- and w-gradients on 16 train examples + 16 meta examples; retrain, uniform: 16
  assert ledger['gradient_evaluations'] == (2 * 16 + 16) * 6 + 2 * 16 * 6


def test_learned_weights_fall_with_the_corruption_rate(run_smoke):
  """A short digits run: the weights order the sources by corruption (Spearman -1)."""
  summary, _, _ = run_smoke('scalebio', num_steps=LEARN_STEPS, method__lr_lambda=LEARN_LR,
                            log_every=LEARN_STEPS, eval_every=LEARN_STEPS, method__retrain=False)
  assert summary['corruption_rates'] == [0.0, 0.2, 0.4, 0.6, 0.8]
  assert summary['weight_corruption_spearman'] == pytest.approx(-1.0), summary['source_weights']
  assert summary['source_weights'][0] > 0.3 > summary['source_weights'][-1]
  assert summary['result_phase'] == 'bilevel' and 'meta' in summary['bilevel_note']
  assert summary['w_test_accuracy'] == summary['test_accuracy']


def test_weight_corruption_spearman():
  rates, rho = [0.0, 0.2, 0.4, 0.6, 0.8], detection.rate_spearman
  assert rho([0.5, 0.2, 0.15, 0.1, 0.05], rates) == pytest.approx(-1.0)
  assert rho([0.05, 0.1, 0.15, 0.2, 0.5], rates) == pytest.approx(1.0)
  assert rho([0.2] * 5, rates) is None and rho([0.5, 0.5], [0.1, 0.1]) is None


def test_smoke_text(run_smoke):
  summary, rows, _ = run_smoke('scalebio', 'dataset=stdlib_text,smoke', num_steps=3,
                              method__retrain=False)
  assert summary['source_names'][0] == 'asyncio'
  _on_simplex(summary['source_weights'])
  assert np.isfinite(summary['test_loss']) and summary['result_phase'] == 'bilevel'
  assert set(summary['phases']) == {'bilevel'}
  assert all(len(r['source_weights']) == 5 for r in rows)


# ----------------------------------------------------------------------------- the update itself


def _setup(**method):
  """A method, its states and one real batch; states built in one jit (eager ops compile one by one)."""
  config = load_config('scalebio')
  config.method.update(method)
  data = load_dataset(config.data, config.seed)
  task = make_task(config, data.info)
  m = scalebio_method.make_bilevel(config, task, data)
  w_opt = scalebio_method.make_optimizers(config.method).w
  b = m.train_batch_size   # a window of rows with every source (per-source means are checked)
  start = next(i for i in range(40, data.train.size - b)
               if len(set(data.train.source[i:i + b].tolist())) == 5)
  batch = gather(data.train, np.arange(start, start + b))
  batch['meta'] = gather(data.meta, np.arange(m.meta_batch_size))
  p0 = np.asarray([0.5, -0.3, 0.1, 0.2, -0.5], np.float32)

  @jax.jit
  def states(key):
    w = task.init_params(jax.random.fold_in(key, 1))
    train_state = TrainState(jnp.zeros((), jnp.int32), w, w_opt.init(w))
    state = m.init(jax.random.fold_in(key, 2), train_state)
    return train_state, state._replace(p=jnp.asarray(p0))

  train_state, state = states(jax.random.key(0))
  return config, task, m, train_state, state, batch, p0


def _source_means(task, params, batch):
  """Per-source mean loss with boolean masks (independent of groups.segment_mean)."""
  losses = task.per_example_loss(params, batch)
  src = np.asarray(batch['source'])
  return jnp.stack([losses[src == k].mean() for k in range(5)])


def _softmax(p):
  e = np.exp(p - p.max())
  return e / e.sum()


def test_penalty_step_is_autodiff_of_penalty_on_a_real_batch():
  lr = 0.1   # plain SGD for u and w, so their updates are checkable exactly
  config, task, m, train_state, state, batch, p0 = _setup(inner_optimizer='sgd', lr_u=lr, lr_w=lr)
  u = jax.jit(task.init_params)(jax.random.key(3))   # u != w: the loss gap is not zero
  state = state._replace(u=u)
  w = train_state.params
  alpha = config.method.alpha
  assert len(set(batch['source'].tolist())) == 5

  def meta(prm):
    return task.per_example_loss(prm, batch['meta']).mean()

  def penalty(p, u, w):   # L1(w) + alpha * [L2(lambda, w) - L2(lambda, u)]
    lam = jax.nn.softmax(p)
    return meta(w) + alpha * (lam @ _source_means(task, w, batch) - lam @ _source_means(task, u, batch))

  # p descends the penalty, w descends it, u ascends it (the max player).
  g_p, g_u, g_w = jax.device_get(jax.jit(jax.grad(penalty, argnums=(0, 1, 2)))(p0, u, w))
  assert np.abs(g_p).max() > 1e-3
  before = jax.device_get((u, w))
  new_ts, new_state, metrics = jax.jit(m.step)(train_state, state, batch, jax.random.key(0))
  np.testing.assert_allclose(metrics['bilevel/grad_p'], g_p, rtol=2e-4, atol=1e-6)
  np.testing.assert_allclose(metrics['train/meta_loss'], jax.jit(meta)(w), rtol=1e-6)
  # Adam's first step is -lr * g / (|g| + eps); then the logits are re-centred.
  p1 = p0 - config.method.lr_lambda * g_p / (np.abs(g_p) + 1e-8)
  np.testing.assert_allclose(new_state.p, p1 - p1.mean(), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(metrics['source_weights'], _softmax(np.asarray(new_state.p)),
                             rtol=1e-5)
  np.testing.assert_allclose(new_state.weight_sum, _softmax(p0), rtol=1e-5)
  expect_u = jax.tree.map(lambda a, g: a + lr * g, before[0], g_u)
  expect_w = jax.tree.map(lambda a, g: a - lr * g, before[1], g_w)
  for got, want in ((new_state.u, expect_u), (new_ts.params, expect_w)):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), got, want)
  assert int(new_ts.step) == 1


def test_unrolled_mirror_update_is_exponentiated_hypergradient():
  lr_lambda, lr_inner = 0.5, 0.3
  config, task, m, train_state, state, batch, p0 = _setup(
      hypergradient='unrolled', unroll_steps=1, unroll_lr=lr_inner, lambda_update='mirror',
      lr_lambda=lr_lambda)
  w = train_state.params

  def meta_after_one_step(lam):   # L1(w - lr * grad_w sum_k lam_k lbar_k(w))
    g = jax.grad(lambda prm: lam @ _source_means(task, prm, batch))(w)
    w1 = jax.tree.map(lambda a, b: a - lr_inner * b, w, g)
    return task.per_example_loss(w1, batch['meta']).mean()

  lam0 = _softmax(p0)
  g_lambda = np.asarray(jax.jit(jax.grad(meta_after_one_step))(lam0))
  expected = lam0 * np.exp(-lr_lambda * g_lambda)
  expected = expected / expected.sum()
  _, new_state, _ = jax.jit(m.step)(train_state, state, batch, jax.random.key(0))
  assert np.abs(expected - lam0).max() > 1e-4
  np.testing.assert_allclose(_softmax(np.asarray(new_state.p)), expected, rtol=1e-4, atol=1e-7)


# ----------------------------------------------------------------------------- runs


def test_cg_baseline_smoke_and_restore(run_smoke):
  """A baseline estimator in the loop; its state (no u) restores from checkpoints."""
  summary, rows, workdir = run_smoke('scalebio', method__hypergradient='cg', method__cg_maxiter=3,
                                     num_steps=3, method__retrain=False)
  assert summary['hypergradient'] == 'cg' and 'bilevel_note' not in summary   # w: train split only
  _on_simplex(summary['source_weights'])
  assert np.abs(np.asarray(summary['source_weights']) - 0.2).max() > 1e-5   # p moved
  assert all(np.isfinite(r['bilevel/grad_p_norm']) for r in rows)
  config = load_config('scalebio')
  config.method.update(hypergradient='cg', cg_maxiter=3, retrain=False)
  config.num_steps = 3
  again = train_and_evaluate(config, workdir)
  assert again['source_weights'] == summary['source_weights'] and again['final'] == summary['final']


def test_8_devices_match_1(tmp_path):
  config = load_config('scalebio')
  config.num_steps, config.method.retrain = 4, False
  train_and_evaluate(config, str(tmp_path / 'one'))   # this process has 1 device
  one = _rows(tmp_path / 'one')
  eight = run_on(8, tmp_path / 'eight', 'scalebio', 'dataset=digits,smoke', 'num_steps=4',
                 'method.retrain=False')
  assert_same_rows(one, eight)
  assert all(len(r['source_weights']) == 5 for r in one)
  a, b = (json.load(open(tmp_path / d / 'summary.json')) for d in ('one', 'eight'))
  assert set(a['phases']) == {'bilevel'}
  np.testing.assert_allclose(b['source_weights'], a['source_weights'], rtol=1e-4)
  np.testing.assert_allclose(b['test_loss'], a['test_loss'], rtol=1e-4)


@pytest.mark.parametrize('field,value', [
    ('hypergradient', 'newton'), ('alpha', -1.0), ('lr_lambda', 0.0), ('lambda_update', 'sgd'),
    ('inner_optimizer', 'lion'), ('alpha_exponent', -0.5), ('cg_maxiter', 0),
    ('retrain_mode', 'both'), ('lisa_num_blocks', 99), ('lisa_always_trainable', ('nope',))])
def test_bad_hyperparameter_is_one_line_naming_the_field(field, value):
  config = load_config('scalebio')
  config.method[field] = value
  if field.startswith('lisa'):
    config.method.lisa_period = 5
  with pytest.raises(ConfigError) as e:
    prepare(config)
  message = str(e.value)
  assert f'config.method.{field}' in message and '\n' not in message, message
