"""Suite linear_regression: Sow et al. 2025's least-squares study of loss-based batch reweighting.

The runs are outside the training loop: least_squares_curve runs minibatch
SGD on synthetic least squares under datarater.weighting.loss_reweight's
weights and records the excess-risk curve as the run's summary.json.
"""

from __future__ import annotations

import os

import numpy as np

from experiments.reproduce.core import Metric, Run, Suite, read_summary, run_dir
from experiments.reproduce.report import pyplot

LINREG = {'smoke': dict(n=200, d=10, steps=30), 'cpu': dict(n=2000, d=50, steps=3000),
          'paper': dict(n=20000, d=200, steps=30000)}


def grid(scale):
  """The runs of this suite at `scale`."""
  return [Run(setting, label, _linreg(scale, label, outliers), key={'outliers': outliers})
          for setting, outliers in (('clean', 0.0), ('outliers 20%', 0.2))
          for label in ('uniform', 'linupper', 'quadratic', 'extremes')]


def _linreg(scale, strategy, outliers):
  """A callable run: SGD on synthetic least squares with the loss-based weights of `strategy`."""
  def run(seed, workdir):
    summary = least_squares_curve(seed, strategy, outliers, batch_size=32, learning_rate=0.01,
                                  **LINREG[scale])
    from datarater.train.rundir import dumps, write_atomic
    os.makedirs(workdir, exist_ok=True)
    write_atomic(os.path.join(workdir, 'summary.json'), [dumps(summary)])
    return summary
  return run


def least_squares_curve(seed: int, strategy: str, outliers: float, n: int, d: int, steps: int,
                        batch_size: int, learning_rate: float) -> dict:
  """Excess risk of minibatch SGD on y = x.w* + noise under loss-based batch weights.

  Args:
    seed: seeds data, label noise, outliers and batch order (the same for every strategy).
    strategy: 'uniform' or a datarater.weighting.loss_reweight strategy.
    outliers: fraction of examples whose label gets extra N(0, 5^2) noise.
    n, d: examples and dimension (x ~ N(0, I), w* ~ N(0, I)).
    steps, batch_size, learning_rate: SGD from w = 0.

  Returns:
    {'curve': excess risk ||w - w*||^2 after each step (at most 500 points, evenly spaced),
     'curve_steps', 'final_excess_risk', 'mean_excess_risk'}.
  """
  import jax
  import jax.numpy as jnp

  from datarater.weighting.loss_reweight import loss_reweight_weights
  kx, kw, kn, ko, kb = jax.random.split(jax.random.PRNGKey(seed), 5)
  x = jax.random.normal(kx, (n, d))
  w_star = jax.random.normal(kw, (d,))
  noise = 0.5 * jax.random.normal(kn, (n,))
  k_mask, k_big = jax.random.split(ko)
  noise += jnp.where(jax.random.uniform(k_mask, (n,)) < outliers,
                     5.0 * jax.random.normal(k_big, (n,)), 0.0)
  y = x @ w_star + noise
  r = 1.0 if strategy == 'quadratic' else 0.4

  def step(w, t):
    idx = jax.random.randint(jax.random.fold_in(kb, t), (batch_size,), 0, n)
    residual = x[idx] @ w - y[idx]
    if strategy == 'uniform':
      weights = jnp.full((batch_size,), 1.0 / batch_size)
    else:
      weights = loss_reweight_weights(jax.lax.stop_gradient(0.5 * residual ** 2), strategy, 1.0, r)
    w = w - learning_rate * (weights * residual) @ x[idx]
    return w, jnp.sum((w - w_star) ** 2)

  _, risk = jax.jit(lambda: jax.lax.scan(step, jnp.zeros(d), jnp.arange(steps)))()
  risk = np.asarray(risk, float)
  keep = np.unique(np.linspace(0, steps - 1, min(steps, 500)).astype(int))
  return {'curve': risk[keep].tolist(), 'curve_steps': (keep + 1).tolist(),
          'final_excess_risk': float(risk[-1]), 'mean_excess_risk': float(risk.mean())}


def header(scale):
  size = LINREG[scale]
  return (f'Synthetic least squares (Sow et al. 2025\'s linear-regression study of dynamic '
          f'loss-based reweighting): n={size["n"]} examples, d={size["d"]}, Gaussian x, y = '
          f'x.w* + N(0, 0.5^2); "outliers 20%" adds N(0, 5^2) to the labels of 20% of the '
          f'examples. SGD, batch 32, learning rate 0.01, {size["steps"]} steps from w = 0; each '
          'batch is weighted by datarater.weighting.loss_reweight (delta 1; r = 1 for '
          'quadratic, 0.4 for linupper and extremes, the paper\'s temperatures; no warm-up). '
          'Columns: excess test risk E[(x.(w - w*))^2] at the last step and its area under the '
          'curve (mean over steps; no best over training). Seeds pair the data, noise and batch '
          'order. No published numbers in third_party/ (the paper shows curves only).')


def plot(runs: list, seeds: dict, folder: str) -> None:
  """plots/curves.png: excess risk vs step per strategy (mean, band = min..max over seeds)."""
  plt = pyplot()
  settings = list(dict.fromkeys(r.setting for r in runs))
  fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 3.8))
  for ax, setting in zip(np.atleast_1d(axes), settings):
    for run in (r for r in runs if r.setting == setting):
      curves = [read_summary(run_dir(folder, run, s)) for s in range(seeds[setting])]
      ys = np.asarray([c['curve'] for c in curves])
      line, = ax.plot(curves[0]['curve_steps'], ys.mean(0), label=run.method)
      ax.fill_between(curves[0]['curve_steps'], ys.min(0), ys.max(0), alpha=0.2,
                      color=line.get_color())
    ax.set_yscale('log')
    ax.set_title(setting)
    ax.set_xlabel('step')
    ax.set_ylabel('excess risk ||w - w*||^2')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(folder, 'plots', 'curves.png'), dpi=100)
  plt.close(fig)


SUITE = Suite(grid, (Metric('final excess risk', lambda s, w, c: s['final_excess_risk'],
                            paired=True),
                     Metric('mean excess risk over steps', lambda s, w, c: s['mean_excess_risk'],
                            paired=True)),
              header, plot=plot)
