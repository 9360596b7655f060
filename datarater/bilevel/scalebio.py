"""First-order penalty bilevel data reweighting: ScaleBiO / F2SA.

Per-source weights ``lambda = softmax(p)`` over ``K`` sources are learned for the
bilevel problem

    min_p  L1(w*(lambda))   s.t.  w*(lambda) = argmin_w L2(lambda, w),
    L2(lambda, w) = sum_k lambda_k * lbar_k(w),

where ``lbar_k`` is the mean training loss of source ``k`` in the batch and
``L1`` is the loss on held-out (meta) data. Following F2SA (Kwon et al., ICML
2023) and ScaleBiO (Pan et al., arXiv 2406.19976) the constraint is replaced by
a penalty and a second copy ``u`` of the lower-level parameters:

    min_{p, w} max_u  L1(w) + alpha * [L2(lambda, w) - L2(lambda, u)].

One :func:`scalebio` step does, on one train batch and one meta batch:

* u-step: descend ``alpha * L2(lambda, u)``  (u tracks ``w*(lambda)``);
* w-step: descend ``alpha * L2(lambda, w) + L1(w)``;
* p-step: descend ``alpha * J_softmax(p)^T (lbar(w) - lbar(u))``, the gradient of
  the penalty with respect to ``p`` (or an exponentiated-gradient step on
  ``lambda``, see ``lambda_update``).

As ``alpha`` grows the penalty solution tends to the bilevel solution (the gap
``lbar(w) - lbar(u)`` is ``O(1/alpha)`` and ``alpha`` times it tends to the
hypergradient), with no second derivatives and no unrolling.

Only first-order derivatives are used; the cost per step is two forward and
backward passes through the model (u and w) plus one on the meta batch.

Problem interface
-----------------
``per_source_loss_fn(params, batch)`` returns either

* a tuple ``(losses, counts)`` of two ``[K]`` arrays: ``losses[k]`` the mean
  loss of source ``k``'s examples in the batch and ``counts[k]`` how many there
  were; sources with ``counts[k] == 0`` are *absent*: their loss is replaced by
  0, so they contribute nothing to ``L2`` and their entry of the loss gap is 0
  (their logit still moves through the softmax normalisation, exactly as the
  gradient of the penalty says). The function must itself return a finite loss
  with a finite gradient for absent sources (divide by ``max(count, 1)``, as
  :func:`datarater.weighting.groups.segment_mean` does), because ``0 * nan``
  is ``nan`` in backprop; or
* a single ``[K]`` array, meaning every source is present.

``meta_loss_fn(params, meta_batch)`` returns the scalar upper-level loss ``L1``.

LISA (Pan et al., 2024, "LISA: layerwise importance sampling"): optionally every
``lisa_period`` steps only ``lisa_num_blocks`` randomly chosen top-level
parameter blocks of ``u`` and ``w`` are updated (plus ``lisa_always_trainable``
blocks). Here the frozen blocks' *updates* are zeroed after the optimizer, so
the optimization dynamics match LISA; the memory saving of the PyTorch
implementation (no optimizer state for frozen blocks) is not reproduced.
"""

from collections.abc import Callable, Mapping
import numbers
from typing import Any, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import optax

PyTree = Any
Array = jax.Array
ScalarOrSchedule = Union[float, Callable[[Array], Array]]

# F2SA step-size decay exponents (benchopt's F2SA): c / (t + 1)^e.
F2SA_DECAY_EXPONENTS = {'u': 4.0 / 7.0, 'w': 5.0 / 7.0, 'p': 4.0 / 7.0}
F2SA_ALPHA_EXPONENT = 1.0 / 7.0


# ---------------------------------------------------------------------------
# Shared per-source helpers (also used by ``implicit.py``).
# ---------------------------------------------------------------------------


def source_losses(per_source_loss_fn: Callable[..., Any], params: PyTree,
                  batch: Any) -> tuple[Array, Array]:
  """Calls ``per_source_loss_fn`` and zeroes the losses of absent sources.

  Args:
    per_source_loss_fn: ``(params, batch) -> [K]`` or ``-> ([K], counts [K])``.
    params: parameters.
    batch: batch.

  Returns:
    ``(losses, present)``: ``[K]`` losses with absent sources set to 0, and a
    ``[K]`` bool array, True where the source is in the batch.
  """
  out = per_source_loss_fn(params, batch)
  if isinstance(out, tuple):
    losses, counts = out
    present = jnp.asarray(counts) > 0
  else:
    losses = out
    present = jnp.ones(losses.shape, dtype=bool)
  if losses.ndim != 1:
    raise ValueError(
        f'per_source_loss_fn must return a [K] vector, got shape {losses.shape}')
  losses = jnp.where(present, losses, jnp.zeros_like(losses))
  return losses, present


