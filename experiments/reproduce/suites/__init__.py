"""The suite registry: every module of this package not starting with '_' is a suite.

suites/<name>.py declares its grid (runs), table columns (metrics), header,
published numbers and notes as `SUITE = Suite(...)` (core.Suite); it is
registered under its file name, so adding a suite is adding one module.
"""

import importlib
import pkgutil

SUITES = {m.name: importlib.import_module(f'{__name__}.{m.name}').SUITE
          for m in pkgutil.iter_modules(__path__) if not m.name.startswith('_')}
