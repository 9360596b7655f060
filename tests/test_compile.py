"""Compilation: each phase's step program compiles once per run, and a second run with the same
shapes compiles nothing (JAX's persistent compilation cache, on by default in the entry points,
experiments._runs.use_compilation_cache).

The runs happen in a child process: the cache is a process-wide JAX setting, checked once."""

import json
import subprocess
import sys
import textwrap

import pytest

# Runs a config twice in one process (in-memory caches cleared in between) and prints, per run,
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
    print('RESULT ' + json.dumps(out))
''')


@pytest.mark.parametrize('config_name', ['uniform', 'datarater'])
def test_steps_compile_once_and_a_second_run_compiles_nothing(tmp_path, config_name):
  proc = subprocess.run([sys.executable, '-c', CHILD, str(tmp_path / 'cache'), config_name,
                         'dataset=digits,smoke'], capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  first, second = json.loads(proc.stdout.split('RESULT ', 1)[1])
  # The step program (guard_step's `guarded`) of each phase compiles once, the evaluation
  # program at most once per phase, and no program more often than it has distinct shapes.
  assert first['compiles']['jit(guarded)'] == first['phases']
  assert first['compiles']['jit(<lambda>)'] <= first['phases']
  # The second run, same shapes: every program comes from the persistent cache.
  hits = second['events'].get('/jax/compilation_cache/cache_hits', 0)
  assert second['events'].get('/jax/compilation_cache/cache_misses', 0) == 0
  assert hits == sum(second['compiles'].values()) > 0
  assert first['events'].get('/jax/compilation_cache/cache_misses', 0) > 0
