"""Table of finished continual pre-training runs of the Mixing Agent (method.pretrain_sources).

  python -m experiments.continual_report [--plot=PNG] RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a finished `mixing_agent` run with method.pretrain_sources set (one per seed;
datarater/methods/_continual.py). Prints a markdown table over the runs: for the pre-trained
model and each arm (the agent's mixture 'train', 'target_only', 'all_sources'), the test loss
of the source field, of the target field and their mean (the validation loss where the
test rows carry no source) (mean ± sd over the runs), and each
arm's paired difference from 'all_sources' (the paired baseline) with a 95% t interval over
the runs; then the agent's time-averaged mixture per run. --plot=PNG also draws the losses
(mean and sd over the runs) as grouped bars. A bad argument (a missing run, a run
without the 'continual' report) exits 2 with one line.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from experiments.reproduce.stats import mean_std, paired_interval

ROWS = (('pretrain', 'pre-trained model (start of every arm)'),
        ('train', 'Mixing Agent (continued on its mixture)'),
        ('target_only', 'continued on the target field only'),
        ('all_sources', 'continued on every training row (paired baseline)'))
COLUMNS = ('source_field', 'target_field', 'mean')


def read(run_dir: str) -> dict:
  path = os.path.join(run_dir, 'summary.json')
  try:
    with open(path) as f:
      summary = json.load(f)
  except (OSError, ValueError) as e:
    raise SystemExit(f'error: {path}: not a finished run ({type(e).__name__})') from None
  if not isinstance(summary.get('continual'), dict):
    raise SystemExit(f'error: {path}: no continual report (a mixing_agent run with '
                     'method.pretrain_sources)')
  return summary


def losses(summaries: list) -> tuple:
  """(split, {(arm, column): [per-run loss]}): the test split's field losses, or the
  validation split's where the test rows carry no source (random-partition presets)."""
  split = 'test' if all(s['continual'][arm]['test'] for s in summaries for arm, _ in ROWS) \
      else 'valid'
  return split, {(arm, c): np.array([s['continual'][arm][split][c] for s in summaries],
                                    np.float64) for arm, _ in ROWS for c in COLUMNS}


def plot(summaries: list, path: str) -> None:
  """Grouped bars: per model (ROWS), the source field's, the target field's and their mean
  loss, mean over the runs with a sd error bar."""
  from datarater.report.plots import pyplot
  split, loss = losses(summaries)
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(8, 3.8))
  x = np.arange(len(ROWS))
  for i, c in enumerate(COLUMNS):
    values = [loss[arm, c] for arm, _ in ROWS]
    ax.bar(x + (i - 1) * 0.27, [v.mean() for v in values], 0.27, label=c.replace('_', ' '),
           yerr=[v.std(ddof=1) if len(v) > 1 else 0.0 for v in values], capsize=3)
  ax.set_xticks(x, ['pre-trained', 'Mixing Agent', 'target field only', 'all sources'])
  low = min(v.min() for v in loss.values())
  ax.set_ylim(low - 0.1, None)
  ax.set_ylabel(f'{split} loss (nats per byte)')
  ax.set_title(f'Continual pre-training, {len(summaries)} runs (mean, sd)')
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3, axis='y')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def table(summaries: list) -> list:
  """The markdown lines of the report for `summaries` (one per seed)."""
  split, loss = losses(summaries)
  first = summaries[0]['continual']
  out = [f'{split.capitalize()} loss over {len(summaries)} runs; source field = sources '
         f'{first["source_field"]}, target field = sources {first["target_field"]}; '
         '"vs all sources": paired difference [95% interval] (negative = lower loss).', '',
         '| model | source field | target field | mean of the fields | mean vs all sources |',
         '|---|---|---|---|---|']
  for arm, label in ROWS:
    cells = ['%.4f ± %.4f' % mean_std(loss[arm, c]) for c in COLUMNS]
    diff = ''
    if arm != 'all_sources':
      d, lo, hi = paired_interval(loss[arm, 'mean'], loss['all_sources', 'mean'])
      diff = f'{d:+.4f} [{lo:+.4f}, {hi:+.4f}]'
    out.append(f'| {label} | ' + ' | '.join(cells) + f' | {diff} |')
  out += ['', 'The agent\'s time-averaged mixture (sources 0..K-1) per run: ' + '; '.join(
      str(np.round(s['source_weights_time_avg'], 3).tolist()) for s in summaries)]
  return out


def main(argv) -> int:
  args = argv[1:]
  png = args.pop(0)[len('--plot='):] if args and args[0].startswith('--plot=') else ''
  if not args or any(a.startswith('--') for a in args):
    print('usage: python -m experiments.continual_report [--plot=PNG] RUN_DIR [RUN_DIR ...]',
          file=sys.stderr)
    return 2
  try:
    summaries = [read(d) for d in args]
  except SystemExit as e:
    print(e, file=sys.stderr)
    return 2
  print('\n'.join(table(summaries)))
  if png:
    plot(summaries, png)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
