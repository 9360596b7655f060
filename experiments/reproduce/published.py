"""Published numbers: lookups in third_party/<name>.csv (the papers' tables as data).

A suite lists the published numbers of its table as `Published` entries; the
table shows them in their own block, "Published (their setting)", never in a
row of ours, with the paper's setting of each number and our row of the same
setting where there is one.
"""

from __future__ import annotations

import csv
import os
import re
from typing import NamedTuple

from experiments._runs import ROOT


class Published(NamedTuple):
  """One published number and the setting it was measured in.

  Attributes:
    value: the number as the paper prints it.
    method: the paper's name of the method.
    metric: what the number is (the CSV's metric, e.g. 'test_accuracy_pct').
    setting: the paper's setting (dataset, model, protocol).
    source: paper and table.
    ours: our row (setting | method) in the same setting, or '' where no row of ours is.
  """
  value: str
  method: str
  metric: str
  setting: str
  source: str
  ours: str = ''


def published_rows(name: str) -> list:
  """Rows of third_party/<name>.csv as dicts."""
  with open(os.path.join(ROOT, 'third_party', f'{name}.csv')) as f:
    return list(csv.DictReader(f))


def _row(name: str, method: str, needles) -> dict | None:
  for r in published_rows(name):
    if r['method'] == method and all(re.search(re.escape(n) + r'(?!\d)', r['setting'])
                                     for n in needles):
      return r
  return None


def find_published(name: str, method: str, *needles: str) -> str:
  """'value' of the row of third_party/<name>.csv with this method whose setting holds every needle.

  A needle must not be followed by a digit ('imbalance 20' does not match 'imbalance 200').
  """
  r = _row(name, method, needles)
  return r['value'] if r else ''


def published_entry(name: str, method: str, *needles: str, protocol: str = '',
                    ours: str = '') -> Published | None:
  """The `Published` entry of find_published's row (None if there is none).

  Args:
    name, method, needles: as find_published.
    protocol: the paper's training recipe, appended to the CSV's setting.
    ours: our row in the same setting ('setting | method'), or ''.
  """
  r = _row(name, method, needles)
  if r is None:
    return None
  setting = r['setting'] + (f'; {protocol}' if protocol else '')
  return Published(r['value'], method, r['metric'], setting, f'{r["paper"]}, {r["table"]}', ours)


def published_block(entries: list) -> list:
  """Markdown lines of a table's "Published (their setting)" block ([] without entries)."""
  if not entries:
    return []
  lines = ['', '## Published (their setting)', '',
           'Numbers from the papers, each measured in the paper\'s own setting (dataset, model, '
           'training recipe). They are not cells of the table above: "our row, same setting" '
           'names a row of ours run in that setting, and is "—" where none is (the numbers are '
           'then context, not a target).', '',
           '| their setting | method | metric | published | source | our row, same setting |',
           '|---|---|---|---|---|---|']
  lines += [f'| {e.setting} | {e.method} | {e.metric} | {e.value} | {e.source} | '
            f'{e.ours or "—"} |' for e in entries]
  return lines
