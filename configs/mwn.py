"""Meta-Weight-Net (MW-Net; Shu et al., NeurIPS 2019) on the noisy-sources presets.

Command:
  python -m experiments.train --config=configs/mwn.py:dataset=digits --workdir=runs/mwn

Arguments after ':' : dataset=digits|stdlib_text|mnist|cifar10|npz|<tfds name>, smoke.
Expected runtime: about 45 s on 2 shared CPU cores (1500 steps; the training
loop itself about 23 s; about 3.2x the FLOPs of the uniform baseline's steps).
Expected result (digits, 5 sources with label noise 0/0.2/0.4/0.6/0.8, seed 0):
  done: test accuracy 0.9192, test loss 0.2672   (uniform, same steps: 0.7604)
  [mwn] score AUROC (low weight = corrupted) 0.9577
  mean latest weight per source 0.50/0.41/0.33/0.24/0.15; V(loss) decreasing.
With --config.method.normalize=False (the paper's equations, no batch
normalization of V): test accuracy 0.7103, AUROC 0.198: V grows with the loss
and acts as a step-size knob of the SGD look-ahead (see `normalize`).

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

Method fields (all under config.method; shared fields in configs/common.py):
  wnet_hidden        hidden width of the weight net (paper: 100).
  wnet_learning_rate Adam learning rate of the weight net (paper code: 1e-3).
  wnet_weight_decay  L2 weight decay of the weight net, added to the gradient
                     as in PyTorch's Adam (paper code: 1e-4).
  normalize          divide V by its sum over the batch (times the batch size)
                     in the look-ahead and the model update, as the released
                     MW-Net code does (v_lambda / sum v_lambda); False = the
                     paper's equations, (1/n) sum_i V(L_i) L_i.
  inner_lr           look-ahead SGD step a; 0 = the model's current scheduled
                     learning rate (the paper code uses the classifier's lr).
  meta_batch_size    meta-split examples per step; 0 = config.batch_size (paper: 100 = batch).
  mode               meta-gradient computation of the one-step look-ahead
                     (datarater.meta.unroll): 'reverse' | 'remat' | 'mixed'
                     (exact, same numbers) | 'first_order'.
The model optimizer stays the preset's (config.optimizer.*), the same as the
uniform baseline's, so runs compare at equal model optimizer and steps; the
paper trains its classifiers with SGD lr 0.1, Nesterov momentum 0.9, wd 5e-4
(the cifar10 preset's optimizer).
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
  m.inner_lr = 0.0
  m.meta_batch_size = 0
  m.mode = 'reverse'
  if arg.smoke:
    m.wnet_hidden = 16
  return config
