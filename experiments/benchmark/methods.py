"""Per-method steps: each registered method's step / the uniform method's step.

Each method's step is built by its own `make` on the digits preset
(`configs/<name>.py:dataset=digits`, `,smoke` under --quick) with the same MLP
and batch, and timed against the uniform method's step in alternating blocks.

The methods timed come from the method registry (`timed_methods`): every
registered method but the baseline (the step all are timed against), methods
of the 'filter' family (they need another run's score file) and NOT_TIMED, so
a new method is in the table without an edit here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Sequence

import jax
import jax.numpy as jnp

from datarater.data import sampler
from datarater.run import declaration, methods_with, prepare
from datarater.train import flops as flops_lib
from datarater.train.state import Method, init_train_state
from experiments import _runs
from experiments.benchmark import timing

# ----------------------------------------------------------------------------- methods timed
# Registered methods left out of the per-method table, and why.
NOT_TIMED = {'datarater': 'its meta-training phase trains no model; the meta-gradient modes '
                          'section times its meta-gradient',
             'regmix': 'its proxy phase trains method.num_proxies models in one step (an '
                       'ensemble), its final phase is static_mixture\'s sampling',
             'mixing_agent': 'its first phase runs one RL update (population x proxy_steps '
                             'proxy steps) per step; its final phase is Aioli-like mixture '
                             'sampling'}
QUICK_METHODS = ('l2rw', 'kl_dro', 'aum')  # --quick: one meta method, one rule, one scorer
# Per-method step ratio targets (issue 11); the closed-form rules' weights cost next to nothing.
STEP_TARGETS = {'l2rw': 3.5, 'mwn': 3.5, 'scalebio': 3.2}
RULE_FAMILIES, RULE_TARGET = ('source', 'rule', 'pruning'), 1.05


def timed_methods() -> list:
  """Every registered method the per-method table times, in table order (datarater.run)."""
  return [n for n in methods_with() if n not in NOT_TIMED
          and declaration(n).family not in ('baseline', 'filter')]


def method_target(name: str):
  """Method `name`'s step ratio target: STEP_TARGETS, else RULE_TARGET for a closed-form rule
  (a family in RULE_FAMILIES), else None."""
  if name in STEP_TARGETS:
    return STEP_TARGETS[name]
  return RULE_TARGET if declaration(name).family in RULE_FAMILIES else None
# -----------------------------------------------------------------------------


def method_config(name: str, quick: bool, batch_size: int):
  """`configs/<name>.py:dataset=digits` (`,smoke` when quick) with the benchmark's batch size."""
  config = _runs.load_config(name, 'dataset=digits' + (',smoke' if quick else ''))
  config.batch_size = batch_size
  return config


def method_step(name: str, quick: bool, batch_size: int) -> tuple:
  """(compiled step, args, phase name) of method `name` on the digits preset.

  The phase timed is the first one whose method is a `Method` (the one that
  trains or scores with the method's own step); for DoReMi it is the proxy
  phase, not the uniform reference.
  """
  config = method_config(name, quick, batch_size)
  dataset, task, pipeline = prepare(config)
  phase = next(p for p in pipeline.phases if isinstance(p.method, Method))
  method = phase.method
  if name == 'doremi':  # time the proxy phase (the method), not the uniform reference
    from datarater.methods import doremi
    phase = pipeline.phases[1]
    method = doremi.make_proxy(config, task, dataset, task.init_params(jax.random.key(0)))
  task = phase.task or task  # e.g. confident_learning's ensemble of k members
  if phase.optimizer is not None:
    task = dataclasses.replace(task, optimizer=phase.optimizer)
  key = jax.random.key(0)
  ts = init_train_state(task, key) if phase.trains_model else None
  ms = method.init(key, ts)
  batch = sampler.gather(dataset.train, sampler.sequential_indices(
      dataset.train.size, method.train_batch_size, config.seed, 0))
  if method.meta_batch_size:
    batch['meta'] = sampler.gather(dataset.meta, sampler.sequential_indices(
        dataset.meta.size, method.meta_batch_size, config.seed, 0, sampler.META))
  args = (ts, ms, jax.tree.map(jnp.asarray, batch), key)
  compiled, _ = timing.compile_timed(method.step, *args)
  return compiled, args, phase.name


def bench_methods(names: Sequence[str], quick: bool, batch_size: int, repeats: int,
                  log: Callable[[str], None]) -> List[Dict[str, Any]]:
  """Each method's step time / the uniform method's step time (same model and batch).

  Args:
    names: registered method names.
    quick: smoke-sized models.
    batch_size: training batch size.
    repeats: timed blocks per method.
    log: progress callback.

  Returns:
    One row per method: name, phase, seconds, plain seconds, ratio, FLOPs ratio, target.
  """
  plain, plain_args, _ = method_step('uniform', quick, batch_size)
  plain_flops = flops_lib.compiled_flops(plain)
  rows = []
  for name in names:
    compiled, args, phase = method_step(name, quick, batch_size)
    step_s, plain_s = timing.paired_times(lambda: compiled(*args), lambda: plain(*plain_args),
                                          repeats)
    rows.append(dict(method=name, phase=phase, step_s=step_s, plain_s=plain_s,
                     ratio=step_s / plain_s,
                     flops_ratio=flops_lib.compiled_flops(compiled) / plain_flops,
                     target=method_target(name)))
    log(f"method {name} ({phase}): {rows[-1]['ratio']:.2f}x plain step")
  return rows
