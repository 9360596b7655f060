"""ScaleBiO (F2SA penalty method): learned per-source weights on the noisy-sources presets.

Commands (digits: 5 sources with label noise 0/0.2/0.4/0.6/0.8; stdlib_text:
5 packages with random-byte corruption at those rates; trusted clean meta set):
  python -m experiments.train --config=configs/scalebio.py:dataset=digits --workdir=runs/scalebio_digits
  python -m experiments.train --config=configs/scalebio.py:dataset=stdlib_text --workdir=runs/scalebio_text
The run also trains a fresh model with the learned weights (the result) and a
paired uniform baseline (--config.method.retrain=False skips both: the result
is then w); --config.data.meta_mode=noisy for the DataRater-style noisy meta set.

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, model=<name>, smoke
(shared keys, configs/common.py).

What a run reports: the learned source weights (summary.json
`source_weights`, their curve in plots/source_weights.png) and their Spearman
correlation with the sources' corruption rates (`weight_corruption_spearman`;
-1 means the weights fall as the corruption rate rises). The run's result
(summary.json `test_accuracy`) is the retrained model: a fresh model trained
on the train split only with the learned weights ('loss' mode: each source
carries its weight of the loss, as in the bilevel objective), paired with a
uniform model from the same initial parameters (`accuracy_gain_vs_baseline`).
The bilevel phase's own model w is reported apart as `w_test_accuracy` /
`w_test_loss`: with the default 'penalty' estimator w also trains on the meta
split, so it is not comparable to uniform (`bilevel_note`). Measured results:
README.md.

Method fields (datarater/methods/scalebio.py has the full story):
  method.hypergradient    'penalty' (ScaleBiO) | 'cg' | 'neumann' | 'unrolled':
                          the estimator of the weight update; baselines train
                          the lower-level model on the weighted loss.
  method.alpha            penalty weight alpha > 0.
  method.alpha_exponent   alpha_t = alpha * (t + 1)^alpha_exponent (F2SA: 1/7).
  method.alpha_max        cap on alpha_t (0 = none).
  method.lambda_update    'adam' (Adam on the logits p, ScaleBiO's code) |
                          'mirror' (exponentiated gradient on the simplex).
  method.lr_lambda        step size of the weight update (results are
                          sensitive to it; ScaleBiO's code uses 1e-2).
  method.lr_u, lr_w       step sizes of the u (lower-level tracker) and w
                          (evaluated model) optimizers.
  method.inner_optimizer  'adam' | 'adamw' | 'sgd' for u and w.
  method.weight_decay     weight decay of u and w.
  method.decay_step_sizes multiply step sizes by (t + 1)^-e (F2SA exponents).
  method.lisa_period      LISA: redraw the active blocks every this many steps (0 = off).
  method.lisa_num_blocks  LISA: number of randomly active top-level blocks.
  method.lisa_always_trainable  LISA: block names always updated.
  method.meta_batch_size  meta examples per step (0 = config.batch_size).
  method.cg_maxiter       'cg': conjugate-gradient iterations.
  method.neumann_terms    'neumann': series terms.
  method.neumann_eta      'neumann': series step (< 2 / largest Hessian eigenvalue).
  method.damping          'cg'/'neumann': ridge added to the Hessian.
  method.unroll_steps     'unrolled': SGD steps unrolled per update.
  method.unroll_lr        'unrolled': their step size.
  method.retrain          also train a fresh model with the learned weights (the
                          run's result) and a uniform baseline (same init,
                          config.num_steps each); default True. False: the
                          result is w, which trained on the meta split too.
  method.retrain_mode     'loss' (per-example loss weights) | 'sample' (resampling).
Shared fields are documented in configs/common.py; this file sets
num_steps 600 for digits and 300 for stdlib_text (other datasets keep the base
value) and log_every 10 (the weight curves).
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.num_steps = {'digits': 600, 'stdlib_text': 300}.get(arg.dataset, config.num_steps)
  config.log_every = 10   # weights-over-time curve resolution
  m = config.method
  m.name = 'scalebio'
  m.hypergradient = 'penalty'
  m.alpha = 10.0
  m.alpha_exponent = 0.0
  m.alpha_max = 0.0
  m.lambda_update = 'adam'
  m.lr_lambda = 1e-2
  m.lr_u = 1e-3
  m.lr_w = 1e-3
  m.inner_optimizer = 'adam'
  m.weight_decay = 0.0
  m.decay_step_sizes = False
  m.lisa_period = 0
  m.lisa_num_blocks = 0
  m.lisa_always_trainable = ()
  m.meta_batch_size = 0
  m.cg_maxiter = 10
  m.neumann_terms = 10
  m.neumann_eta = 0.1
  m.damping = 1e-2
  m.unroll_steps = 5
  m.unroll_lr = 0.1
  m.retrain = True
  m.retrain_mode = 'loss'
  if arg.smoke:
    config.num_steps = 6
    config.log_every = 2
  return config
