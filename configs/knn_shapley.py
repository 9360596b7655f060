"""KNN-Shapley: value every training row by exact KNN Shapley values on the meta split, filter.

Command:
  python -m experiments.train --config=configs/knn_shapley.py:dataset=digits --workdir=runs/knn

Arguments after ':' : dataset=digits|mnist|cifar10|npz|<tfds name> (classification),
model=..., smoke.
Method fields (datarater/methods/knn_shapley.py):
  method.score_steps        steps of uniform training before valuing (the model
                            whose penultimate features embed the rows); 0 with
                            embedding='raw' values the raw inputs without training.
                            Default: config.num_steps (it follows a --config.num_steps
                            override unless score_steps is set itself).
  method.embedding          'penultimate' (the trained model's features before its
                            output layer) | 'raw' (flattened inputs); both
                            standardised with the training rows' statistics.
  method.k                  K, the neighbours of the KNN classifier (the paper
                            reports K = 1..10; 5 here).
  method.chunk_size         validation (meta) rows valued at once: memory
                            O(chunk_size x training rows).
  method.discard_fraction   'auto' (default) or rho in [0, 1): the fraction of
                            candidate rows the filtered retraining discards,
                            keeping the highest Shapley values (0 = score only;
                            configs/common.py).
  method.filter_mode        'per_batch' (default) | 'dataset' (configs/common.py).
Phases: 'score' (score_steps), then with rho > 0 'filtered' and 'uniform'
(config.num_steps each, same initial parameters). Shared fields: configs/common.py.
"""

from configs.common import base_config, parse_arg, discard_fraction_field


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'knn_shapley'
  config.method.score_steps = config.get_ref('num_steps') + 0  # follows num_steps unless set
  config.method.embedding = 'penultimate'
  config.method.k = 5
  config.method.chunk_size = 256
  config.method.discard_fraction = discard_fraction_field()
  config.method.filter_mode = 'per_batch'
  return config