def weighted_loss(per_source_loss_fn: Callable[..., Any], p: Array,
                  params: PyTree, batch: Any) -> Array:
  """Lower-level loss ``L2(softmax(p), params) = sum_k lambda_k lbar_k``.

  Args:
    per_source_loss_fn: see the module docstring.
    p: ``[K]`` logits.
    params: lower-level parameters.
    batch: train batch.

  Returns:
    Scalar ``L2``; absent sources contribute 0.
  """
  losses, _ = source_losses(per_source_loss_fn, params, batch)
  return jnp.dot(jax.nn.softmax(p), losses)


def softmax_vjp(p: Array, g_lambda: Array) -> Array:
  """``J_softmax(p)^T g = lambda * (g - <lambda, g>)``: a lambda-gradient to p."""
  lam = jax.nn.softmax(p)
  return lam * (g_lambda - jnp.dot(lam, g_lambda))


# ---------------------------------------------------------------------------
# LISA block masking.
# ---------------------------------------------------------------------------


def _path_key(entry: Any) -> Any:
  for attr in ('key', 'idx', 'name'):
    if hasattr(entry, attr):
      return getattr(entry, attr)
  return entry


def _unwrap_params(params: PyTree) -> tuple[PyTree, int]:
  """Flax variable dicts ``{'params': {...}}`` are unwrapped one level."""
  if isinstance(params, Mapping) and list(params.keys()) == ['params']:
    return params['params'], 1
  return params, 0


def top_level_blocks(params: PyTree) -> list[Any]:
  """Names of the top-level parameter blocks that LISA samples from.

  Blocks are the children of ``params`` (of ``params['params']`` for a flax
  variable dict with only a ``'params'`` collection): dict keys or sequence
  indices. A bare array is a single block named ``None``.

  Args:
    params: parameter pytree.

  Returns:
    Block names in pytree (sorted-key) order.
  """
  inner, _ = _unwrap_params(params)
  names = []
  for path, _ in jax.tree_util.tree_flatten_with_path(inner)[0]:
    name = _path_key(path[0]) if path else None
    if name not in names:
      names.append(name)
  return names


