"""Suite noisy_labels: Meta-Weight-Net Tables 2-3 layout, symmetric and pair-flip label noise."""

from __future__ import annotations

from experiments.reproduce.core import Run, Suite
from experiments.reproduce.published import find_published
from experiments.reproduce.suites._common import (ACCURACY, CSV_METHOD, EARLY_STOPPED_NOTE,
                                                  MWNET_PAPER, config_arg, meta_overrides,
                                                  suite_methods, with_early_stopped)

# Per-example methods this suite's committed tables were made without (see suite_methods).
NOT_RUN = ('cartography', 'chi2_dro', 'confident_learning', 'cvar', 'el2n', 'forgetting',
           'small_loss')


def methods() -> list:
  """(row label, method): the baseline and every per-example method (meta-learned, data
  scorer, loss rule, pruning) from the registry, less NOT_RUN; the MW-Net paper's methods
  (CSV_METHOD) first, then table order."""
  found = suite_methods(lambda d: d.family in ('baseline', 'meta', 'scorer', 'rule', 'pruning'),
                        NOT_RUN)
  return sorted(found, key=lambda m: m[1] not in CSV_METHOD)


def grid(scale):
  """The runs of this suite at `scale`."""
  if scale == 'paper':  # MW-Net's layout: WRN-28-10 for uniform noise, ResNet-32 for flip noise
    cells = [(ds, kind, rate) for ds in ('cifar10', 'cifar100')
             for kind, rates in (('symmetric', (0, 40, 60)), ('pair-flip', (20, 40)))
             for rate in rates]
    base = dict(MWNET_PAPER)
  elif scale == 'cpu':
    cells = [(ds, kind, rate) for ds in ('digits', 'mnist1d')
             for kind, rates in (('symmetric', (0, 20, 40, 60, 80)), ('pair-flip', (20, 40)))
             for rate in rates]
    base = {'num_steps': 1000}
  else:
    cells = [('digits', 'symmetric', 40), ('digits', 'pair-flip', 20)]
    base = {}
  out = []
  for ds, kind, rate in cells:
    corruption = {'symmetric': 'label_symmetric', 'pair-flip': 'label_pairflip'}[kind]
    model = ('wrn' if kind == 'symmetric' else 'resnet') if scale == 'paper' else ''
    for label, cfg in methods():
      out.append(Run(f'{ds} {kind} {rate}%', label, cfg, config_arg(ds, scale, model),
                     {**base, 'data.corruption_rates': (rate / 100,), 'data.corruption': corruption,
                      'data.meta_mode': 'clean', **meta_overrides(cfg, scale)},
                     {'dataset': ds, 'kind': kind, 'rate': rate}))
  return with_early_stopped(out)


def published(run, scale):
  k = run.key
  if k['dataset'] == 'mnist1d' and k['rate'] == 0 and run.config == 'uniform':
    return f'MLP {find_published("mnist1d_baselines", "MLP", "4000")} (MNIST-1D paper, clean)'
  if run.config not in CSV_METHOD:
    return ''
  cifar = 'CIFAR-100' if k['dataset'] == 'cifar100' else 'CIFAR-10'
  if k['kind'] == 'symmetric':
    value = find_published('mwnet_uniform_noise', CSV_METHOD[run.config], f'{cifar},',
                           f'uniform noise {k["rate"]}%')
    return value and f'{value} ({cifar}, WRN-28-10)'
  value = find_published('mwnet_flip_noise', CSV_METHOD[run.config], f'{cifar},',
                         f'flip noise {k["rate"]}%')
  return value and f'{value} ({cifar}, ResNet-32)'


def header(scale):
  grids = {'smoke': 'digits, symmetric 40% and pair-flip 20%, 6 steps, tiny MLP',
          'cpu': ('digits and MNIST-1D (both with an MLP 256-256), symmetric noise 0/20/40/60/80% '
                  'and pair-flip 20/40%; 1000 steps of batch 64, Adam 1e-3; DataRater '
                  'meta-trains 200 steps. MNIST-1D uniform at 0% is the calibration row against '
                  'the MNIST-1D paper'),
          'paper': ('CIFAR-10/100, symmetric 0/40/60% with WRN-28-10 and pair-flip 20/40% with '
                    'ResNet-32 (MW-Net\'s architectures), batch 100, SGD-Nesterov 0.1, wd 5e-4, '
                    'learning rate / 10 at epochs 80 and 100, 58,800 steps (120 epochs)')}
  return (f'Grid: {grids[scale]}. One noisy source at the given rate; every method sees a clean '
          'meta split (data.meta_mode=clean, the MW-Net protocol) of data.meta_size examples. '
          'AUM filter is the training-dynamics scorer with filtered retraining (discard fraction '
          "'auto': chosen from the score distribution and kept only if the filtered model beats "
          'its paired uniform arm on the validation split at the last step). ' + EARLY_STOPPED_NOTE + ' '
          'Published: Meta-Weight-Net Tables 2 and 3 (CIFAR-10, test accuracy %; see '
          'third_party/README.md), which differ from ours at cpu scale in dataset (CIFAR vs '
          'digits/MNIST-1D), model (WRN-28-10 for uniform noise, ResNet-32 for flip, vs a small '
          'MLP), optimizer (SGD with a step schedule vs Adam) and steps (58,800 vs 1000); their '
          'uniform noise may keep the true class, our symmetric noise always changes the label. '
          'Both architectures use GroupNorm here where the papers used BatchNorm.')


SUITE = Suite(grid, (ACCURACY,), header, published, curve=('rate', 'label noise %', False))
