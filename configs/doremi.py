"""DoReMi source weights (Xie et al. NeurIPS 2023): reference -> proxy -> retrain.

Command:
  python -m experiments.train --config=configs/doremi.py:dataset=digits --workdir=runs/doremi

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Three phases of `config.num_steps` steps each ('reference' uniform model,
'proxy' with the DoReMi weight update, 'retrain' with the averaged weights).
Measured (seed 0; 2-core CPU shared with other jobs; 'accuracy / loss' on the clean test split):
  digits (3 x 1500 steps, about 1 min): retrained model test accuracy 0.6462, test
  loss 1.0350; DoReMi weights (noise 0..0.8) 0.041 0.138 0.205 0.283 0.333; proxy
  model 0.7911 / 0.7163; reference (uniform) model 0.7270.
  stdlib_text (--config.num_steps=500, about 7 min): retrained 0.4235 / 2.2358;
  weights 0.444 0.192 0.164 0.128 0.071; proxy 0.4015 / 2.3005; reference 0.4253.
  uniform on the same presets: digits 0.7604 / 0.7480 (seeds 1, 2: 0.7047 / 0.9190,
  0.7549 / 0.7877); stdlib_text at 500 steps 0.4368 / 2.1906 (seed 1: 0.4162 / 2.2536).

Method fields (datarater/weighting/doremi_method.py):
  method.eta           step size > 0 of log alpha <- log alpha + eta lambda,
                       lambda_g = mean of max(loss_proxy - loss_ref, 0) over
                       source g in the batch (paper: 1.0).
  method.smoothing     c in [0, 1]: alpha <- (1 - c) alpha + c / K (paper: 1e-3).
  method.retrain       bool: train a fresh model with the time-averaged weights
                       (the summary's test metrics are then that model's).
  method.retrain_mode  'sample' (resample sources by the weights, as the paper
                       trains its main model) | 'loss' (uniform batches,
                       per-example loss weights).
Writes `source_weights` (time-averaged alpha) to summary.json and
plots/source_weights.png. Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'doremi'
  config.method.eta = 1.0
  config.method.smoothing = 1e-3
  config.method.retrain = True
  config.method.retrain_mode = 'sample'
  return config