def lisa_mask(
    key: Array, step: Array, params: PyTree, num_blocks: int, period: int,
    always_trainable: Sequence[Any] = (),
) -> PyTree:
  """Which parameter leaves LISA updates at ``step``: a pure fn of (key, step).

  Every ``period`` steps a fresh set of ``num_blocks`` top-level blocks (see
  :func:`top_level_blocks`) is drawn uniformly without replacement from the
  blocks not in ``always_trainable``, using ``fold_in(key, step // period)``.

  Args:
    key: PRNG key.
    step: int step counter (may be traced).
    params: parameter pytree (only its structure is used).
    num_blocks: how many sampled blocks are active.
    period: steps between re-draws (``>= 1``).
    always_trainable: block names that are always active (e.g. embeddings and
      the head, as in ScaleBiO's LISA setup).

  Returns:
    A pytree with the structure of ``params`` whose leaves are scalar bools.
  """
  names = top_level_blocks(params)
  unknown = [n for n in always_trainable if n not in names]
  if unknown:
    raise ValueError(
        f'lisa_always_trainable: unknown blocks {unknown}; blocks are {names}')
  sampled = [n for n in names if n not in always_trainable]
  if period < 1:
    raise ValueError(f'lisa_period must be >= 1, got {period}')
  if not 0 <= num_blocks <= len(sampled):
    raise ValueError(f'lisa_num_blocks must be in [0, {len(sampled)}], '
                     f'got {num_blocks}')
  window_key = jax.random.fold_in(key, jnp.asarray(step) // period)
  chosen = jax.random.permutation(window_key, len(sampled))[:num_blocks]
  sampled_active = jnp.zeros((len(sampled),), bool).at[chosen].set(True)
  active = {}
  for i, n in enumerate(sampled):
    active[n] = sampled_active[i]
  for n in always_trainable:
    active[n] = jnp.asarray(True)
  _, depth = _unwrap_params(params)

  def leaf_mask(path, _):
    name = _path_key(path[depth]) if len(path) > depth else None
    return active[name]

  return jax.tree_util.tree_map_with_path(leaf_mask, params)


def apply_mask(updates: PyTree, mask: PyTree) -> PyTree:
  """Zeroes the updates of leaves whose mask is False."""
  return jax.tree.map(lambda u, m: jnp.where(m, u, jnp.zeros_like(u)),
                      updates, mask)


# ---------------------------------------------------------------------------
# ScaleBiO / F2SA.
# ---------------------------------------------------------------------------


class ScaleBiOState(NamedTuple):
  """State of the penalty method.

  Attributes:
    p: ``[K]`` logits of the source weights, ``lambda = softmax(p)``; kept
      zero-mean (softmax is shift invariant).
    u: auxiliary lower-level parameters (track ``argmin_u L2(lambda, u)``).
    w: penalised lower-level parameters (the model one trains and evaluates).
    opt_state_p: optax state of the ``p`` optimizer.
    opt_state_u: optax state of the ``u`` optimizer.
    opt_state_w: optax state of the ``w`` optimizer.
    step: int32 step counter (drives alpha, decays and LISA).
    key: PRNG key for LISA block sampling.
  """
  p: Array
  u: PyTree
  w: PyTree
  opt_state_p: optax.OptState
  opt_state_u: optax.OptState
  opt_state_w: optax.OptState
  step: Array
  key: Array


class ScaleBiO(NamedTuple):
  """``init`` / ``step`` pair returned by :func:`scalebio`."""
  init: Callable[..., ScaleBiOState]
  step: Callable[..., tuple[ScaleBiOState, dict[str, Array]]]
  alpha_fn: Callable[[Array], Array]


def _check_positive(name: str, value: Any) -> None:
  if not callable(value) and not float(value) > 0:
    raise ValueError(f'{name} must be > 0, got {value!r}')


def _check_choice(name: str, value: Any, choices: Mapping[str, Any]) -> None:
  if value not in choices:
    raise ValueError(f'{name} must be one of {sorted(choices)}, got {value!r}')


def _sgd(lr: ScalarOrSchedule,
         weight_decay: float) -> optax.GradientTransformation:
  if weight_decay:
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(lr))
  return optax.sgd(lr)


# Default optimizers for u and w: name -> (lr, weight_decay) -> optimizer.
INNER_OPTIMIZERS = {
    'adamw': lambda lr, wd: optax.adamw(lr, weight_decay=wd),
    'adam': lambda lr, wd: optax.adam(lr),
    'sgd': _sgd,
}

# lambda updates: name -> (direction fn (p, g_lambda) -> logit-space direction
# fed to the p optimizer, default p optimizer lr -> optimizer).
LAMBDA_UPDATES = {
    'adam': (softmax_vjp, optax.adam),   # gradient of the penalty w.r.t. p
    'mirror': (lambda p, g: g, optax.sgd),  # exponentiated gradient on lambda
}


def _with_decay(opt: optax.GradientTransformation,
                exponent: float) -> optax.GradientTransformation:
  """Multiplies the optimizer's updates by ``(t + 1)^-exponent``."""
  return optax.chain(
      opt, optax.scale_by_schedule(lambda t: (t + 1.0) ** (-exponent)))


class Optimizers(NamedTuple):
  """The optax optimizers of ``u``, ``w`` and the logits ``p``."""
  u: optax.GradientTransformation
  w: optax.GradientTransformation
  p: optax.GradientTransformation


