"""Argument checks shared by the weighting math (plain ValueErrors naming the argument)."""

import jax
import jax.numpy as jnp


def check(name, value, ok, requirement):
  """Raises ValueError('<name> must be <requirement>, got <value>') unless ok(value).

  A traced value (a hyperparameter passed into jit) cannot be checked and is let through.
  """
  try:
    v = float(value)
  except (TypeError, jax.errors.ConcretizationTypeError):
    return
  if not ok(v):
    raise ValueError(f'{name} must be {requirement}, got {value}')


def as_float_vector(losses):
  """`losses` as a [B] array of at least float32; ValueError for any other rank."""
  losses = jnp.asarray(losses)
  if losses.ndim != 1:
    raise ValueError(f'losses must be a vector [B], got shape {losses.shape}')
  return losses.astype(jnp.promote_types(losses.dtype, jnp.float32))
