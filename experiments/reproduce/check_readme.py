"""Checks every number the README's Results section quotes against the committed tables.

  python -m experiments.reproduce.check_readme [--readme=README.md] [--quiet]

The convention, in README.md's "## Results" section: a line

  <!-- numbers: results/<suite>/<scale>/table.csv -->

starts a checked block, which runs to the next such marker or the next
heading. In a checked block, every number with a decimal point (outside code
spans, fenced code and link targets) is checked against that table.csv and
the table.md beside it, at the precision the README prints it (31.0 matches
31.04; '−' is a minus sign, '**' is ignored):

  'm ± s'       must be the mean and standard deviation of one cell (one row,
                one metric) of table.csv;
  'd [lo, hi]'  must be one paired difference and its 95% interval (one row,
                one metric) of table.csv;
  any other     must be a value of table.csv, a number printed in table.md
                (e.g. the learned weight per source, a published number) or
                one run's cell (a per-seed value: runs/**/reproduce_metrics.json
                beside the table, committed with it).

Numbers without a decimal point (settings, counts, steps, dates) are not
checked. Numbers with one outside every block are listed as not checked
(per-run diagnostics that no committed table holds). Exit status: 1 with one
line per mismatch ("README.md:<line>: <number> not in <table>: <sentence>"), 2
for a marker naming a missing table, 0 otherwise.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import sys

from experiments._runs import ROOT

MARKER = re.compile(r'<!--\s*numbers:\s*(\S+)\s*-->')
NUM = r'[+-]?\d+(?:\.\d+)?'
TOKEN = re.compile(r'(?<![\w.])(' + NUM + r')(?![\w])')
INTERVAL = re.compile(r'(?<![\w.])(' + NUM + r')\s*\[\s*(' + NUM + r')\s*,\s*(' + NUM + r')\s*\]')
PLUS_MINUS = re.compile(r'(?<![\w.])(' + NUM + r')\s*±\s*(' + NUM + r')')


@dataclasses.dataclass
class Table:
  """The numbers of one committed table: cells by (row, metric) and every value."""
  pairs: list      # (mean, std) per cell
  intervals: list  # (diff, lo, hi) per paired cell
  values: list     # every number of table.csv and table.md


def _float(text: str):
  try:
    return float(text)
  except ValueError:
    return None


def load_table(path: str) -> Table:
  """table.csv at `path`, the table.md beside it and its runs' recorded cells (METRICS_FILE)."""
  import glob
  import json

  from experiments.reproduce.core import METRICS_FILE
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
  metrics = [c[:-len(' mean')] for c in (rows[0] if rows else {}) if c.endswith(' mean')]
  pairs, intervals, values = [], [], []
  for r in rows:
    values += [v for v in map(_float, r.values()) if v is not None]
    for m in metrics:
      pairs.append((_float(r[f'{m} mean']), _float(r[f'{m} std'] or '')))
      if f'{m} diff' in r:
        intervals.append(tuple(_float(r[f'{m} diff{s}'] or '') for s in ('', ' lo', ' hi')))
  md = os.path.join(os.path.dirname(path), 'table.md')
  if os.path.exists(md):
    with open(md) as f:
      values += [float(t) for t in TOKEN.findall(f.read().replace('−', '-'))]
  for run in glob.glob(os.path.join(os.path.dirname(path), 'runs', '**', METRICS_FILE),
                       recursive=True):
    with open(run) as f:
      values += [v for v in json.load(f).values() if isinstance(v, (int, float))]
  return Table(pairs, intervals, values)


def close(text: str, value) -> bool:
  """`value` rounds to `text` at the precision `text` is printed with."""
  if value is None:
    return False
  decimals = len(text.split('.')[1]) if '.' in text else 0
  return abs(float(text) - value) <= 0.5 * 10 ** -decimals + 1e-9


def clean(line: str) -> str:
  """The prose of a README line: no code spans, link targets, bold, HTML comments; '−' -> '-'."""
  line = re.sub(r'`[^`]*`', ' ', line)
  line = re.sub(r'\]\([^)]*\)', '] ', line)
  line = re.sub(r'<!--.*?-->', ' ', line)
  return line.replace('**', '').replace('−', '-')


def check_line(text: str, table: Table) -> tuple:
  """(checked numbers, mismatched numbers) of one cleaned line against `table`."""
  checked, bad = 0, []
  for m in INTERVAL.finditer(text):
    checked += 1
    if not any(all(close(t, v) for t, v in zip(m.groups(), cell)) for cell in table.intervals):
      bad.append(m.group(0))
  text = INTERVAL.sub(' ', text)
  for m in PLUS_MINUS.finditer(text):
    checked += 1
    if not any(all(close(t, v) for t, v in zip(m.groups(), cell)) for cell in table.pairs):
      bad.append(m.group(0))
  text = PLUS_MINUS.sub(' ', text)
  for t in TOKEN.findall(text):
    if '.' in t:
      checked += 1
      if not any(close(t, v) for v in table.values):
        bad.append(t)
  return checked, bad


def check(readme: str) -> dict:
  """Checks README's Results section.

  Returns:
    {'checked': numbers checked, 'mismatches': [(line number, number, table, line)],
     'unchecked': [(line number, line)] of lines with decimal numbers outside every block,
     'missing': [(line number, table path)] of markers naming no file}.
  """
  with open(readme) as f:
    lines = f.read().splitlines()
  out = {'checked': 0, 'mismatches': [], 'unchecked': [], 'missing': []}
  in_results, fenced, table, path = False, False, None, None
  for i, line in enumerate(lines, 1):
    if line.startswith('## '):
      in_results = line.startswith('## Results')
    if not in_results:
      continue
    if line.startswith('```'):
      fenced = not fenced
      continue
    if fenced:
      continue
    if line.startswith('#'):
      table = path = None
      continue
    marker = MARKER.search(re.sub(r'`[^`]*`', ' ', line))  # one quoted in a code span is not
    if marker:
      path = marker.group(1)
      full = os.path.join(os.path.dirname(os.path.abspath(readme)), path)
      table = load_table(full) if os.path.exists(full) else None
      if table is None:
        out['missing'].append((i, path))
      continue
    text = clean(line)
    if table is None:
      if any('.' in t for t in TOKEN.findall(text)):
        out['unchecked'].append((i, line.strip()))
      continue
    checked, bad = check_line(text, table)
    out['checked'] += checked
    out['mismatches'] += [(i, b, path, line.strip()) for b in bad]
  return out


def main(argv) -> int:
  readme = os.path.join(ROOT, 'README.md')
  quiet = '--quiet' in argv
  for a in argv:
    if a.startswith('--readme='):
      readme = a.split('=', 1)[1]
    elif a not in ('--quiet',):
      print(f'error: unknown argument {a!r}; use --readme=PATH, --quiet', file=sys.stderr)
      return 2
  result = check(readme)
  for i, path in result['missing']:
    print(f'error: {readme}:{i}: marker names {path}, which does not exist', file=sys.stderr)
  for i, number, path, line in result['mismatches']:
    print(f'{readme}:{i}: {number} not in {path}: {line[:160]}')
  if not quiet:
    for i, line in result['unchecked']:
      print(f'not checked ({readme}:{i}, outside every numbers block): {line[:160]}')
  print(f'[check_readme] {result["checked"]} numbers checked, {len(result["mismatches"])} '
        f'mismatches, {len(result["unchecked"])} lines not checked')
  return 2 if result['missing'] else (1 if result['mismatches'] else 0)


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
