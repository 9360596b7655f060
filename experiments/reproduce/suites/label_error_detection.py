"""Suite label_error_detection: every scorer's AUROC / AP against the true corruption flags.

The scorers are those of the detection report (experiments._runs.scorers: every registered
method that declares scores), so a new scoring method is in this suite without an edit here.
"""

from __future__ import annotations

import os

from datarater.report.detection import spearman
from experiments._runs import (DETECTION_BUDGET, detection_budget, detection_population,
                              keep_scores, read_json, run_detection, scorers)
from experiments.reproduce.core import Metric, Run, Suite, slug
from experiments.reproduce.suites._common import FINAL_STEP, MWNET_PAPER, config_arg

# Detection-only runs: the scorers' filtered-retraining phases are switched off.
NO_RETRAIN = {'datarater': {'method.baseline': False, 'method.discard_fraction': 0.0},
              'storm': {'method.filter': False}}


def grid(scale):
  """The runs of this suite at `scale`."""
  base = {'smoke': {}, 'cpu': DETECTION_BUDGET, 'paper': MWNET_PAPER}  # cpu: experiments.detect's
  datasets = {'smoke': ('digits',), 'cpu': ('digits', 'tabular'), 'paper': ('cifar10',)}[scale]
  from datarater.run import methods_with
  data_scorers = methods_with(family='scorer')  # their filtered retraining is discard_fraction
  out = []
  for ds, mode in [(ds, mode) for ds in datasets for mode in ('clean', 'noisy')]:
    for name, (cfg, extra) in scorers().items():
      step_fields = detection_budget(cfg, base[scale])
      no_filter = NO_RETRAIN.get(cfg, {'method.discard_fraction': 0.0}
                                 if cfg in data_scorers else {})
      out.append(Run(f'{ds} {mode} meta', name, cfg,
                     config_arg(ds, scale, 'resnet' if scale == 'paper' else ''),
                     {**step_fields, 'data.meta_mode': mode, **no_filter, **extra},
                     {'dataset': ds, 'meta_mode': mode}))
  return out


def header(scale):
  grids = {'smoke': 'digits, 6 steps',
          'cpu': 'digits (MLP 256-256) with 5 sources at label noise 0/20/40/60/80%, and the '
                 'tabular preset (sklearn make_classification, 3 classes, 20 features, same MLP, '
                 'same 5 noisy sources), 600 steps of batch 64 per scoring phase, DataRater '
                 'meta-trained 200 steps',
          'paper': 'CIFAR-10 with 5 sources at noise 0-80%, ResNet-32, the training settings of '
                   'the authors\' MW-Net.py (SGD, plain momentum 0.9, lr 0.1, wd 5e-4, 58,800 '
                   'steps)'}
  return (f'Grid: {grids[scale]}. Every scorer scores the training rows; AUROC and average '
          'precision of its scores against the ground-truth corruption flags. Population: the '
          'same rows for every scorer of a setting and seed, the training rows that every '
          'scorer scored (column "rows"); the meta split is left out, although DataRater\'s '
          'rater also scores it, because DataRater was meta-trained on it (experiments/'
          'detect.py reports the same per seed, with filtered retraining). Meta split: clean '
          '(held out before corruption) or noisy (drawn like the training data). No published '
          'numbers in third_party/ for this suite. Scores are those at the end of training. '
          'Columns "Spearman with datarater / l2rw": the rank correlation of the row\'s scores '
          'with those of DataRater / L2RW of the same setting and seed, over the row\'s '
          f'population (where a scorer agrees with the learned raters). {FINAL_STEP}')


# The settings the README headlines: they run --headline_seeds seeds (default 10) at cpu scale.
HEADLINE = {'cpu': ('digits clean meta', 'digits noisy meta')}


def siblings(workdir: str) -> tuple:
  """({scorer: run directory} of the setting and seed of the scorer run in `workdir`, the
  sibling directories <setting>/<scorer>/seed<k>, one per scorer of the grid; its scorer)."""
  scorer_dir = os.path.dirname(os.path.normpath(workdir))
  setting, seed = os.path.dirname(scorer_dir), os.path.basename(workdir)
  runs = {name: os.path.join(setting, slug(name), seed) for name in scorers()}
  return runs, next(name for name, w in runs.items() if os.path.dirname(w) == scorer_dir)


def population(workdir: str):
  """The rows the scorer run in `workdir` is measured on: those that every scorer of its setting
  and seed scored (`experiments._runs.detection_population`; TMC-Shapley's own row: the rows
  of them it valued)."""
  runs, this = siblings(workdir)
  return detection_population(runs, this)


def _detection(field):
  return lambda s, w, c: run_detection(c, w, s, population(w))[field]


# Where the other scorers agree with the learned raters: the Spearman rank correlation of a
# scorer's scores with DataRater's (or L2RW's) of the same setting and seed, over the rows the
# scorer is measured on (1 in the rater's own row).
RATERS = ('datarater', 'l2rw')


def _agreement(rater: str):
  def fn(summary, workdir, config):
    del config
    runs, this = siblings(workdir)
    rows = detection_population(runs, this)
    other = keep_scores(runs[rater], read_json(os.path.join(runs[rater], 'summary.json')))
    return spearman(keep_scores(workdir, summary)[rows], other[rows])
  return fn


SUITE = Suite(grid, (Metric('AUROC', _detection('auroc')),
                     Metric('average precision', _detection('average_precision')),
                     Metric('rows', _detection('rows')),
                     *(Metric(f'Spearman with {r}', _agreement(r)) for r in RATERS)),
              header, headline=HEADLINE)
