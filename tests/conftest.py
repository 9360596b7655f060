"""Shared test fixtures: fast-compile XLA flags, float64, smoke runs of a config, the run-directory contract."""

import os

# Tests compile many small programs once each: skip LLVM's optimisation passes
# (compile time, not numerics, dominates here). Must be set before JAX starts.
FAST_COMPILE = '--xla_backend_optimization_level=0'
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' + FAST_COMPILE).strip()

import json  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from datarater.run import train_and_evaluate  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One JAX persistent compilation cache per test session, shared by the xdist workers (the
# controller imports this file before it starts them, so they inherit the variable): the many
# smoke runs of the same programs compile each once. Cached programs are the compiled ones, so
# no number changes; tests of the cache itself run in child processes with their own.
if 'DATARATER_TEST_JAX_CACHE' not in os.environ:
  os.environ['DATARATER_TEST_JAX_CACHE'] = tempfile.mkdtemp(prefix='datarater-test-jax-cache-')
jax.config.update('jax_compilation_cache_dir', os.environ['DATARATER_TEST_JAX_CACHE'])
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
CONTRACT = ('config.json', 'metrics.jsonl', 'summary.json', 'checkpoints', 'tensorboard',
            'plots/training_curves.png')


@pytest.fixture
def x64():
  """Float64 inside the test (gradient checks against finite differences / closed forms)."""
  with jax.enable_x64(True):
    yield


def load_config(name: str, arg: str = 'dataset=digits,smoke'):
  """`configs/<name>.py`'s get_config(arg), by the entry points' one loader (smoke digits by default)."""
  from experiments._runs import load_config as load
  return load(name, arg)


def assert_bad_method_field(make, config, task, dataset, field: str, value) -> None:
  """`make(config, task, dataset)` with config.method.<field> (or <node>.<key>) set to `value`
  raises a one-line ConfigError naming the field (the field's type may change: it is replaced,
  no flag parsing here)."""
  import copy
  from datarater.errors import ConfigError
  config = copy.deepcopy(config)
  node, *rest = field.split('.')
  if rest:
    config.method[node][rest[0]] = value
  else:
    with config.unlocked():
      del config.method[field]
      config.method[field] = value
  with pytest.raises(ConfigError, match=f'config.method.{field}') as e:
    make(config, task, dataset)
  assert '\n' not in str(e.value)


def check_run_dir(workdir, num_rows=None):
  """Asserts every file of the run-directory contract exists and is well formed."""
  for f in CONTRACT:
    assert os.path.exists(os.path.join(workdir, f)), f'missing {f}'
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert rows and all('step' in r and 'phase' in r for r in rows)
  assert any(f.startswith('events') for f in os.listdir(os.path.join(workdir, 'tensorboard')))
  summary = json.load(open(os.path.join(workdir, 'summary.json')))
  for k in ('test_accuracy', 'test_loss', 'test_source_loss', 'ledger'):
    assert k in summary, k
  for k in ('wall_seconds', 'examples_processed', 'gradient_evaluations'):
    assert summary['ledger'][k] > 0, k
  if num_rows is not None:
    scores = np.load(os.path.join(workdir, 'scores_train.npy'))
    assert scores.shape == (num_rows,) and np.all(np.isfinite(scores))
  return summary, rows


@pytest.fixture
def run_smoke(tmp_path):
  """run_smoke(config_name, arg='dataset=digits,smoke', **overrides) -> (summary, rows, workdir);
  `tag` names a second workdir of the same config (tmp_path / (config_name + tag))."""
  def run(name, arg='dataset=digits,smoke', scores=False, tag='', **overrides):
    config = load_config(name, arg)
    for key, value in overrides.items():
      node = config
      *parents, leaf = key.split('__')
      for p in parents:
        node = node[p]
      node[leaf] = value
    workdir = str(tmp_path / (name + tag))
    train_and_evaluate(config, workdir)
    from datarater.data import load_dataset
    n = load_dataset(config.data, config.seed).info.num_rows if scores else None
    summary, rows = check_run_dir(workdir, n)
    return summary, rows, workdir
  return run
