"""PNG plots for the run directory (matplotlib, Agg backend).

matplotlib is imported by the first plot (`pyplot`), not by this module, so a
process that draws no plot (`--help`, a run that fails its checks) never loads it.
A run that will draw calls `preload` when it starts: the import then happens on a
background thread while the run compiles and trains.
"""

from __future__ import annotations

import numpy as np

from datarater import lazy


def preload() -> None:
  """Starts importing matplotlib.pyplot (Agg) on a background thread (once per process)."""
  lazy.preload('matplotlib', _import_pyplot)


def _import_pyplot():
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  return plt


def pyplot():
  """matplotlib.pyplot on the Agg backend, imported on first use (or by `preload`)."""
  return lazy.load('matplotlib', _import_pyplot)


def _series(rows, key):
  """{phase: (steps, values)} for rows that have `key`."""
  out = {}
  for r in rows:
    if isinstance(r.get(key), (int, float)):
      s = out.setdefault(r['phase'], ([], []))
      s[0].append(r['step'])
      s[1].append(r[key])
  return out


def training_curves(rows, path):
  """Train loss, test loss and test accuracy vs step, one line per phase."""
  keys = [('train/loss', 'train loss'), ('test/loss', 'test loss'), ('test/accuracy', 'test accuracy')]
  plt = pyplot()
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  for ax, (key, title) in zip(axes, keys):
    for phase, (steps, vals) in _series(rows, key).items():
      ax.plot(steps, vals, label=phase, marker='.' if len(steps) < 30 else None)
    ax.set_title(title)
    ax.set_xlabel('step')
    ax.grid(alpha=0.3)
  axes[-1].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def vector_curves(rows, key, names, path, title, ylabel='weight'):
  """A logged vector metric (e.g. per-source weights) over steps, one line per entry."""
  rows = [r for r in rows if isinstance(r.get(key), list)]
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  if rows:
    steps = [r['step'] for r in rows]
    vals = np.asarray([r[key] for r in rows])
    for i in range(vals.shape[1]):
      ax.plot(steps, vals[:, i], label=names[i] if i < len(names) else str(i))
    ax.legend(fontsize=8)
  ax.set_title(title)
  ax.set_xlabel('step')
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def histograms(groups: dict, path, title, xlabel='score', bins=40):
  """Overlaid normalized histograms, one per named group of values."""
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  values = [np.asarray(v) for v in groups.values() if len(v)]
  if values:
    edges = np.histogram_bin_edges(np.concatenate(values), bins=bins)
    for name, v in groups.items():
      if len(v):
        ax.hist(np.asarray(v), bins=edges, alpha=0.5, density=True, histtype='stepfilled',
                label=f'{name} (n={len(v)})')
    ax.legend(fontsize=8)
  ax.set_title(title)
  ax.set_xlabel(xlabel)
  ax.set_ylabel('density')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def weight_function(grid, weights, losses, corrupted, path) -> None:
  """V(loss) over a loss grid, above histograms of final train losses by corruption flag."""
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(grid, weights, color='k', label='V(loss)')
  ax.set_xlabel('per-example loss')
  ax.set_ylabel('weight')
  ax.set_ylim(0, 1)
  twin = ax.twinx()
  for name, mask in (('clean', ~corrupted), ('corrupted', corrupted)):
    if mask.any():
      twin.hist(losses[mask], bins=grid, alpha=0.3, density=True, label=f'final train loss, {name}')
  twin.set_ylabel('density')
  fig.legend(fontsize=8, loc='upper right')
  ax.set_title('learned MW-Net weight function')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def data_map(variability, confidence, corrupted, path, title='data map') -> None:
  """Dataset-cartography data map: variability (x) vs confidence (y), coloured by the flag.

  Args:
    variability: [N] std of p(y | x) over training.
    confidence: [N] mean of p(y | x) over training.
    corrupted: [N] bool ground-truth corruption flag.
    path: PNG file to write.
    title: plot title.
  """
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(5, 5))
  for name, mask, color in (('clean', ~corrupted, 'tab:blue'), ('corrupted', corrupted, 'tab:red')):
    if mask.any():
      ax.scatter(variability[mask], confidence[mask], s=4, alpha=0.5, color=color,
                 label=f'{name} (n={int(mask.sum())})')
  ax.set_xlabel('variability')
  ax.set_ylabel('confidence')
  ax.set_ylim(0, 1)
  ax.legend(fontsize=8)
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
