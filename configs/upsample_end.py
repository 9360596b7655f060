"""End-of-training upsampling: a base source mixture, then a target-like mixture for the last steps.

Command:
  python -m experiments.train --config=configs/upsample_end.py:dataset=stdlib_text \
      --workdir=runs/upsample_end
  (a given end mixture: --config.method.end_weights='(1,1,0,0,0)')

Arguments after ':' : dataset=digits|stdlib_text|mnist1d|tabular|npz|<tfds name>, model=..., smoke.
Method fields (datarater/methods/upsample_end.py; math in datarater/mixing/upsample.py):
  method.end_fraction      number in [0, 1]: the last round(f * num_steps) steps draw
                           from the end mixture (Blakeney et al. 2024: 0.1-0.2 best
                           of 0.05-0.3). 0 = never, 1 = from the first step.
  method.base_weights      tuple of K non-negative numbers (normalized), the mixture
                           before the switch; () = uniform over the sources.
  method.end_weights       tuple of K non-negative numbers (normalized), the mixture
                           after the switch; () = proportional to each source's
                           similarity to the meta split: the power mean (power
                           `similarity_power`) of DSIR's importance weights of its
                           training rows against the meta split, computed once
                           before training.
  method.similarity_power  number in [0, 1]: 0 (default) = geometric mean of the
                           importance weights (exp of the mean log weight), 1 = their
                           arithmetic mean. Not 1 by default: the log weights of
                           hashed n-grams spread over tens of nats, so the arithmetic
                           mean of a source is its single most meta-like row. Measured
                           on stdlib_text (seeds 0 and 1, sources corrupted at 0, .2,
                           .4, .6, .8): power 1 put 1.00 on the 40%-corrupted source
                           (seed 0) and 0.999 on the 80%-corrupted one (seed 1), each
                           the source of one outlying row; power 0 gave (0.28, 0.52,
                           0.15, 0.04, 0.01) and (0.89, 0.08, 0.03, 0.00, 0.00).
  method.num_buckets, method.ngrams, method.num_bins, method.smoothing,
  method.label_features    DSIR's featurisation and smoothing for that default
                           (configs/dsir.py documents each); unused with end_weights.
Batches: each example's source is drawn from the mixture in force, then one of its
rows uniformly (a pure function of seed and step). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'upsample_end'
  config.method.end_fraction = 0.2
  config.method.base_weights = ()
  config.method.end_weights = ()
  config.method.similarity_power = 0.0
  config.method.num_buckets = 10000
  config.method.ngrams = 2
  config.method.num_bins = 4
  config.method.smoothing = 1.0
  config.method.label_features = False
  return config
