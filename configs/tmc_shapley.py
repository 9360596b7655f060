"""TMC-Shapley: value training rows by truncated Monte Carlo Shapley on the meta split, filter.

Command:
  python -m experiments.train --config=configs/tmc_shapley.py:dataset=digits --workdir=runs/tmc

Arguments after ':' : dataset=digits|mnist|cifar10|npz|<tfds name> (classification),
model=..., smoke.
Method fields (datarater/methods/tmc_shapley.py):
  method.score_steps        steps of uniform training before valuing (the model
                            whose penultimate features are the learner's inputs);
                            0 with embedding='raw' values raw inputs untrained.
                            Default: config.num_steps (it follows a --config.num_steps
                            override unless score_steps is set itself).
  method.embedding          'penultimate' | 'raw' (flattened inputs); standardised.
  method.max_rows           training rows valued: a random subset of this many,
                            fixed by the seed (the Shapley game is played on it;
                            the others are unscored and get the mean value);
                            0 = all rows. Cost ~ permutations x rows learner fits, each
                            O(learner_steps x rows x D x C). Measured once on a shared
                            2-core CPU: 500 rows of synthetic 256-d features, 100
                            validation rows, 16 permutations took 58 s (3.6 s per
                            permutation; truncation skipped 23% of the fits). The
                            default values 200 rows with 100 permutations (about a
                            minute there if the cost scales as rows^2: an estimate,
                            not measured); the convergence report says whether that
                            sufficed (the paper runs until the mean relative change
                            over the last permutations is < 0.05).
  method.num_permutations   T, random permutations at most.
  method.tolerance          truncation: the rest of a permutation's marginal
                            contributions are 0 once the running performance is
                            within this (absolute, in units of `metric`) of the
                            full-data performance; 0 = no truncation.
  method.chunk              permutations per chunk (vmapped together); the
                            convergence report compares estimates before and after
                            the last chunk.
  method.block              prefixes per learner call (vmapped with the chunk).
  method.metric             'log_likelihood' (-mean validation cross-entropy:
                            smooth, lower variance) | 'accuracy' (the paper).
  method.learner_steps      full-batch gradient steps of the logistic regression.
  method.learner_lr         their step size (features have mean squared norm ~1).
  method.learner_l2         L2 penalty (l2 / 2) ||W||^2.
  method.discard_fraction   'auto' (default) or rho in [0, 1) (configs/common.py);
                            keeps the highest values.
  method.filter_mode        'per_batch' (default) | 'dataset' (configs/common.py).
Smoke: 40 rows, 8 permutations in chunks of 4, 20 learner steps of size 10.
Phases: 'score' (score_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'tmc_shapley'
  config.method.score_steps = config.get_ref('num_steps') + 0  # follows num_steps unless set
  config.method.embedding = 'penultimate'
  config.method.max_rows = 200
  config.method.num_permutations = 100
  config.method.tolerance = 0.01
  config.method.chunk = 16
  config.method.block = 16
  config.method.metric = 'log_likelihood'
  config.method.learner_steps = 100
  config.method.learner_lr = 5.0
  config.method.learner_l2 = 1e-3
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  if arg.smoke:
    config.method.max_rows = 40
    config.method.num_permutations = 8
    config.method.chunk = 4
    config.method.learner_steps = 20
    config.method.learner_lr = 10.0
  return config
