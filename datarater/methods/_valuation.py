"""Shared plumbing of the data-valuation scorers (knn_shapley, tmc_shapley, tracin, influence,
prototypes; math in datarater/valuation/).

- `output_layer(task, params, x)`: the model's output layer (the last `nn.Dense`
  the forward pass calls: every classifier and the LM here end in one), found by
  intercepting the flax module calls: its params path (the parameter subset of
  TracIn-last and of the last-layer influence) and its input, the penultimate
  features (the embeddings of KNN-Shapley, TMC-Shapley and prototypes; one
  forward pass, no model change needed).
- `embeddings(...)`: 'penultimate' (those features, by `map_split` over a split)
  or 'raw' (the flattened inputs); `standardize`: z-scores with the training
  rows' statistics, divided by sqrt(D) (mean squared row norm ~1, so a fixed
  step size suits any width).
- `example_loss(task)`: one example's loss, (params, x, y) -> scalar.
- `Cost`: wall time and XLA FLOPs of the scoring computation run in a phase's
  finalize (summary.json: `valuation_seconds`, `valuation_flops`); the
  training phase's own cost is in the loop's ledger as for every method.
- `scoring_phase(...)`: the uniform training phase 'score' that the scorers
  run before valuing (`method.score_steps` steps).
"""

from __future__ import annotations

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from datarater.errors import require
from datarater.methods import uniform
from datarater.train.evaluation import map_split
from datarater.train.flops import compiled_flops
from datarater.train.pipeline import Phase

EMBEDDINGS = ('penultimate', 'raw')


def output_layer(task, params, x):
  """(params path of the last nn.Dense called, its input [B, ...]) on inputs x."""
  seen = []

  def intercept(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.Dense) and context.method_name == '__call__':
      seen.append((tuple(context.module.path), args[0]))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(intercept):
    task.model.apply({'params': params}, x)
  if not seen:
    raise ValueError(f'{type(task.model).__name__} calls no nn.Dense: no output layer found')
  return seen[-1]


def output_path(task, params) -> tuple:
  """The params path of the output layer (abstract evaluation on one dummy row)."""
  dummy = jnp.zeros((1,) + tuple(task.info.input_shape),
                    jnp.int32 if task.info.task == 'lm' else jnp.float32)
  box = []
  jax.eval_shape(lambda p: box.append(output_layer(task, p, dummy)[0]), params)
  return box[0]


def example_loss(task):
  """(params, x, y) -> the task's loss of one example."""
  return lambda params, x, y: task.per_example_loss(params, {'x': x[None], 'y': y[None]})[0]


class Cost:
  """Wall time and XLA FLOPs of jitted programs called in a scoring pass.

  `wrap(fn)` jits fn; its first call compiles it (`lower(...).compile()`),
  counts its FLOPs (datarater.train.flops.compiled_flops: loops of unknown
  trip count, e.g. CG's, counted once) and every call adds them. `add(flops)`
  adds FLOPs counted elsewhere. `info()` -> {'valuation_seconds',
  'valuation_flops'} since construction.
  """

  def __init__(self):
    self.start, self.flops = time.perf_counter(), 0.0

  def wrap(self, fn, **jit_kwargs):
    jitted, compiled = jax.jit(fn, **jit_kwargs), {}

    def call(*args):
      if 'c' not in compiled:
        compiled['c'] = jitted.lower(*args).compile()
        compiled['flops'] = compiled_flops(compiled['c'])
      self.flops += compiled['flops']
      return compiled['c'](*args)
    return call

  def add(self, flops: float) -> None:
    self.flops += float(flops)

  def info(self) -> dict:
    return {'valuation_seconds': round(time.perf_counter() - self.start, 3),
            'valuation_flops': self.flops}


def program_flops(jitted, *args, **kwargs) -> float:
  """XLA FLOPs of one call of an already jitted function on these arguments."""
  return compiled_flops(jitted.lower(*args, **kwargs).compile())


def embeddings(ctx, task, params, split, kind: str, cost: Cost) -> np.ndarray:
  """[N, D] float32 embeddings of a split's rows: penultimate features (mean over tokens for a
  sequence model) or the flattened raw inputs."""
  if kind == 'raw':
    return np.asarray(split.x, np.float32).reshape(split.size, -1)

  def features(batch):
    h = output_layer(task, params, batch['x'])[1]
    return h.reshape(h.shape[0], -1, h.shape[-1]).mean(axis=1)

  return np.asarray(map_split(cost.wrap(features), split, ctx), np.float32)


def standardize(train: np.ndarray, *others: np.ndarray) -> list:
  """Each array z-scored with train's per-column mean and std (std 0 -> 1), divided by sqrt(D)."""
  mean, std = train.mean(0), train.std(0)
  std = np.where(std > 0, std, 1.0) * np.sqrt(train.shape[1])
  return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def check_embedding(config, dataset) -> None:
  """ConfigError for a bad method.embedding, or raw inputs that are tokens."""
  kind = config.method.embedding
  require(kind in EMBEDDINGS, 'method.embedding', f'one of {EMBEDDINGS}', kind)
  require(kind != 'raw' or dataset.info.task == 'classification', 'method.embedding',
          "'penultimate' for a language-model dataset (raw inputs are tokens)", kind)


def check_meta(config, dataset) -> None:
  """ConfigError unless there is a meta split to value against."""
  require(dataset.meta.size > 0, 'data.meta_size',
          f'>= 1 for method {config.method.name!r} (the meta split is its validation data)',
          config.data.get('meta_size'))


def check_steps(config, minimum: int = 0) -> None:
  """ConfigError unless method.score_steps is an int >= minimum."""
  steps = config.method.score_steps
  require(isinstance(steps, int) and steps >= minimum, 'method.score_steps',
          f'an int >= {minimum}', steps)


def scoring_phase(config, task, dataset, method=None) -> Phase:
  """Phase 'score': `method` (default: uniform training) for method.score_steps steps."""
  return Phase('score', method or uniform.make(config, task, dataset), config.method.score_steps)
