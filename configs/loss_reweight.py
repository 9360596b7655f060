"""Dynamic loss-based reweighting (Sow et al. ICLR 2025): w = softmax(f(h) / r) over the batch.

Command:
  python -m experiments.train --config=configs/loss_reweight.py:dataset=digits --workdir=runs/lrw
  (other strategies: --config.method.strategy=linupper|extremes --config.method.r=0.4)

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured results: README.md.

Method fields (datarater/methods/loss_reweight.py), with
h = delta (2 loss - max - min) / max(max - min, 1e-6) over the global batch:
  method.strategy      'quadratic' f = 1 - h^2/delta^2 (down-weights both
                       extremes; the paper's choice for its smallest, 124M
                       model, the closest to ours), 'linupper' f = min(h +
                       delta, delta) (down-weights low losses), 'extremes' f = |h|.
  method.delta         > 0 (paper: 1).
  method.r             softmax temperature > 0 (paper: 1.0 with quadratic at
                       124M, 0.4 with linupper/extremes at larger scale).
  method.warmup_steps  int >= 0: uniform weights before this step (paper: 1000
                       steps of a long LM run; here 100 of 1500; 2 in smoke).
Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'loss_reweight'
  config.method.strategy = 'quadratic'
  config.method.delta = 1.0
  config.method.r = 1.0
  config.method.warmup_steps = 2 if arg.smoke else 100
  return config
