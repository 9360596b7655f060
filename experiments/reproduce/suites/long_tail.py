"""Suite long_tail: Meta-Weight-Net Table 1 layout, uniform, L2RW and MW-Net under imbalance."""

from __future__ import annotations

from experiments.reproduce.core import Run, Suite
from experiments.reproduce.published import find_published
from experiments.reproduce.suites._common import (ACCURACY, CSV_METHOD, EARLY_STOPPED_NOTE,
                                                  MWNET_PAPER, config_arg,
                                                  table_label, with_early_stopped)


def methods() -> list:
  """(row label, method): the methods of the MW-Net paper's Table 1 (CSV_METHOD), which every
  row's published number comes from; a new method is compared under imbalance only there."""
  return [(table_label(n), n) for n in CSV_METHOD]


def grid(scale):
  """The runs of this suite at `scale`."""
  factors = {'smoke': (100, 1), 'cpu': (200, 100, 50, 20, 10, 1),
             'paper': (200, 100, 50, 20, 10, 1)}[scale]
  ds = 'cifar10' if scale == 'paper' else 'digits'
  # meta_size 100 = 10 rows per class (the balanced long-tail meta split), at every scale.
  base = {'smoke': {}, 'cpu': {'num_steps': 1000},
          'paper': {**MWNET_PAPER, 'data.meta_size': 100}}[scale]
  return with_early_stopped([Run(f'{ds} imbalance {f}', label, cfg,
              config_arg(ds, scale, 'resnet' if scale == 'paper' else ''),
              {**base, 'data.corruption_rates': (0.0,), 'data.corruption': 'none',
               'data.imbalance': float(f), 'data.meta_mode': 'clean'},
              {'dataset': ds, 'imbalance': f})
          for f in factors for label, cfg in methods()])


def published(run, scale):
  value = find_published('mwnet_long_tail', CSV_METHOD[run.config],
                         f'imbalance {run.key["imbalance"]}')
  return value and f'{value} (CIFAR-10, ResNet-32)'


def header(scale):
  grids = {'smoke': 'digits, imbalance 100 and 1, 6 steps', 'paper': 'long-tailed CIFAR-10, '
          'imbalance 200/100/50/20/10/1, ResNet-32, the MW-Net code settings (batch 100, '
          'SGD-Nesterov 0.1, wd 5e-4, lr / 10 at epochs 80 and 100, 58,800 steps)',
          'cpu': 'digits (MLP 256-256), imbalance 200/100/50/20/10/1, 1000 steps of batch 64, '
                 'Adam 1e-3'}
  return (f'Grid: {grids[scale]}. Class c keeps imbalance^(-c/9) of its training examples; no '
          'label noise; a clean meta split of 10 rows per class drawn before imbalancing (at '
          'imbalance 1: 100 random rows of the balanced pool). Published: Meta-Weight-Net '
          'Table 1 '
          '(long-tailed CIFAR-10, ResNet-32, test accuracy %), which differs from ours in dataset '
          '(CIFAR-10 vs 1,400 digit images, so imbalance 100 leaves a handful of examples of the '
          'rarest class), model, steps and optimizer (SGD with lr / 10 at epochs 80 and 100 vs '
          'Adam at cpu scale). ' + EARLY_STOPPED_NOTE + ' Here the validation split is '
          'imbalanced like the training data.')


SUITE = Suite(grid, (ACCURACY,), header, published,
              curve=('imbalance', 'imbalance factor', True))
