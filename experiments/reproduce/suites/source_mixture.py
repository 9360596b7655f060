"""Suite source_mixture: ScaleBiO's protocol, learned source weights vs the corruption rates."""

from __future__ import annotations

import os

import numpy as np

from experiments.reproduce.core import Metric, Run, Suite, read_summary, run_dir
from experiments.reproduce.published import Published, published_rows
from experiments.reproduce.report import pyplot
from experiments.reproduce.suites._common import (ACCURACY, FINAL_STEP, MWNET_PAPER, REFERENCES,
                                                  TEXT_CPU, config_arg, meta_overrides,
                                                  suite_methods)

# Methods this suite's committed tables were made without (see suite_methods): meta-learned
# raters, and the mixers of the seed papers added since (issue 21), not yet run here.
NOT_RUN = ('l2rw', 'mwn', 'storm', 'aioli', 'regmix')


def methods() -> list:
  """(row label, method, overrides): the baseline and its reference rows (meta rows only, fine-tune on
  meta rows, oracle), every method that learns source weights and every meta-learned method
  (its mean score per source stands for a weight) from the registry, less NOT_RUN, in table
  order."""
  return suite_methods(lambda d: d.source_weights or d.family in ('baseline', 'meta'), NOT_RUN)


def grid(scale):
  """The runs of this suite at `scale`."""
  datasets = {'smoke': ('digits',), 'cpu': ('digits', 'mnist1d', 'stdlib_text'),
              'paper': ('cifar10',)}[scale]
  base = {'smoke': {}, 'cpu': {'num_steps': 800}, 'paper': MWNET_PAPER}[scale]
  out = []
  for ds in datasets:
    for label, cfg, variant in methods():
      steps = {**base, **meta_overrides(cfg, scale)}
      if ds == 'stdlib_text':
        steps = {k: v for k, v in TEXT_CPU.items() if k in steps}
      out.append(Run(f'{ds} 5 sources', label, cfg,
                     config_arg(ds, scale, 'resnet' if scale == 'paper' else ''),
                     {**steps, 'data.corruption_rates': (0.0, 0.2, 0.4, 0.6, 0.8),
                      **variant},
                     {'dataset': ds}))
  return out


def header(scale):
  grids = {'smoke': 'digits, 6 steps', 'cpu': 'digits and MNIST-1D (MLP 256-256), 800 steps of '
          'batch 64 per phase (ScaleBiO retrains, DoReMi trains reference, proxy and retrained '
          'models), DataRater meta-trains 200 steps; stdlib_text (byte-level transformer, 2 '
          'layers, d_model 64, sequences of 64 bytes, batch 32), 400 steps per phase, DataRater '
          'meta-trains 100 steps',
          'paper': 'CIFAR-10 split into 5 sources, ResNet-32, the training settings of the '
                   'authors\' MW-Net.py (SGD, plain momentum 0.9, lr 0.1, wd 5e-4, 58,800 steps)'}
  return (f'Grid: {grids[scale]}. Five sources corrupted at 0/20/40/60/80% (ScaleBiO\'s '
          'protocol of corruption growing with the source index): symmetric label noise on '
          'images, random bytes (data.text_noise_fraction of each corrupted sequence) on text, '
          'where accuracy is next-byte accuracy. "weight vs '
          'corruption" is the Spearman correlation of the learned per-source weight (ScaleBiO: '
          'time-averaged simplex weights; DoReMi: averaged domain weights; group DRO: mean '
          'adversary weights; DataRater: mean rater score per source) with the corruption rate; '
          'a good method is near -1. Test accuracy is that of the result model: the model '
          'retrained with the learned weights (ScaleBiO, DoReMi: each source carries its '
          'weight of the loss whatever its size, the objective the weights were learned on; '
          'ScaleBiO\'s bilevel model w, which also trains on the meta split, is only in '
          'summary.json as w_test_accuracy), trained under the weights '
          '(group DRO) or on the filtered data (DataRater). Published reference: DoReMi\'s '
          '280M-proxy domain weights on the Pile (third_party/doremi_280m_domain_weights.csv), a '
          'different problem (22 text domains, no injected noise), so its five largest weights '
          'are listed in the published block below the table, not compared cell by cell. ' + REFERENCES + ' ' + FINAL_STEP)


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


def mixture_weights(runs: list, seeds: dict, folder: str) -> list:
  """Markdown: each method's learned weight per source, mean over seeds.

  Also draws plots/source_weights.png (the weight against the source's corruption rate).
  """
  from datarater.run import declaration
  lines, curves = [], {}
  for run in runs:
    if run.method == 'uniform':
      continue
    ws = [_weights(read_summary(run_dir(folder, run, k))) for k in range(seeds[run.setting])]
    if None in ws:  # a reference row: no weights learned
      continue
    rates = run.make_config(0).data.corruption_rates
    simplex = declaration(run.config).source_weights
    if not simplex:  # a score's offset and scale are arbitrary per seed: standardise each seed's
      ws = [(np.asarray(w, float) - np.mean(w)) / (np.std(w) or 1.0) for w in ws]
    if not lines:
      lines = ['', 'Learned weight per source (corruption rate in brackets), mean over seeds; '
               'DataRater: mean rater score of the source\'s examples (a score, not a weight), '
               'standardised over the sources within each seed (the rater\'s offset and scale '
               'are arbitrary) before the mean over seeds:', '',
               '| setting | method | ' + ' | '.join(f'source {k} ({100 * r:.0f}%)'
                                                    for k, r in enumerate(rates)) + ' |',
               '|' + '---|' * (len(rates) + 2)]
    mean = np.mean(np.asarray(ws, float), axis=0)
    lines.append(f'| {run.setting} | {run.method} | ' + ' | '.join(f'{w:.3f}' for w in mean) + ' |')
    if simplex:  # simplex weights; standardised scores are on another scale
      curves.setdefault(run.setting, []).append((run.method, rates, mean))
  _weights_plot(curves, os.path.join(folder, 'plots', 'source_weights.png'))
  return lines


def _weights_plot(curves: dict, path: str) -> None:
  """Learned source weight against the source's corruption rate, a panel per setting."""
  plt = pyplot()
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


def published(scale):
  """DoReMi's five largest 280M-proxy domain weights on the Pile: a different problem (22 text
  domains, no injected noise), no row of ours in that setting."""
  return [Published(r['value'], r['method'], r['metric'], r['setting'],
                    f'{r["paper"]}, {r["table"]}')
          for r in published_rows('doremi_280m_domain_weights')[:5]]


SUITE = Suite(grid, (ACCURACY, Metric('weight vs corruption (Spearman)', _weight_spearman)),
              header, published, extra=mixture_weights)
