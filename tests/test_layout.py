"""The dependency direction of the layout, read from the code and checked at run time.

The layers, lowest first (`LAYERS`); a module may import its own layer and the
layers below it, never one above:

  1. datarater (the package root) and datarater.errors: the one-line errors
     every layer raises;
  2. the math packages: datarater.meta, bilevel, weighting, dynamics,
     valuation, mixing (pure jax/optax/numpy);
  3. datarater.data and datarater.models;
  4. datarater.train: the framework (state, loop, evaluation, checkpoints,
     ledger, sharding, the non-finite guard);
  5. datarater.report: plots, AUROC / detection metrics, score reports;
  6. datarater.methods: one module per method;
  7. datarater.run: the runner, which looks a method up by name;
  8. experiments and configs: entry points and config files.

`import_edges` reads every Import / ImportFrom node of every module under
datarater/ (also those inside functions, which run later but still tie the
modules) and the string given to importlib.import_module (an f-string counts
by its constant head: f'datarater.methods.{name}' imports datarater.methods).
`test_no_module_imports_a_higher_layer` fails on an upward import and
`test_no_import_cycle` on any cycle between modules. The other checks run in a
fresh interpreter, so modules loaded by other tests do not hide an import.
"""

import ast
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATH = ('datarater.meta', 'datarater.bilevel', 'datarater.weighting', 'datarater.dynamics',
        'datarater.valuation', 'datarater.mixing')
LAYERS = (
    ('datarater', 'datarater.errors'),
    MATH,
    ('datarater.data', 'datarater.models'),
    ('datarater.train',),
    ('datarater.report',),
    ('datarater.methods',),
    ('datarater.run', 'datarater.runner'),
    ('experiments', 'configs'),
)
HEAVY = ('orbax', 'matplotlib', 'flax', 'tensorflow_datasets', 'ml_collections', 'tensorboardX')
# Imported at the point of use only: the entry chain (`--help`, the configs) loads none of them.
RUN_TIME = ('sklearn', 'matplotlib', 'tensorboardX', 'orbax', 'tensorflow_datasets', 'tensorflow',
            'torch', 'scipy', 'grain', 'datasets')


# ----------------------------------------------------------------------------- static imports


def modules_under(root: str, package: str = 'datarater') -> dict:
  """{module name: file path} of every .py under root/package (a package is its __init__)."""
  out = {}
  for folder, dirs, files in os.walk(os.path.join(root, package)):
    dirs[:] = sorted(d for d in dirs if d != '__pycache__')
    rel = os.path.relpath(folder, root).split(os.sep)
    for f in sorted(files):
      if f.endswith('.py'):
        parts = rel if f == '__init__.py' else rel + [f[:-3]]
        out['.'.join(parts)] = os.path.join(folder, f)
  return out


def _import_module_target(node: ast.Call):
  """The module named by importlib.import_module(<str or f-string>, ...), else None."""
  func = node.func
  name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', None)
  if name not in ('import_module', '__import__') or not node.args:
    return None
  arg = node.args[0]
  if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
    return arg.value
  if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
    return arg.values[0].value.rstrip('.') or None  # f'pkg.{name}' -> 'pkg'
  return None


def import_edges(modules: dict) -> set:
  """(importer, imported) pairs between project modules, from every module's syntax tree.

  `from pkg import name` ties to the module pkg.name where that is a module,
  else to pkg itself; imports of other packages (jax, numpy, ...) are left out.
  """
  edges = set()
  for name, path in modules.items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    targets = []
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        targets += [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
          head = package.split('.')[:len(package.split('.')) - node.level + 1]
          base = '.'.join(head + ([base] if base else []))
        targets += [f'{base}.{a.name}' if f'{base}.{a.name}' in modules else base
                    for a in node.names]
      elif isinstance(node, ast.Call):
        targets.append(_import_module_target(node))
    for target in targets:
      if target and target.split('.')[0] in ('datarater', 'experiments', 'configs'):
        if target != name:
          edges.add((name, target))
  return edges


def layer(module: str):
  """Index in LAYERS of the longest prefix naming `module`'s layer, or None."""
  best = None
  for i, prefixes in enumerate(LAYERS):
    for p in prefixes:
      if (module == p or module.startswith(p + '.')) and (best is None or len(p) > len(best[1])):
        best = (i, p)
  return None if best is None else best[0]


def upward_imports(edges) -> list:
  """'a -> b' for every edge from a lower layer to a higher one, or to a module on no layer."""
  out = []
  for src, dst in sorted(edges):
    if layer(src) is None or layer(dst) is None:
      out.append(f'{src} -> {dst} (on no layer: add it to LAYERS)')
    elif layer(dst) > layer(src):
      out.append(f'{src} -> {dst}')
  return out


def import_cycles(edges) -> list:
  """Strongly connected components (sorted module lists) with more than one module."""
  graph = {}
  for src, dst in edges:
    graph.setdefault(src, set()).add(dst)
    graph.setdefault(dst, set())
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v):  # Tarjan; the graph has ~150 nodes, so recursion is shallow enough
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph[v]):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return sorted(out)


def layout_problems(root: str) -> list:
  """Every upward import and import cycle of the modules under root/datarater."""
  edges = import_edges(modules_under(root))
  return upward_imports(edges) + [f'cycle: {" <-> ".join(c)}' for c in import_cycles(edges)]


