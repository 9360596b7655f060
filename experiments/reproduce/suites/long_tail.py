"""Suite long_tail: Meta-Weight-Net Table 1 layout, uniform, L2RW and MW-Net under imbalance."""

from __future__ import annotations

from experiments.reproduce.core import Run, Suite
from experiments.reproduce.published import published_entry
from experiments.reproduce.suites._common import (ACCURACY, COMPUTE_MATCHED_ROWS, CSV_METHOD,
                                                  MWNET_PAPER, REFERENCES, config_arg,
                                                  suite_methods, table_label, with_compute_matched)

# The meta-learned methods each setting also runs a compute-matched uniform row for.
COMPUTE_MATCHED = ('l2rw', 'mwn')


def methods() -> list:
  """(row label, method): the methods of the MW-Net paper's Table 1 (CSV_METHOD), whose
  published numbers the rows are read against, then from the registry the long-tail losses
  (family 'imbalance': class-balanced loss) and the references that use the balanced meta
  split (meta rows only, fine-tune on meta rows). The oracle is left out: nothing is
  corrupted, so it is uniform."""
  return [(table_label(n), n, {}) for n in CSV_METHOD] + suite_methods(
      lambda d: d.family == 'imbalance' or (d.family == 'baseline' and d.information == 'meta rows'))


def grid(scale):
  """The runs of this suite at `scale`."""
  factors = {'smoke': (100, 1), 'cpu': (200, 100, 50, 20, 10, 1),
             'paper': (200, 100, 50, 20, 10, 1)}[scale]
  ds = 'cifar10' if scale == 'paper' else 'digits'
  # meta_size 100 = 10 rows per class (the balanced long-tail meta split), at every scale.
  base = {'smoke': {}, 'cpu': {'num_steps': 1000},
          'paper': {**MWNET_PAPER, 'data.meta_size': 100}}[scale]
  return with_compute_matched(
      [Run(f'{ds} imbalance {f}', label, cfg,
           config_arg(ds, scale, 'resnet' if scale == 'paper' else ''),
           {**base, 'data.corruption_rates': (0.0,), 'data.corruption': 'none',
            'data.imbalance': float(f), 'data.meta_mode': 'clean', **variant},
           {'dataset': ds, 'imbalance': f})
       for f in factors for label, cfg, variant in methods()], COMPUTE_MATCHED)


def published(scale):
  """MW-Net Table 1 (long-tailed CIFAR-10, ResNet-32) at our grid's imbalance factors; our rows'
  setting only at paper scale."""
  factors = list(dict.fromkeys(r.key['imbalance'] for r in grid(scale)))
  out = [published_entry('mwnet_long_tail', theirs, f'imbalance {f}',
                         protocol='10 clean meta images per class',
                         ours=f'cifar10 imbalance {f} | {table_label(config)}'
                         if scale == 'paper' else '')
         for f in factors for config, theirs in CSV_METHOD.items()]
  return [e for e in out if e is not None]


def header(scale):
  grids = {'smoke': 'digits, imbalance 100 and 1, 6 steps', 'paper': 'long-tailed CIFAR-10, '
          'imbalance 200/100/50/20/10/1, ResNet-32, the MW-Net code settings (batch 100, '
          'SGD-Nesterov 0.1, wd 5e-4, lr / 10 at epochs 80 and 100, 58,800 steps)',
          'cpu': 'digits (MLP 256-256), imbalance 200/100/50/20/10/1, 1000 steps of batch 64, '
                 'Adam 1e-3'}
  return (f'Grid: {grids[scale]}. Class c keeps imbalance^(-c/9) of its training examples; no '
          'label noise; a clean meta split of 10 rows per class drawn before imbalancing (at '
          'imbalance 1: 100 random rows of the balanced pool). Published (block below the '
          'table): Meta-Weight-Net Table 1 '
          '(long-tailed CIFAR-10, ResNet-32, test accuracy %), which differs from ours in dataset '
          '(CIFAR-10 vs 1,400 digit images, so imbalance 100 leaves a handful of examples of the '
          'rarest class), model, steps and optimizer (SGD with lr / 10 at epochs 80 and 100 vs '
          'Adam at cpu scale). Class-balanced loss: Cui et al. (CVPR 2019), weights from the '
          'effective number of each class\'s training rows (method.beta = 0.999). ' + REFERENCES + ' ' + COMPUTE_MATCHED_ROWS)


SUITE = Suite(grid, (ACCURACY,), header, published,
              curve=('imbalance', 'imbalance factor', True))
