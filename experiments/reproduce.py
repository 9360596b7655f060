"""Reproduction suites: published tables beside ours, over seeds, with paired comparisons.

  python -m experiments.reproduce --suite=noisy_labels --scale=cpu [--seeds=3] [--out=results]

runs every (setting, method, seed) of a suite into
`<out>/<suite>/<scale>/runs/<setting>/<method>/seed<k>/` (a run whose
summary.json parses is reused, so an interrupted suite resumes), then writes
`table.md`, `table.csv` and `plots/` beside `runs/`. Each cell is the mean and
standard deviation over seeds; each method is compared with uniform training
of the same seed (same initial parameters and data order, see
configs/common.py: paired_arms) by the mean paired difference and its 95%
t-interval over seeds. Published numbers (third_party/*.csv) stand beside the
rows they correspond to, and each table's header says how our setup differs.

Scales: 'smoke' (a few steps, for tests), 'cpu' (each suite well under an hour
on 2 CPU cores; the grid is stated in the table header) and 'paper' (the
papers' datasets through TFDS, architectures and schedules, for accelerators
with prepared TFDS data). Suites: see SUITES.

Bad flags exit with status 2 and one line on stderr before anything is
written; bad input found later (e.g. a finished run made with another config)
exits 2 with one line too; a run stopped by a non-finite value exits with
status 3.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import time
from typing import Callable

import numpy as np
from absl import app, flags, logging

from experiments._runs import (ROOT, SCORERS, fail, load_config, override, parse_flags, read_json,
                               run_detection, run_one)

SCALES = ('smoke', 'cpu', 'paper')
DEFAULT_SEEDS = {'smoke': 2, 'cpu': 3, 'paper': 3}


@dataclasses.dataclass
class Run:
  """One (setting, method) cell of a suite; seeds are added when it runs.

  Attributes:
    setting: the setting's label (a table row group; also its folder name).
    method: the method's label ('uniform' is every setting's paired baseline).
    config: configs/<config>.py, or a callable (seed, workdir) -> summary for
      runs outside the training loop.
    arg: the config arg ('dataset=digits,smoke').
    overrides: dotted config fields set on top of the config file.
    key: what the setting is ({'dataset': 'digits', 'rate': 40, ...}), for
      matching published rows.
  """
  setting: str
  method: str
  config: str | Callable
  arg: str = ''
  overrides: dict = dataclasses.field(default_factory=dict)
  key: dict = dataclasses.field(default_factory=dict)

  def make_config(self, seed: int):
    """The run's ConfigDict for `seed` (None for a callable run)."""
    if callable(self.config):
      return None
    return override(load_config(self.config, self.arg), {**self.overrides, 'seed': seed})


@dataclasses.dataclass(frozen=True)
class Metric:
  """A table column computed from a finished run.

  Attributes:
    name: column label.
    fn: (summary, workdir, config) -> float | None.
    paired: also report the paired difference vs uniform in this column.
  """
  name: str
  fn: Callable
  paired: bool = False


@dataclasses.dataclass(frozen=True)
class Suite:
  """A reproduction suite.

  Attributes:
    runs: scale -> list of Run.
    metrics: the table's columns.
    header: scale -> the paragraph on the grid and on how it differs from the papers.
    published: (run, scale) -> text of the matching published number(s), or ''.
    plot: optional (runs, seeds, folder) -> None, extra plots from the run directories.
    extra: optional (runs, seeds, folder) -> markdown lines added to table.md.
    curve: optional (x key, x label, log x): plots/curve_<metric>.png draws each
      metric against Run.key[x key], one line per method, one panel per value
      of the other keys.
  """
  runs: Callable
  metrics: tuple
  header: Callable
  published: Callable
  plot: Callable | None = None
  curve: tuple | None = None
  extra: Callable | None = None


# ---------------------------------------------------------------- statistics

def mean_std(values) -> tuple:
  """(mean, sample standard deviation) of finite values; std None with fewer than 2."""
  v = np.asarray([x for x in values if x is not None], float)
  if v.size == 0:
    return None, None
  return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)


def paired_interval(method, baseline, level: float = 0.95) -> tuple:
  """Mean paired difference method - baseline and its t-interval over seeds.

  Args:
    method: per-seed values of the method.
    baseline: per-seed values of the baseline, same seeds in the same order.
    level: coverage of the two-sided interval.

  Returns:
    (mean, low, high); low and high are None with a single pair.
  """
  from scipy import stats
  d = np.asarray(method, float) - np.asarray(baseline, float)
  if d.size < 2:
    return float(d.mean()), None, None
  half = stats.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
  return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


# ------------------------------------------------------------ published rows

def published_rows(name: str) -> list:
  """Rows of third_party/<name>.csv as dicts."""
  with open(os.path.join(ROOT, 'third_party', f'{name}.csv')) as f:
    return list(csv.DictReader(f))


def find_published(name: str, method: str, *needles: str) -> str:
  """'value' of the row of third_party/<name>.csv with this method whose setting holds every needle.

  A needle must not be followed by a digit ('imbalance 20' does not match 'imbalance 200').
  """
  for r in published_rows(name):
    if r['method'] == method and all(re.search(re.escape(n) + r'(?!\d)', r['setting'])
                                     for n in needles):
      return r['value']
  return ''


# ------------------------------------------------------------------ metrics

def _pct(key):
  return lambda s, w, c: None if s.get(key) is None else 100 * s[key]


def _baseline_accuracy(s):
  return s['phases'][s['baseline_phase']]['test_accuracy'] if 'baseline_phase' in s else None


def _gain(field):
  def fn(s, w, c):
    g = s.get('compute', {}).get(field)
    return None if g is None else 100 * g
  return fn


