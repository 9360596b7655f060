"""STORM (Heck et al., AAAI 2025): self-taught meta loss rescaling, no clean data.

Command (the noisy-meta setting: no clean data anywhere; STORM ignores the
meta split, the flag only makes the data the same as DataRater's noisy-meta runs):
  python -m experiments.train --config=configs/storm.py:dataset=digits \
      --workdir=runs/storm_noisy --config.data.meta_mode=noisy
Paired uniform run on the same data:
  python -m experiments.train --config=configs/uniform.py:dataset=digits \
      --workdir=runs/uniform_noisy --config.data.meta_mode=noisy

Arguments after ':' : dataset=digits|stdlib_text|mnist|cifar10|npz|<tfds name>, smoke.
Measured results: README only.

Per step: B training and B validation examples, both drawn from the (noisy)
training set; a rescaler over features of the model being trained (loss,
label confidence, margin, their changes, batch-standardised loss) gives each
training loss a mean-one weight; the model takes one optimizer step on the
rescaled loss and the rescaler one Adam step on the meta-gradient of the
rescaled validation loss after a look-ahead SGD step (datarater/meta/storm.py
states the choices the paper leaves open). summary.json gets `score_auroc`
(AUROC of "low rescaler output = corrupted"); scores_train.npy holds each
example's latest rescaler output. The result (summary.json's test metrics,
`result_phase` 'train') is the model trained on the rescaled losses: STORM is
on-the-fly loss rescaling; compare it with the paired uniform command above.
With `filter` (the registry's 'storm_filter' variant, table row 'STORM
filter'), a fresh model then trains on the best-scored (1 - discard_fraction)
of the examples (the result, `result_phase` 'filtered') and a uniform model
trains on all ('uniform'), from the same initial parameters.

Method fields (all under config.method; shared fields in configs/common.py):
  hidden             tanh hidden units of the rescaler MLP.
  learning_rate      Adam learning rate of the rescaler.
  lookahead_lr       alpha, the look-ahead SGD step of the meta-gradient.
  mode               meta-gradient computation of the look-ahead
                     (datarater.meta.unroll): 'reverse' | 'remat' | 'mixed' | 'checkpointed'
                     (exact, same numbers) | 'first_order' (exact for one step).
  filter             run the filtered-retraining and uniform phases after STORM; the
                     result is then the filtered model (default False: the rescaled model).
  discard_fraction   'auto' (default: chosen on the score distribution and the validation
                     split) or rho, the fraction of candidates the filter discards
                     (configs/common.py).
  filter_mode        'dataset' (default: the filtered model never sees the rho
                     worst-scored training rows) | 'per_batch' (top B of
                     ceil(B/(1-rho)) rows per step, by the final score table).
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.data.meta_mode = 'noisy'
  m = config.method
  m.name = 'storm'
  m.hidden = 16
  m.learning_rate = 1e-3
  m.lookahead_lr = 0.1
  m.mode = 'reverse'
  m.filter = False
  m.discard_fraction = discard_fraction_field()
  m.filter_mode = 'dataset'
  return config