def make_optimizers(
    *,
    lambda_update: str = 'adam',
    lr_lambda: ScalarOrSchedule = 1e-2,
    lr_u: ScalarOrSchedule = 1e-3,
    lr_w: ScalarOrSchedule = 1e-3,
    inner_optimizer: str = 'adamw',
    weight_decay: float = 0.0,
    decay_step_sizes: bool = False,
    decay_exponents: Optional[Mapping[str, float]] = None,
    optimizer_u: Optional[optax.GradientTransformation] = None,
    optimizer_w: Optional[optax.GradientTransformation] = None,
    optimizer_p: Optional[optax.GradientTransformation] = None,
) -> Optimizers:
  """The u, w and p optimizers of :func:`scalebio`.

  Args:
    lambda_update: ``'adam'`` or ``'mirror'`` (see :func:`scalebio`): picks the
      default p optimizer, ``optax.adam(lr_lambda)`` (as in ScaleBiO's code)
      or ``optax.sgd(lr_lambda)`` (exponentiated gradient on lambda).
    lr_lambda: step size of the default ``p`` optimizer (ScaleBiO: 1e-2).
    lr_u: step size of the default ``u`` optimizer.
    lr_w: step size of the default ``w`` optimizer.
    inner_optimizer: default optimizer for ``u`` and ``w``: ``'adamw'``
      (ScaleBiO, with ``weight_decay`` 5e-4 in their code), ``'adam'`` or
      ``'sgd'``.
    weight_decay: decoupled weight decay for ``'adamw'`` (added to the gradient
      for ``'sgd'``).
    decay_step_sizes: if True, every optimizer's updates are multiplied by
      ``(t + 1)^-e`` with F2SA's exponents (u 4/7, w 5/7, p 4/7), also when a
      custom optimizer is given.
    decay_exponents: override of those exponents, a mapping with keys among
      ``'u'``, ``'w'``, ``'p'``.
    optimizer_u: optional optax optimizer for ``u`` (overrides ``lr_u``,
      ``inner_optimizer`` and ``weight_decay``).
    optimizer_w: same for ``w``.
    optimizer_p: same for ``p`` (overrides ``lr_lambda``).

  Returns:
    :class:`Optimizers` ``(u, w, p)``.

  Raises:
    ValueError: on an invalid option (the message starts with its name).
  """
  _check_choice('lambda_update', lambda_update, LAMBDA_UPDATES)
  _check_choice('inner_optimizer', inner_optimizer, INNER_OPTIMIZERS)
  for name, lr, given in (('lr_lambda', lr_lambda, optimizer_p),
                          ('lr_u', lr_u, optimizer_u),
                          ('lr_w', lr_w, optimizer_w)):
    if given is None:
      _check_positive(name, lr)
  if not weight_decay >= 0:
    raise ValueError(f'weight_decay must be >= 0, got {weight_decay!r}')
  exponents = dict(F2SA_DECAY_EXPONENTS)
  if decay_exponents is not None:
    bad = set(decay_exponents) - set(exponents)
    if bad:
      raise ValueError(
          f'decay_exponents: unknown keys {sorted(bad)}, use u, w, p')
    exponents.update(decay_exponents)
  inner = INNER_OPTIMIZERS[inner_optimizer]
  opts = Optimizers(
      u=optimizer_u or inner(lr_u, weight_decay),
      w=optimizer_w or inner(lr_w, weight_decay),
      p=optimizer_p or LAMBDA_UPDATES[lambda_update][1](lr_lambda))
  if decay_step_sizes:
    opts = Optimizers(*(_with_decay(opt, exponents[name])
                        for name, opt in zip(Optimizers._fields, opts)))
  return opts


def make_alpha_fn(alpha: ScalarOrSchedule, alpha_exponent: float = 0.0,
                  alpha_max: Optional[float] = None) -> Callable[[Array], Array]:
  """Penalty schedule ``alpha_t = alpha(t) * (t + 1)^alpha_exponent``.

  Args:
    alpha: constant ``> 0`` or a schedule ``step -> alpha``.
    alpha_exponent: growth exponent, ``>= 0``; F2SA uses ``1/7``.
    alpha_max: optional cap.

  Returns:
    ``step -> alpha_t`` (jit-able).
  """
  _check_positive('alpha', alpha)
  if not alpha_exponent >= 0:
    raise ValueError(f'alpha_exponent must be >= 0, got {alpha_exponent!r}')
  if alpha_max is not None:
    _check_positive('alpha_max', alpha_max)

  def alpha_fn(step):
    dtype = jnp.result_type(float)  # float64 under jax_enable_x64
    t = jnp.asarray(step, dtype)
    base = alpha(step) if callable(alpha) else alpha
    a = base * (t + 1.0) ** alpha_exponent
    if alpha_max is not None:
      a = jnp.minimum(a, alpha_max)
    return jnp.asarray(a, dtype)

  return alpha_fn


