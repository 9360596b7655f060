"""What a meta loss tells a data rater, by the age of the model it weights (DataRater diagnosis).

A rater follows the meta-gradient. To first order, giving training example i a little more
weight in the next gradient step of a model theta changes the meta loss by
-lr * <grad L_meta(theta), grad l_i(theta)>: the meta-gradient raises the weight of the examples
whose gradient aligns with the meta loss's. This script trains one model uniformly (the run's
config.optimizer, config.batch_size) and, at each age in --ages (steps), scores a sample of
training rows by that alignment under several meta losses, and prints the AUROC of
"low alignment = corrupted" (1.0: the meta loss asks to down-weight every corrupted row
before any clean one; 0.5: no signal; below 0.5: it asks to up-weight the corrupted rows):

  CE, noisy meta      the paper's protocol: cross-entropy on a meta split drawn from the same
                      (corrupted) data, data.meta_mode='noisy'
  CE, its clean rows  the same meta split's uncorrupted rows only
  CE, its corrupted   its corrupted rows only
  CE, trimmed 50%     the noisy meta split's cross-entropy over its half of lower-loss rows
                      (method.outer_loss='trimmed_ce', method.outer_trim=0.5)
  CE, trimmed 50% and lowest 12.5%   two-sided: also without the lowest-loss 12.5% of rows
                      (method.outer_trim_low=0.125)
  MAE, noisy meta     mean of 1 - p_y (method.outer_loss='mae') on the noisy meta split
  CE, clean meta      cross-entropy on a clean meta split (data.meta_mode='clean')

With a corruption kind per source (data.corruption='mixed'), a second table follows: by age,
each kind's median position in the sampled rows' loss ranking (0 = lowest loss, 1 = highest),
which is what a loss-trimmed meta loss (method.outer_trim, method.outer_trim_low) keeps or
leaves out.

It is the one-step, SGD-direction view of the meta-gradient (DataRater unrolls T Adam steps
of a population); it shows what the meta loss rewards, not what a rater learns.

Command (numbers in the README's DataRater section):
  python -m experiments.meta_signal --config=configs/datarater.py:dataset=stdlib_text \
    --ages=0,25,50,100,200,400 --rows=512
"""

from __future__ import annotations

import sys

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_flags

from datarater.data import load_dataset, sampler
from datarater.errors import ConfigError, DataError
from datarater.meta.datarater_features import mae_loss, trimmed_mean
from datarater.report.detection import auroc
from datarater.train.task import make_task

_CONFIG = config_flags.DEFINE_config_file('config', None, 'run config (a method config file)')
_AGES = flags.DEFINE_list('ages', ['0', '25', '50', '100', '200', '400'],
                          'model ages (uniform training steps) at which to measure')
_ROWS = flags.DEFINE_integer('rows', 512, 'training rows scored at each age (a fixed sample)')


def alignments(task, params, meta_grads: dict, batch) -> dict:
  """<grad meta loss, grad l_i> for every row i of `batch`, per meta loss: {name: [B]}."""
  def one(x, y):
    return jax.grad(lambda p: task.per_example_loss(p, {'x': x[None], 'y': y[None]})[0])(params)

  grads = jax.vmap(one)(batch['x'], batch['y'])
  return {name: sum(jnp.sum(g * m[None].astype(g.dtype), axis=tuple(range(1, g.ndim)))
                    for g, m in zip(jax.tree.leaves(grads), jax.tree.leaves(mg)))
          for name, mg in meta_grads.items()}


def meta_losses(task, noisy, clean) -> dict:
  """The meta losses compared: {name: (params -> scalar)} over fixed meta batches."""
  def ce(split, rows):
    batch = sampler.gather(split, rows)
    return lambda p: task.per_example_loss(p, batch).mean()

  every = sampler.gather(noisy, np.arange(noisy.size))
  bad = np.flatnonzero(noisy.corrupted)
  out = {'CE, noisy meta': lambda p: task.per_example_loss(p, every).mean(),
         'CE, its clean rows': ce(noisy, np.flatnonzero(~noisy.corrupted))}
  if len(bad):
    out['CE, its corrupted'] = ce(noisy, bad)
  out['CE, trimmed 50%'] = lambda p: trimmed_mean(task.per_example_loss(p, every), 0.5)
  out['CE, trimmed 50% and lowest 12.5%'] = lambda p: trimmed_mean(
      task.per_example_loss(p, every), 0.5, 0.125)
  out['MAE, noisy meta'] = lambda p: mae_loss(task.logits(p, every['x']), every['y']).mean()
  out['CE, clean meta'] = ce(clean, np.arange(clean.size))
  return out


