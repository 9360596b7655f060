"""Aioli online source mixing (Chen et al. 2024, arXiv 2411.05735): one phase, mixture by rounds.

Command:
  python -m experiments.train --config=configs/aioli.py:dataset=digits --workdir=runs/aioli

Arguments after ':' : dataset=digits|stdlib_text|mnist1d|tabular|npz|<tfds name>, model=..., smoke.
Not measured yet (no README row).

One training phase of `num_steps` steps in `method.rounds` rounds. Each round
starts with LearnParams (the fraction `method.delta` of the round): `sweeps`
sweeps, each visiting every source in a random order for lp_steps =
floor(delta * round_steps / (sweeps * K)) steps on the mixture that puts
`one_hot_factor` on it and the rest evenly on the others; each source's loss
on its meta-split rows is measured before and after every visit, the
interaction matrix A (A_ij: drop of source i's loss per visit to source j) is
fitted by least squares, and the mixture takes the step
p_j <- p_j exp(eta sum_i A_ij). The rest of the round samples its batches
from that mixture. Defaults on digits (1500 steps, 5 sources): 6 rounds of
250 steps, 2 sweeps x 5 visits x 10 steps = 100 LearnParams steps per round.

Method fields (datarater/methods/aioli.py; math in datarater/mixing/aioli.py):
  method.eta             step size >= 0 of the mixture update (paper: 1).
  method.rounds          T >= 1 rounds; round_steps = num_steps // T (the last
                         round also takes the remainder).
  method.delta           fraction of each round spent in LearnParams, in (0, 1);
                         must leave lp_steps >= 1.
  method.sweeps          sweeps over the sources per LearnParams (paper: 2).
  method.one_hot_factor  mass on the visited source in (1/K, 1] (paper's runs:
                         0.75; 1 = that source alone).
  method.normalize_a     bool: A <- A - min(A) if negative, then A / sum(A), before
                         the step (the released code's --aioli_normalize_A, on in
                         all its runs).
  method.ema             gamma in [0, 1): 0 = Algorithm 1 (p accumulates the
                         steps); > 0 = the released code's --ema: smoothed A,
                         p proportional to p^0 exp(eta sum_i Abar_ij).
Writes `source_weights` (final mixture), `source_weights_trajectory` and `aioli`
to summary.json and plots/source_weights.png. Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'aioli'
  config.method.eta = 1.0
  config.method.rounds = 6
  config.method.delta = 0.4
  config.method.sweeps = 2
  config.method.one_hot_factor = 0.75
  config.method.normalize_a = True
  config.method.ema = 0.0
  if arg.smoke:  # 6 steps: one round of 5 one-step visits, then one step on the mixture
    config.method.rounds = 1
    config.method.sweeps = 1
    config.method.delta = 0.9
  return config
