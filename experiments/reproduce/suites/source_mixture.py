"""Suite source_mixture: ScaleBiO's protocol, learned source weights vs the corruption rates."""

from __future__ import annotations

import json
import os

import numpy as np

from experiments.reproduce.core import (Metric, Run, Suite, charged_ledger, read_summary,
                                        run_dir)
from experiments.reproduce.published import Published, published_rows
from experiments.reproduce.report import pyplot
from experiments.reproduce.suites._common import (ACCURACY, FINAL_STEP, MWNET_PAPER, REFERENCES,
                                                  TEXT_CPU, config_arg, meta_overrides,
                                                  suite_methods)

# Methods this suite's committed tables were made without (see suite_methods): the meta-learned
# raters other than DataRater.
NOT_RUN = ('l2rw', 'mwn', 'storm')

# Text runs evaluate every 20 of their 400 steps, so the speed columns (resolved to one
# evaluation interval) resolve 0.05 of uniform's steps; the test split is evaluated once, at the
# end (it is 2.5x the validation split, and the speed columns read validation losses only).
TEXT_EVAL = {'eval_every': 20, 'eval_test': 'last'}
# The DoReMi-style speed columns (speed_to_uniform_best).
STEPS = 'steps to uniform\'s best clean valid loss (x uniform)'
FLOPS = 'FLOPs to uniform\'s best clean valid loss incl. proxies (x uniform)'


def methods() -> list:
  """(row label, method, overrides): the baseline and its reference rows (meta rows only, fine-tune on
  meta rows, oracle), every source-level method (fixed mixtures, schedules, learned source
  weights), the mixing papers' selection methods (Declares.mixing: DSIR) and every
  meta-learned method (its mean score per source stands for a weight) from the registry, less
  NOT_RUN, in table order."""
  return suite_methods(lambda d: (d.source_weights or d.mixing
                                  or d.family in ('baseline', 'meta', 'source')), NOT_RUN)


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
        steps = {**{k: v for k, v in TEXT_CPU.items() if k in steps}, **TEXT_EVAL}
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
          'layers, d_model 64, sequences of 64 bytes, batch 32), 400 steps per phase evaluated '
          'every 20 steps (the test split at the last step only), DataRater meta-trains 100 '
          'steps',
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
          'are listed in the published block below the table, not compared cell by cell. '
          'Mixers of the seed papers (issue 21): "static mixture" samples the sources '
          'uniformly (stratified sampling, the baseline Aioli compares with); DSIR resamples '
          'the training rows by hashed n-gram importance weights toward the meta split and '
          'retrains on them; Aioli updates the mixture online from a fitted linear mixing law; '
          'RegMix fits a regression from the mixtures of small proxy runs to their meta loss '
          'and trains on the predicted-best mixture (proxies charged to its FLOPs); end-of-'
          'training upsampling switches the last 20% of steps to a mixture proportional to '
          'each source\'s DSIR similarity to the meta split; the Data Mixing Agent trains a small '
          'policy (per-source meta losses, their trends, the mixture -> the next mixture) by '
          'REINFORCE on 8 x 30 proxy runs of 100 steps (charged to its FLOPs) and applies it '
          'unchanged to the target run, deciding every 150 steps. "' + STEPS + '": the result '
          'model\'s first evaluation at or below the lowest clean validation loss uniform of '
          'the same seed reaches, over the step at which uniform first reaches it (DoReMi\'s '
          'measure; resolved to one evaluation interval, eval_every; empty when a seed never '
          'reaches it, and then no paired interval). Clean validation loss: that of the '
          'validation rows of the 0%-corrupted source (the validation split is corrupted like '
          'the training rows, and its loss over every source rewards fitting the noise); on '
          'digits and MNIST-1D the sources are random partitions of one distribution, on text '
          'it is one package. "' + FLOPS + '": the same in FLOPs, '
          'adding every other phase the method is charged for (proxy runs, reference model, '
          'bilevel or meta-training phase). ' + REFERENCES + ' ' + FINAL_STEP)


# The DoReMi-style speed measure: how many steps (and FLOPs) the result model needs to reach
# the validation loss that uniform of the same seed reaches at best.


