"""Suite datarater_filtering: discard fraction, accuracy and net compute gain vs the uniform arm."""

from __future__ import annotations

import json
import os

import numpy as np

from experiments.reproduce.core import Metric, Run, Suite, read_summary, run_dir
from experiments.reproduce.report import pyplot
from experiments.reproduce.published import published_entry
from experiments.reproduce.suites._common import (ACCURACY, FINAL_STEP, REFERENCES, TEXT_CPU,
                                                  UNIFORM_ARM, config_arg, early_stopped_view,
                                                  suite_methods)

EARLY_STOPPED_ARM = 'uniform arm (early-stopped on validation)'

# DataRater's own setting at paper scale: language modelling on natural text (byte-level
# wikitext103 through TFDS, no injected corruption), the rater meta-trained on a held-out
# part of the same training data; the paper's T, population, batch sizes and meta-optimizer.
FILTER_PAPER = {'batch_size': 128, 'num_steps': 20000, 'data.seq_len': 512,
                'data.corruption_rates': (), 'data.meta_size': 8192,
                'data.examples_per_source': 800_000,  # of wikitext103's ~1M 513-byte windows
                'optimizer.name': 'adamw', 'optimizer.learning_rate': 3e-4,
                'optimizer.schedule': 'warmup_cosine', 'optimizer.warmup_steps': 1000,
                'optimizer.weight_decay': 0.1, 'optimizer.grad_clip': 1.0,
                'model.kwargs.d_model': 512, 'model.kwargs.num_layers': 8,
                'model.kwargs.num_heads': 8,
                'method.meta_steps': 8000, 'method.inner_steps': 2, 'method.population': 8,
                'method.inner_batch_size': 128, 'method.meta_batch_size': 128,
                'method.outer_weight_decay': 0.1, 'method.outer_warmup_steps': 100,
                'method.outer_clip': 0.01, 'method.rater.kwargs.d_model': 256,
                'method.rater.kwargs.num_layers': 4, 'method.rater.kwargs.num_heads': 8,
                'eval_every': 1000, 'checkpoint_every': 1000, 'log_every': 100}


# cpu scale: the text preset's 400 steps per arm; 50 meta-steps (the rater's AUROC on random
# bytes reaches 0.98 by 25 with trimmed_ce, on mixed it levels off by 50: README); evaluation
# every 40 steps (validation, test and meta splits: at every 20 it cost twice the training).
CPU = {**TEXT_CPU, 'method.meta_steps': 50, 'eval_every': 40}
# The text presets (stdlib_text, 5 sources corrupted at 0/20/40/60/80%, the meta split drawn
# from the same corrupted data) and the corruption kind of each.
PRESETS = {'text random bytes': 'random_bytes', 'text mixed': 'mixed'}
# The mixed preset's meta settings (README, DataRater section, "The mixed preset without clean
# data"): OCR confusions and boilerplate need a larger meta sample (a meta split of 1,000 windows,
# meta batch 64: the paper's is 128) and 100 meta-steps; the low-loss UTF-16 windows of the
# wrong-encoding kind need the two-sided trim. Rater AUROC over seeds 0-4: 0.941 ± 0.009 with
# these, 0.885 ± 0.027 with the random-bytes preset's settings.
MIXED = {'data.meta_size': 1000, 'method.meta_batch_size': 64, 'method.outer_trim_low': 0.125,
         'method.meta_steps': 100}
FRACTIONS = {'smoke': (0.5,), 'cpu': (0.25, 0.5, 0.75), 'paper': (0.1, 0.25, 0.5, 0.75, 0.9)}
# Transfer across model size: the rater meta-trained with the preset's inner model (137,216
# parameters) filters a 4.9x larger model (d_model 128, 3 layers: 669,056 parameters).
TRANSFER = {'model.kwargs.d_model': 128, 'model.kwargs.num_layers': 3}
TRANSFER_SETTING = 'text random bytes, 4.9x larger model, discard 50%'
# The validation split is clean (the held-out training rows before their corruption): the
# target of the net compute gain is the uniform model's best loss on the text the test split
# measures, not on corrupted text (on that, the clean-data oracle itself is worse than uniform).
VALID_MODE = 'clean'
# Every setting of the DataRater rows runs --headline_seeds seeds; the references --seeds.
HEADLINE = {'cpu': tuple(f'{p} discard {d}' for p in PRESETS
                         for d in ('auto', *(f'{int(100 * f)}%' for f in FRACTIONS['cpu'])))
                   + (TRANSFER_SETTING,)}


