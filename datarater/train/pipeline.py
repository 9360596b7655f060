"""Pipelines as data: a method's phases, and the one assembler that runs them.

A method module's `make(config, task, dataset)` returns either a `Method` (one
phase named 'train') or a `Pipeline`: a tuple of `Phase`s plus which phase is
the run's result and which one it is compared with. `run_pipeline` trains the
phases in order, merges every phase's `finalize` extras, and builds one
summary.json, one compute ledger and one console line per phase, for every
method alike.

Paired arms: phases with the same `init` name start from the same initial
parameters (the key is a stable hash of that name, not of the phase name);
data order is a pure function of (seed, step), so arms with the same batch
size also see the same batches. `config.paired_arms=False` gives every phase
its own initial parameters (an unpaired comparison).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional, Union

import optax

from datarater.train.context import Context
from datarater.train.loop import LEDGER_KEYS, PhaseResult, train_phase
from datarater.train.state import Method


class Phase(NamedTuple):
  """One phase of a pipeline.

  Attributes:
    name: phase name: checkpoint folder, metrics rows, console prefix.
    method: the Method to run, or (results so far: {name: PhaseResult}) ->
      Method, called when the phase starts (e.g. a filter needs the rater of
      an earlier phase).
    steps: number of steps.
    init: initial-parameter stream: phases with the same `init` start from
      the same parameters (paired arms). Default: 'model'.
    trains_model: False for phases that train something other than the task's
      model (e.g. DataRater's rater): the loop then keeps only a step counter
      in the TrainState and evaluates nothing.
    optimizer: the model's optimizer in this phase (default: the task's,
      from config.optimizer).
    task: the Task this phase trains (default: the run's; e.g. AUM's
      threshold samples need a model with one extra output).
    start_from: the name of an earlier phase whose final model parameters
      this phase starts from, with a fresh optimizer state (fine-tuning);
      None: parameters drawn from `init`.
  """
  name: str
  method: Union[Method, Callable[[dict], Method]]
  steps: int
  init: str = 'model'
  trains_model: bool = True
  optimizer: Optional[optax.GradientTransformation] = None
  task: Optional[object] = None
  start_from: Optional[str] = None


class Pipeline(NamedTuple):
  """A multi-phase method.

  Attributes:
    phases: the phases, run in order.
    result: the phase whose model is the run's result (summary's test metrics).
    baseline: the phase `result` is compared with (paired), or None. The
      summary then has `accuracy_gain_vs_baseline` and `compute` (net compute
      gain, `compute_gain`).
    report: optional (ctx, results) -> dict of extras computed from several
      phases (merged into summary.json).
    extra_cost: phases whose cost is charged to the method in the compute
      gain (e.g. DataRater's meta-training). The result phase and these are
      the method's compute (summary.json's `method_ledger`); the others (a
      paired uniform arm) are not, unless `choose` picks the result (then
      every phase was needed to decide, and all are charged).
    choose: optional (results, metric rows) -> (result phase, extras): picks
      the run's result phase after training (on validation data; e.g.
      method.discard_fraction='auto' keeps the filtered model only if it
      beats the uniform arm); its extras go into summary.json.
  """
  phases: tuple
  result: str
  baseline: Optional[str] = None
  report: Optional[Callable[[Context, dict], dict]] = None
  extra_cost: tuple = ()
  choose: Optional[Callable[[dict, list], tuple]] = None


def add_ledgers(*ledgers: dict) -> dict:
  return {k: sum(l.get(k, 0) for l in ledgers) for k in LEDGER_KEYS}


NO_VALID = 'no validation split (config.data.valid_size=0)'


def eval_rows(rows, phase: str) -> list:
  """The rows of `phase` that carry a validation evaluation, in step order."""
  return [r for r in rows if r.get('phase') == phase and r.get('valid/loss') is not None]


def early_stopped(rows, phase: str) -> dict | None:
  """Early stopping on validation: the evaluation of `phase` with the best validation
  accuracy (ties: the earliest), and the test metrics at that step.

  Args:
    rows: metrics.jsonl rows (dicts with 'phase', 'step', 'valid/accuracy', 'test/...').
    phase: the phase.

  Returns:
    {'step', 'valid_accuracy', 'valid_loss', 'test_accuracy', 'test_loss'} (the test
    metrics None when the test split was not evaluated at that step: config.eval_test='last'),
    or None when the phase has no validation evaluation (no validation split, or a phase that
    trains no model).
  """
  evals = eval_rows(rows, phase)
  if not evals:
    return None
  best = max(evals, key=lambda r: (r['valid/accuracy'], -r['step']))
  return {'step': best['step'], 'valid_accuracy': best['valid/accuracy'],
          'valid_loss': best['valid/loss'], 'test_accuracy': best.get('test/accuracy'),
          'test_loss': best.get('test/loss')}


def phase_metrics(result: PhaseResult, rows=(), phase: str = '') -> dict:
  """A phase's final test metrics, its ledger and its early-stopped evaluation
  (`early_stopped`: best validation accuracy over its evaluations), for summary.json."""
  e = result.eval
  out = {'ledger': result.ledger}
  if e:
    out.update(test_accuracy=e['test/accuracy'], test_loss=e['test/loss'],
               test_source_loss=e['test/source_loss'],
               valid_accuracy=e.get('valid/accuracy'), valid_loss=e.get('valid/loss'),
               early_stopped=early_stopped(rows, phase))
  return out


def steps_to_reach(rows, phase: str, target_loss: float):
  """First evaluated step of `phase` whose validation loss is <= target (None if never)."""
  for r in eval_rows(rows, phase):
    if r['valid/loss'] <= target_loss:
      return r['step']
  return None


def compute_gain(rows, method: PhaseResult, baseline: PhaseResult, method_phase: str,
                 baseline_phase: str, extra_flops: float = 0.0) -> dict:
  """Net compute gain of `method` vs `baseline` in XLA-counted FLOPs (DataRater paper),
  decided on the validation split.

  Target: the baseline's best validation loss over its evaluations (a target that
  memorising noisy labels cannot inflate, as it could the final loss), reached by the
  baseline at step `baseline_steps_to_target` (its first evaluation at the minimum). The
  method's phase needs `steps_to_target` steps to reach it (its first evaluation at or
  below it), so the gain is resolved to one evaluation interval: `eval_every` steps, 1 /
  `num_evals` of the phase. Gain = 1 - method FLOPs to the target / baseline FLOPs to the
  target; once without and once with `extra_flops` (e.g. the rater's meta-training).

  Args:
    rows: metrics.jsonl rows (dicts with 'phase', 'step', 'valid/loss').
    method, baseline: the PhaseResults (ledgers: flops, steps).
    method_phase, baseline_phase: their phase names in `rows`.
    extra_flops: FLOPs charged to the method besides its phase.

  Returns:
    dict of the target, the steps, the resolution and the gains (None when the method
    never reaches the target, or with `reason` when there is no validation split).
  """
  base_evals, evals = eval_rows(rows, baseline_phase), eval_rows(rows, method_phase)
  per_step = method.ledger['flops'] / max(method.ledger['steps'], 1)
  base_per_step = baseline.ledger['flops'] / max(baseline.ledger['steps'], 1)
  out = {'target': 'baseline best validation loss', 'target_valid_loss': None,
         'baseline_steps_to_target': None, 'steps_to_target': None,
         'eval_every': evals[1]['step'] - evals[0]['step'] if len(evals) > 1 else None,
         'num_evals': len(evals), 'baseline_steps': baseline.ledger['steps'],
         'extra_flops': extra_flops, 'flops_per_step': per_step,
         'baseline_flops_to_target': None, 'net_compute_gain': None,
         'net_compute_gain_incl_extra': None}
  if not base_evals or not evals:
    return {**out, 'reason': NO_VALID}
  best = min(base_evals, key=lambda r: (r['valid/loss'], r['step']))
  out['target_valid_loss'], out['baseline_steps_to_target'] = best['valid/loss'], best['step']
  steps = out['steps_to_target'] = steps_to_reach(rows, method_phase, best['valid/loss'])
  base_flops = out['baseline_flops_to_target'] = best['step'] * base_per_step
  if steps is not None and base_flops:
    used = steps * per_step
    out['net_compute_gain'] = 1.0 - used / base_flops
    out['net_compute_gain_incl_extra'] = 1.0 - (used + extra_flops) / base_flops
  return out


def phase_task(phase: Phase, task):
  """The Task `phase` trains: its own or the run's, with the phase's optimizer if it has one."""
  out = phase.task or task
  return out if phase.optimizer is None else dataclasses.replace(out, optimizer=phase.optimizer)


def single(method: Method, num_steps: int) -> Pipeline:
  """The default pipeline of a one-phase method: phase 'train'."""
  return Pipeline(phases=(Phase('train', method, num_steps),), result='train')


def run_pipeline(ctx: Context, task, pipeline: Pipeline) -> dict:
  """Runs every phase of `pipeline`; returns the summary dict.

  Summary: the result phase's final test metrics at the top level (the
  result phase is `pipeline.result`, or what `pipeline.choose` picks), every
  phase's metrics, ledger and early-stopped evaluation under `phases`, the summed `ledger`, the
  extras of every Method's `finalize` and of `pipeline.report`, and, with a
  baseline, the paired accuracy gain and net compute gain. `method_ledger`
  sums the ledgers of the phases that made the result (the result phase and
  `extra_cost`), i.e. `ledger` less a paired arm: the compute the reproduction
  tables compare with uniform's.
  """
  results, extras = {}, {}
  paired = bool(ctx.config.get('paired_arms', True))
  for phase in pipeline.phases:
    method = phase.method(results) if callable(phase.method) else phase.method
    start = results[phase.start_from].train_state.params if phase.start_from else None
    result = train_phase(ctx, phase.name, method, phase_task(phase, task), phase.steps,
                         init_stream=phase.init if paired else phase.name,
                         trains_model=phase.trains_model, init_params=start)
    if method.finalize is not None:
      extras.update(method.finalize(ctx, result.train_state, result.method_state))
    results[phase.name] = result
    if result.eval:
      print(f'[{phase.name}] test accuracy {result.eval["test/accuracy"]:.4f}, '
            f'test loss {result.eval["test/loss"]:.4f}', flush=True)

  rows = ctx.run.read_metrics()
  result = pipeline.result
  if pipeline.choose is not None:
    result, chosen = pipeline.choose(results, rows)
    extras.update(chosen)
  final = results[result]
  info = ctx.dataset.info
  summary = {
      'method': ctx.config.method.name,
      'dataset': info.name,
      'meta_mode': info.meta_mode,
      'valid_mode': info.valid_mode,
      'source_names': list(info.source_names),
      'corruption': info.corruption,
      'corruption_rates': list(info.corruption_rates),
      'source_corruption': list(info.source_corruption),
      'num_steps': ctx.config.num_steps,
      'result_phase': result,
      'final': final.eval,
      'test_accuracy': final.eval['test/accuracy'],
      'test_loss': final.eval['test/loss'],
      'test_source_loss': final.eval['test/source_loss'],
      'ledger': add_ledgers(*(r.ledger for r in results.values())),
      'method_ledger': add_ledgers(*(results[p].ledger for p in (
          results if pipeline.choose is not None else {result, *pipeline.extra_cost}))),
      'phases': {name: phase_metrics(r, rows, name) for name, r in results.items()},
  }
  if pipeline.baseline is not None:
    base = results[pipeline.baseline]
    summary['baseline_phase'] = pipeline.baseline
    summary['accuracy_gain_vs_baseline'] = final.eval['test/accuracy'] - base.eval['test/accuracy']
    extra = sum(results[p].ledger['flops'] for p in pipeline.extra_cost)
    summary['compute'] = compute_gain(rows, final, base, result, pipeline.baseline, extra)
    print(f'[{ctx.config.method.name}] {result} test accuracy '
          f'{final.eval["test/accuracy"]:.4f} vs {pipeline.baseline} '
          f'{base.eval["test/accuracy"]:.4f} '
          f'({"paired: same initial parameters" if paired else "unpaired"})', flush=True)
  if pipeline.report is not None:
    extras.update(pipeline.report(ctx, results))
  summary.update(extras)
  return summary

