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
its batch sum in the look-ahead and the model update (normalize=True), the weight
net initialised as PyTorch's nn.Linear default (datarater/models/weight_net.py),
V fed the loss values without gradient (cost.data), the look-ahead a plain SGD
step at the model's current learning rate. Deviations, each measured on the
label_error_detection suite's digits setting (600 steps, clean meta split;
AUROC of scores_train.npy against the corruption flags, 10 seeds 0-9):
  * the weight net trains with Adam (lr 1e-3, wd 1e-4, as the authors' later
    MW-Net.py) instead of the script's SGD-Nesterov (lr 1e-3, momentum 0.9, wd
    5e-4): an SGD step on Theta scales with the look-ahead step a, which is the
    preset model optimizer's learning rate (Adam 1e-3 on digits, the script's
    0.1 on CIFAR); at a = 1e-3 SGD leaves V at its initialisation and the sign of
    its random initial slope decides (AUROC 0.026-0.033 on 4 of 5 seeds tried,
    0.82 on the fifth), while Adam's step does not depend on that scale. With
    wnet_optimizer='nesterov' the script's settings are one override away
    (wnet_weight_decay=5e-4; the paper-scale suites set them, with
    lookahead_lr='scheduled', see experiments/reproduce/suites/_common.py).
  * not followed either: the script draws every batch from a freshly shuffled
    loader (i.i.d. batches); here batches follow the run's epoch sampler
    (not measured).
Before these defaults (flax's zero-bias initialisation of V, Adam, normalised)
4 of 10 seeds learned a V that rises with the loss (AUROC 0.027-0.036); without
normalisation (MW-Net.py's choice) 4 of 5 seeds did (AUROC 0.025-0.034).

Method fields (all under config.method; shared fields in configs/common.py):
  wnet_hidden        hidden width of the weight net (paper: 100).
  wnet_optimizer     optimizer of the weight net: 'adam' (default; MW-Net.py's)
                     or 'nesterov' (SGD, momentum 0.9, Nesterov;
                     train_WRN-28-10_Meta_PGC.py's, lr 1e-3, wd 5e-4).
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
                     written as a string ('0.1'). Same field and default as
                     configs/l2rw.py.
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
  m.wnet_weight_decay = 1e-4
  m.normalize = True
  m.wnet_optimizer = 'adam'
  m.lookahead_lr = 'scheduled'
  m.meta_batch_size = 0
  m.mode = 'reverse'
  if arg.smoke:
    m.wnet_hidden = 16
  return config