def _weights(s):
  """The learned per-source weight: time-averaged where the method records it."""
  for k in ('source_weights_time_avg', 'source_weights_mean', 'source_weights',
            'source_mean_score'):
    if k in s:
      return s[k]
  return None


def _weight_spearman(s, w, c):
  from scipy import stats
  weights = _weights(s)
  if weights is None:
    return None
  return float(stats.spearmanr(weights, s['corruption_rates'])[0])


def _detection(field):
  return lambda s, w, c: run_detection(c, w, s)[field]


ACCURACY = Metric('test acc. %', _pct('test_accuracy'), paired=True)


# -------------------------------------------------------------- the suites

def _steps(scale, cpu, paper):
  return {'smoke': {}, 'cpu': cpu, 'paper': paper}[scale]


# CIFAR setting of the MW-Net code (batch 100, SGD-Nesterov 0.1, wd 5e-4, 1000 clean meta
# images); 120 epochs of 49,000 images = 58,800 steps of 100, learning rate / 10 at
# epochs 80 and 100.
MWNET_PAPER = {'batch_size': 100, 'num_steps': 58800, 'data.meta_size': 1000,
               'optimizer.name': 'nesterov', 'optimizer.learning_rate': 0.1,
               'optimizer.momentum': 0.9, 'optimizer.weight_decay': 5e-4,
               'optimizer.schedule': 'step', 'optimizer.step_boundaries': (80 / 120, 100 / 120),
               'optimizer.step_factor': 0.1, 'eval_every': 2000, 'checkpoint_every': 2000,
               'log_every': 200}

NOISY_METHODS = (('uniform', 'uniform', {}), ('L2RW', 'l2rw', {}), ('MW-Net', 'mwn', {}),
                 ('DataRater', 'datarater', {}), ('STORM', 'storm', {}),
                 ('AUM filter', 'aum', {}), ('KL-DRO', 'kl_dro', {}),
                 ('loss reweighting', 'loss_reweight', {}), ('InfoBatch', 'infobatch', {}))
CSV_METHOD = {'uniform': 'CE', 'L2RW': 'L2RW', 'MW-Net': 'MW-Net'}


def _arg(dataset, scale, model=''):
  return ','.join(filter(None, [f'dataset={dataset}', model and f'model={model}',
                                'smoke' if scale == 'smoke' else '']))


# stdlib_text at cpu scale: 400 steps per phase (the text preset's 1500 take about 65 s per
# uniform run here) and 100 meta-training steps.
TEXT_CPU = {'num_steps': 400, 'method.meta_steps': 100}


def _meta_overrides(config, scale):
  """Shorter meta-training of the methods with their own step counts at cpu scale."""
  if scale != 'cpu':
    return {}
  return {'datarater': {'method.meta_steps': 200}}.get(config, {})


def noisy_runs(scale):
  if scale == 'paper':  # MW-Net's layout: WRN-28-10 for uniform noise, ResNet-32 for flip noise
    grid = [(ds, kind, rate) for ds in ('cifar10', 'cifar100')
            for kind, rates in (('symmetric', (0, 40, 60)), ('pair-flip', (20, 40)))
            for rate in rates]
    base = dict(MWNET_PAPER)
  elif scale == 'cpu':
    grid = [(ds, kind, rate) for ds in ('digits', 'mnist1d')
            for kind, rates in (('symmetric', (0, 20, 40, 60, 80)), ('pair-flip', (20, 40)))
            for rate in rates]
    base = {'num_steps': 1000}
  else:
    grid = [('digits', 'symmetric', 40), ('digits', 'pair-flip', 20)]
    base = {}
  runs = []
  for ds, kind, rate in grid:
    corruption = {'symmetric': 'label_symmetric', 'pair-flip': 'label_pairflip'}[kind]
    model = ('wrn' if kind == 'symmetric' else 'resnet') if scale == 'paper' else ''
    for label, cfg, extra in NOISY_METHODS:
      runs.append(Run(f'{ds} {kind} {rate}%', label, cfg, _arg(ds, scale, model),
                      {**base, 'data.corruption_rates': (rate / 100,), 'data.corruption': corruption,
                       'data.meta_mode': 'clean', **_meta_overrides(cfg, scale), **extra},
                      {'dataset': ds, 'kind': kind, 'rate': rate}))
  return runs


def noisy_published(run, scale):
  k = run.key
  if k['dataset'] == 'mnist1d' and k['rate'] == 0 and run.method == 'uniform':
    return f'MLP {find_published("mnist1d_baselines", "MLP", "4000")} (MNIST-1D paper, clean)'
  if run.method not in CSV_METHOD:
    return ''
  cifar = 'CIFAR-100' if k['dataset'] == 'cifar100' else 'CIFAR-10'
  if k['kind'] == 'symmetric':
    value = find_published('mwnet_uniform_noise', CSV_METHOD[run.method], f'{cifar},',
                           f'uniform noise {k["rate"]}%')
    return value and f'{value} ({cifar}, WRN-28-10)'
  value = find_published('mwnet_flip_noise', CSV_METHOD[run.method], f'{cifar},',
                         f'flip noise {k["rate"]}%')
  return value and f'{value} ({cifar}, ResNet-32)'


