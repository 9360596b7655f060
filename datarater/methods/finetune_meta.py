"""Fine-tuning on the meta split: uniform training, then a few steps on the meta rows.

Config: configs/finetune_meta.py. Two phases: 'uniform' (config.num_steps
steps on the training split, exactly the uniform run: same initial
parameters, batches and optimizer) and 'finetune' (method.finetune_steps
steps of batch config.batch_size on the meta split, starting from the
uniform phase's final parameters with a fresh optimizer state whose learning
rate is config.optimizer.learning_rate * method.finetune_lr_factor, its
schedule over finetune_steps). Result: the fine-tuned model; paired baseline:
the 'uniform' phase. Both phases are the method's compute (summary.json's
`method_ledger`). Information: the training rows and the meta rows (clean
under data.meta_mode='clean').
"""

from __future__ import annotations

import copy
import dataclasses

from datarater.errors import is_number, require
from datarater.methods import meta_only, uniform
from datarater.train.pipeline import Phase, Pipeline
from datarater.train.task import make_optimizer

DECLARES = dict(family='baseline', label='fine-tune on meta rows', information='meta rows')


def make(config, task, dataset) -> Pipeline:
  """The 'uniform' then 'finetune' pipeline.

  Args:
    config: the run config (method.finetune_steps, method.finetune_lr_factor).
    task: the Task.
    dataset: the Dataset.

  Returns:
    Pipeline with result 'finetune' and baseline 'uniform'.

  Raises:
    ConfigError: finetune_steps not a positive int, or finetune_lr_factor not > 0.
  """
  m = config.method
  require(isinstance(m.finetune_steps, int) and m.finetune_steps > 0, 'method.finetune_steps',
          'a positive int', m.finetune_steps)
  require(is_number(m.finetune_lr_factor) and m.finetune_lr_factor > 0,
          'method.finetune_lr_factor', '> 0', m.finetune_lr_factor)
  opt = copy.deepcopy(config.optimizer)
  opt.learning_rate = config.optimizer.learning_rate * m.finetune_lr_factor
  tuned = dataclasses.replace(task, optimizer=make_optimizer(opt, m.finetune_steps))
  finetune = Phase('finetune', meta_only.make(config, tuned, dataset), m.finetune_steps,
                   task=tuned, start_from='uniform')
  return Pipeline((Phase('uniform', uniform.make(config, task, dataset), config.num_steps),
                   finetune), result='finetune', baseline='uniform', extra_cost=('uniform',))
