"""DoReMi source weights (Xie et al. NeurIPS 2023): reference -> proxy -> retrain.

Command:
  python -m experiments.train --config=configs/doremi.py:dataset=digits --workdir=runs/doremi

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured results: README.md.

Three phases of `config.num_steps` steps each ('reference' uniform model,
'proxy' with the DoReMi weight update, 'retrain' with the averaged weights).

Method fields (datarater/methods/doremi.py):
  method.eta           step size > 0 of log alpha <- log alpha + eta lambda,
                       lambda_g = mean of max(loss_proxy - loss_ref, 0) over
                       the batch's source-g tokens (examples for
                       classification) (paper: 1.0).
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