def noisy_header(scale):
  grid = {'smoke': 'digits, symmetric 40% and pair-flip 20%, 6 steps, tiny MLP',
          'cpu': ('digits and MNIST-1D (both with an MLP 256-256), symmetric noise 0/20/40/60/80% '
                  'and pair-flip 20/40%; 1000 steps of batch 64, Adam 1e-3; DataRater '
                  'meta-trains 200 steps. MNIST-1D uniform at 0% is the calibration row against '
                  'the MNIST-1D paper'),
          'paper': ('CIFAR-10/100, symmetric 0/40/60% with WRN-28-10 and pair-flip 20/40% with '
                    'ResNet-32 (MW-Net\'s architectures), batch 100, SGD-Nesterov 0.1, wd 5e-4, '
                    'learning rate / 10 at epochs 80 and 100, 58,800 steps (120 epochs)')}
  return (f'Grid: {grid[scale]}. One noisy source at the given rate; every method sees a clean '
          'meta split (data.meta_mode=clean, the MW-Net protocol) of data.meta_size examples. '
          'AUM filter is the training-dynamics scorer with filtered retraining (discard 50%). '
          'Published: Meta-Weight-Net Tables 2 and 3 (CIFAR-10, test accuracy %; see '
          'third_party/README.md), which differ from ours at cpu scale in dataset (CIFAR vs '
          'digits/MNIST-1D), model (WRN-28-10 for uniform noise, ResNet-32 for flip, vs a small '
          'MLP), optimizer (SGD with a step schedule vs Adam) and steps (58,800 vs 1000); their '
          'uniform noise may keep the true class, our symmetric noise always changes the label. '
          'Both architectures use GroupNorm here where the papers used BatchNorm.')


def long_tail_runs(scale):
  factors = {'smoke': (100, 1), 'cpu': (200, 100, 50, 20, 10, 1),
             'paper': (200, 100, 50, 20, 10, 1)}[scale]
  ds = 'cifar10' if scale == 'paper' else 'digits'
  base = {'smoke': {}, 'cpu': {'num_steps': 1000}, 'paper': MWNET_PAPER}[scale]
  return [Run(f'{ds} imbalance {f}', label, cfg,
              _arg(ds, scale, 'resnet' if scale == 'paper' else ''),
              {**base, 'data.corruption_rates': (0.0,), 'data.corruption': 'none',
               'data.imbalance': float(f), 'data.meta_mode': 'clean'},
              {'dataset': ds, 'imbalance': f})
          for f in factors for label, cfg, _ in NOISY_METHODS[:3]]


def long_tail_published(run, scale):
  value = find_published('mwnet_long_tail', CSV_METHOD[run.method],
                         f'imbalance {run.key["imbalance"]}')
  return value and f'{value} (CIFAR-10, ResNet-32)'


def long_tail_header(scale):
  grid = {'smoke': 'digits, imbalance 100 and 1, 6 steps', 'paper': 'long-tailed CIFAR-10, '
          'imbalance 200/100/50/20/10/1, ResNet-32, the MW-Net code settings (batch 100, '
          'SGD-Nesterov 0.1, wd 5e-4, lr / 10 at epochs 80 and 100, 58,800 steps)',
          'cpu': 'digits (MLP 256-256), imbalance 200/100/50/20/10/1, 1000 steps of batch 64, '
                 'Adam 1e-3'}
  return (f'Grid: {grid[scale]}. Class c keeps imbalance^(-c/9) of its training examples; no '
          'label noise; a balanced clean meta split. Published: Meta-Weight-Net Table 1 '
          '(long-tailed CIFAR-10, ResNet-32, test accuracy %), which differs from ours in dataset '
          '(CIFAR-10 vs 1,400 digit images, so imbalance 100 leaves a handful of examples of the '
          'rarest class), model, steps and optimizer (SGD with lr / 10 at epochs 80 and 100 vs '
          'Adam at cpu scale).')


MIXTURE_METHODS = (('uniform', 'uniform', {}), ('ScaleBiO', 'scalebio', {'method.retrain': True}),
                   ('DoReMi', 'doremi', {}), ('group DRO', 'group_dro', {}),
                   ('DataRater', 'datarater', {}))


def mixture_runs(scale):
  datasets = {'smoke': ('digits',), 'cpu': ('digits', 'mnist1d', 'stdlib_text'),
              'paper': ('cifar10',)}[scale]
  base = {'smoke': {}, 'cpu': {'num_steps': 800}, 'paper': MWNET_PAPER}[scale]
  runs = []
  for ds in datasets:
    for label, cfg, extra in MIXTURE_METHODS:
      steps = {**base, **_meta_overrides(cfg, scale)}
      if ds == 'stdlib_text':
        steps = {k: v for k, v in TEXT_CPU.items() if k in steps}
      runs.append(Run(f'{ds} 5 sources', label, cfg,
                      _arg(ds, scale, 'resnet' if scale == 'paper' else ''),
                      {**steps, 'data.corruption_rates': (0.0, 0.2, 0.4, 0.6, 0.8), **extra},
                      {'dataset': ds}))
  return runs


def mixture_header(scale):
  grid = {'smoke': 'digits, 6 steps', 'cpu': 'digits and MNIST-1D (MLP 256-256), 800 steps of '
          'batch 64 per phase (ScaleBiO retrains, DoReMi trains reference, proxy and retrained '
          'models), DataRater meta-trains 200 steps; stdlib_text (byte-level transformer, 2 '
          'layers, d_model 64, sequences of 64 bytes, batch 32), 400 steps per phase, DataRater '
          'meta-trains 100 steps',
          'paper': 'CIFAR-10 split into 5 sources, ResNet-32, the MW-Net code optimizer'}
  return (f'Grid: {grid[scale]}. Five sources corrupted at 0/20/40/60/80% (ScaleBiO\'s '
          'protocol of corruption growing with the source index): symmetric label noise on '
          'images, random bytes (data.text_noise_fraction of each corrupted sequence) on text, '
          'where accuracy is next-byte accuracy. "weight vs '
          'corruption" is the Spearman correlation of the learned per-source weight (ScaleBiO: '
          'time-averaged simplex weights; DoReMi: averaged domain weights; group DRO: mean '
          'adversary weights; DataRater: mean rater score per source) with the corruption rate; '
          'a good method is near -1. Test accuracy is that of the result model: the model '
          'retrained with the learned weights (ScaleBiO, DoReMi), trained under the weights '
          '(group DRO) or on the filtered data (DataRater). Published reference: DoReMi\'s '
          '280M-proxy domain weights on the Pile (third_party/doremi_280m_domain_weights.csv), a '
          'different problem (22 text domains, no injected noise), so it is listed below the '
          'table, not compared cell by cell.')


