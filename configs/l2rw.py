"""Learning to Reweight (L2RW; Ren et al., ICML 2018) on the noisy-sources presets.

Command:
  python -m experiments.train --config=configs/l2rw.py:dataset=digits --workdir=runs/l2rw

Arguments after ':' : dataset=digits|stdlib_text|mnist|cifar10|npz|<tfds name>, smoke.
Expected runtime and result: see the README section on L2RW and Meta-Weight-Net
(measured there, with the command that printed each number).

Per step: scores u_i = -d/d eps_i of the meta-batch loss after a look-ahead
SGD step on sum_i eps_i f_i (= alpha * <grad f_i, grad meta loss>), weights
w = max(u, 0) / sum max(u, 0) (all zero if no u_i > 0), then one step of the
model optimizer on sum_i w_i f_i. The meta batches come from the clean meta
split (data.meta_mode='clean', the paper's protocol). summary.json gets
`score_auroc` (AUROC of "low latest u_i = corrupted" against the ground truth)
and `source_mean_score`; scores_train.npy holds every training example's
latest u_i (examples never drawn: the mean of the drawn ones).

Method fields (all under config.method; shared fields in configs/common.py):
  lookahead_lr       step size alpha of the look-ahead, which is plain SGD as in
                     the paper whatever config.optimizer trains the model:
                     'scheduled' (the model optimizer's learning rate at the
                     current step), 'peak' (config.optimizer.learning_rate) or a
                     fixed positive float written as a string ('0.1'). The
                     weights do not depend on alpha > 0; the recorded scores
                     scale with it. Same field and default as configs/mwn.py.
  meta_batch_size    meta-split examples per step; 0 = config.batch_size.
  mode               meta-gradient computation of the one-step look-ahead
                     (datarater.meta.unroll): 'reverse' | 'remat' | 'mixed' | 'checkpointed'
                     (exact, same numbers) | 'first_order' (exact for one step).
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.data.meta_mode = 'clean'
  m = config.method
  m.name = 'l2rw'
  m.lookahead_lr = 'scheduled'
  m.meta_batch_size = 0
  m.mode = 'reverse'
  return config