def grid(scale):
  """The runs of this suite at `scale`: per preset, one DataRater run that meta-trains its rater
  and filters with discard_fraction='auto', then one run per fixed fraction that filters with
  that same rater (Run.rater_of: same seed, its meta-training FLOPs charged), then the
  reference rows on the same data."""
  presets = {'smoke': {'digits': 'label_symmetric'}, 'cpu': PRESETS,
             'paper': {'wikitext103': 'none'}}[scale]
  out = []
  for label, kind in presets.items():
    ds = 'digits' if scale == 'smoke' else 'wikitext103' if scale == 'paper' else 'stdlib_text'
    data = ({} if scale == 'paper' else
            {'data.corruption_rates': (0.0, 0.2, 0.4, 0.6, 0.8), 'data.corruption': kind})
    base = {'smoke': {}, 'paper': FILTER_PAPER,
            'cpu': {**CPU, **(MIXED if kind == 'mixed' else {})}}[scale]
    common = {**data, **base, 'data.meta_mode': 'noisy', 'data.valid_mode': VALID_MODE}
    auto = Run(f'{label} discard auto', 'DataRater', 'datarater', config_arg(ds, scale),
               {**common, 'method.discard_fraction': 'auto'}, {'dataset': label})
    out += [auto, auto.derived(EARLY_STOPPED_ARM, early_stopped_view('uniform'))]
    out += [Run(f'{label} discard {int(100 * f)}%', 'DataRater', 'datarater',
                config_arg(ds, scale), {**common, 'method.discard_fraction': f},
                {'dataset': label, 'discard': int(100 * f)},
                rater_of=(auto.setting, auto.method)) for f in FRACTIONS[scale]]
    # The reference rows, one setting per preset (no discard fraction; same data).
    plain = {k: v for k, v in common.items() if not k.startswith('method.')}
    out += [Run(f'{label} references', name, cfg, config_arg(ds, scale), {**plain, **variant},
                {'dataset': label})
            for name, cfg, variant in suite_methods(lambda d: d.family == 'baseline')]
    if scale == 'cpu' and kind == 'random_bytes':
      out.append(Run(TRANSFER_SETTING, 'DataRater', 'datarater', config_arg(ds, scale),
                     {**common, **TRANSFER, 'method.discard_fraction': 0.5},
                     {'dataset': label, 'model': 'x4.9'}, rater_of=(auto.setting, auto.method)))
  return out


def _auto_runs(runs, seeds, folder):
  """(preset, seed, run directory) of every finished run that meta-trained its rater."""
  for run in runs:
    if run.method == 'DataRater' and not run.rater_of:
      for seed in range(seeds.get(run.setting, 0)):
        workdir = run_dir(folder, run, seed)
        if os.path.exists(os.path.join(workdir, 'summary.json')):
          yield run.key['dataset'], seed, workdir


def rater_curves(runs, seeds, folder) -> None:
  """plots/rater_auroc_vs_meta_steps.png: the rater's AUROC during meta-training (logged every
  eval_every meta-steps, `meta/rater_auroc`), a line per seed, a panel per preset."""
  panels = {}
  for preset, seed, workdir in _auto_runs(runs, seeds, folder):
    path = os.path.join(workdir, 'metrics.jsonl')
    if not os.path.exists(path):
      continue
    with open(path) as f:
      rows = [json.loads(line) for line in f]
    points = [(r['step'], r['meta/rater_auroc']) for r in rows
              if r.get('phase') == 'meta_train' and 'meta/rater_auroc' in r]
    if points:
      panels.setdefault(preset, []).append((seed, points))
  if not panels:
    return
  plt = pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
  for ax, (preset, lines) in zip(axes[0], panels.items()):
    for seed, points in lines:
      ax.plot(*zip(*points), marker='o', ms=3, label=f'seed {seed}')
    ax.set_title(preset, fontsize=9)
    ax.set_xlabel('meta-step')
    ax.set_ylabel('rater AUROC (training rows)')
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  fig.tight_layout()
  os.makedirs(os.path.join(folder, 'plots'), exist_ok=True)
  fig.savefig(os.path.join(folder, 'plots', 'rater_auroc_vs_meta_steps.png'), dpi=100)
  plt.close(fig)