def main(argv):
  del argv
  config = _CONFIG.value
  try:
    ages = sorted({int(a) for a in _AGES.value})
    if not ages or ages[0] < 0 or _ROWS.value < 2:
      raise ConfigError('--ages: whole numbers >= 0 and --rows >= 2 expected')
    noisy_cfg = config.data.copy_and_resolve_references()
    noisy_cfg.meta_mode = 'noisy'
    clean_cfg = config.data.copy_and_resolve_references()
    clean_cfg.meta_mode = 'clean'
    data = load_dataset(noisy_cfg, config.seed)
    clean_meta = load_dataset(clean_cfg, config.seed).meta
    task = make_task(config, data.info, max(ages) or 1)
  except (ConfigError, DataError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  if not data.train.corrupted.any():
    print('error: config.data: no training row is corrupted, nothing to detect', file=sys.stderr)
    sys.exit(2)
  rng = np.random.default_rng(config.seed)
  rows = rng.choice(data.train.size, min(_ROWS.value, data.train.size), replace=False)
  losses = meta_losses(task, data.meta, clean_meta)
  grads_of = jax.jit(lambda p: {k: jax.grad(f)(p) for k, f in losses.items()})
  align = jax.jit(lambda p, g, b: alignments(task, p, g, b))

  @jax.jit
  def train_step(params, opt, batch):
    g = jax.grad(lambda p: task.per_example_loss(p, batch).mean())(params)
    updates, opt = task.optimizer.update(g, opt, params)
    return jax.tree.map(jnp.add, params, updates), opt

  params = task.init_params(jax.random.key(config.seed))
  opt = task.optimizer.init(params)
  print(f'{data.info.name}: {data.train.size} training rows ({data.train.corrupted.mean():.2f} '
        f'corrupted), {data.meta.size} meta rows; {len(rows)} rows scored; AUROC of "low '
        'alignment with the meta gradient = corrupted" by model age (steps):', flush=True)
  names = list(losses)
  print('| age | ' + ' | '.join(names) + ' |')
  print('|---' * (len(names) + 1) + '|')
  kinds = np.asarray(data.info.source_corruption or ('',) * data.info.num_sources)
  kind = np.where(data.train.corrupted[rows], kinds[data.train.source[rows]], 'clean')
  present = [k for k in dict.fromkeys(('clean',) + tuple(kinds)) if k and (kind == k).any()]
  loss_of = jax.jit(task.per_example_loss)
  positions = []
  step = 0
  for age in ages:
    for step in range(step, age):
      idx = sampler.sequential_indices(data.train.size, config.batch_size, config.seed, step)
      params, opt = train_step(params, opt, sampler.gather(data.train, idx))
    step = age
    meta_grads = grads_of(params)
    chunks = [align(params, meta_grads, sampler.gather(data.train, rows[i:i + 64]))
              for i in range(0, len(rows), 64)]
    scores = {k: np.concatenate([np.asarray(c[k]) for c in chunks]) for k in names}
    cells = [f'{auroc(data.train.corrupted[rows], scores[k]):.3f}' for k in names]
    print(f'| {age} | ' + ' | '.join(cells) + ' |', flush=True)
    losses = np.concatenate([np.asarray(loss_of(params, sampler.gather(data.train, rows[i:i + 64])))
                             for i in range(0, len(rows), 64)])
    rank = np.argsort(np.argsort(losses, kind='stable'), kind='stable') / max(len(rows) - 1, 1)
    positions.append([np.median(rank[kind == k]) for k in present])
  if len(present) > 2:
    print('\nMedian position of each kind in the rows\' loss ranking (0 = lowest loss):')
    print('| age | ' + ' | '.join(present) + ' |')
    print('|---' * (len(present) + 1) + '|')
    for age, row in zip(ages, positions):
      print(f'| {age} | ' + ' | '.join(f'{v:.2f}' for v in row) + ' |')


if __name__ == '__main__':
  app.run(main)
