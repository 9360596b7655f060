"""`python -m experiments.benchmark`: flags only (see the package docstring).

Bad flags (or --peers without torch installed) exit with status 2 and one
line on stderr, before anything is written.
"""

from __future__ import annotations

import functools
import os

from absl import app, flags

from experiments._runs import fail, parse_flags, read_json
from experiments.benchmark import core, report, targets

_OUT = flags.DEFINE_string('out', 'results/benchmark', 'Folder for benchmark.json/.md and plots.')
_QUICK = flags.DEFINE_bool('quick', False, 'Tiny sizes, one repeat, no end-to-end peer run.')
_PEERS = flags.DEFINE_bool('peers', False, 'Also run the PyTorch peers (imports torch; needs '
                           'pip install -r requirements-bench.txt).')
_SECTIONS = flags.DEFINE_list('sections', None,
                              'Sections to run; the others are kept from OUT/benchmark.json '
                              f'when it has them. Any of {list(core.SECTIONS)}; default: all, '
                              f"with --quick all but 'corpus'.")

NOTES_FILE = 'notes.md'  # hand-written causes of missed targets, kept beside the results


def _check_flags() -> None:
  if _PEERS.value and not core.torch_installed():
    raise ValueError('--peers: PyTorch is not installed (pip install -r requirements-bench.txt)')
  if _SECTIONS.value is None:
    return
  unknown = [s for s in _SECTIONS.value if s not in core.SECTIONS]
  if unknown or not _SECTIONS.value:
    raise ValueError(f'--sections: {unknown or "(none)"} is not a list of {list(core.SECTIONS)}')


def main(argv):
  del argv  # parse_flags refuses extra arguments
  out = _OUT.value
  try:
    os.makedirs(out, exist_ok=True)
  except OSError as e:
    fail(2, f'--out={out}: cannot create the folder ({e.strerror or e})')
  notes_path = os.path.join(out, NOTES_FILE)
  try:
    notes = open(notes_path).read() if os.path.exists(notes_path) else ''
  except (OSError, UnicodeDecodeError) as e:
    fail(2, f'{notes_path} is unreadable ({e})')
  previous = None
  sections = _SECTIONS.value or core.default_sections(_QUICK.value)
  if set(sections) != set(core.SECTIONS):
    previous = read_json(os.path.join(out, report.FILES[0]))
  result = core.run_benchmark(_QUICK.value, log=lambda line: print(line, flush=True), notes=notes,
                              peers=_PEERS.value, sections=sections, previous=previous)
  print(targets.format_targets(result['targets']))
  report.write_report(result, out)
  print(f"wrote {out}/{', '.join(report.FILES)}")


if __name__ == '__main__':
  app.run(main, flags_parser=functools.partial(parse_flags, check=_check_flags))
