"""DoReMi source weights (method 'doremi'; config: configs/doremi.py).

Xie et al., "DoReMi: Optimizing Data Mixtures Speeds Up Language Model
Pretraining", NeurIPS 2023, Algorithm 1, with domains = data sources.
Pipeline (`make`), each phase `config.num_steps` steps:

1. 'reference': a reference model trained with uniform batches (sampling
   proportional to source sizes, as the paper recommends).
2. 'proxy': a fresh proxy model. Each step, on the global batch,
     lambda_g = mean over source-g tokens of max(loss_proxy - loss_ref, 0)
     alpha <- softmax(log alpha + eta lambda);  alpha <- (1 - c) alpha + c / K
   (a source absent from the batch reuses its last lambda), then the proxy
   steps on sum_g alpha_g L_g (example weight alpha_{g_i} / n_{g_i}^batch,
   renormalized over the sources present). The output is the time average of
   alpha over the proxy's steps. On language-model tasks the excess is
   clipped per token, as in the paper (the proxy's per-token losses come
   from one forward pass outside the gradient, counted in the FLOPs ledger);
   on classification tasks a token is an example.
3. 'retrain' (if `method.retrain`): a fresh model trained with the averaged
   weights, by resampling (`retrain_mode='sample'`, the paper's use) or by
   loss weighting ('loss'), via the static_mixture method.

The summary's test metrics are the retrained model's (the proxy's when
`retrain` is off), compared (paired: same initial parameters) with the
uniform reference; the ledger adds all phases (the reference model's forward
pass in the proxy phase is in its FLOPs). Math: datarater/weighting/doremi.py
and simplex.py.

Config fields:
  method.eta           step size eta > 0 of the log-weight update (paper: 1.0).
  method.smoothing     c in [0, 1] mixing alpha with uniform (paper: 1e-3).
  method.retrain       bool: train a fresh model with the averaged weights.
  method.retrain_mode  'sample' | 'loss' (see configs/static_mixture.py).
Outputs: `source_weights` (time-averaged alpha), `final_alpha`, and the
`reference` / `proxy` (/ `retrain`) phases' test metrics and ledgers in
summary.json; alpha over time in plots/source_weights.png.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from datarater.errors import require
from datarater.methods import _per_example as per_example
from datarater.methods import static_mixture, uniform
from datarater.train.pipeline import Phase, Pipeline
from datarater.train.state import Method, weighted_step
from datarater.weighting import doremi, groups, simplex

DECLARES = dict(family='source', label='DoReMi', source_weights=True)


class ProxyState(NamedTuple):
  doremi: doremi.DoReMiState
  ref_params: Any          # the fixed reference model's parameters


def _check(config):
  m = config.method
  require(m.eta > 0, 'method.eta', '> 0', m.eta)
  require(0 <= m.smoothing <= 1, 'method.smoothing', 'in [0, 1]', m.smoothing)
  require(m.retrain_mode in static_mixture.MODES, 'method.retrain_mode',
          f'one of {static_mixture.MODES}', m.retrain_mode)


def token_losses(task, params, batch):
  """Cross-entropy per token on language-model tasks, per example otherwise.

  Args:
    task: the Task.
    params: model parameters.
    batch: batch dict with `x` and `y`.

  Returns:
    [B, L] per-token losses (LM) or [B] per-example losses.
  """
  return optax.softmax_cross_entropy_with_integer_labels(task.logits(params, batch['x']),
                                                         batch['y'])


def make_proxy(config, task, dataset, ref_params) -> Method:
  """The proxy phase: DoReMi's alpha update against the fixed reference model.

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset.
    ref_params: the trained reference model's parameters.

  Returns:
    Method whose state is a ProxyState.
  """
  eta, c = float(config.method.eta), float(config.method.smoothing)
  k = dataset.info.num_sources
  per_token = task.info.task == 'lm'

  def init(key, train_state):
    del key, train_state
    return ProxyState(doremi.doremi_init(k), ref_params)

  def step(train_state, state, batch, key):
    del key
    ref_losses = token_losses(task, state.ref_params, batch)
    sources = batch['source']
    proxy_tokens = (jax.lax.stop_gradient(token_losses(task, train_state.params, batch))
                    if per_token else None)

    def weights_fn(losses):
      proxy = losses if proxy_tokens is None else proxy_tokens
      new = doremi.doremi_update(state.doremi, proxy, ref_losses, sources, k, eta, c)
      _, counts = groups.segment_mean(losses, sources, k)  # examples per source
      return simplex.group_example_weights(new.alpha.weights, sources, counts), new

    train_state, metrics, _, _, new = weighted_step(task, train_state, batch, weights_fn)
    metrics.update({'source_weights': new.alpha.weights, 'doremi/excess_loss': new.last_excess,
                    'doremi/ref_loss': ref_losses.mean()})
    return train_state, ProxyState(new, state.ref_params), metrics

  return Method(init=init, step=step, train_batch_size=config.batch_size)


def averaged_weights(proxy_state, dataset) -> np.ndarray:
  """The time average of alpha over the proxy's steps, 0 on sources absent from train.

  Args:
    proxy_state: the proxy phase's final ProxyState.
    dataset: the Dataset.

  Returns:
    [K] float64 weights summing to one.
  """
  state = jax.device_get(proxy_state.doremi)
  return static_mixture.present_only(doremi.doremi_average_weights(state), dataset)


def make(config, task, dataset) -> Pipeline:
  """reference -> proxy (DoReMi weights) -> [retrain with the averaged weights].

  Args:
    config: the run config.
    task: the Task.
    dataset: the Dataset.

  Returns:
    The Pipeline (result 'retrain', baseline 'reference'; 'proxy' without retrain).

  Raises:
    ConfigError: on a bad `config.method.*` field.
  """
  _check(config)
  m = config.method
  n = config.num_steps
  phases = [
      Phase('reference', uniform.make(config, task, dataset), n),
      Phase('proxy', lambda r: make_proxy(config, task, dataset,
                                          r['reference'].train_state.params), n),
  ]
  if m.retrain:
    phases.append(Phase('retrain', lambda r: static_mixture.for_weights(
        config, task, dataset, averaged_weights(r['proxy'].method_state, dataset),
        m.retrain_mode), n))

  def report(ctx, results):
    weights = averaged_weights(results['proxy'].method_state, dataset)
    per_example.plot_source_curve(ctx, 'source_weights', 'source_weights.png',
                                  f'DoReMi alpha (proxy; eta={m.eta})')
    alpha = np.asarray(jax.device_get(results['proxy'].method_state.doremi.alpha.weights))
    print(f'[doremi] weights {np.round(weights, 4).tolist()}', flush=True)
    return {'source_weights': weights.tolist(), 'final_alpha': alpha.tolist()}

  # The retrained model and the uniform reference start from the same parameters.
  return Pipeline(tuple(phases), result='retrain' if m.retrain else 'proxy',
                  baseline='reference' if m.retrain else None, report=report,
                  extra_cost=('proxy',))