def scalebio(
    per_source_loss_fn: Callable[..., Any],
    meta_loss_fn: Callable[[PyTree, Any], Array],
    *,
    alpha: ScalarOrSchedule = 10.0,
    alpha_exponent: float = 0.0,
    alpha_max: Optional[float] = None,
    lambda_update: str = 'adam',
    optimizers: Optional[Optimizers] = None,
    normalize_inner: bool = False,
    recompute_losses: bool = False,
    lisa_period: int = 0,
    lisa_num_blocks: int = 0,
    lisa_always_trainable: Sequence[Any] = (),
) -> ScaleBiO:
  """ScaleBiO / F2SA penalty method for per-source weights.

  Args:
    per_source_loss_fn: ``(params, batch) -> [K]`` or ``-> ([K] losses, [K]
      counts)``; see the module docstring for absent sources.
    meta_loss_fn: ``(params, meta_batch) -> scalar`` upper-level loss ``L1``.
    alpha: penalty weight, ``> 0`` constant or a schedule ``step -> alpha``.
      ScaleBiO uses 10 (GPT-2) or 100 (8B models).
    alpha_exponent: growth ``alpha_t = alpha * (t + 1)^alpha_exponent``; 0 is
      constant, F2SA uses 1/7 (:data:`F2SA_ALPHA_EXPONENT`).
    alpha_max: optional cap on ``alpha_t``.
    lambda_update: ``'adam'``: gradient step on the logits ``p`` with the
      penalty's logit gradient ``alpha * J_softmax(p)^T (lbar(w) - lbar(u))``
      through the p optimizer (by default Adam, as in ScaleBiO's code).
      ``'mirror'``: exponentiated gradient / mirror descent on the simplex,
      ``lambda <- lambda * exp(-lr_lambda * g) / Z`` with the lambda-gradient
      ``g = alpha * (lbar(w) - lbar(u))``, i.e. the p optimizer (by default
      SGD) applied to ``g`` as a logit update.
    optimizers: the u, w and p optimizers (:func:`make_optimizers`; pass it
      the same ``lambda_update``); default
      ``make_optimizers(lambda_update=lambda_update)``.
    normalize_inner: if True, the u- and w-objectives are divided by
      ``alpha_t`` (u descends ``L2``, w descends ``L2 + L1 / alpha_t``): same
      minimisers, gradients that do not grow with ``alpha_t``, so plain SGD
      step sizes stay stable when alpha grows (F2SA's ``1/lambda`` step sizes).
      The p-gradient is unaffected.
    recompute_losses: False (default): the p-gradient uses the per-source
      losses from the u/w forward passes at ``(u_t, w_t)`` (simultaneous
      update, no extra cost). True: it uses losses at the updated
      ``(u_{t+1}, w_{t+1})`` as in F2SA's Algorithm 1 (two extra forward passes).
    lisa_period: if ``> 0``, LISA is on: every ``lisa_period`` steps a new set
      of blocks is drawn (see :func:`lisa_mask`).
    lisa_num_blocks: number of sampled active top-level blocks (ScaleBiO: 2 or 4).
    lisa_always_trainable: block names always updated (embeddings, head).

  Returns:
    A :class:`ScaleBiO` with ``init(p0_or_num_sources, params_u, params_w=None,
    key=None) -> ScaleBiOState`` and ``step(state, train_batch, meta_batch) ->
    (state, metrics)``. ``metrics`` has ``lambda`` ``[K]``, ``alpha``, ``L1``
    (meta loss at ``w_t``), ``L2_w``, ``L2_u`` and ``L2_gap = L2_w - L2_u`` (at
    ``lambda_t`` and the params the p-gradient used), ``grad_p`` (the penalty's
    logit gradient ``[K]``), ``grad_p_norm``, ``present`` ``[K]`` and the
    per-source losses ``lbar_w`` and ``lbar_u`` ``[K]`` (absent sources 0)
    that the p-gradient used.

  Raises:
    ValueError: on an invalid option (the message names the field).
  """
  _check_choice('lambda_update', lambda_update, LAMBDA_UPDATES)
  if optimizers is None:
    optimizers = make_optimizers(lambda_update=lambda_update)
  optimizer_u, optimizer_w, optimizer_p = optimizers
  direction_fn = LAMBDA_UPDATES[lambda_update][0]
  alpha_fn = make_alpha_fn(alpha, alpha_exponent, alpha_max)
  if lisa_period < 0:
    raise ValueError(f'lisa_period must be >= 0, got {lisa_period!r}')
  if lisa_period and lisa_num_blocks < 0:
    raise ValueError(f'lisa_num_blocks must be >= 0, got {lisa_num_blocks!r}')

  def init(p0_or_num_sources, params_u, params_w=None, key=None):
    """Initial state.

    Args:
      p0_or_num_sources: ``[K]`` initial logits, or ``K`` (uniform weights).
      params_u: initial ``u``.
      params_w: initial ``w`` (defaults to a copy of ``params_u``, as in
        ScaleBiO where both start from the same pretrained model).
      key: PRNG key for LISA (default ``PRNGKey(0)``).

    Returns:
      A :class:`ScaleBiOState` at step 0.
    """
    if isinstance(p0_or_num_sources, numbers.Integral):
      if p0_or_num_sources < 1:
        raise ValueError(
            f'num_sources must be >= 1, got {p0_or_num_sources}')
      p0 = jnp.zeros((p0_or_num_sources,), jnp.result_type(float))
    else:
      p0 = jnp.asarray(p0_or_num_sources)
      if p0.ndim != 1 or not jnp.issubdtype(p0.dtype, jnp.floating):
        raise ValueError(f'p0 must be a float [K] vector, got {p0.dtype}'
                         f'{list(p0.shape)}')
      p0 = p0 - jnp.mean(p0)
    if params_w is None:
      params_w = jax.tree.map(jnp.array, params_u)
    if key is None:
      key = jax.random.PRNGKey(0)
    if lisa_period:  # validate block names and counts now (trace only)
      jax.eval_shape(lambda k: lisa_mask(k, 0, params_u, lisa_num_blocks,
                                         lisa_period, lisa_always_trainable),
                     key)
    return ScaleBiOState(
        p=p0, u=params_u, w=params_w,
        opt_state_p=optimizer_p.init(p0),
        opt_state_u=optimizer_u.init(params_u),
        opt_state_w=optimizer_w.init(params_w),
        step=jnp.zeros((), jnp.int32), key=key)

  def step(state, train_batch, meta_batch):
    """One u-, w- and p-step; returns ``(new_state, metrics)``."""
    t = state.step
    a = alpha_fn(t)
    p = state.p
    lam = jax.nn.softmax(p)
    scale = 1.0 / a if normalize_inner else 1.0

    def u_objective(u):
      losses, present = source_losses(per_source_loss_fn, u, train_batch)
      return scale * a * jnp.dot(lam, losses), (losses, present)

    def w_objective(w):
      losses, _ = source_losses(per_source_loss_fn, w, train_batch)
      l1 = meta_loss_fn(w, meta_batch)
      return scale * (a * jnp.dot(lam, losses) + l1), (losses, l1)

    (_, (lbar_u, present)), g_u = jax.value_and_grad(
        u_objective, has_aux=True)(state.u)
    (_, (lbar_w, l1)), g_w = jax.value_and_grad(
        w_objective, has_aux=True)(state.w)

    upd_u, opt_state_u = optimizer_u.update(g_u, state.opt_state_u, state.u)
    upd_w, opt_state_w = optimizer_w.update(g_w, state.opt_state_w, state.w)
    if lisa_period:
      mask = lisa_mask(state.key, t, state.u, lisa_num_blocks, lisa_period,
                       lisa_always_trainable)
      upd_u = apply_mask(upd_u, mask)
      upd_w = apply_mask(upd_w, mask)
    u = optax.apply_updates(state.u, upd_u)
    w = optax.apply_updates(state.w, upd_w)

    if recompute_losses:
      lbar_u, present = source_losses(per_source_loss_fn, u, train_batch)
      lbar_w, _ = source_losses(per_source_loss_fn, w, train_batch)

    gap = jnp.where(present, lbar_w - lbar_u, 0.0)
    g_lambda = a * gap
    grad_p = softmax_vjp(p, g_lambda)
    direction = direction_fn(p, g_lambda)
    upd_p, opt_state_p = optimizer_p.update(
        direction.astype(p.dtype), state.opt_state_p, p)
    p_new = optax.apply_updates(p, upd_p)
    p_new = p_new - jnp.mean(p_new)

    l2_w = jnp.dot(lam, lbar_w)
    l2_u = jnp.dot(lam, lbar_u)
    metrics = {
        'lambda': lam,
        'alpha': a,
        'L1': l1,
        'L2_w': l2_w,
        'L2_u': l2_u,
        'L2_gap': l2_w - l2_u,
        'grad_p': grad_p,
        'grad_p_norm': jnp.linalg.norm(grad_p),
        'present': present,
        'lbar_w': lbar_w,
        'lbar_u': lbar_u,
    }
    new_state = ScaleBiOState(
        p=p_new, u=u, w=w, opt_state_p=opt_state_p, opt_state_u=opt_state_u,
        opt_state_w=opt_state_w, step=t + 1, key=state.key)
    return new_state, metrics

  return ScaleBiO(init=init, step=step, alpha_fn=alpha_fn)
