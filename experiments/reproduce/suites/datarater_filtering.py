"""Suite datarater_filtering: discard fraction, accuracy and net compute gain vs the uniform arm."""

from __future__ import annotations

from experiments.reproduce.core import Metric, Run, Suite
from experiments.reproduce.published import published_entry
from experiments.reproduce.suites._common import (ACCURACY, COMPUTE_MATCHED_ROWS, FINAL_STEP,
                                                  REFERENCES, TEXT_CPU, UNIFORM_ARM, config_arg,
                                                  early_stopped_view, suite_methods,
                                                  with_compute_matched)

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


def grid(scale):
  """The runs of this suite at `scale`."""
  fractions = {'smoke': (0.5,), 'cpu': (0.1, 0.25, 0.5, 0.75, 0.9),
               'paper': (0.1, 0.25, 0.5, 0.75, 0.9)}[scale]
  datasets = {'smoke': ('digits',), 'cpu': ('stdlib_text', 'digits', 'mnist1d'),
              'paper': ('wikitext103',)}[scale]
  out = []
  for ds in datasets:
    base = {'smoke': {}, 'paper': FILTER_PAPER,
            'cpu': {**TEXT_CPU, 'eval_every': 20} if ds == 'stdlib_text' else
                   {'num_steps': 1000, 'method.meta_steps': 300, 'eval_every': 50}}[scale]
    rates = {} if scale == 'paper' else {'data.corruption_rates': (0.0, 0.2, 0.4, 0.6, 0.8)}
    for f in fractions:
      run = Run(f'{ds} discard {int(100 * f)}%', 'DataRater', 'datarater', config_arg(ds, scale),
                {**rates, **base, 'method.discard_fraction': f, 'data.meta_mode': 'noisy'},
                {'dataset': ds, 'discard': int(100 * f)})
      out += [run, run.derived(EARLY_STOPPED_ARM, early_stopped_view('uniform'))]
    # The reference rows, one setting per dataset (no discard fraction; same data).
    data = {k: v for k, v in {**rates, **base}.items() if not k.startswith('method.')}
    out += [Run(f'{ds} references', label, cfg, config_arg(ds, scale),
                {**data, 'data.meta_mode': 'noisy', **variant}, {'dataset': ds})
            for label, cfg, variant in suite_methods(lambda d: d.family == 'baseline')]
  return with_compute_matched(out, ('datarater',))


def published(scale):
  """DataRater Figure 1's net compute gains at 75% discard (1B models on the Pile): no row of ours
  is in that setting at any scale."""
  out = [published_entry('datarater_net_compute_gain', 'DataRater', 'Pile', target,
                         protocol='meta-training FLOPs not subtracted')
         for target in ('validation-set NLL', 'HellaSwag')]
  return [e for e in out if e is not None]


def header(scale):
  grids = {'smoke': 'digits, discard 50%, 6 steps',
          'cpu': 'discard 10/25/50/75/90%; 5 sources corrupted at 0/20/40/60/80%; rater '
                 'meta-trained on a noisy meta split (the DataRater protocol). stdlib_text: '
                 'byte-level transformer (2 layers, d_model 64, batch 32), random-byte '
                 'corruption, 400 steps per phase, 100 meta steps, test loss every 20 steps. '
                 'digits and MNIST-1D: MLP 256-256, symmetric label noise, 1000 steps of batch '
                 '64, 300 meta steps, test loss every 50 steps',
          'paper': 'byte-level wikitext103 (TFDS) with no injected corruption, discard '
                   '10/25/50/75/90%, transformer LM (8 layers, d_model 512, sequences of 512 '
                   'bytes, batch 128, AdamW 3e-4, 20,000 steps), transformer rater (4 layers, '
                   'd_model 256), T = 2, population 8, 8,000 meta-steps, outer AdamW with wd '
                   '0.1, 100 warm-up steps and clipping 0.01 (the DataRater paper\'s meta '
                   'settings)'}
  return (f'Grid: {grids[scale]}. The uniform arm is the run\'s own paired phase (same initial '
          'parameters and data order). "uniform arm (early-stopped on validation)" is no new '
          'run: the same arm read at its evaluation with the best accuracy on the validation '
          'split (held-out training rows, corrupted like the training data, so it selects on '
          'noisy labels), paired against the arm\'s last step. Net compute gain, decided on the '
          'validation split, not on test: the fraction of the uniform arm\'s FLOPs to its best '
          'validation loss saved by the filtered model reaching that loss earlier, net of the '
          'filtering overhead ("incl. meta" also subtracts the rater\'s meta-training FLOPs), '
          'resolved to one evaluation interval; "k of n seeds" when the filtered model reached '
          'it on only k '
          'seeds (the mean is over those), n/a when on none. Published (block below the table): '
          'DataRater Figure 1 '
          '(1B language models on the Pile at 75% discard; meta-training not subtracted), '
          'which differs from ours '
          'in data (the Pile vs our embedded text and images with injected corruption, or '
          'wikitext103 at paper scale), model size (1B parameters vs a small MLP or '
          'transformer) and training length. "<dataset> references": uniform and the '
          'reference rows on the same data, with the noisy meta split DataRater meta-trains on. '
          + REFERENCES + ' ' + COMPUTE_MATCHED_ROWS + ' ' + FINAL_STEP)


def _gain(field):
  def fn(s, w, c):
    g = s.get('compute', {}).get(field)
    return None if g is None else 100 * g
  return fn



SUITE = Suite(
    grid,
    (ACCURACY, UNIFORM_ARM,
     Metric('net compute gain %', _gain('net_compute_gain')),
     Metric('net gain incl. meta %', _gain('net_compute_gain_incl_extra')),
     Metric('rater AUROC', lambda s, w, c: s.get('score_auroc'))),
    header, published, curve=('discard', 'discard fraction %', False),
    own_baseline={ACCURACY.name: UNIFORM_ARM.name})  # each run trains its own uniform arm
