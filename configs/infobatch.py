"""InfoBatch (Qin et al. ICLR 2024): prune below-mean-loss examples at random each epoch.

Command:
  python -m experiments.train --config=configs/infobatch.py:dataset=digits --workdir=runs/infobatch

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
InfoBatch trains E = floor(num_steps / ceil(N / B)) epochs (the full-data
epochs that fit into num_steps) and needs fewer steps for them; the remaining
step slots are skipped. summary.json reports `gradient_computations_saved`.
Measured (seed 0; 2-core CPU shared with other jobs; 'accuracy / loss' on the clean test split):
  digits (budget 1500 steps, about 45 s): 71 epochs in 1100 steps instead of 1491,
  gradient_computations_saved 0.262; test accuracy 0.7632, test loss 0.7429
  (uniform 1500 steps = the same epochs: 0.7604 / 0.7480; uniform 1100 steps =
  the same gradient computations: 0.7994 / 0.6722).
  stdlib_text (--config.num_steps=500, about 1.5 min): 7 epochs in 337 steps instead
  of 441, saved 0.236; 0.4002 / 2.3212 (uniform 441 steps: 0.4235 / 2.2345;
  uniform 337 steps: 0.3991 / 2.3226).
  uniform on the same presets: digits 0.7604 / 0.7480 (seeds 1, 2: 0.7047 / 0.9190,
  0.7549 / 0.7877); stdlib_text at 500 steps 0.4368 / 2.1906 (seed 1: 0.4162 / 2.2536).

Method fields (datarater/weighting/infobatch_method.py):
  method.prune_ratio  r in [0, 1): each epoch, examples whose latest loss is
                      below the mean are pruned with probability r and the kept
                      ones weighted 1/(1 - r) (paper: 0.5).
  method.delta        in [0, 1]: prune only in epochs e < delta E; the last
                      epochs use all data (paper: 0.875).
Shared fields are documented in configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'infobatch'
  config.method.prune_ratio = 0.5
  config.method.delta = 0.875
  return config
