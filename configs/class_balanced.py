"""Class-balanced loss (Cui et al., CVPR 2019), the long-tail baseline.

Command:
  python -m experiments.train --config=configs/class_balanced.py:dataset=digits --workdir=runs/cb

Arguments after ':' : dataset=digits|mnist1d|npz|<tfds name> (classification), smoke.
Runtime: that of uniform (same steps and batches; a weight look-up per example).
Result: meant for long-tailed data (data.imbalance > 1; suite long_tail); on
balanced classes every weight is about 1 and it is uniform training.

Method fields (under config.method; shared fields in configs/common.py):
  beta   float in [0, 1). Effective-number parameter: class c with n_c training
         rows gets weight proportional to (1 - beta) / (1 - beta^n_c), the
         weights normalised to mean one over the classes that occur
         (datarater/weighting/class_balanced.py). 0 = no re-weighting; beta -> 1
         = inverse class frequency. Default 0.999: N = 1 / (1 - beta) = 1000
         prototypes per class, more than any digits or MNIST-1D class holds
         (at most ~150 and ~400 training rows), so the weights are close to
         inverse frequency there, flattening only for classes approaching 1000
         rows; the paper's CIFAR-10-LT choice (0.9999, classes of 5000) makes the
         same trade-off at its sizes.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'class_balanced'
  config.method.beta = 0.999
  return config
