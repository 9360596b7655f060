"""RegMix (Liu et al. 2024, arXiv 2407.01492): proxies on random mixtures -> regression -> train.

Command:
  python -m experiments.train --config=configs/regmix.py:dataset=digits --workdir=runs/regmix

Arguments after ':' : dataset=digits|stdlib_text|npz|<tfds name>, model=<name>, smoke
(shared keys, configs/common.py).

Two phases (datarater/methods/regmix.py has the full story): 'proxies'
(method.num_proxies models, one vmapped ensemble, method.proxy_steps steps,
member m on config.batch_size rows per step drawn from its own random
mixture), then a regression from mixture to each proxy's final mean loss on
the META split (clean or noisy by data.meta_mode) chooses the mixture, and
'train' trains the task's model on it for config.num_steps steps (resampling,
as static_mixture's 'sample' mode): the run's result. The proxies' steps and
FLOPs are charged to the method (summary.json `method_ledger`).

Method fields:
  method.num_proxies      int >= 2: proxy models, each on its own mixture (the
                          paper: 512 for 17 Pile domains).
  method.proxy_steps      int >= 1: steps of every proxy (each step: every proxy
                          takes one optimizer step on its own batch of
                          config.batch_size rows); the optimizer's schedule
                          runs over these steps.
  method.proxy_model.kwargs  dict overriding config.model.kwargs for the
                          proxies (same model name), e.g. {'hidden': (64,)}
                          for a narrower MLP (the paper's proxies have 1M
                          parameters); {} = the task's model (default, but
                          for the transformer: d_model 32, 1 layer, 2 heads,
                          mlp_ratio 2, about 1/8 of the default target's
                          FLOPs per step). Set it in a
                          config file or from Python (not a command-line flag:
                          ml_collections cannot add keys to an empty dict).
  method.same_init        bool: every proxy starts from the same initial
                          parameters (True: loss differences come from the
                          mixtures, not the draws) or from its own.
  method.prior_temperature  t > 0: mixtures are drawn around the sources'
                          shares of the training rows p, tempered as
                          p^t / sum p^t (the authors' code: 0.5; 1 = p).
  method.concentration    (low, high), 0 < low <= high: each mixture is
                          Dir(s * tempered prior) with s one of 15 values
                          log-spaced over [low, high] (the authors' code:
                          (0.1, 5.0)); small s = mixtures near single sources,
                          large s = near the prior.
  method.holdout_fraction h in [0, 1): round(h * num_proxies) proxies are held
                          out of the regression; summary.json reports each
                          regression's Spearman correlation of predicted vs
                          true meta loss on them (None with fewer than 2).
  method.regression       'linear' (loss = sum_k beta_k w_k, least squares; the
                          paper's ablation) | 'gbm' (scikit-learn gradient-
                          boosted trees, standing in for the paper's LightGBM):
                          the model that chooses the mixture (both are fitted
                          and reported).
  method.ridge            >= 0: ridge penalty of 'linear', shrinking towards the
                          mean proxy loss (0 = plain least squares).
  method.candidate_concentration  c > 0: the candidate mixtures of the choice
                          are Dir(c * p), p the (untempered) row-share prior
                          (the authors' notebook: c = 1).
  method.num_candidates   int >= 1: simulated candidate mixtures whose loss the
                          regression predicts (the authors' notebook: 100,000).
  method.top_k            int in [1, num_candidates]: the chosen mixture is the
                          mean of the top_k candidates with the lowest predicted
                          loss (the authors' notebook: 128).
Writes `source_weights` (the chosen mixture) and `regmix` (proxy mixtures and
losses, held-out Spearman per regression, linear coefficients, chosen mixture)
to summary.json. Shared fields are documented in configs/common.py.
"""

import ml_collections

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'regmix'
  config.method.num_proxies = 32
  config.method.proxy_steps = 300
  config.method.proxy_model = ml_collections.ConfigDict({'kwargs': {}})
  config.method.same_init = True
  config.method.prior_temperature = 0.5
  config.method.concentration = (0.1, 5.0)
  config.method.holdout_fraction = 0.25
  config.method.regression = 'linear'
  config.method.ridge = 0.0
  config.method.candidate_concentration = 1.0
  config.method.num_candidates = 100_000
  config.method.top_k = 128
  if config.model.name == 'transformer' and not arg.smoke:
    # RegMix's proxies are far smaller than its target (1M vs 1B parameters): on text the
    # proxies are 1-layer transformers of width 32 (the smoke model), about 1/8 of the
    # default target's FLOPs per step; the target model is config.model.
    config.method.proxy_model.kwargs = {'d_model': 32, 'num_layers': 1, 'num_heads': 2,
                                        'mlp_ratio': 2}
  if arg.smoke:
    config.method.num_proxies = 8
    config.method.proxy_steps = 4
    config.method.num_candidates = 1000
    config.method.top_k = 10
  return config