def mixture_weights(runs: list, seeds: int, folder: str) -> list:
  """Markdown: each method's learned weight per source, mean over seeds (and plots/source_weights.png)."""
  lines, curves = [], {}
  for run in runs:
    if run.method == 'uniform':
      continue
    ws = [_weights(read_summary(run_dir(folder, run, k))) for k in range(seeds)]
    rates = run.make_config(0).data.corruption_rates
    if not lines:
      lines = ['', 'Learned weight per source (corruption rate in brackets), mean over seeds; '
               'DataRater: mean rater score of the source\'s examples (a score, not a weight):', '',
               '| setting | method | ' + ' | '.join(f'source {k} ({100 * r:.0f}%)'
                                                    for k, r in enumerate(rates)) + ' |',
               '|' + '---|' * (len(rates) + 2)]
    mean = np.mean(np.asarray(ws, float), axis=0)
    lines.append(f'| {run.setting} | {run.method} | ' + ' | '.join(f'{w:.3f}' for w in mean) + ' |')
    if run.method != 'DataRater':  # simplex weights; DataRater's scores are on another scale
      curves.setdefault(run.setting, []).append((run.method, rates, mean))
  _weights_plot(curves, os.path.join(folder, 'plots', 'source_weights.png'))
  return lines


def _weights_plot(curves: dict, path: str) -> None:
  """Learned source weight against the source's corruption rate, a panel per setting."""
  from datarater.train import plots
  plt = plots.plt
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), squeeze=False)
  for ax, (setting, lines) in zip(axes[0], curves.items()):
    for method, rates, mean in lines:
      ax.plot([100 * r for r in rates], mean, marker='o', label=method)
    ax.set_title(setting, fontsize=9)
    ax.set_xlabel('corruption rate of the source %')
    ax.set_ylabel('learned weight (mean over seeds)')
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def mixture_note(scale):
  rows = published_rows('doremi_280m_domain_weights')
  top = ', '.join(f'{r["setting"].split("domain ")[1]} {r["value"]}' for r in rows[:5])
  return f'DoReMi (280M proxy, the Pile), largest published domain weights: {top}.'


# DataRater's own setting at paper scale: language modelling on natural text (byte-level
# wikitext103 through TFDS, no injected corruption), the rater meta-trained on a held-out
# part of the same training data; the paper's T, population, batch sizes and meta-optimizer.
FILTER_PAPER = {'batch_size': 128, 'num_steps': 20000, 'data.seq_len': 512,
                'data.corruption_rates': (), 'data.meta_size': 8192,
                'data.examples_per_source': 800_000,  # of wikitext103's ~1M 513-byte windows
                'optimizer.name': 'adamw', 'optimizer.learning_rate': 3e-4,
                'optimizer.schedule': 'warmup_cosine', 'optimizer.warmup_steps': 1000,
                'optimizer.weight_decay': 0.1, 'optimizer.grad_clip': 1.0,
                'model.kwargs.d_model': 512, 'model.kwargs.num_layers': 8,
                'model.kwargs.num_heads': 8,
                'method.meta_steps': 8000, 'method.inner_steps': 2, 'method.population': 8,
                'method.inner_batch_size': 128, 'method.meta_batch_size': 128,
                'method.outer_weight_decay': 0.1, 'method.outer_warmup_steps': 100,
                'method.outer_clip': 0.01, 'method.rater.kwargs.d_model': 256,
                'method.rater.kwargs.num_layers': 4, 'method.rater.kwargs.num_heads': 8,
                'eval_every': 1000, 'checkpoint_every': 1000, 'log_every': 100}


def filtering_runs(scale):
  fractions = {'smoke': (0.5,), 'cpu': (0.1, 0.25, 0.5, 0.75, 0.9),
               'paper': (0.1, 0.25, 0.5, 0.75, 0.9)}[scale]
  datasets = {'smoke': ('digits',), 'cpu': ('stdlib_text', 'digits', 'mnist1d'),
              'paper': ('wikitext103',)}[scale]
  runs = []
  for ds in datasets:
    base = {'smoke': {}, 'paper': FILTER_PAPER,
            'cpu': {**TEXT_CPU, 'eval_every': 20} if ds == 'stdlib_text' else
                   {'num_steps': 1000, 'method.meta_steps': 300, 'eval_every': 50}}[scale]
    rates = {} if scale == 'paper' else {'data.corruption_rates': (0.0, 0.2, 0.4, 0.6, 0.8)}
    runs += [Run(f'{ds} discard {int(100 * f)}%', 'DataRater', 'datarater', _arg(ds, scale),
                 {**rates, **base, 'method.discard_fraction': f, 'data.meta_mode': 'noisy'},
                 {'dataset': ds, 'discard': int(100 * f)})
             for f in fractions]
  return runs


def filtering_published(run, scale):
  if run.key['discard'] != 75:
    return ''
  nll = find_published('datarater_net_compute_gain', 'DataRater', 'Pile', 'validation-set NLL')
  hs = find_published('datarater_net_compute_gain', 'DataRater', 'Pile', 'HellaSwag')
  return f'net gain {nll}% (val. NLL), {hs}% (HellaSwag); the Pile, 1B model'


