"""The non-finite guard: every step of every method, checked on the device.

`guard_step` wraps a Method's step so that an update with a non-finite float
(in the metrics or in either new state) is never applied. Under
config.nonfinite='skip' the update is skipped and counted (metric SKIPPED);
under 'stop' the states freeze at the last good step, and the loop
checkpoints them and raises datarater.errors.Diverged.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

NONFINITE_POLICIES = ('stop', 'skip')
SKIPPED = 'nonfinite/skipped'  # metric (skip policy): updates skipped in the logging window


class Guard(NamedTuple):
  """Device-side record of non-finite updates.

  skipped: updates skipped so far (policy 'skip').
  bad_step: 0-based step of the first non-finite update (policy 'stop'), or -1.
  bad_code: index, into the names the guarded step records, of what was non-finite.
  """
  skipped: jax.Array
  bad_step: jax.Array
  bad_code: jax.Array


def _all_finite(tree) -> jax.Array:
  checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack(checks)) if checks else jnp.bool_(True)


def guard_step(step_fn, policy: str, names: list):
  """Wraps a Method's step with the non-finite policy (for every method alike).

  The guarded step(train_state, method_state, guard, batch, key, step) checks
  that every float of the metrics and of both new states is finite (losses,
  gradients through the parameters and optimizer moments, meta-gradients and
  rater parameters, DRO/DoReMi weights: whatever the method keeps or reports).
  A non-finite update is never applied. Policy 'skip' keeps the old states,
  counts the update in `guard.skipped` and reports the metric SKIPPED. Policy
  'stop' records the first such step in `guard` and turns every later step into
  a no-op, so the states stay the last good ones until the loop stops the run.

  Args:
    step_fn: the Method's step.
    policy: one of NONFINITE_POLICIES.
    names: a list, filled when the step is traced with what `bad_code` indexes:
      'metric <name>' for each metric, then 'train_state', 'method_state'.

  Returns:
    The guarded step, returning (train_state, method_state, guard, metrics).
  """
  def guarded(train_state, method_state, guard: Guard, batch, key, step):
    new_ts, new_ms, metrics = step_fn(train_state, method_state, batch, key)
    flat = jax.tree_util.tree_flatten_with_path(metrics)[0]
    names[:] = [f'metric {jax.tree_util.keystr(p, simple=True, separator="/")}' for p, _ in flat]
    names.extend(['train_state (model parameters or optimizer state)', 'method_state'])
    finite = jnp.stack([_all_finite(x) for _, x in flat]
                       + [_all_finite(new_ts), _all_finite(new_ms)])
    ok = jnp.all(finite)
    first = ~ok & (guard.bad_step < 0)
    apply = ok & (guard.bad_step < 0)
    new_ts, new_ms = jax.tree.map(lambda n, o: jnp.where(apply, n, o),
                                  (new_ts, new_ms), (train_state, method_state))
    if policy == 'skip':
      guard = guard._replace(skipped=guard.skipped + first.astype(jnp.int32))
      metrics = {**metrics, SKIPPED: first.astype(jnp.float32)}
    else:
      guard = guard._replace(bad_step=jnp.where(first, step, guard.bad_step),
                             bad_code=jnp.where(first, jnp.argmin(finite), guard.bad_code))
    return new_ts, new_ms, guard, metrics
  return guarded
