"""A suite's outputs: table.csv, table.md (with the papers' pivot layout) and plots/.

Each cell is the mean and standard deviation over seeds; a paired column adds
the mean paired difference vs uniform of the same seed and its 95%
t-interval (stats.py).
"""

from __future__ import annotations

import csv
import io
import os

from experiments.reproduce.core import WALL_FILE, Metric, find_suite, runs_wall_seconds, slug
from experiments.reproduce.stats import mean_std, paired_interval


def pyplot():
  """matplotlib.pyplot on the Agg backend (datarater.report.plots, the run plots, sets it)."""
  from datarater.report import plots
  return plots.plt


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
  suite = find_suite(name)
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
      if m.name in suite.own_baseline:
        base = [v[suite.own_baseline[m.name]] for v in vals]
      ours = [v[m.name] for v in vals]
      diff = paired_interval(ours, base) if base and None not in ours else (None, None, None)
      row[f'{m.name} diff'], row[f'{m.name} diff lo'], row[f'{m.name} diff hi'] = diff
    # A row read from another run (Run.reads) is no setting of a paper: no published number.
    row['published'] = suite.published(run, scale) if suite.published and not run.reads else ''
    rows.append(row)
  return rows


def _cell(row, m) -> str:
  """'mean ± sd', with '(k of n seeds)' when only k seeds have a value (a gain never reached)."""
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


def write_outputs(name: str, scale: str, results: dict, folder: str, wall: float) -> str:
  """Writes table.csv, table.md (each atomically) and plots/ into `folder`; returns the markdown."""
  from datarater.train.rundir import write_atomic
  suite = find_suite(name)
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
  if suite.note:
    lines += ['', suite.note(scale)]
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
    pairs = [(run, row) for run, row in zip(runs, rows)
             if ds is None or run.key.get('dataset', '') == ds]
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
  plt = pyplot()
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
  plt = pyplot()
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
