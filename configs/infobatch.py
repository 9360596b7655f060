"""InfoBatch (Qin et al. ICLR 2024): prune below-mean-loss examples at random each epoch.

Command:
  python -m experiments.train --config=configs/infobatch.py:dataset=digits --workdir=runs/infobatch

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, smoke.
Measured results: README.md.

InfoBatch trains E = floor(num_steps / ceil(N / B)) epochs (the full-data
epochs that fit into num_steps) and needs fewer steps for them; the remaining
step slots are skipped. summary.json reports `gradient_computations_saved`.

Method fields (datarater/methods/infobatch.py):
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