def filtering_header(scale):
  grid = {'smoke': 'digits, discard 50%, 6 steps',
          'cpu': 'discard 10/25/50/75/90%; 5 sources corrupted at 0/20/40/60/80%; rater '
                 'meta-trained on a noisy meta split (the DataRater protocol). stdlib_text: '
                 'byte-level transformer (2 layers, d_model 64, batch 32), random-byte '
                 'corruption, 400 steps per phase, 100 meta steps, test loss every 20 steps. '
                 'digits and MNIST-1D: MLP 256-256, symmetric label noise, 1000 steps of batch '
                 '64, 300 meta steps, test loss every 50 steps',
          'paper': 'byte-level wikitext103 (TFDS) with no injected corruption, discard '
                   '10/25/50/75/90%, transformer LM (8 layers, d_model 512, sequences of 512 '
                   'bytes, batch 128, AdamW 3e-4, 20,000 steps), transformer rater (4 layers, '
                   'd_model 256), T = 2, population 8, 8,000 meta-steps, outer AdamW with wd '
                   '0.1, 100 warm-up steps and clipping 0.01 (the DataRater paper\'s meta '
                   'settings)'}
  return (f'Grid: {grid[scale]}. The uniform arm is the run\'s own paired phase (same initial '
          'parameters and data order). Net compute gain: the fraction of the uniform run\'s '
          'FLOPs saved by reaching its final test loss earlier, net of the filtering overhead '
          '("incl. meta" also subtracts the rater\'s meta-training FLOPs), resolved to one '
          'evaluation interval; "k of n seeds" when the filtered model reached it on only k '
          'seeds (the mean is over those), n/a when on none. Published: DataRater Figure 1 '
          '(1B language models on the Pile at 75% discard; meta-training not subtracted), '
          'which differs from ours '
          'in data (the Pile vs our embedded text and images with injected corruption, or '
          'wikitext103 at paper scale), model size (1B parameters vs a small MLP or '
          'transformer) and training length.')


# Detection-only runs: the scorers' filtered-retraining phases are switched off.
NO_RETRAIN = {'datarater': {'method.baseline': False, 'method.discard_fraction': 0.0},
              'storm': {'method.filter': False}}


def detection_runs(scale):
  base = {'smoke': {}, 'cpu': {'num_steps': 600, 'method.meta_steps': 200}, 'paper': MWNET_PAPER}
  datasets = {'smoke': ('digits',), 'cpu': ('digits', 'tabular'), 'paper': ('cifar10',)}[scale]
  runs = []
  for ds, mode in [(ds, mode) for ds in datasets for mode in ('clean', 'noisy')]:
    for name, (cfg, extra) in SCORERS.items():
      step_fields = {k: v for k, v in base[scale].items()
                     if k != 'method.meta_steps' or cfg == 'datarater'}
      no_filter = NO_RETRAIN.get(cfg, {'method.discard_fraction': 0.0}
                                 if cfg in ('aum', 'el2n', 'forgetting', 'cartography',
                                            'confident_learning') else {})
      runs.append(Run(f'{ds} {mode} meta', name, cfg,
                      _arg(ds, scale, 'resnet' if scale == 'paper' else ''),
                      {**step_fields, 'data.meta_mode': mode, **no_filter, **extra},
                      {'dataset': ds, 'meta_mode': mode}))
  return runs


def detection_header(scale):
  grid = {'smoke': 'digits, 6 steps',
          'cpu': 'digits (MLP 256-256) with 5 sources at label noise 0/20/40/60/80%, and the '
                 'tabular preset (sklearn make_classification, 3 classes, 20 features, same MLP, '
                 'same 5 noisy sources), 600 steps of batch 64 per scoring phase, DataRater '
                 'meta-trained 200 steps',
          'paper': 'CIFAR-10 with 5 sources at noise 0-80%, ResNet-32, the MW-Net code optimizer'}
  return (f'Grid: {grid[scale]}. Every scorer scores the training rows; AUROC and average '
          'precision of its scores against the ground-truth corruption flags (experiments/'
          'detect.py reports the same per seed, with filtered retraining). Meta split: clean '
          '(held out before corruption) or noisy (drawn like the training data). No published '
          'numbers in third_party/ for this suite.')


def linreg_runs(scale):
  return [Run(setting, label, _linreg(scale, label, outliers), key={'outliers': outliers})
          for setting, outliers in (('clean', 0.0), ('outliers 20%', 0.2))
          for label in ('uniform', 'linupper', 'quadratic', 'extremes')]


LINREG = {'smoke': dict(n=200, d=10, steps=30), 'cpu': dict(n=2000, d=50, steps=3000),
          'paper': dict(n=20000, d=200, steps=30000)}


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


def linreg_header(scale):
  size = LINREG[scale]
  return (f'Synthetic least squares (Sow et al. 2025\'s linear-regression study of dynamic '
          f'loss-based reweighting): n={size["n"]} examples, d={size["d"]}, Gaussian x, y = '
          f'x.w* + N(0, 0.5^2); "outliers 20%" adds N(0, 5^2) to the labels of 20% of the '
          f'examples. SGD, batch 32, learning rate 0.01, {size["steps"]} steps from w = 0; each '
          'batch is weighted by datarater.weighting.loss_reweight (delta 1; r = 1 for '
          'quadratic, 0.4 for linupper and extremes, the paper\'s temperatures; no warm-up). '
          'Columns: excess test risk E[(x.(w - w*))^2] at the last step and its area under the '
          'curve (mean over steps). Seeds pair the data, noise and batch order. No published '
          'numbers in third_party/ (the paper shows curves only).')


def linreg_plot(runs: list, seeds: int, folder: str) -> None:
  """plots/curves.png: excess risk vs step per strategy (mean, band = min..max over seeds)."""
  from datarater.train import plots
  settings = list(dict.fromkeys(r.setting for r in runs))
  fig, axes = plots.plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 3.8))
  for ax, setting in zip(np.atleast_1d(axes), settings):
    for run in (r for r in runs if r.setting == setting):
      curves = [read_summary(run_dir(folder, run, s)) for s in range(seeds)]
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
  plots.plt.close(fig)


