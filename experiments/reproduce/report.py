"""A suite's outputs: table.csv, table.md (with the papers' pivot layout) and plots/.

Each cell is the mean and standard deviation over seeds; a paired column adds
the mean paired difference vs uniform of the same seed and its 95%
t-interval (stats.py). Every row also states the information its method uses
besides the training rows (`information`) and its FLOPs and examples
processed relative to uniform of the same seed (`compute_ratios`).
The paired columns add the paired t-test's p-value after Holm's correction over every
paired comparison of the table in that column (stats.py). Published numbers
stand in their own block below the table (published.published_block), each
with the paper's setting. table.md's long table is built from `md_columns`: a
new column is one entry there.
"""

from __future__ import annotations

import csv
import io
import os

from experiments.reproduce.core import (COMPUTE, WALL_FILE, Metric, find_suite, runs_wall_seconds,
                                        slug)
from experiments.reproduce.published import published_block
from experiments.reproduce.stats import holm, mean_std, paired_interval, paired_pvalue

HOLM_LEVEL = 0.05  # family-wise error rate at which a paired comparison "survives" Holm


def pyplot():
  """matplotlib.pyplot on the Agg backend (datarater.report.plots.pyplot, imported on first use)."""
  from datarater.report import plots
  return plots.pyplot()


def fmt(value, digits=2) -> str:
  return 'n/a' if value is None else f'{value:.{digits}f}'


# Compute columns: ledger key -> column label.
COMPUTE_COLUMNS = {'flops': 'FLOPs / uniform', 'examples_processed': 'examples / uniform'}


def compute_ratios(run, seeds: list, results: dict) -> dict:
  """{column label: mean over seeds of the run's compute / uniform's} (None where unknown).

  A run's compute is its charged ledger (core.charged_ledger: less a paired
  uniform arm it trains itself); uniform's is that of the setting's uniform
  run of the same seed or, in a setting without one, the run's own uniform arm.
  """
  out = {}
  for key, label in COMPUTE_COLUMNS.items():
    ratios = []
    for seed in seeds:
      ours = results[(run.setting, run.method, seed)].get(COMPUTE)
      uniform = results.get((run.setting, 'uniform', seed), {}).get(COMPUTE)
      base = uniform['method'] if uniform else ours and ours['arm']
      ratios.append(ours['method'][key] / base[key] if ours and base and base[key] else None)
    out[label] = mean_std(ratios)[0]
  return out


def information(run) -> str:
  """What the row's method uses besides the training rows: its declared `information`,
  meta rows qualified by the run's data.meta_mode ('clean meta rows'), and clean validation
  rows where a decision is made on them under data.valid_mode='clean' (discard_fraction='auto',
  an early-stopped row); 'none' plus that for an early-stopped row read from a run's own
  uniform arm; '—' for a run outside the training loop."""
  from datarater.run import declaration
  if callable(run.config):
    return '—'
  declared = declaration(run.config).information
  config = run.make_config(0)
  early_stopped = hasattr(run.view, 'early_stopped_phase')
  if early_stopped and run.view.early_stopped_phase == 'uniform':
    declared = 'none'   # a row read from a run's own uniform arm
  if declared == 'meta rows':
    declared = f'{config.data.meta_mode} meta rows'
  if config.data.get('valid_mode') == 'clean' and (
      early_stopped or config.method.get('discard_fraction') == 'auto'):
    declared += ' + clean validation rows'
  return declared


