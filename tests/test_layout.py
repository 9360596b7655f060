"""The dependency direction of the layout: math <- methods <- train <- experiments.

Each check runs in a fresh interpreter, so modules loaded by other tests do
not hide an import.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATH = ('datarater.meta', 'datarater.bilevel', 'datarater.weighting', 'datarater.dynamics')
HEAVY = ('orbax', 'matplotlib', 'flax', 'tensorflow_datasets', 'ml_collections', 'tensorboardX')


def loaded_after(code: str) -> list[str]:
  """Module names in sys.modules after running `code` in a fresh interpreter."""
  script = code + '\nimport sys, json; print(json.dumps(sorted(sys.modules)))'
  out = subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True, text=True,
                       check=True, timeout=120)
  return json.loads(out.stdout.strip().splitlines()[-1])


def math_modules() -> list[str]:
  names = []
  for pkg in MATH:
    folder = os.path.join(ROOT, *pkg.split('.'))
    names += [f'{pkg}.{f[:-3]}' for f in sorted(os.listdir(folder))
              if f.endswith('.py') and f != '__init__.py']
  return names


def test_math_packages_load_no_heavy_or_higher_module():
  mods = loaded_after('\n'.join(f'import {m}' for m in math_modules()))
  for heavy in HEAVY:
    assert heavy not in mods, f'the math floor loads {heavy}'
  higher = [m for m in mods if m.startswith(('datarater.train', 'datarater.methods',
                                             'datarater.models', 'datarater.data', 'configs'))]
  assert not higher, f'the math floor imports {higher}'


def test_training_package_imports_no_method_module():
  mods = loaded_after('import datarater.train; from datarater.train import loop, pipeline, '
                      'state, scoring, validate, rundir, task')
  methods = [m for m in mods if m.startswith('datarater.methods.')]
  assert not methods, f'datarater.train imports {methods}'


def test_every_method_is_found_by_name():
  from datarater.train.validate import method_module, method_names
  names = method_names()
  assert {'uniform', 'datarater', 'l2rw', 'mwn', 'scalebio', 'group_dro', 'doremi',
          'infobatch'} <= set(names)
  assert not [n for n in names if n.startswith('_')]
  for name in names:
    assert callable(method_module(name).make), name


@pytest.mark.parametrize('module', ['datarater.methods.uniform'])
def test_method_module_does_not_import_experiments(module):
  assert not [m for m in loaded_after(f'import {module}') if m.startswith('experiments')]
