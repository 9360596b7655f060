"""The training loop: smoke runs write the run directory, resume is exact,
runs are deterministic, bad configs fail with one line naming the field."""

import json
import os
import types

import numpy as np
import pytest

from conftest import load_config
from datarater.errors import ConfigError
from datarater.run import train_and_evaluate


def test_uniform_smoke_digits(run_smoke):
  summary, rows, _ = run_smoke('uniform')
  # Digits' sources are random partitions: no per-source test loss (test rows have no source).
  assert summary['method'] == 'uniform' and summary['test_source_loss'] is None
  assert summary['ledger']['gradient_evaluations'] == 6 * 16
  assert [r['step'] for r in rows if 'test/accuracy' in r] == [3, 6]


def test_uniform_smoke_text(run_smoke):
  summary, rows, _ = run_smoke('uniform', 'dataset=stdlib_text,smoke')
  assert summary['dataset'] == 'stdlib_text' and summary['source_names'][0] == 'asyncio'
  assert 0 < summary['test_loss'] < 10
  source_loss = summary['test_source_loss']   # text sources are packages: real
  assert len(source_loss) == 5 and min(source_loss) < summary['test_loss'] < max(source_loss)


@pytest.mark.parametrize('mode', ['sample', 'loss'])
def test_static_mixture_smoke(run_smoke, mode):
  summary, _, _ = run_smoke('static_mixture', method__mode=mode,
                            method__source_weights=(1.0, 1.0, 0.0, 0.0, 2.0))
  np.testing.assert_allclose(summary['source_weights'], [0.25, 0.25, 0, 0, 0.5])


def test_static_mixture_sampling_respects_weights():
  from datarater.data import load_dataset
  from datarater.train.task import make_task
  from datarater.methods import static_mixture
  config = load_config('static_mixture')
  config.method.source_weights = (0.0, 1.0, 0.0, 0.0, 0.0)
  data = load_dataset(config.data, 0)
  method = static_mixture.make(config, make_task(config, data.info), data)
  idx = np.concatenate([method.sample(s, ()) for s in range(5)])
  assert set(data.train.source[idx]) == {1}


def _rows(workdir):
  return [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]


def test_resume_continues_exactly(tmp_path):
  config = load_config('uniform')
  train_and_evaluate(config, str(tmp_path / 'full'))
  config.num_steps = 3
  train_and_evaluate(config, str(tmp_path / 'split'))
  config.num_steps = 6
  train_and_evaluate(config, str(tmp_path / 'split'))   # resumes from the step-3 checkpoint
  full, split = _rows(tmp_path / 'full'), _rows(tmp_path / 'split')
  assert [r['step'] for r in full] == [r['step'] for r in split]
  for a, b in zip(full, split):
    for k, v in a.items():
      if isinstance(v, float):
        np.testing.assert_allclose(b[k], v, rtol=1e-6, err_msg=f'step {a["step"]} {k}')


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
  config = load_config('uniform')
  a = train_and_evaluate(config, str(tmp_path / 'a'))
  b = train_and_evaluate(config, str(tmp_path / 'b'))
  assert a['final'] == b['final']
  config.seed = 1
  c = train_and_evaluate(config, str(tmp_path / 'c'))
  assert c['final'] != a['final']


@pytest.mark.parametrize('field,value,needle', [
    ('method.name', 'nope', 'config.method.name'),
    ('model.name', 'nope', 'config.model.name'),
    ('batch_size', 0, 'config.batch_size'),
    ('num_steps', -1, 'config.num_steps'),
    ('optimizer.name', 'lion2', 'config.optimizer.name'),
    ('data.name', 'not_a_dataset', 'config.data.name'),
    ('data.meta_mode', 'both', 'config.data.meta_mode'),
    ('data.corruption', 'bitrot', 'config.data.corruption'),
    ('method.mode', 'both', 'config.method.mode'),
])
def test_config_errors_name_the_field(tmp_path, field, value, needle):
  config = load_config('static_mixture')
  node = config
  *parents, leaf = field.split('.')
  for p in parents:
    node = node[p]
  node[leaf] = value
  with pytest.raises((ConfigError, ValueError)) as e:
    train_and_evaluate(config, str(tmp_path / 'run'))
  assert needle in str(e.value) and '\n' not in str(e.value)
  assert not (tmp_path / 'run').exists()


def test_resume_with_a_changed_config_is_refused(tmp_path):
  config = load_config('uniform')
  config.num_steps = 3
  train_and_evaluate(config, str(tmp_path / 'run'))
  config.batch_size = 32
  with pytest.raises(ConfigError, match='config.batch_size'):
    train_and_evaluate(config, str(tmp_path / 'run'))
  config.batch_size, config.num_steps = 16, 4   # only num_steps changed: resumes
  assert train_and_evaluate(config, str(tmp_path / 'run'))['ledger']['steps'] == 4


