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
net's hidden layer initialised as PyTorch's nn.Linear default
(datarater/models/weight_net.py) and trained by SGD, lr 1e-3, momentum 0.9,
Nesterov, wd 5e-4; V fed the loss values without gradient (cost.data); the
look-ahead a plain SGD step.
Measured (scores_train.npy's AUROC against the corruption flags, `score_auroc`;
seeds 0-9, each in its own run) with the default, on the label_error_detection
suite's settings (600 steps): digits, clean meta split: 0.993-0.997 on all 10
seeds, test accuracy 93.7% mean (uniform 88.1%); digits, noisy meta split
(data.meta_mode='noisy'): 0.954-0.979; tabular, clean meta: 0.786-0.869;
tabular, noisy meta: 0.739-0.783. The config's own run (digits, 1500 steps,
clean meta): 0.984-0.995.
Deviations:
  * the output layer of V starts with a zero kernel (wnet_init='flat'), so V
    starts constant: the normalised weights start as uniform weighting and only
    the meta-gradient shapes V. The script's init (PyTorch's default for the
    output layer too, 'torch') gives V a random slope in the loss, V(5) - V(0)
    from -0.26 to +0.42 over seeds 0-9, which the meta-gradient at lr 1e-3 must
    first undo within our 600-1500 steps (the script runs 20,000); on the seed
    with the steepest rising start (seed 5, +0.42, V near the sigmoid's
    saturation at high losses) it did not: V(5) - V(0) went from +0.42 to +0.36
    over 600 steps with a noisy meta split (AUROC 0.032) and to +0.02 on tabular
    with a clean one (AUROC 0.285), while from the flat start it was -0.04 and
    -0.15 (after 50 steps) to -0.34 (AUROC 0.962, 0.833). With 'torch' the other
    cells above were: digits clean 0.993-0.996, digits noisy meta 0.955-0.977 but
    seed 5, tabular clean 0.754-0.868 but seed 5, tabular noisy meta 0.729-0.782
    but seeds 0 (0.477) and 5 (0.265), the config's own run
    0.977-0.993 (clean) and 0.830-0.888 (noisy meta).
  * the look-ahead step is 0.1 (lookahead_lr='0.1'), the script's learning rate
    for its first 18,000 of 20,000 iterations, instead of the model optimizer's
    current learning rate ('scheduled', what the script does): the model
    optimizer here is the preset's (Adam 1e-3 on digits), and an SGD step on
    Theta scales with the look-ahead step, so at 1e-3 V stays at its
    initialisation and the sign of its random initial slope decides (AUROC
    0.026-0.033 on 4 of 5 seeds tried, 0.82 on the fifth). The paper-scale
    suites, whose models train by the script's SGD 0.1 schedule, set
    'scheduled' and the script's init 'torch'
    (experiments/reproduce/suites/_common.py).
  * batches follow the run's epoch sampler; the script draws each from a
    freshly shuffled loader (i.i.d. batches). Not measured.
With a noisy meta split the meta loss is the noisy training objective itself,
so its gradient has no fixed sign in the loss: from the flat start, V on digits
seed 5 rose with the loss for steps 50-500 (V(5) - V(0) up to +0.13: while the
model underfits, weight on the high-loss, mostly mislabelled, rows lowers the
loss on the meta split's own wrong labels) and fell only once the model began
to memorise (-0.04 at step 600); on 3 other seeds it fell throughout. Its
AUROC is therefore read off a weaker signal than with clean meta rows.
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
  wnet_init          initialisation of the weight net: 'flat' (default; PyTorch's
                     nn.Linear default but a zero output kernel, so V starts
                     constant: see Deviations) or 'torch' (the authors' VNet:
                     PyTorch's default for both layers).
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
  m.wnet_init = 'flat'
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
