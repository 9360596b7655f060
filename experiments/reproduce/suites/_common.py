"""What several suites share: the MW-Net paper settings, methods from the registry, config args,
accuracy."""

from __future__ import annotations

import dataclasses

from experiments.reproduce.core import Metric

# CIFAR setting of the MW-Net code (batch 100, SGD-Nesterov 0.1, wd 5e-4, 1000 clean meta
# images); 120 epochs of 49,000 images = 58,800 steps of 100, learning rate / 10 at
# epochs 80 and 100.
MWNET_PAPER = {'batch_size': 100, 'num_steps': 58800, 'data.meta_size': 1000,
               'optimizer.name': 'nesterov', 'optimizer.learning_rate': 0.1,
               'optimizer.momentum': 0.9, 'optimizer.weight_decay': 5e-4,
               'optimizer.schedule': 'step', 'optimizer.step_boundaries': (80 / 120, 100 / 120),
               'optimizer.step_factor': 0.1, 'eval_every': 2000, 'checkpoint_every': 2000,
               'log_every': 200}

# The methods of the MW-Net paper's tables (third_party/), in its order -> its name for them.
CSV_METHOD = {'uniform': 'CE', 'l2rw': 'L2RW', 'mwn': 'MW-Net'}

# stdlib_text at cpu scale: 400 steps per phase (the text preset's 1500 take about 65 s per
# uniform run here) and 100 meta-training steps.
TEXT_CPU = {'num_steps': 400, 'method.meta_steps': 100}


def config_arg(dataset, scale, model=''):
  """The config arg of a run: 'dataset=<dataset>[,model=<model>][,smoke]'."""
  return ','.join(filter(None, [f'dataset={dataset}', model and f'model={model}',
                                'smoke' if scale == 'smoke' else '']))


def table_label(name: str, variant: str | None = None) -> str:
  """Row label of method `name` (or of its `variant`): its declared label (a data scorer's row
  is its filtered retraining, '<label> filter').

  A variant's label is its entry in the declaration's `variant_labels`, else the method's label
  for its first variant and '<label> (<variant>)' for the others.
  """
  from datarater.run import declaration
  declared = declaration(name)
  label = declared.label
  if variant is not None:
    first = next(iter(declared.variants or {variant: {}}))
    label = (declared.variant_labels or {}).get(
        variant, label if variant == first else f'{label} ({variant})')
  return label + (' filter' if declared.family == 'scorer' else '')


def suite_methods(keep, not_run=()) -> list:
  """(row label, method, overrides) of the registered methods a suite runs, in table order.

  Args:
    keep: (datarater.methods.Declares) -> bool, the suite's rule (e.g. "learns source weights").
    not_run: methods the rule keeps but the suite's committed table was made without
      (naming one here keeps its runs out; removing it adds them, as new table rows).

  Returns:
    [(label, configs/<name>.py name, config overrides)] from datarater.run.methods_with, one
    row per declared variant (STORM and 'STORM filter'), so a new method that `keep` accepts
    is in the suite without an edit; uniform (every comparison's
    reference) first.
  """
  from datarater.run import declaration, methods_with
  out = []
  for n in sorted(methods_with(), key=lambda n: n != 'uniform'):
    declared = declaration(n)
    if n in not_run or not keep(declared):
      continue
    for variant, overrides in (declared.variants or {None: {}}).items():
      out.append((table_label(n, variant), n, dict(overrides)))
  return out


def with_compute_matched(runs: list, configs: tuple) -> list:
  """`runs`, each setting followed by a compute-matched uniform row per run of `configs`.

  The row 'uniform, FLOPs of <label>' is uniform on the setting's data (the
  method run's overrides less its `method.*` fields) whose num_steps is set
  when it runs to round(that method's FLOPs / uniform's FLOPs per step) of the
  same seed (core.Run.match_compute, core.matched_steps); it comes after the
  method it matches, which therefore runs first.
  """
  out = []
  for setting in dict.fromkeys(r.setting for r in runs):
    group = [r for r in runs if r.setting == setting]
    out += group + [dataclasses.replace(
        r, method=f'uniform, FLOPs of {r.method}', config='uniform', match_compute=r.method,
        overrides={k: v for k, v in r.overrides.items() if not k.startswith('method.')})
                    for r in group if r.config in configs]
  return out


# The header sentence on the reference rows (the 'baseline' family besides uniform).
REFERENCES = ('Reference rows: "meta rows only" trains uniformly on the meta split alone (same '
              'steps); "fine-tune on meta rows" fine-tunes the uniform model on it '
              '(method.finetune_steps steps at method.finetune_lr_factor times the learning '
              'rate; its paired arm is its own uniform phase, equal to the uniform run); '
              '"oracle" trains on the training rows whose ground-truth corruption flag is clean, '
              'an upper reference that uses the ground truth, not a method.')
# The header sentence on the compute-matched rows (with_compute_matched).
COMPUTE_MATCHED_ROWS = ('"uniform, FLOPs of X": uniform given the FLOPs of X\'s run of the same '
                        'seed: its steps are round(FLOPs of X / uniform\'s FLOPs per step), '
                        'measured on the finished runs (so "X beats uniform" is not just "X used '
                        'more compute").')


def meta_overrides(config, scale):
  """Shorter meta-training of the methods with their own step counts at cpu scale."""
  if scale != 'cpu':
    return {}
  return {'datarater': {'method.meta_steps': 200}}.get(config, {})


def _pct(key):
  return lambda s, w, c: None if s.get(key) is None else 100 * s[key]


ACCURACY = Metric('test acc. %', _pct('test_accuracy'), paired=True)
