"""DSIR: score every training row by its hashed n-gram importance weight against the meta split.

Command:
  python -m experiments.train --config=configs/dsir.py:dataset=stdlib_text --workdir=runs/dsir
  (score only, no retraining: add --config.method.discard_fraction=0)

Arguments after ':' : dataset=digits|stdlib_text|mnist1d|tabular|npz|<tfds name>, model=..., smoke.
Method fields (datarater/methods/dsir.py; math in datarater/mixing/dsir.py):
  method.num_buckets       int in [1, 2**31): buckets the n-grams are hashed into
                           (paper: 10,000).
  method.ngrams            int >= 1: n-grams of length 1 .. ngrams are features
                           (paper: 2, unigrams and bigrams). Token / byte
                           sequences: n consecutive ids; real-valued inputs: n
                           adjacent features' bins, hashed with the position.
  method.num_bins          int >= 2: per-feature quantile bins (of the train
                           split) that real-valued inputs are quantised into
                           before hashing; unused for token sequences.
  method.smoothing         number > 0: alpha of the add-alpha smoothed
                           bag-of-hashed-features distributions (1 = add-one /
                           Laplace); also the smoothing of the reported KL
                           reduction.
  method.label_features    bool: hash each row's class label into every one of
                           its features (class-conditional bags; classification
                           only). False = the paper's features of the input alone,
                           which cannot see a wrong label.
  method.select_fraction   'filter' (default) or a number in (0, 1]: the fraction
                           of the training rows in the reported Gumbel top-k
                           selection (summary.json `dsir`: its KL reduction vs the
                           meta split). 'filter': the fraction the filter keeps
                           (1 - discard_fraction; with 'auto', 1 - the estimated
                           fraction of low-scored rows; with 0, one half).
  method.discard_fraction  'auto' (default) or rho in [0, 1): the fraction of candidate
                           rows the filtered retraining discards, keeping the highest
                           log importance weight (0 = score only; 'auto': chosen on the
                           score distribution and the validation split; configs/common.py).
  method.filter_mode       'per_batch' (default: each step draws B / (1 - rho)
                           rows and keeps the best B) | 'dataset' (drop the rho
                           lowest-scored rows once).
Phases: 'score' (0 steps: no model is trained to score; the hashing runs on the
host), then with rho > 0 or 'auto' the filtered arm(s) and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, discard_fraction_field, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'dsir'
  config.method.num_buckets = 10000
  config.method.ngrams = 2
  config.method.num_bins = 4
  config.method.smoothing = 1.0
  config.method.label_features = False
  config.method.select_fraction = discard_fraction_field('filter')  # 'filter' or a number
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  return config