def _uniform_dir(workdir: str) -> str:
  """<setting>/uniform/seed<k>: uniform of the setting and seed of the run in `workdir`."""
  method_dir = os.path.dirname(os.path.normpath(workdir))
  return os.path.join(os.path.dirname(method_dir), 'uniform', os.path.basename(workdir))


def _valid_curve(workdir: str, phase: str, clean: list) -> list:
  """[(step, validation loss of the clean sources)] of `phase` of the run in `workdir`, in step
  order: the mean of `valid/source_loss` over the source indices `clean`."""
  from datarater.train.pipeline import eval_rows
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return [(r['step'], float(np.mean([r['valid/source_loss'][k] for k in clean])))
          for r in eval_rows(rows, phase)]


def speed_to_uniform_best(summary, workdir) -> dict | None:
  """The result model's cost to reach uniform's best clean validation loss, relative to uniform's.

  The loss: the validation loss of the sources whose corruption rate is 0 (the mean of their
  `valid/source_loss`): the validation rows are corrupted like the training rows, so the
  loss over all of them rewards fitting the noise (a model that ignores the noisy sources
  has a higher one); the clean sources' rows are not corrupted. On digits and MNIST-1D the
  sources are random partitions of one distribution, so it estimates the clean loss of the
  whole task; on text it is that of the clean packages.
  Target: the lowest such loss over uniform's evaluations (same seed), first reached
  at uniform's step s_u. The result phase of the run reaches it at its first evaluation at or
  below it, step s_m (None: never). Returns {'steps': s_m / s_u, 'flops': (s_m x the result
  phase's FLOPs per step + the method's other charged FLOPs: proxy, reference, bilevel or
  meta-training phases: core.charged_ledger less the result phase) / (s_u x uniform's
  FLOPs per step)}; both resolved to one evaluation interval. None when the run has no
  validation evaluations or no clean source.
  """
  clean = [k for k, rate in enumerate(summary['corruption_rates']) if rate == 0]
  uniform = _uniform_dir(workdir)
  u_summary = read_summary(uniform)
  base = _valid_curve(uniform, u_summary['result_phase'], clean) if clean else []
  phase = summary['result_phase']
  curve = _valid_curve(workdir, phase, clean) if clean else []
  if not base or not curve:
    return None
  s_u, target = min(base, key=lambda e: (e[1], e[0]))
  s_m = next((step for step, loss in curve if loss <= target), None)
  if s_m is None:
    return {'steps': None, 'flops': None}
  ledger = summary['phases'][phase]['ledger']
  per_step = ledger['flops'] / max(ledger['steps'], 1)
  other = charged_ledger(summary)['flops'] - ledger['flops']
  u = u_summary['phases'][u_summary['result_phase']]['ledger']
  return {'steps': s_m / s_u,
          'flops': (s_m * per_step + other) / (s_u * u['flops'] / max(u['steps'], 1))}


def _speed(field):
  def fn(summary, workdir, config):
    del config
    out = speed_to_uniform_best(summary, workdir)
    return None if out is None else out[field]
  return fn


def _weights(s):
  """The learned per-source weight: time-averaged where the method records it."""
  for k in ('source_weights_time_avg', 'source_weights_mean', 'source_weights',
            'source_mean_score'):
    if k in s:
      return s[k]
  return None


def _weight_spearman(s, w, c):
  """Spearman of the learned per-source weight with the corruption rate; None without learned
  weights or when they are constant (a fixed uniform mixture)."""
  from datarater.report.detection import rate_spearman
  return rate_spearman(_weights(s), s['corruption_rates'])


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
    if None in ws or all(np.ptp(w) == 0 for w in ws):  # a reference row or a fixed uniform mixture
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


HEADLINE = {'cpu': ('stdlib_text 5 sources',)}

SUITE = Suite(grid, (ACCURACY, Metric('weight vs corruption (Spearman)', _weight_spearman),
                     Metric(STEPS, _speed('steps'), paired=True),
                     Metric(FLOPS, _speed('flops'))),
              header, published, extra=mixture_weights, headline=HEADLINE)