def kind_table(runs, seeds, folder) -> list:
  """Markdown: per preset, the rater's AUROC per corruption kind (that kind's corrupted rows
  against the clean rows) and its meta-training wall time in uniform-arm times, over seeds."""
  per = {}
  for preset, seed, workdir in _auto_runs(runs, seeds, folder):
    s = read_summary(workdir)
    phases = s.get('phases', {})
    meta, arm = (phases.get(p, {}).get('ledger', {}) for p in ('meta_train', 'uniform'))
    timed = meta.get('wall_seconds') and arm.get('wall_seconds')
    per.setdefault(preset, []).append((
        s.get('kind_auroc') or {}, meta['wall_seconds'] / arm['wall_seconds'] if timed else np.nan,
        meta['steps'] / meta['wall_seconds'] if timed else np.nan, s.get('score_auroc')))
  if not per:
    return []
  lines = ['', 'The rater per corruption kind (AUROC of that kind\'s corrupted training rows '
           'against the clean rows; mean ± sd over seeds), its AUROC on each seed (seeds 0, 1, '
           '...), and meta-training speed (meta-steps per second and wall time in units of the '
           'same run\'s uniform arm, measured in each run on this machine):', '',
           '| preset | seeds | AUROC per kind | AUROC per seed | meta-steps/s '
           '| meta time / uniform arm |',
           '|---|---|---|---|---|---|']
  for preset, vals in per.items():
    kinds = dict.fromkeys(k for v in vals for k in v[0])
    cells = []
    for k in kinds:
      got = [v[0][k] for v in vals if k in v[0]]
      cells.append(f'{k} {np.mean(got):.3f} ± {np.std(got, ddof=1) if len(got) > 1 else 0:.3f}')
    per_seed = ', '.join('n/a' if v[3] is None else f'{v[3]:.3f}' for v in vals)
    speed = [np.nanmean([v[i] for v in vals]) if any(np.isfinite(v[i]) for v in vals) else None
             for i in (2, 1)]
    lines.append(f'| {preset} | {len(vals)} | {", ".join(cells) or "n/a"} | {per_seed} | '
                 + ' | '.join('n/a' if x is None else f'{x:.2f}' for x in speed) + ' |')
  return lines


def published(scale):
  """DataRater Figure 1's net compute gains at 75% discard (1B models on the Pile): no row of ours
  is in that setting at any scale."""
  out = [published_entry('datarater_net_compute_gain', 'DataRater', 'Pile', target,
                         protocol='meta-training FLOPs not subtracted')
         for target in ('validation-set NLL', 'HellaSwag')]
  return [e for e in out if e is not None]


