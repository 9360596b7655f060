"""DoReMi source weights (method 'doremi'; config: configs/doremi.py).

Xie et al., "DoReMi: Optimizing Data Mixtures Speeds Up Language Model
Pretraining", NeurIPS 2023, Algorithm 1, with domains = data sources.
Pipeline (`run`), each phase `config.num_steps` steps:

1. 'reference': a reference model trained with uniform batches (sampling
   proportional to source sizes, as the paper recommends).
2. 'proxy': a fresh proxy model. Each step, on the global batch,
     lambda_g = mean over source-g examples of max(loss_proxy - loss_ref, 0)
     alpha <- softmax(log alpha + eta lambda);  alpha <- (1 - c) alpha + c / K
   (a source absent from the batch reuses its last lambda), then the proxy
   steps on sum_g alpha_g L_g (example weight alpha_{g_i} / n_{g_i}^batch,
   renormalized over the sources present). The output is the time average of
   alpha over the proxy's steps.
3. 'retrain' (if `method.retrain`): a fresh model trained with the averaged
   weights, by resampling (`retrain_mode='sample'`, the paper's use) or by
   loss weighting ('loss'), via the static_mixture method.

The summary's test metrics are the retrained model's (the proxy's when
`retrain` is off); the ledger adds all phases (the reference model's forward
pass in the proxy phase is in its FLOPs). Math: datarater/weighting/doremi.py.

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

from datarater.train.loop import add_ledgers, base_summary, phase_metrics, train_phase
from datarater.train.state import Method, weighted_step
from datarater.weighting import doremi, rules, static_mixture, uniform


class ProxyState(NamedTuple):
  doremi: doremi.DoReMiState
  ref_params: Any          # the fixed reference model's parameters


def _check(config):
  m = config.method
  rules.require(m.eta > 0, 'eta', '> 0', m.eta)
  rules.require(0 <= m.smoothing <= 1, 'smoothing', 'in [0, 1]', m.smoothing)
  rules.require(m.retrain_mode in static_mixture.MODES, 'retrain_mode',
                f'one of {static_mixture.MODES}', m.retrain_mode)


def make(config, task, dataset) -> Method:
  """Validates the config; returns the first phase's Method (the uniform reference)."""
  _check(config)
  return uniform.make(config, task, dataset)


def make_proxy(config, task, dataset, ref_params) -> Method:
  """The proxy phase: DoReMi's alpha update against the fixed reference model."""
  eta, c = float(config.method.eta), float(config.method.smoothing)
  k = dataset.info.num_sources

  def init(key, train_state):
    del key, train_state
    return ProxyState(doremi.doremi_init(k), ref_params)

  def step(train_state, state, batch, key):
    del key
    ref_losses = task.per_example_loss(state.ref_params, batch)
    groups = batch['source']

    def weights_fn(losses):
      new = doremi.doremi_update(state.doremi, losses, ref_losses, groups, k, eta, c)
      return doremi.doremi_example_weights(new.alpha, groups, k), new

    train_state, metrics, _, _, new = weighted_step(task, train_state, batch, weights_fn)
    metrics.update({'source_weights': new.alpha, 'doremi/excess_loss': new.last_excess,
                    'doremi/ref_loss': ref_losses.mean()})
    return train_state, ProxyState(new, state.ref_params), metrics

  return Method(init=init, step=step, train_batch_size=config.batch_size)


def run(ctx, task, method) -> dict:
  """reference -> proxy (DoReMi weights) -> [retrain with the averaged weights] -> summary."""
  config, data = ctx.config, ctx.dataset
  ref = train_phase(ctx, 'reference', method, task, config.num_steps)
  proxy = train_phase(ctx, 'proxy', make_proxy(config, task, data, ref.train_state.params), task,
                      config.num_steps)
  state = jax.device_get(proxy.method_state.doremi)
  weights = static_mixture.present_only(doremi.doremi_average_weights(state), data)
  rules.plot_source_curve(ctx, 'source_weights', 'source_weights.png',
                          f'DoReMi alpha (proxy; eta={config.method.eta})')
  extras = {'source_weights': weights.tolist(), 'final_alpha': np.asarray(state.alpha).tolist(),
            'reference': phase_metrics(ref), 'proxy': phase_metrics(proxy)}
  phases = [ref, proxy]
  if config.method.retrain:
    retrain = train_phase(ctx, 'retrain', static_mixture.for_weights(config, task, data, weights, config.method.retrain_mode), task,
                          config.num_steps)
    extras['retrain'] = phase_metrics(retrain)
    phases.append(retrain)
  final = phases[-1]
  summary = base_summary(ctx, final._replace(ledger=add_ledgers(*(p.ledger for p in phases))))
  summary.update(extras)
  print(f'[doremi] weights {np.round(weights, 4).tolist()}; reference test accuracy '
        f'{ref.eval["test/accuracy"]:.4f}, proxy {proxy.eval["test/accuracy"]:.4f}', flush=True)
  return summary
