"""One-line hyperparameter checks shared by the weighting rules."""

import jax


def check(name, value, ok, requirement):
  """Raises ValueError naming ``config.method.<name>`` unless ok(value).

  A traced value (a hyperparameter passed into jit) cannot be checked and is let through.
  """
  try:
    v = float(value)
  except (TypeError, jax.errors.ConcretizationTypeError):
    return
  if not ok(v):
    raise ValueError(f'config.method.{name} must be {requirement}, got {value}')