def header(scale):
  grids = {'smoke': 'digits with symmetric label noise, discard auto and 50%, 6 steps',
           'cpu': 'stdlib_text (byte-level transformer LM, 2 layers, d_model 64, batch 32, 400 '
                  'steps per arm, validation and test loss every 40 steps), 5 sources corrupted '
                  'at 0/20/40/60/80% with random bytes ("text random bytes": half the bytes of '
                  'a corrupted window replaced) or one kind per source ("text mixed": OCR '
                  'confusions 20%, boilerplate 40%, wrong encoding 60%, random bytes 80%); the '
                  'meta split is drawn from the same corrupted data (the DataRater protocol: no '
                  'clean data for the rater); the validation split is clean (held-out training '
                  'windows before the corruption, data.valid_mode=\'clean\', used only for '
                  'evaluation and the decisions below, like the clean test split). Rater: '
                  'byte transformer (1 layer, d_model 32), population 8, '
                  'T = 2, meta batch 16 from a meta split of 100 windows, 50 meta-steps, outer '
                  'AdamW 3e-3 with wd 0.1, clip 0.01, 20 warm-up steps, meta loss trimmed_ce '
                  '(configs/datarater.py says why); "text mixed" meta-trains with a meta split '
                  'of 1,000 windows (for every row of that preset, references included), meta '
                  'batch 64, 100 meta-steps and the lowest-loss 12.5% of each meta batch also '
                  'trimmed (method.outer_trim_low; the README says why). Discard auto '
                  '(two filtered arms, chosen on validation) and 25/50/75% (per-batch filter)',
           'paper': 'byte-level wikitext103 (TFDS) with no injected corruption, discard '
                    '10/25/50/75/90%, transformer LM (8 layers, d_model 512, sequences of 512 '
                    'bytes, batch 128, AdamW 3e-4, 20,000 steps), transformer rater (4 layers, '
                    'd_model 256), T = 2, population 8, 8,000 meta-steps, outer AdamW with wd '
                    '0.1, 100 warm-up steps and clipping 0.01 (the DataRater paper\'s meta '
                    'settings)'}
  return (f'Grid: {grids[scale]}. Per seed, the "discard auto" run meta-trains the rater; the '
          'fixed-fraction runs filter with that same rater (method.rater_from) and are charged '
          'its meta-training FLOPs. Each run trains its own paired uniform arm (same initial '
          'parameters and data order; identical across the runs of a seed). "uniform arm '
          '(early-stopped on validation)" is no new run: that arm read at its evaluation with the '
          'best validation accuracy, paired against its last step. Net compute gain, decided on '
          'the clean validation split, not on test: the '
          'fraction of the uniform arm\'s FLOPs to its best validation loss saved by the '
          'filtered model reaching that loss earlier, net of the filtering overhead (rater '
          'inference and oversampling), resolved to one evaluation interval (40 of 400 steps, '
          '10%); "incl. meta" also subtracts the rater\'s meta-training FLOPs, which "meta cost" '
          'gives in runs of the uniform arm. The net compute gain\'s "paired diff vs uniform" '
          'column is that gain with its 95% t-interval over seeds (the uniform arm\'s gain '
          'against itself, its column, is 0); it moves in steps of the evaluation interval. '
          'No compute-matched uniform row: a uniform run '
          'given the meta-training FLOPs would train that many times longer; the paper leaves '
          'meta-training out of its net compute gain, as the first gain column does. "k of n '
          'seeds" when the filtered model reached the target on only k seeds (the mean is over '
          'those), n/a when on none. Rater AUROC: "low score = corrupted" over the training '
          'rows; source Spearman: of the per-source mean score with the corruption rates (-1: '
          'the more corrupted a source, the lower its mean score). Published (block below the '
          'table): DataRater Figure 1 (1B language models on the Pile at 75% discard; '
          'meta-training not subtracted), which differs from ours in data, model size (1B '
          'parameters vs a 2-layer transformer) and training length. "<preset> references": '
          'uniform and the reference rows on the same data and noisy meta split. '
          + REFERENCES + ' ' + FINAL_STEP)


def _gain(field):
  def fn(s, w, c):
    g = s.get('compute', {}).get(field)
    return None if g is None else 100 * g
  return fn


def _valid_loss(phase):
  """Final validation loss of `phase` (None: the run's result phase; None for a derived row)."""
  def fn(s, w, c):
    return s.get('phases', {}).get(phase or s.get('result_phase'), {}).get('valid_loss')
  return fn


def _meta_cost(s, w, c):
  """The rater's meta-training FLOPs in runs of the uniform arm (its own, or the reused one's)."""
  phases = s.get('phases', {})
  meta = phases.get('meta_train', {}).get('ledger', {}).get('flops')
  arm = phases.get(s.get('baseline_phase', ''), {}).get('ledger', {}).get('flops')
  return meta / arm if meta and arm else None


VALID_LOSS = Metric('valid loss', _valid_loss(None), paired=True)
UNIFORM_VALID_LOSS = Metric('uniform arm valid loss', _valid_loss('uniform'))
# The net compute gain is the filtered model's against its own uniform arm, whose gain against
# itself is 0: pairing the two gives the gain's 95% t-interval over seeds and its Holm p.
GAIN = Metric('net compute gain %', _gain('net_compute_gain'), paired=True)
ARM_GAIN = Metric('uniform arm net compute gain %',
                  lambda s, w, c: 0.0 if s.get('compute', {}).get('net_compute_gain') is not None
                  else None)

SUITE = Suite(
    grid,
    (ACCURACY, UNIFORM_ARM, VALID_LOSS, UNIFORM_VALID_LOSS, GAIN, ARM_GAIN,
     Metric('net gain incl. meta %', _gain('net_compute_gain_incl_extra')),
     Metric('meta cost (uniform runs)', _meta_cost),
     Metric('rater AUROC', lambda s, w, c: s.get('score_auroc')),
     Metric('source Spearman', lambda s, w, c: s.get('source_score_spearman'))),
    header, published, plot=rater_curves, extra=kind_table,
    curve=('discard', 'discard fraction %', False),
    own_baseline={ACCURACY.name: UNIFORM_ARM.name, VALID_LOSS.name: UNIFORM_VALID_LOSS.name,
                  GAIN.name: ARM_GAIN.name},
    headline=HEADLINE)  # each run trains its own uniform arm