def table_rows(name: str, scale: str, results: dict) -> list:
  """One row per (setting, method): mean/std per metric, paired differences and tests.

  A paired metric's columns: '<m> diff' (mean paired difference), '<m> diff lo' /
  '<m> diff hi' (its 95% t-interval), '<m> p' (paired t-test) and '<m> Holm p' (Holm's
  adjustment over every row of the table with a test in that metric).

  Each row's statistics are over the seeds that row ran ('seeds': their number; the
  headline settings of a suite run more, core.setting_seeds), paired with uniform of the
  same setting and seeds.

  Args:
    name: a key of SUITES.
    scale: one of SCALES.
    results: run_suite's output.

  Returns:
    A list of dicts (the CSV rows); the compute columns (COMPUTE_COLUMNS) only
    where some run has a compute ledger (not linear_regression's runs, which
    are outside the training loop).
  """
  suite = find_suite(name)
  measured = any(v.get(COMPUTE) for v in results.values())  # else no run has a ledger
  ran = {}  # (setting, method) -> the seeds it ran (a headline setting runs more)
  for setting, method, seed in sorted(results):
    ran.setdefault((setting, method), []).append(seed)
  rows = []
  for run in suite.runs(scale):
    seeds = ran[(run.setting, run.method)]
    vals = [results[(run.setting, run.method, s)] for s in seeds]
    row = {'setting': run.setting, 'method': run.method, 'seeds': len(seeds),
           'information': information(run),
           **(compute_ratios(run, seeds, results) if measured else {})}
    for m in suite.metrics:
      row[f'{m.name} mean'], row[f'{m.name} std'] = mean_std([v[m.name] for v in vals])
      row[f'{m.name} seeds'] = sum(v[m.name] is not None for v in vals)
      if not m.paired:
        continue
      base = [results.get((run.setting, 'uniform', s), {}).get(m.name) for s in seeds]
      if run.method == 'uniform' or None in base:
        base = None
      own = [v[suite.own_baseline[m.name]] for v in vals] if m.name in suite.own_baseline else []
      if own and None not in own:  # a run without its own uniform arm keeps the setting's
        base = own
      ours = [v[m.name] for v in vals]
      paired = base and None not in ours
      diff = paired_interval(ours, base) if paired else (None, None, None)
      row[f'{m.name} diff'], row[f'{m.name} diff lo'], row[f'{m.name} diff hi'] = diff
      row[f'{m.name} p'] = paired_pvalue(ours, base) if paired else None
    rows.append(row)
  for m in suite.metrics:
    if m.paired:  # one family per column: every paired comparison of the table in it
      for row, adjusted in zip(rows, holm([r[f'{m.name} p'] for r in rows])):
        row[f'{m.name} Holm p'] = adjusted
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


def _holm_cell(row, m) -> str:
  """Holm-adjusted p, with '*' when the comparison survives at HOLM_LEVEL."""
  p = row[f'{m.name} Holm p']
  if p is None:
    return 'baseline' if row['method'] == 'uniform' and row[f'{m.name} diff'] is None else 'n/a'
  return ('<0.001' if p < 0.001 else f'{p:.3f}') + (' *' if p <= HOLM_LEVEL else '')


