"""The training loop compiles a method's step once per dispatch length and never
retraces it across steps (chex.assert_max_traces counts the traces); a second run with the
same shapes compiles nothing (JAX's persistent compilation cache, on by default in the entry
points: experiments._runs.use_compilation_cache)."""

import json
import os
import subprocess
import sys
import textwrap

import chex
import pytest

from conftest import load_config
from datarater.data import load_dataset
from datarater.methods import kl_dro
from datarater.train.loop import Context, train_phase
from datarater.train.rundir import RunDir
from datarater.train.sharding import make_mesh
from datarater.train.task import make_task


def _phase(tmp_path, k: int, max_traces: int, name: str = 'train'):
  """Runs kl_dro's smoke phase (6 steps, logs at 2/4/6, checkpoints at 3/6) with
  its step wrapped by chex.assert_max_traces(n=max_traces)."""
  config = load_config('kl_dro')
  config.steps_per_dispatch = k
  dataset = load_dataset(config.data, config.seed)
  task = make_task(config, dataset.info)
  method = kl_dro.make(config, task, dataset)
  counted = method._replace(step=chex.assert_max_traces(method.step, n=max_traces))
  ctx = Context(config, dataset, RunDir(str(tmp_path / f'k{k}')), make_mesh())
  try:
    return train_phase(ctx, name, counted, task, config.num_steps), counted
  finally:
    ctx.run.close()


def test_one_step_per_dispatch_traces_the_step_once(tmp_path):
  result, _ = _phase(tmp_path, k=1, max_traces=1)
  assert result.ledger['steps'] == 6


def test_k_steps_per_dispatch_trace_once_per_dispatch_length(tmp_path):
  """k=8 cuts the 6 steps into dispatches of 2, 1, 1, 2 steps: two programs."""
  _phase(tmp_path, k=8, max_traces=2)
  with pytest.raises(AssertionError, match='traced > 1 times'):
    _phase(tmp_path / 'strict', k=8, max_traces=1)   # the check can fail


# The cache is a process-wide JAX setting, checked once: the runs happen in a child process.
# It runs a config twice in one process (in-memory caches cleared in between) and prints, per run,
# how many times each jitted function reached the compiler (XLA compile or persistent-cache
# load: JAX's backend-compile event) and the persistent cache's hits and misses.
CHILD = textwrap.dedent('''
    import collections, json, os, sys
    from experiments._runs import load_config, use_compilation_cache
    cache, config_name, arg = sys.argv[1:4]
    use_compilation_cache(cache)
    import jax
    from jax import monitoring
    from datarater.run import train_and_evaluate
    compiles, events = collections.Counter(), collections.Counter()
    def on_duration(name, secs, fun_name=None, **kwargs):
      if name == '/jax/core/compile/backend_compile_duration':
        compiles[fun_name] += 1
    monitoring.register_event_duration_secs_listener(on_duration)
    monitoring.register_event_listener(lambda name, **kwargs: events.update([name]))
    out = []
    for i in range(2):
      compiles.clear(); events.clear()
      workdir = os.path.join(cache, '..', f'run{i}')
      train_and_evaluate(load_config(config_name, arg), workdir)
      with open(os.path.join(workdir, 'summary.json')) as f:
        phases = len(json.load(f)['phases'])
      out.append({'compiles': dict(compiles), 'events': dict(events), 'phases': phases})
      jax.clear_caches()
    out.append(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))
    print('RESULT ' + json.dumps(out))
''')


@pytest.mark.parametrize('config_name', ['uniform', 'datarater'])
def test_steps_compile_once_and_a_second_run_compiles_nothing(tmp_path, config_name):
  proc = subprocess.run([sys.executable, '-c', CHILD, str(tmp_path / 'cache'), config_name,
                         'dataset=digits,smoke'], capture_output=True, text=True, timeout=600,
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert proc.returncode == 0, proc.stderr[-3000:]
  first, second, heavy = json.loads(proc.stdout.split('RESULT ', 1)[1])
  if config_name == 'uniform':   # digits are read without importing scikit-learn (or scipy)
    assert heavy == []
  # Each phase's one-step program (datarater.train.loop._one) compiles once, the evaluation
  # program at most once per phase.
  assert first['compiles']['jit(one_step)'] == first['phases']
  assert first['compiles']['jit(<lambda>)'] <= first['phases']
  # The second run, same shapes: every program comes from the persistent cache.
  hits = second['events'].get('/jax/compilation_cache/cache_hits', 0)
  assert second['events'].get('/jax/compilation_cache/cache_misses', 0) == 0
  assert hits == sum(second['compiles'].values()) > 0
  assert first['events'].get('/jax/compilation_cache/cache_misses', 0) > 0