SUITES = {
    'noisy_labels': Suite(noisy_runs, (ACCURACY,), noisy_header, noisy_published,
                          curve=('rate', 'label noise %', False)),
    'long_tail': Suite(long_tail_runs, (ACCURACY,), long_tail_header, long_tail_published,
                       curve=('imbalance', 'imbalance factor', True)),
    'source_mixture': Suite(
        mixture_runs, (ACCURACY, Metric('weight vs corruption (Spearman)', _weight_spearman)),
        mixture_header, lambda run, scale: '', extra=mixture_weights),
    'datarater_filtering': Suite(
        filtering_runs,
        (ACCURACY, Metric('uniform arm acc. %', lambda s, w, c: 100 * _baseline_accuracy(s)),
         Metric('net compute gain %', _gain('net_compute_gain')),
         Metric('net gain incl. meta %', _gain('net_compute_gain_incl_extra')),
         Metric('rater AUROC', lambda s, w, c: s.get('score_auroc'))),
        filtering_header, filtering_published, curve=('discard', 'discard fraction %', False)),
    'label_error_detection': Suite(
        detection_runs, (Metric('AUROC', _detection('auroc')),
                         Metric('average precision', _detection('average_precision'))),
        detection_header, lambda run, scale: ''),
    'linear_regression': Suite(
        linreg_runs, (Metric('final excess risk', lambda s, w, c: s['final_excess_risk'],
                             paired=True),
                      Metric('mean excess risk over steps', lambda s, w, c: s['mean_excess_risk'],
                             paired=True)),
        linreg_header, lambda run, scale: '', plot=linreg_plot),
}
NOTES = {'source_mixture': mixture_note}


# ---------------------------------------------------------------- execution

def slug(text: str) -> str:
  return re.sub(r'[^A-Za-z0-9]+', '_', text).strip('_').lower()


def run_dir(folder: str, run: Run, seed: int) -> str:
  """<folder>/runs/<setting>/<method>/seed<k>."""
  return os.path.join(folder, 'runs', slug(run.setting), slug(run.method), f'seed{seed}')


def read_summary(workdir: str) -> dict:
  with open(os.path.join(workdir, 'summary.json')) as f:
    return json.load(f)


# Fields that do not change a finished run's numbers; any other difference between the
# config a run was made with and the suite's config now makes the run stale.
BOOKKEEPING_FIELDS = ('log_every', 'checkpoint_every', 'nonfinite', 'steps_per_dispatch', 'mesh',
                      '_run')


def check_finished(config, workdir: str) -> None:
  """Refuses to reuse a finished run made with a different config (a grid that changed).

  Raises:
    ConfigError: one line naming the run directory and the first changed field.
  """
  from datarater.errors import ConfigError
  from datarater.train import changed_fields
  fingerprint = read_json(os.path.join(workdir, 'fingerprint.json'))
  if not isinstance(fingerprint, dict) or 'config' not in fingerprint:
    raise ConfigError(f'{workdir} holds a finished run without fingerprint.json (or with an '
                      'unreadable one), so it cannot be checked against the suite\'s config; '
                      'delete it to re-run')
  old = fingerprint['config']
  changed = changed_fields(old, config, BOOKKEEPING_FIELDS)
  if changed:
    raise ConfigError(f'{workdir} holds a finished run made with a different config.{changed[0]} '
                      f'(changed: {", ".join(changed)}); delete it to re-run with the suite\'s '
                      'config, or use another --out')


def run_suite(name: str, scale: str, seeds: int, folder: str) -> dict:
  """Runs (or reuses) every run of suite `name` and returns its metric values.

  Args:
    name: a key of SUITES.
    scale: one of SCALES.
    seeds: seeds 0..seeds-1 per (setting, method).
    folder: the suite's output folder (<out>/<name>/<scale>); runs go to its runs/.

  Returns:
    {(setting, method, seed): {metric name: value}}.
  """
  from datarater.train.rundir import dumps, write_atomic
  suite = SUITES[name]
  runs = suite.runs(scale)
  total = len(runs) * seeds
  results, i = {}, 0
  for run in runs:
    for seed in range(seeds):
      i += 1
      workdir = run_dir(folder, run, seed)
      config = run.make_config(seed)
      t0 = time.time()
      # Finished: summary.json parses (one cut short by a kill is re-run).
      summary = read_json(os.path.join(workdir, 'summary.json'))
      done = summary is not None
      if config is not None:
        if done:
          check_finished(config, workdir)
        summary = run_one(config, workdir)  # a finished run is reused (missing plots remade)
      elif not done:
        summary = run.config(seed, workdir)
      if not done:
        write_atomic(os.path.join(workdir, WALL_FILE), [dumps({'seconds': time.time() - t0})])
      status = 'finished earlier' if done else f'{time.time() - t0:.1f} s'
      print(f'[reproduce] {i}/{total} {run.setting} | {run.method} | seed {seed}: {status}',
            flush=True)
      results[(run.setting, run.method, seed)] = {m.name: m.fn(summary, workdir, config)
                                                  for m in suite.metrics}
  return results


def fmt(value, digits=2) -> str:
  return 'n/a' if value is None else f'{value:.{digits}f}'


def table_rows(name: str, scale: str, results: dict) -> list:
  """One row per (setting, method): mean/std per metric, paired differences, published number.

  Args:
    name: a key of SUITES.
    scale: one of SCALES.
    results: run_suite's output.

  Returns:
    A list of dicts (the CSV rows).
  """
  suite = SUITES[name]
  seeds = sorted({k[2] for k in results})
  rows = []
  for run in suite.runs(scale):
    vals = [results[(run.setting, run.method, s)] for s in seeds]
    row = {'setting': run.setting, 'method': run.method, 'seeds': len(seeds)}
    for m in suite.metrics:
      row[f'{m.name} mean'], row[f'{m.name} std'] = mean_std([v[m.name] for v in vals])
      row[f'{m.name} seeds'] = sum(v[m.name] is not None for v in vals)
      if not m.paired:
        continue
      base = [results.get((run.setting, 'uniform', s), {}).get(m.name) for s in seeds]
      if run.method == 'uniform' or None in base:
        base = None
      if m.name == ACCURACY.name and name == 'datarater_filtering':
        base = [v['uniform arm acc. %'] for v in vals]
      ours = [v[m.name] for v in vals]
      diff = paired_interval(ours, base) if base and None not in ours else (None, None, None)
      row[f'{m.name} diff'], row[f'{m.name} diff lo'], row[f'{m.name} diff hi'] = diff
    row['published'] = suite.published(run, scale)
    rows.append(row)
  return rows


