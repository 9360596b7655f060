"""Suite long_tail: Meta-Weight-Net Table 1 layout, uniform, L2RW and MW-Net under imbalance."""

from __future__ import annotations

from experiments.reproduce.core import Run, Suite
from experiments.reproduce.published import published_entry
from experiments.reproduce.suites._common import (ACCURACY, COMPUTE_MATCHED_ROWS, CSV_METHOD,
                                                  EARLY_STOPPED_NOTE, FINAL_STEP, PUBLISHED_BEST,
                                                  REFERENCES, config_arg, mwnet_script,
                                                  suite_methods, table_label,
                                                  with_compute_matched, with_early_stopped)

# The meta-learned methods each setting also runs a compute-matched uniform row for.
COMPUTE_MATCHED = ('l2rw', 'mwn')
# Paper scale follows the authors' class-imbalance script (xjtushujun/Meta-weight-net_class-
# imbalance): 100 epochs of the long-tailed CIFAR-10 training set.
SCRIPT = 'meta-weight-net-class-imbalance.py'


def methods() -> list:
  """(row label, method): the methods of the MW-Net paper's Table 1 (CSV_METHOD), whose
  published numbers the rows are read against, then from the registry the long-tail losses
  (family 'imbalance': class-balanced loss) and the references that use the balanced meta
  split (meta rows only, fine-tune on meta rows). The oracle is left out: nothing is
  corrupted, so it is uniform."""
  return [(table_label(n), n, {}) for n in CSV_METHOD] + suite_methods(
      lambda d: d.family == 'imbalance' or (d.family == 'baseline' and d.information == 'meta rows'))


def paper_steps(imbalance: float, epochs: int = 100, batch: int = 100) -> int:
  """Steps of `epochs` epochs over long-tailed CIFAR-10 as the class-imbalance script builds
  it: 4,990 images per class after its 10 meta images, class c keeping
  int(4990 * imbalance^(-c/9)), batches of `batch` with the last one partial."""
  n = sum(int(4990 * (1 / imbalance) ** (c / 9)) for c in range(10))
  return epochs * -(-n // batch)


def grid(scale):
  """The runs of this suite at `scale`."""
  factors = {'smoke': (100, 1), 'cpu': (200, 100, 50, 20, 10, 1),
             'paper': (200, 100, 50, 20, 10, 1)}[scale]
  ds = 'cifar10' if scale == 'paper' else 'digits'
  # meta_size 100 = 10 rows per class (the balanced long-tail meta split), at every scale.
  def base(f, cfg):
    if scale == 'paper':
      return {**mwnet_script(SCRIPT, cfg), 'num_steps': paper_steps(f)}
    return {'smoke': {}, 'cpu': {'num_steps': 1000}}[scale]
  return with_early_stopped(with_compute_matched(
      [Run(f'{ds} imbalance {f}', label, cfg,
           config_arg(ds, scale, 'resnet' if scale == 'paper' else ''),
           {**base(f, cfg), 'data.corruption_rates': (0.0,), 'data.corruption': 'none',
            'data.imbalance': float(f), 'data.meta_mode': 'clean', **variant},
           {'dataset': ds, 'imbalance': f})
       for f in factors for label, cfg, variant in methods()], COMPUTE_MATCHED))


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
          'imbalance 200/100/50/20/10/1, ResNet-32, in the settings of the authors\' '
          'meta-weight-net-class-imbalance.py (batch 100, SGD-Nesterov 0.1, momentum 0.9, wd '
          '5e-4, 100 epochs of the long-tailed set, lr / 10 after 79 and 89 epochs; MW-Net: V '
          'normalised per batch, weight net SGD-Nesterov 1e-5, wd 5e-4)',
          'cpu': 'digits (MLP 256-256), imbalance 200/100/50/20/10/1, 1000 steps of batch 64, '
                 'Adam 1e-3'}
  return (f'Grid: {grids[scale]}. Class c keeps imbalance^(-c/9) of its training examples; no '
          'label noise; a clean meta split of 10 rows per class drawn before imbalancing (at '
          'imbalance 1: 100 random rows of the balanced pool). Published (block below the '
          'table): Meta-Weight-Net Table 1 '
          '(long-tailed CIFAR-10, ResNet-32, test accuracy %), which differs from ours in dataset '
          '(CIFAR-10 vs 1,400 digit images, so imbalance 100 leaves a handful of examples of the '
          'rarest class), model, steps and optimizer (SGD with lr / 10 at epochs 80 and 90 vs '
          'Adam at cpu scale). Class-balanced loss: Cui et al. (CVPR 2019), weights from the '
          'effective number of each class\'s training rows (method.beta = 0.999). ' + REFERENCES + ' ' + COMPUTE_MATCHED_ROWS
          + ' ' + EARLY_STOPPED_NOTE + ' Here the validation split is imbalanced like the training '
          f'data. {FINAL_STEP} {PUBLISHED_BEST}')


# The setting the README headlines: it runs --headline_seeds seeds (default 10) at cpu scale.
HEADLINE = {'cpu': ('digits imbalance 200',)}

SUITE = Suite(grid, (ACCURACY,), header, published,
              curve=('imbalance', 'imbalance factor', True), headline=HEADLINE)
