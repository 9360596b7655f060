"""What several suites share: the MW-Net paper settings, methods from the registry, config args,
accuracy."""

from __future__ import annotations

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


def table_label(name: str) -> str:
  """Method `name`'s row label: its declared label (a data scorer's row is its filtered
  retraining)."""
  from datarater.run import declaration
  declared = declaration(name)
  return declared.label + (' filter' if declared.family == 'scorer' else '')


def suite_methods(keep, not_run=()) -> list:
  """(row label, method) of the registered methods a suite runs, in table order.

  Args:
    keep: (datarater.methods.Declares) -> bool, the suite's rule (e.g. "learns source weights").
    not_run: methods the rule keeps but the suite's committed table was made without
      (naming one here keeps its runs out; removing it adds them, as new table rows).

  Returns:
    [(label, configs/<name>.py name)] from datarater.run.methods_with, so a new method
    that `keep` accepts is in the suite without an edit.
  """
  from datarater.run import declaration, methods_with
  return [(table_label(n), n) for n in methods_with() if n not in not_run and keep(declaration(n))]


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
    out = {'test_accuracy': es.get('test_accuracy'), 'test_loss': es.get('test_loss')}
    if 'baseline_phase' in summary:
      out.update(baseline_phase=summary['baseline_phase'], phases=summary['phases'])
    return out
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