def _cell(row, m) -> str:
  """'mean ± sd', with '(k of n seeds)' when only k seeds have a value (e.g. a gain never reached)."""
  mean, std, k = row[f'{m.name} mean'], row[f'{m.name} std'], row[f'{m.name} seeds']
  text = fmt(mean, 3 if abs(mean or 0) < 1 else 2)
  text += '' if std is None else f' ± {fmt(std, 3 if abs(std) < 1 else 2)}'
  return text + (f' ({k} of {row["seeds"]} seeds)' if 0 < k < row['seeds'] else '')


def _diff_cell(row, m) -> str:
  d, lo, hi = row[f'{m.name} diff'], row[f'{m.name} diff lo'], row[f'{m.name} diff hi']
  if d is None:
    return 'baseline' if row['method'] == 'uniform' else 'n/a'
  digits = 3 if abs(d) < 1 else 2
  return f'{d:+.{digits}f} ' + ('[95% CI n/a, 1 seed]' if lo is None
                                else f'[{lo:+.{digits}f}, {hi:+.{digits}f}]')


WALL_FILE = 'reproduce_seconds.json'  # a run's wall time as timed by run_suite, in its directory


def runs_wall_seconds(folder: str) -> tuple:
  """(sum of the recorded run wall times, number of runs with a record, number of runs).

  A record that is missing or unreadable (cut short by a kill) leaves its run untimed.
  """
  total, timed, runs = 0.0, 0, 0
  for root, _, files in os.walk(os.path.join(folder, 'runs')):
    if 'summary.json' in files:
      runs += 1
      record = read_json(os.path.join(root, WALL_FILE))
      seconds = record.get('seconds') if isinstance(record, dict) else None
      if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        total += seconds
        timed += 1
  return total, timed, runs


