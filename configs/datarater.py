"""DataRater: meta-learn a rater, filter with it, compare with uniform at equal steps.

Command (the README's main job):
  python -m experiments.train --config=configs/datarater.py:dataset=digits --workdir=runs/datarater

Arguments after ':' : dataset=digits|stdlib_text|mnist|cifar10|npz|<tfds name>, smoke.
Expected runtime and result: see the README section "DataRater" (measured there,
with the command that printed each number).

Method fields (all under config.method; shared fields in configs/common.py):
  rater.name         'mlp' | 'cnn' (images) | 'transformer' (text); the rater
                     sees input and target (datarater/models/rater.py).
  rater.kwargs       the rater's own fields: mlp: hidden; cnn: channels, hidden;
                     transformer: d_model, num_layers, num_heads.
  temperature        softmax temperature of the inner-batch weights (paper: 1).
  meta_steps         outer steps of meta-training (paper: 8,000; 800 here, 200 on
                     text: on the text preset the rater's AUROC reaches 0.98 by
                     25 meta-steps with trimmed_ce, README DataRater section).
  inner_steps        T inner updates unrolled per outer step (paper: 2; 1..8).
  inner_batch_size   examples per inner update (paper: 128; 64 here, 16 on text,
                     for this machine's cost).
  meta_batch_size    meta-split examples per inner model per outer step (paper:
                     128; as inner_batch_size here). On the mixed text preset a
                     larger meta sample lifts the rater: meta batch 64 from a
                     meta split of 1,000 windows, with outer_trim_low=0.125 and
                     100 meta-steps, gave rater AUROC 0.941 +- 0.009 over seeds
                     0-4 against 0.885 +- 0.027 (the datarater_filtering suite
                     sets them for that preset; README, DataRater section).
  population         N inner models trained in parallel (paper: 8, the default); each model's
                     meta-gradient takes a step of its own outer AdamW and the N
                     proposed rater parameters are averaged.
  reset_period       outer steps between re-initialisations of one inner model
                     (staggered across the population; not published, chosen here).
  inner_optimizer.*  optax optimizer of the inner models (fields as config.optimizer;
                     eps_root > 0 is needed to differentiate through Adam). Its
                     schedule spans a model's life, reset_period * inner_steps
                     inner updates.
  outer_learning_rate  peak meta learning rate (not published, chosen here).
  outer_weight_decay decoupled weight decay of the outer Adam (paper: 0.1).
  outer_warmup_steps linear warm-up of the outer learning rate: outer step k uses
                     outer_learning_rate * min(k + 1, W) / W, so step 0 already
                     moves the rater. Paper: 100 of 8,000 meta-steps; 20 here,
                     since these presets take 100-800 meta-steps and 100 would be
                     most of them (the paper-scale suite sets 100).
  outer_clip         global-norm clipping of meta-gradients (paper: 0.01, the
                     default; 0 = off). The measured meta-gradient norms on the
                     text preset are 0.003-0.017, so it binds on the larger ones.
  mode               meta-gradient computation: 'mixed' (MixFlow-MG), 'reverse',
                     'remat', 'checkpointed' (same numbers; checkpointed keeps
                     O(sqrt T) carried states) or 'first_order' (ablation).
                     'mixed' is the default: at the paper's T=2 the benchmark
                     (results/benchmark/benchmark.md) timed it at 3.28x a plain
                     step per inner step against reverse's 3.22x (FLOPs 3.79 vs
                     3.40; equal within this machine's noise) with 31% less
                     XLA temp memory (5.23 vs 7.63 MiB), the resource that
                     bounds the paper-scale runs. Several meta-steps run per
                     dispatch: config.steps_per_dispatch=0 chooses up to the
                     next log / eval / checkpoint step (25 with eval_every=25;
                     the console prints the choice). A text meta-step takes
                     about 2.4 s (0.41 meta-steps/s in datarater_filtering)
                     against a dispatch's ~0.5 ms, so this saves little there.
  discard_fraction   'auto' (default: chosen on the score distribution and the validation
                     split) or rho, the fraction of candidates the filter discards
                     (configs/common.py).
  filter_mode        'per_batch' (default: each step draws ceil(B/(1-rho)) examples and
                     keeps the top B by the live rater, the paper's filter) | 'dataset'
                     (drop the rho lowest-scored training rows once).
  baseline           also train the uniform baseline at the same number of steps.
  rater_from         '' (default: meta-train here) or the directory of a finished
                     DataRater run: its rater (rater_params.msgpack, written by
                     every DataRater run) filters this run, with no
                     meta-training; its meta-training FLOPs are charged to this
                     run's method ("incl. meta" gains). The rater fields and the
                     input shape must match; the inner model may differ (a rater
                     meta-trained with small models filters a larger one).

The meta loss, and options for a meta split without clean data
(data.meta_mode='noisy', the paper's protocol: the meta split is drawn from the
same, corrupted, data):
  outer_loss         meta loss on the meta batch: 'auto' (default: 'trimmed_ce'
                     when data.meta_mode='noisy', 'cross_entropy' when 'clean';
                     summary.json's outer_loss says which ran), 'cross_entropy'
                     (the paper's), 'mae' (mean of 1 - p_y, a symmetric loss:
                     under symmetric label noise its expectation ranks models as
                     the clean one does), 'trimmed_ce' (the cross-entropy of
                     the meta batch's rows below its (1 - outer_trim) loss
                     quantile) or 'rated_ce' (below). Why 'auto' departs from
                     the paper on a noisy meta split: the cross-entropy of the corrupted meta rows
                     asks the rater to UP-weight corrupted training rows (it
                     rewards a model that predicts the noise), and on text it
                     outweighs the clean rows' pull at some model ages, so the
                     rater flips. `python -m experiments.meta_signal
                     --config=configs/datarater.py:dataset=stdlib_text
                     --rows=256` printed, by model age 0/25/50/100/200/400 steps,
                     the AUROC of the one-step meta-gradient against the
                     corrupted rows: CE on the noisy meta split 0.925 / 0.893 /
                     0.265 / 0.673 / 0.675 / 0.951, its corrupted rows alone
                     0.916 / 0.041 / 0.027 / 0.081 / 0.118 / 0.107, trimmed CE
                     0.924 / 0.990 / 0.986 / 0.868 / 0.726 / 0.954, CE on a clean
                     meta split 0.929 / 0.990 / 0.989 / 0.917 / 0.733 / 0.964.
                     Meta-training 300 steps on that preset (seeds 0-2), the
                     rater's AUROC every 25 steps oscillated with
                     'cross_entropy' (seed 0: 0.85, 0.11, 0.86, 0.45, ..., 0.97)
                     and stayed at 0.98-1.00 with 'trimmed_ce' (README,
                     DataRater section).
                     'rated_ce': the rows 'trimmed_ce' keeps, weighted by the
                     softmax of the current rater's scores of them (at
                     `temperature`; the scores are data, no gradient flows
                     through them): the meta loss trusts the meta rows the rater
                     trusts. Not the default: on the mixed text preset (seed 0,
                     50 meta-steps) it reached rater AUROC 0.885 against
                     trimmed_ce's 0.902 (README, DataRater section).
  outer_trim         fraction of the highest-loss meta rows 'trimmed_ce' and
                     'rated_ce' leave out of each meta batch, in [0, 1).
  outer_trim_low     fraction of the lowest-loss meta rows they also leave out,
                     in [0, 1 - outer_trim) (default 0: one-sided). Corruption
                     with *low* loss (a UTF-16 export with a NUL after every
                     character, repeated boilerplate once learned) survives a
                     one-sided trim; 0.125 lifted the mojibake rows' AUROC on
                     the mixed text preset from 0.933 to 0.992 (seed 0) but the
                     boilerplate rows' fell, so the overall AUROC did not move
                     (0.898 vs 0.902; README, DataRater section).
  rater_features     tuple of loss features of the model being weighted that the
                     rater sees next to the example: 'loss', 'loss_rank' (the
                     loss's position in its batch, 0 = smallest, 1 = largest),
                     'loss_z' (the loss standardised within its batch). The
                     model is the inner model during meta-training and the
                     model being trained during filtering; the saved scores
                     (scores_train.npy, AUROC) are the mean over the N inner
                     models as meta-training ends, ranks taken within each
                     evaluation batch. () = the rater sees the example only.
  A larger meta split and meta batch (data.meta_size, meta_batch_size) raise
  the meta-gradient's signal-to-noise ratio.
  Command with the options:
    python -m experiments.train --config=configs/datarater.py:dataset=digits \
      --workdir=runs/dr_noisy_options --config.data.meta_mode=noisy \
      --config.method.outer_loss=mae "--config.method.rater_features=('loss_rank',)" \
      --config.data.meta_size=400 --config.method.meta_batch_size=128
"""

