"""Fine-tuning on the meta split: uniform training, then a few steps on the meta rows.

Command:
  python -m experiments.train --config=configs/finetune_meta.py:dataset=digits --workdir=runs/ft

Arguments after ':' : dataset=digits|mnist1d|stdlib_text|npz|<tfds name>, smoke.
Runtime: uniform's plus finetune_steps more steps. Phases: 'uniform'
(config.num_steps on the training split; the paired baseline) and 'finetune'
(the result: starts from the uniform phase's final parameters with a fresh
optimizer state). The meta split is clean under data.meta_mode='clean' (the
default here, as for L2RW and MW-Net).

Method fields (under config.method; shared fields in configs/common.py):
  finetune_steps      positive int. Steps of batch config.batch_size on the meta
                      split. Default 100: on the 100-row digits meta split,
                      64 passes over it, about a tenth of the uniform phase's
                      1000 steps at cpu scale (smoke: 3).
  finetune_lr_factor  float > 0. The fine-tuning learning rate is
                      config.optimizer.learning_rate times this (same optimizer
                      and schedule kind, the schedule over finetune_steps).
                      Default 0.1: a smaller step than training from scratch,
                      the usual fine-tuning choice, so 100 rows move the
                      model without erasing what the training split taught it.
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.data.meta_mode = 'clean'
  config.method.name = 'finetune_meta'
  config.method.finetune_steps = 3 if arg.smoke else 100
  config.method.finetune_lr_factor = 0.1
  return config
