"""What several suites share: the MW-Net paper settings, methods from the registry, config args,
accuracy."""

from __future__ import annotations

import dataclasses

from experiments.reproduce.core import Metric

# The paper-scale settings of the authors' official MW-Net scripts, one entry per script (read
# in github.com/xjtushujun/meta-weight-net and xjtushujun/Meta-weight-net_class-imbalance):
# 'run' are the fields of every method's run (batch 100, SGD 0.1, momentum 0.9, wd 5e-4,
# learning rate / 10 twice), 'mwn' the script's weight-net settings for the mwn runs (its
# initialisation too: PyTorch's default, wnet_init='torch'; configs/mwn.py). Every
# script reports the BEST test accuracy over training; our tables read the final step.
# What the three scripts share: batch 100, SGD 0.1 with momentum 0.9, wd 5e-4, step schedule / 10.
_SCRIPT_SGD = {'batch_size': 100, 'optimizer.learning_rate': 0.1, 'optimizer.momentum': 0.9,
               'optimizer.weight_decay': 5e-4, 'optimizer.schedule': 'step',
               'optimizer.step_factor': 0.1}

MWNET_SCRIPTS = {
    # 2019 noisy-label script (WRN-28-10, the uniform-noise table): 20,000 iterations, lr / 10
    # at iterations 18,000 and 19,000, Nesterov (nesterov=args.nesterov, default True), 1000
    # clean meta images; V normalised by its batch sum, weight net SGD-Nesterov 1e-3, wd 5e-4.
    'train_WRN-28-10_Meta_PGC.py': {
        'run': {**_SCRIPT_SGD, 'num_steps': 20000, 'data.meta_size': 1000,
                'optimizer.name': 'nesterov', 'optimizer.step_boundaries': (0.9, 0.95),
                'eval_every': 1000, 'checkpoint_every': 1000, 'log_every': 100},
        'mwn': {'method.wnet_optimizer': 'nesterov', 'method.wnet_learning_rate': 1e-3,
                'method.wnet_weight_decay': 5e-4, 'method.normalize': True,
                'method.lookahead_lr': 'scheduled', 'method.wnet_init': 'torch'}},
    # 2020 "stable version" noisy-label script (ResNet-32): 120 epochs of 49,000 images =
    # 58,800 steps, lr / 10 at epochs 80 and 100, plain momentum (no nesterov= passed), 1000
    # clean meta images; V not normalised, weight net Adam 1e-3, wd 1e-4.
    'MW-Net.py': {
        'run': {**_SCRIPT_SGD, 'num_steps': 58800, 'data.meta_size': 1000,
                'optimizer.name': 'momentum', 'optimizer.step_boundaries': (80 / 120, 100 / 120),
                'eval_every': 2000, 'checkpoint_every': 2000, 'log_every': 200},
        'mwn': {'method.wnet_optimizer': 'adam', 'method.wnet_learning_rate': 1e-3,
                'method.wnet_weight_decay': 1e-4, 'method.normalize': False,
                'method.lookahead_lr': 'scheduled', 'method.wnet_init': 'torch'}},
    # Class-imbalance script (ResNet-32, the long-tail table): 100 epochs of the imbalanced
    # set (steps: suites/long_tail.py), Nesterov, lr / 10 when epoch + 1 reaches 80 and 90
    # (after 79 and 89 epochs; its look-ahead drops one epoch later), 10 meta images per class
    # drawn before imbalancing; V normalised, weight net SGD-Nesterov 1e-5, wd 5e-4.
    'meta-weight-net-class-imbalance.py': {
        'run': {**_SCRIPT_SGD, 'data.meta_size': 100,
                'optimizer.name': 'nesterov', 'optimizer.step_boundaries': (0.79, 0.89),
                'eval_every': 2000, 'checkpoint_every': 2000, 'log_every': 200},
        'mwn': {'method.wnet_optimizer': 'nesterov', 'method.wnet_learning_rate': 1e-5,
                'method.wnet_weight_decay': 5e-4, 'method.normalize': True,
                'method.lookahead_lr': 'scheduled', 'method.wnet_init': 'torch'}},
}

# The ResNet-32 noisy-label setting (MW-Net.py) that the paper scale of source_mixture,
# label_error_detection and the flip-noise cells of noisy_labels use.
MWNET_PAPER = MWNET_SCRIPTS['MW-Net.py']['run']

# Said in every suite header: which step a table reads.
FINAL_STEP = ('Our numbers are read at the final training step (no early stopping, no best '
              'over training).')
PUBLISHED_BEST = ('The published MW-Net numbers are the best test accuracy over training, '
                  'as the authors\' scripts print it.')


def mwnet_script(script: str, config: str) -> dict:
  """Paper-scale run fields of the official MW-Net script `script` (a MWNET_SCRIPTS key) for
  a run of configs/<config>.py: the script's training settings, and for 'mwn' also its
  weight-net settings."""
  entry = MWNET_SCRIPTS[script]
  return {**entry['run'], **(entry['mwn'] if config == 'mwn' else {})}


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
                    for r in group if r.config in configs and not r.reads]
  return out


# The paired uniform arm a run trains itself (filtering runs), as a column; Suite.own_baseline
# pairs a run's accuracy with it.
UNIFORM_ARM = Metric('uniform arm acc. %', lambda s, w, c: 100 * s['phases'][
    s['baseline_phase']]['test_accuracy'] if 'baseline_phase' in s else None)


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


EARLY_STOPPED = 'uniform (early-stopped on validation)'
EARLY_STOPPED_NOTE = ('"uniform (early-stopped on validation)" is no new run: it reads the '
                      'uniform run of the same seed at its evaluation with the best accuracy on '
                      'the validation split (data.valid_size held-out training rows, corrupted '
                      'like the training data, so at label noise it selects on noisy labels; '
                      'ties: the earliest), and reports the test accuracy there.')


def early_stopped_view(phase: str | None = None):
  """summary -> the summary a row of `phase`'s early-stopped test metrics shows.

  Args:
    phase: the phase read (None: the run's result phase), e.g. a filter run's 'uniform' arm.

  Returns:
    A function of a summary.json dict giving {'test_accuracy', 'test_loss'} at the phase's
    early-stopped evaluation (None when it has none), and the run's baseline phase so a
    paired column against the run's own arm still finds it.
  """
  def view(summary):
    es = summary['phases'][phase or summary['result_phase']].get('early_stopped') or {}
    out = {'test_accuracy': es.get('test_accuracy'), 'test_loss': es.get('test_loss'),
           # its compute is the whole run's: the best evaluation is known only at the end
           **{k: summary[k] for k in ('ledger', 'method_ledger') if k in summary}}
    if 'baseline_phase' in summary:
      out.update(baseline_phase=summary['baseline_phase'], phases=summary['phases'])
    return out
  view.early_stopped_phase = phase  # read by report.information
  return view


def with_early_stopped(runs: list, source: str = 'uniform', phase: str | None = None) -> list:
  """`runs` with an EARLY_STOPPED row after each `source` row (read from its runs, no new run).

  Args:
    runs: a suite's grid.
    source: the method label whose runs the row reads.
    phase: the phase read (None: the run's result phase).
  """
  out = []
  for run in runs:
    out.append(run)
    if run.method == source:
      out.append(run.derived(EARLY_STOPPED, early_stopped_view(phase)))
  return out
