"""Learning to Reweight (L2RW; Ren et al., ICML 2018) on the noisy-sources presets.

Command:
  python -m experiments.train --config=configs/l2rw.py:dataset=digits --workdir=runs/l2rw

Arguments after ':' : dataset=digits|stdlib_text|mnist|cifar10|npz|<tfds name>, smoke.
Expected runtime: about 40 s on 2 shared CPU cores (1500 steps; the training
loop itself about 20 s; about 3.2x the FLOPs of the uniform baseline's steps).
Expected result (digits, 5 sources with label noise 0/0.2/0.4/0.6/0.8, seed 0):
  done: test accuracy 0.9136, test loss 0.4725   (uniform, same steps: 0.7604)
  [l2rw] score AUROC (low score = corrupted) 0.7618

Per step: scores u_i = -d/d eps_i of the meta-batch loss after a look-ahead
SGD step on sum_i eps_i f_i (= alpha * <grad f_i, grad meta loss>), weights
w = max(u, 0) / sum max(u, 0) (all zero if no u_i > 0), then one step of the
model optimizer on sum_i w_i f_i. The meta batches come from the clean meta
split (data.meta_mode='clean', the paper's protocol). summary.json gets
`score_auroc` (AUROC of "low latest u_i = corrupted" against the ground truth)
and `source_mean_score`; scores_train.npy holds every training example's
latest u_i (examples never drawn: the mean of the drawn ones).

Method fields (all under config.method; shared fields in configs/common.py):
  inner_lr           look-ahead SGD step alpha; 0 = the model's peak learning
                     rate (config.optimizer.learning_rate). The weights do not
                     depend on alpha > 0; the recorded scores scale with it.
  meta_batch_size    meta-split examples per step; 0 = config.batch_size.
  mode               meta-gradient computation of the one-step look-ahead
                     (datarater.meta.unroll): 'reverse' | 'remat' | 'mixed'
                     (exact, same numbers) | 'first_order' (exact for one step).
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.data.meta_mode = 'clean'
  m = config.method
  m.name = 'l2rw'
  m.inner_lr = 0.0
  m.meta_batch_size = 0
  m.mode = 'reverse'
  return config