def test_no_module_imports_a_higher_layer():
  problems = upward_imports(import_edges(modules_under(ROOT)))
  assert not problems, 'upward imports:\n' + '\n'.join(problems)


def test_no_import_cycle():
  cycles = import_cycles(import_edges(modules_under(ROOT)))
  assert not cycles, f'import cycles: {cycles}'


def test_every_package_is_on_a_layer():
  modules = modules_under(ROOT)
  assert not [m for m in modules if layer(m) is None]
  assert layer('datarater.train.loop') < layer('datarater.report.plots') < \
      layer('datarater.methods.uniform') < layer('datarater.run') < layer('experiments.train')


def test_the_checker_sees_lazy_and_importlib_imports_and_cycles(tmp_path):
  """Each planted fault is reported: an import inside a function, an import_module
  f-string, a relative import, a cycle; a clean tree reports nothing."""
  files = {
      'datarater/__init__.py': '',
      'datarater/train/__init__.py': '',
      'datarater/train/loop.py': 'import numpy as np\nfrom datarater.train import state\n',
      'datarater/train/state.py': 'from . import loop as _l\n',
      'datarater/train/validate.py': ('import importlib\n'
                                      'def find(name):\n'
                                      '  return importlib.import_module(f"datarater.methods.{name}")\n'),
      'datarater/train/lazy.py': 'def f():\n  from datarater.run import prepare\n',
      'datarater/methods/__init__.py': '',
      'datarater/methods/uniform.py': 'from datarater.train import loop\n',
      'datarater/run.py': 'from datarater.methods import uniform\n',
  }
  for path, text in files.items():
    os.makedirs(tmp_path / os.path.dirname(path), exist_ok=True)
    (tmp_path / path).write_text(text)
  assert layout_problems(str(tmp_path)) == [
      'datarater.train.lazy -> datarater.run',
      'datarater.train.validate -> datarater.methods',
      'cycle: datarater.train.loop <-> datarater.train.state']
  for path in ('datarater/train/lazy.py', 'datarater/train/validate.py', 'datarater/train/state.py'):
    (tmp_path / path).write_text('')
  assert layout_problems(str(tmp_path)) == []


# ----------------------------------------------------------------------------- run time


def loaded_after(code: str) -> list[str]:
  """Module names in sys.modules after running `code` in a fresh interpreter."""
  script = code + '\nimport sys, json; print(json.dumps(sorted(sys.modules)))'
  out = subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True, text=True,
                       check=True, timeout=120)
  return json.loads(out.stdout.strip().splitlines()[-1])


def math_modules() -> list[str]:
  return [m for m in modules_under(ROOT) if m.startswith(MATH) and m.count('.') == 2]


def test_math_packages_load_no_heavy_or_higher_module():
  mods = loaded_after('\n'.join(f'import {m}' for m in math_modules()))
  for heavy in HEAVY:
    assert heavy not in mods, f'the math floor loads {heavy}'
  higher = [m for m in mods if m.startswith(('datarater.train', 'datarater.methods',
                                             'datarater.models', 'datarater.data',
                                             'datarater.report', 'datarater.run', 'configs'))]
  assert not higher, f'the math floor imports {higher}'


def test_training_package_imports_no_method_module():
  train = sorted(m for m in modules_under(ROOT) if m.startswith('datarater.train'))
  mods = loaded_after('\n'.join(f'import {m}' for m in train))
  higher = [m for m in mods if m.startswith(('datarater.methods', 'datarater.report',
                                             'datarater.run'))]
  assert not higher, f'datarater.train imports {higher}'
  assert 'matplotlib' not in mods and 'sklearn' not in mods


def test_entry_chain_loads_no_run_time_dependency():
  """`import datarater`, the runner, the loop, experiments.train and every config file load
  none of RUN_TIME (time to result); `python -m experiments.train --help` not even jax."""
  configs = sorted(m for m in modules_under(ROOT, 'configs'))
  mods = loaded_after('\n'.join(f'import {m}' for m in ['datarater', 'datarater.run', 'datarater.train',
                                                        'experiments.train'] + configs))
  assert 'configs.uniform' in mods and 'datarater.train.loop' in mods
  loaded = sorted({m.split('.')[0] for m in mods} & set(RUN_TIME))
  assert not loaded, f'the entry chain imports {loaded}'
  out = subprocess.run([sys.executable, '-X', 'importtime', '-m', 'experiments.train', '--help'],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert '--workdir' in out.stdout  # the help was printed
  names = {line.rsplit('|', 1)[-1].strip().split('.')[0]
           for line in out.stderr.splitlines() if line.startswith('import time:')}
  assert 'datarater' in names
  loaded = sorted(names & set(RUN_TIME + ('jax', 'flax', 'optax')))
  assert not loaded, f'experiments.train --help imports {loaded}'


def test_every_method_is_found_by_name():
  from datarater.run import method_module, method_names
  names = method_names()
  assert {'uniform', 'datarater', 'l2rw', 'mwn', 'scalebio', 'group_dro', 'doremi',
          'infobatch'} <= set(names)
  assert not [n for n in names if n.startswith('_')]
  for name in names:
    assert callable(method_module(name).make), name


@pytest.mark.parametrize('module', ['datarater.methods.uniform'])
def test_method_module_does_not_import_experiments(module):
  assert not [m for m in loaded_after(f'import {module}') if m.startswith('experiments')]
