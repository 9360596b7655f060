"""Published numbers: lookups in third_party/<name>.csv (the papers' tables as data)."""

from __future__ import annotations

import csv
import os
import re

from experiments._runs import ROOT


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