def write_outputs(name: str, scale: str, results: dict, folder: str, wall: float) -> str:
  """Writes table.csv, table.md (each atomically) and plots/ into `folder`; returns the markdown."""
  from datarater.train.rundir import write_atomic
  suite = SUITES[name]
  runs = suite.runs(scale)
  rows = table_rows(name, scale, results)
  csv_text = io.StringIO(newline='')
  w = csv.DictWriter(csv_text, list(rows[0]))
  w.writeheader()
  w.writerows(rows)
  write_atomic(os.path.join(folder, 'table.csv'), [csv_text.getvalue()])
  cols = ['setting', 'method', 'seeds'] + [m.name for m in suite.metrics]
  cols += [f'{m.name}: paired diff vs uniform [95% CI]' for m in suite.metrics if m.paired]
  cols += ['published']
  total, timed, count = runs_wall_seconds(folder)
  lines = [f'# {name} ({scale} scale)', '',
           f'Command: `python -m experiments.reproduce --suite={name} --scale={scale} '
           f'--seeds={rows[0]["seeds"]}`. Its runs took {total:.0f} s of wall time when they ran '
           f'({timed} of {count} runs timed; each run\'s time is in its directory\'s '
           f'{WALL_FILE}); the invocation that wrote this table took {wall:.0f} s (runs that '
           'had finished earlier are reused, not re-run).', '', suite.header(scale),
           '', 'Cells: mean ± standard deviation over seeds. Paired diff: method minus uniform '
           'of the same seed, mean and 95% t-interval over seeds.', '',
           '| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
  for r in rows:
    cells = [r['setting'], r['method'], str(r['seeds'])]
    cells += [_cell(r, m) for m in suite.metrics]
    cells += [_diff_cell(r, m) for m in suite.metrics if m.paired]
    cells += [r['published'] or '—']
    lines.append('| ' + ' | '.join(cells) + ' |')
  if name in NOTES:
    lines += ['', NOTES[name](scale)]
  if suite.extra:
    lines += suite.extra(runs, rows[0]['seeds'], folder)
  lines += pivot_lines(runs, rows, suite.metrics[0])
  text = '\n'.join(lines) + '\n'
  write_atomic(os.path.join(folder, 'table.md'), [text])
  os.makedirs(os.path.join(folder, 'plots'), exist_ok=True)
  bar_plot(rows, suite.metrics[0], os.path.join(folder, 'plots', 'metric.png'))
  if suite.plot:
    suite.plot(runs, rows[0]['seeds'], folder)
  if suite.curve:
    for m in suite.metrics:
      curve_plot(runs, rows, m, suite.curve,
                 os.path.join(folder, 'plots', f'curve_{slug(m.name)}.png'))
  return text


def pivot_lines(runs: list, rows: list, metric: Metric) -> list:
  """Markdown: `metric` (mean ± sd) with a row per method and a column per setting, per dataset.

  The layout of the papers' tables (MW-Net: methods down, noise rates across).
  """
  out = []
  datasets = list(dict.fromkeys(run.key.get('dataset', '') for run in runs))
  if all(len({r.setting for r in runs if r.key.get('dataset', '') == ds}) == 1 for ds in datasets):
    datasets = [None]  # one setting per dataset: a single table, datasets across
  for ds in datasets:
    pairs = [(run, row) for run, row in zip(runs, rows) if ds is None or run.key.get('dataset', '') == ds]
    settings = list(dict.fromkeys(run.setting for run, _ in pairs))
    methods = list(dict.fromkeys(run.method for run, _ in pairs))
    cells = {(run.setting, run.method): _cell(row, metric) for run, row in pairs}
    strip = (ds + ' ') if ds and all(s.startswith(ds + ' ') for s in settings) else ''
    out += ['', f'{metric.name}{f" on {ds}" if ds else ""}, mean ± sd over seeds:', '',
            '| method | ' + ' | '.join(s[len(strip):] for s in settings) + ' |',
            '|' + '---|' * (len(settings) + 1)]
    out += ['| ' + ' | '.join([m] + [cells.get((s, m), '—') for s in settings]) + ' |'
            for m in methods]
  return out


def bar_plot(rows: list, metric: Metric, path: str) -> None:
  """Grouped bars: one group per setting, one bar per method, error bars = std over seeds."""
  from datarater.train import plots
  plt = plots.plt
  settings = list(dict.fromkeys(r['setting'] for r in rows))
  methods = list(dict.fromkeys(r['method'] for r in rows))
  width = 0.8 / len(methods)
  fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(settings) * max(1, len(methods) / 4)), 4))
  for j, method in enumerate(methods):
    xs, ys, es = [], [], []
    for i, s in enumerate(settings):
      r = next((r for r in rows if r['setting'] == s and r['method'] == method), None)
      if r is not None and r[f'{metric.name} mean'] is not None:
        xs.append(i + j * width)
        ys.append(r[f'{metric.name} mean'])
        es.append(r[f'{metric.name} std'] or 0.0)
    ax.bar(xs, ys, width, yerr=es, label=method, capsize=2)
  ax.set_xticks([i + 0.4 - width / 2 for i in range(len(settings))], settings, fontsize=8)
  ax.set_ylabel(metric.name)
  ax.legend(fontsize=7, ncol=2)
  ax.grid(alpha=0.3, axis='y')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def curve_plot(runs: list, rows: list, metric: Metric, curve: tuple, path: str) -> None:
  """`metric` (mean ± std over seeds) against run.key[x], a line per method, a panel per group.

  Points whose mean is not over every seed (a compute gain some seeds never reached) are left
  out; the table shows them with their seed count.

  Args:
    runs: the suite's runs, in the order of `rows` (table_rows walks them in order).
    rows: table_rows' output.
    metric: the column to draw.
    curve: (x key, x label, log x) of Suite.curve.
    path: the PNG to write.
  """
  from datarater.train import plots
  plt = plots.plt
  x_key, x_label, log_x = curve
  panels = {}  # group label -> method -> [(x, mean, std)]
  for run, row in zip(runs, rows):
    mean = row[f'{metric.name} mean']
    if mean is None or row[f'{metric.name} seeds'] < row['seeds']:  # not over every seed
      continue
    group = ' '.join(str(v) for k, v in run.key.items() if k != x_key)
    panels.setdefault(group, {}).setdefault(run.method, []).append(
        (run.key[x_key], mean, row[f'{metric.name} std'] or 0.0))
  if not panels:
    return
  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
  for ax, (group, methods) in zip(axes[0], panels.items()):
    for method, points in methods.items():
      xs, ys, es = zip(*sorted(points))
      ax.errorbar(xs, ys, yerr=es, marker='o', ms=3, capsize=2, label=method)
    if log_x:
      ax.set_xscale('log')
    ax.set_title(group, fontsize=9)
    ax.set_xlabel(x_label)
    ax.set_ylabel(metric.name)
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def define_flags():
  """Defines the flags (only when run as a script, so tests can import this module)."""
  flags.DEFINE_enum('suite', None, list(SUITES), 'Suite to run.')
  flags.DEFINE_enum('scale', 'cpu', list(SCALES), 'Grid size.')
  flags.DEFINE_integer('seeds', None, 'Seeds per cell (default: 2 smoke, 3 cpu/paper).')
  flags.DEFINE_string('out', 'results', 'Output root.')
  flags.DEFINE_string('compilation_cache', os.path.join(
      os.environ.get('XDG_CACHE_HOME', os.path.expanduser('~/.cache')), 'datarater', 'jax'),
      'JAX persistent compilation cache: runs of a suite that differ only in data, seed or '
      'rates reuse compiled programs instead of recompiling (same numbers). "" = off.')


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # keep library INFO logs off the progress lines
  if flags.FLAGS.suite is None:
    fail(2, f'--suite is required; one of {list(SUITES)}')
  seeds = DEFAULT_SEEDS[flags.FLAGS.scale] if flags.FLAGS.seeds is None else flags.FLAGS.seeds
  if seeds < 1:
    fail(2, f'--seeds={seeds} must be at least 1')
  if flags.FLAGS.compilation_cache:
    import jax
    jax.config.update('jax_compilation_cache_dir', flags.FLAGS.compilation_cache)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
    jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  folder = os.path.join(flags.FLAGS.out, flags.FLAGS.suite, flags.FLAGS.scale)
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    fail(2, f'--out={flags.FLAGS.out}: cannot create {folder} ({e.strerror or e})')
  t0 = time.time()
  from datarater.train import ConfigError, DataError, Diverged, WorkdirError
  try:
    results = run_suite(flags.FLAGS.suite, flags.FLAGS.scale, seeds, folder)
  except (ConfigError, DataError, WorkdirError) as e:
    fail(2, e)
  except Diverged as e:
    fail(3, f'diverged: {e}')
  print(write_outputs(flags.FLAGS.suite, flags.FLAGS.scale, results, folder, time.time() - t0), flush=True)
  print(f'[reproduce] suite {flags.FLAGS.suite} ({flags.FLAGS.scale}): wall time {time.time() - t0:.0f} s',
        flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=parse_flags)