def md_columns(suite, rows: list) -> list:
  """(header, row -> cell text) of table.md's long table, in order."""
  cols = [('setting', lambda r: r['setting']), ('method', lambda r: r['method']),
          ('information', lambda r: r['information']), ('seeds', lambda r: str(r['seeds']))]
  cols += [(m.name, lambda r, m=m: _cell(r, m)) for m in suite.metrics]
  paired = [m for m in suite.metrics if m.paired]
  cols += [(f'{m.name}: paired diff vs uniform [95% CI]', lambda r, m=m: _diff_cell(r, m))
           for m in paired]
  cols += [(f'{m.name}: Holm p', lambda r, m=m: _holm_cell(r, m)) for m in paired]
  cols += [(c, lambda r, c=c: fmt(r[c])) for c in COMPUTE_COLUMNS.values() if c in rows[0]]
  return cols


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
  cols = md_columns(suite, rows)
  total, timed, count = runs_wall_seconds(folder)
  seeds_flags, seeds_text = seeds_legend(rows, suite.headline.get(scale, ()))
  lines = [f'# {name} ({scale} scale)', '',
           f'Command: `python -m experiments.reproduce --suite={name} --scale={scale} '
           f'{seeds_flags}`. Its runs took {total:.0f} s of wall time when they ran '
           f'({timed} of {count} runs timed; each run\'s time is in its directory\'s '
           f'{WALL_FILE}); the invocation that wrote this table took {wall:.0f} s (runs that '
           'had finished earlier are reused, not re-run).', '', suite.header(scale),
           '', f'{seeds_text} Cells: mean ± standard deviation over the row\'s seeds. Paired '
           'diff: method minus uniform of the same seed, mean and 95% t-interval over the row\'s '
           'seeds. Information: what the row\'s '
           'method uses besides the training rows (declared by the method: none, the clean or '
           'noisy meta rows, or the ground-truth corruption flags). FLOPs / examples vs uniform: '
           'the row\'s compute (XLA-counted FLOPs and examples processed, from its compute '
           'ledger, less a paired uniform arm the run trains itself) over that of uniform of the '
           'same seed (the setting\'s uniform run, or the run\'s own uniform arm), mean over '
           'seeds. Holm p: the paired t-test\'s '
           'two-sided p-value (where every seed gives the same nonzero difference, the t-test '
           'is undefined and the exact sign-flip test\'s 2 / 2^seeds is used: 0.0625 with 5 '
           'seeds, 0.5 with 2), Holm-corrected over every paired comparison of this table in '
           f'that column ({_family_sizes(suite, rows)}); * = the difference survives at '
           f'{HOLM_LEVEL} (family-wise).', '',
           '| ' + ' | '.join(h for h, _ in cols) + ' |', '|' + '---|' * len(cols)]
  lines += ['| ' + ' | '.join(cell(r) for _, cell in cols) + ' |' for r in rows]
  lines += published_block(suite.published(scale) if suite.published else [])
  if suite.note:
    lines += ['', suite.note(scale)]
  seeds = {r['setting']: r['seeds'] for r in rows}
  if suite.extra:
    lines += suite.extra(runs, seeds, folder)
  lines += pivot_lines(runs, rows, suite.metrics[0])
  text = '\n'.join(lines) + '\n'
  write_atomic(os.path.join(folder, 'table.md'), [text])
  os.makedirs(os.path.join(folder, 'plots'), exist_ok=True)
  bar_plot(rows, suite.metrics[0], os.path.join(folder, 'plots', 'metric.png'))
  if suite.plot:
    suite.plot(runs, seeds, folder)
  if suite.curve:
    for m in suite.metrics:
      curve_plot(runs, rows, m, suite.curve,
                 os.path.join(folder, 'plots', f'curve_{slug(m.name)}.png'))
  return text


def seeds_legend(rows: list, headline=()) -> tuple:
  """(the command's seed flags, the legend's sentence on how many seeds each setting ran).

  Args:
    rows: table_rows' output.
    headline: the suite's headline settings at this scale (Suite.headline).

  Returns:
    '--seeds=N' (N: the most seeds a setting outside the headline ran), with
    '--headline_seeds=H' (H: the most seeds a headline setting ran) when the suite declares
    headline settings; and a sentence naming the settings that ran another count than N.
  """
  counts = {r['setting']: r['seeds'] for r in rows}
  by_count = {}  # seeds -> the settings that ran that many
  for setting, n in counts.items():
    by_count.setdefault(n, []).append(setting)
  common = max([n for s, n in counts.items() if s not in headline] or counts.values())
  flags = f'--seeds={common}'
  if any(s in counts for s in headline):
    flags += f' --headline_seeds={max(counts[s] for s in headline if s in counts)}'
  if len(by_count) == 1:
    return flags, f'Seeds: {common} per cell.'
  parts = [f'{n} in {", ".join(ss)}' + (' (the headline settings)' if set(ss) == set(headline)
                                       else '')
           for n, ss in sorted(by_count.items(), reverse=True) if n != common]
  return flags, (f'Seeds per cell: {"; ".join(parts)}; {common} in every other setting (seeds '
                 '0 to n-1, n in column seeds). Each row\'s cells, paired differences and '
                 'tests are over the seeds it ran.')


def _family_sizes(suite, rows: list) -> str:
  """'<m>: k comparisons' per paired metric, for the table's legend."""
  sizes = [f'{m.name}: {sum(r[f"{m.name} p"] is not None for r in rows)} comparisons'
           for m in suite.metrics if m.paired]
  return '; '.join(sizes) or 'no paired columns'


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
  out; the table shows them with their seed count. Runs without the x key (a calibration row
  outside the grid) are not drawn.

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
    if x_key not in run.key or mean is None or row[f'{metric.name} seeds'] < row['seeds']:
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