def test_step_schedule_divides_at_the_boundaries():
  """MW-Net's schedule: lr / 10 at epochs 80 and 100 of 120 (boundaries as fractions of the run)."""
  from datarater.train.task import make_schedule
  config = load_config('uniform')
  config.optimizer.schedule = 'step'
  config.optimizer.learning_rate = 0.1
  config.optimizer.step_boundaries = (80 / 120, 100 / 120)
  config.optimizer.step_factor = 0.1
  lr = make_schedule(config.optimizer, 1200)
  got = [float(lr(t)) for t in (0, 799, 800, 999, 1000, 1199)]
  np.testing.assert_allclose(got, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
  short = make_schedule(config.optimizer, 1)  # both boundaries round to step 1: both apply
  np.testing.assert_allclose([float(short(0)), float(short(1))], [0.1, 0.001], rtol=1e-6)


def _unequal_sources_loss_mode():
  """A static-mixture 'loss' setup on 100 train rows in sources of 10 and 90, B = 10, and a
  stand-in task whose per-example loss is 1 on source 0 and 0 elsewhere (so the batch's
  weighted loss is source 0's share of the loss weight)."""
  import optax
  from datarater.data import load_dataset
  from datarater.data.core import make_split
  config = load_config('static_mixture')
  config.method.mode, config.batch_size = 'loss', 10
  data = load_dataset(config.data, 0)
  t = data.train
  train = make_split(t.x[:100], t.y[:100], np.repeat([0, 1], [10, 90]))
  data = data._replace(train=train)
  task = types.SimpleNamespace(
      optimizer=optax.sgd(0.0),
      per_example_loss=lambda params, batch: params * (batch['source'] == 0))
  return config, task, data


def _source0_share(method, data, steps):
  """Mean over `steps` batches of source 0's share of the batch loss weight."""
  from datarater.data import sampler
  from datarater.train.state import TrainState
  import optax
  state = TrainState(0, 1.0, optax.sgd(0.0).init(1.0))
  shares = [float(method.step(state, (), sampler.gather(data.train, sampler.sequential_indices(
      100, 10, 0, s)), None)[2]['train/weighted_loss']) for s in range(steps)]
  return np.mean(shares)


def test_static_mixture_loss_mode_gives_each_source_its_weight_whatever_its_size():
  """lambda = (0.5, 0.5) on sources of 10 and 90 rows: over an epoch each carries exactly half
  of the loss (the old rule, weight proportional to lambda_g, gave source 0 a tenth); the
  ScaleBiO retrain phase (learned lambda uniform over the two sources) uses the same rule."""
  from datarater.methods import scalebio, static_mixture
  config, task, data = _unequal_sources_loss_mode()
  config.method.source_weights = (0.5, 0.5, 0.0, 0.0, 0.0)
  np.testing.assert_allclose(static_mixture.source_loss_weights(
      [0.5, 0.5], data.train.source, 10), [0.5 * 100 / (10 * 10), 0.5 * 100 / (90 * 10)])
  assert _source0_share(static_mixture.make(config, task, data), data, 10) == pytest.approx(0.5)
  sb = load_config('scalebio')
  sb.batch_size = 10
  pipeline = scalebio.make(sb, task, data)
  assert pipeline.result == 'retrain'   # retraining is the default
  retrain = next(p for p in pipeline.phases if p.name == 'retrain')
  learned = {scalebio.PHASE: types.SimpleNamespace(method_state=types.SimpleNamespace(
      p=np.zeros(5, np.float32)))}      # lambda uniform; absent sources 2-4 get 0
  assert _source0_share(retrain.method(learned), data, 10) == pytest.approx(0.5)


def test_momentum_is_plain_heavy_ball_and_nesterov_is_not():
  """optimizer.name='momentum' is PyTorch's SGD(momentum=m) (MW-Net.py's): buffer b <- m b + g,
  step -lr b; 'nesterov' steps -lr (g + m b). Two steps on a fixed gradient, written out."""
  import ml_collections
  import optax
  from datarater.train.task import make_optimizer
  g, lr, m = np.array([1.0, -2.0]), 0.1, 0.9
  steps = {}
  for name in ('momentum', 'nesterov'):
    cfg = ml_collections.ConfigDict(dict(
        name=name, learning_rate=lr, momentum=m, schedule='constant', weight_decay=0.0,
        grad_clip=0.0, eps_root=0.0, warmup_steps=0, step_boundaries=(), step_factor=0.1))
    opt = make_optimizer(cfg, 10)
    params = np.zeros(2)
    state = opt.init(params)
    for _ in range(2):
      updates, state = opt.update(g, state, params)
      params = optax.apply_updates(params, updates)
    steps[name] = np.asarray(params)
  np.testing.assert_allclose(steps['momentum'], -lr * (g + (m * g + g)), rtol=1e-6)
  np.testing.assert_allclose(steps['nesterov'], -lr * ((g + m * g) + (g + m * (m * g + g))),
                             rtol=1e-6)