import ml_collections

from configs.common import base_config, parse_arg, discard_fraction_field


RATER_KWARGS = {'mlp': dict(hidden=(64, 64)), 'cnn': dict(channels=(16, 32), hidden=(64, 64)),
                'transformer': dict(d_model=32, num_layers=1, num_heads=2)}
SMOKE_RATER_KWARGS = {'mlp': dict(hidden=(16,)), 'cnn': dict(channels=(4, 8), hidden=(16,)),
                      'transformer': dict(d_model=16, num_layers=1, num_heads=2)}


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  text = config.model.name == 'transformer'
  m = config.method
  m.name = 'datarater'
  rater = 'transformer' if text else ('cnn' if config.model.name in ('cnn', 'resnet') else 'mlp')
  m.rater = ml_collections.ConfigDict(dict(
      name=rater, kwargs=(SMOKE_RATER_KWARGS if arg.smoke else RATER_KWARGS)[rater]))
  m.temperature = 1.0
  m.meta_steps = 800
  m.inner_steps = 2
  m.inner_batch_size = 64
  m.meta_batch_size = 64
  m.population = 8
  m.reset_period = 100
  m.inner_optimizer = ml_collections.ConfigDict(config.optimizer.to_dict())
  m.inner_optimizer.schedule = 'constant'
  m.outer_learning_rate = 3e-3
  m.outer_weight_decay = 0.1
  m.outer_warmup_steps = 20
  m.outer_clip = 0.01
  m.mode = 'mixed'
  m.discard_fraction = discard_fraction_field()
  m.filter_mode = 'per_batch'
  m.baseline = True
  m.rater_from = ''
  m.rater_features = ()
  m.outer_loss = 'auto'
  m.outer_trim = 0.5
  m.outer_trim_low = 0.0
  if text:
    m.inner_batch_size = 16
    m.meta_batch_size = 16
    m.meta_steps = 200
  if arg.smoke:
    m.meta_steps = 4
    m.inner_batch_size = 8
    m.meta_batch_size = 8
    m.population = 2
    m.reset_period = 2
  return config
