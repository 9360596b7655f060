"""Meta-Weight-Net (MW-Net; Shu et al., NeurIPS 2019) on the noisy-sources presets.

Command:
  python -m experiments.train --config=configs/mwn.py:dataset=digits --workdir=runs/mwn

Arguments after ':' : dataset=digits|stdlib_text|mnist|cifar10|npz|<tfds name>, smoke.
Expected runtime and result: see the README section on L2RW and Meta-Weight-Net
(measured there, with the command that printed each number).

Per step: a weight net V(loss; Theta) (MLP 1-hidden-1, ReLU, sigmoid) gives
each training example a weight in (0, 1); a look-ahead SGD step
w_hat = w - a (1/n) sum_i V(L_i) grad L_i is differentiated to get the gradient
of the meta-batch loss L^meta(w_hat) in Theta; Theta takes one optimizer step;
the model takes one step of its own optimizer on (1/n) sum_i V(L_i; Theta_new) L_i.
The meta batches come from the clean meta split (data.meta_mode='clean', the
paper's protocol: 1000 clean images on CIFAR; here the preset's meta_size).
summary.json gets `score_auroc` (AUROC of "low latest weight = corrupted"),
`source_mean_score` and `weight_function` (V on a loss grid, also
plots/weight_function.png); scores_train.npy holds every training example's
latest weight V(L_i) (examples never drawn: the mean of the drawn ones).

Official script followed: train_WRN-28-10_Meta_PGC.py of the authors' repository
(github.com/xjtushujun/meta-weight-net, the 2019 noisy-label script): V divided by
its batch sum in the look-ahead and the model update (normalize=True); the weight
net initialised as PyTorch's nn.Linear default (datarater/models/weight_net.py)
and trained by SGD, lr 1e-3, momentum 0.9, Nesterov, wd 5e-4; V fed the loss
values without gradient (cost.data); the look-ahead a plain SGD step.
Measured on the label_error_detection suite's digits setting (600 steps, clean
meta split; AUROC of scores_train.npy against the corruption flags; seeds 0-9):
AUROC 0.992-0.997 on all 10 seeds, test accuracy 94.3% mean (uniform 88.1%).
Deviations:
  * the look-ahead step is 0.1 (lookahead_lr='0.1'), the script's learning rate
    for its first 18,000 of 20,000 iterations, instead of the model optimizer's
    current learning rate ('scheduled', what the script does): the model
    optimizer here is the preset's (Adam 1e-3 on digits), and an SGD step on
    Theta scales with the look-ahead step, so at 1e-3 V stays at its
    initialisation and the sign of its random initial slope decides (AUROC
    0.026-0.033 on 4 of 5 seeds tried, 0.82 on the fifth). The paper-scale
    suites, whose models train by the script's SGD 0.1 schedule, set
    'scheduled' (experiments/reproduce/suites/_common.py).
  * batches follow the run's epoch sampler; the script draws each from a
    freshly shuffled loader (i.i.d. batches). Not measured.
Rejected alternatives, same setting: flax's zero-bias initialisation of V (the
old default, with Adam 1e-3, wd 1e-4, normalised, look-ahead at Adam's 1e-3):
4 of 10 seeds learned a V that rises with the loss (AUROC 0.027-0.036): every
hidden ReLU has its kink at loss 0, so V starts as sigmoid(c L + b) with one
slope for all losses, and the early sign of the meta-gradient, kept by the
sigmoid's saturation, decides. PyTorch initialisation with Adam (MW-Net.py's
weight-net optimizer): 10 of 10 seeds >= 0.898 on digits but 2 of the first 5
seeds flipped on the suite's tabular preset (AUROC 0.214, 0.273; SGD-Nesterov:
0.80-0.88). Without normalisation (MW-Net.py): 4 of 5 seeds flipped (AUROC
0.025-0.034).

Method fields (all under config.method; shared fields in configs/common.py):
  wnet_hidden        hidden width of the weight net (paper: 100).
  wnet_optimizer     optimizer of the weight net: 'nesterov' (default; SGD,
                     momentum 0.9, Nesterov: train_WRN-28-10_Meta_PGC.py's) or
                     'adam' (MW-Net.py's, there with lr 1e-3, wd 1e-4).
  wnet_learning_rate learning rate of the weight net (both scripts: 1e-3).
  wnet_weight_decay  L2 weight decay of the weight net, added to the gradient
                     as PyTorch's optimizers do (MW-Net.py: 1e-4; the WRN
                     script: 5e-4).
  normalize          divide V by its sum over the batch (times the batch size)
                     in the look-ahead and the model update, as
                     train_WRN-28-10_Meta_PGC.py does (v_lambda / sum v_lambda);
                     False = the paper's equations and MW-Net.py, (1/n) sum_i
                     V(L_i) L_i, with which V can grow with the loss and act as
                     a step-size knob of the SGD look-ahead.
  lookahead_lr       step size a of the look-ahead, which is plain SGD as in the
                     paper whatever config.optimizer trains the model:
                     'scheduled' (the model optimizer's learning rate at the
                     current step, as the MW-Net code does), 'peak'
                     (config.optimizer.learning_rate) or a fixed positive float
                     written as a string ('0.1', the default: see above). Same
                     field as configs/l2rw.py (default 'scheduled' there).
  meta_batch_size    meta-split examples per step; 0 = config.batch_size (paper: 100 = batch).
  mode               meta-gradient computation of the one-step look-ahead
                     (datarater.meta.unroll): 'reverse' | 'remat' | 'mixed' | 'checkpointed'
                     (exact, same numbers) | 'first_order'.
The model optimizer stays the preset's (config.optimizer.*), the same as the
uniform baseline's, so runs compare at equal model optimizer and steps; the
WRN script trains its classifiers with SGD lr 0.1, Nesterov momentum 0.9, wd
5e-4 (MW-Net.py: plain momentum).
"""

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.data.meta_mode = 'clean'
  m = config.method
  m.name = 'mwn'
  m.wnet_hidden = 100
  m.wnet_learning_rate = 1e-3
  m.wnet_weight_decay = 5e-4
  m.normalize = True
  m.wnet_optimizer = 'nesterov'
  m.lookahead_lr = '0.1'
  m.meta_batch_size = 0
  m.mode = 'reverse'
  if arg.smoke:
    m.wnet_hidden = 16
  return config
