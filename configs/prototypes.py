"""Prototypes: the label-free self-supervised prototype pruning score, filter, compare.

Command:
  python -m experiments.train --config=configs/prototypes.py:dataset=digits --workdir=runs/proto
  (keep the prototypical rows instead: --config.method.keep=easy)

Arguments after ':' : dataset=digits|mnist|cifar10|npz|<tfds name> (classification),
model=..., smoke.
Method fields (datarater/methods/prototypes.py):
  method.score_steps        steps of uniform training before scoring (the model
                            whose penultimate features embed the rows); 0 with
                            embedding='raw' scores the raw inputs untrained.
                            Default: config.num_steps (it follows a --config.num_steps
                            override unless score_steps is set itself).
  method.embedding          'penultimate' | 'raw' (flattened inputs; fully label-free).
  method.num_clusters       k, the k-means prototypes (the paper: ~ the number of
                            classes or more; 10 on digits).
  method.kmeans_iterations  Lloyd iterations of spherical k-means.
  method.init               'kmeans++' (seeded) | 'random' (k distinct rows).
  method.keep               'hard' (keep far-from-prototype rows: score = +cosine
                            distance; the paper with plentiful data) | 'easy' (keep
                            the prototypical rows: -distance; scarce data).
  method.discard_fraction   'auto' (default) or rho in [0, 1) (configs/common.py).
  method.filter_mode        'per_batch' (default) | 'dataset' (configs/common.py).
Phases: 'score' (score_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'prototypes'
  config.method.score_steps = config.get_ref('num_steps') + 0  # follows num_steps unless set
  config.method.embedding = 'penultimate'
  config.method.num_clusters = 10
  config.method.kmeans_iterations = 20
  config.method.init = 'kmeans++'
  config.method.keep = 'hard'
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  return config
