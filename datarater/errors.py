"""The one config-error mechanism: `ConfigError` raised through `require`.

A ConfigError's message is one line naming `config.<field>`; the entry point
turns it into exit status 2 before anything is written. Method modules, model
and rater builders raise it for bad `config.*` values; the math packages never
see a config and raise plain ValueErrors.
"""

from __future__ import annotations

import numbers


class ConfigError(ValueError):
  """A bad config value; the message is one line naming the field."""


def require(ok: bool, field: str, requirement: str, value) -> None:
  """Raises ConfigError('config.<field> must be <requirement>, got <value>') unless ok."""
  if not ok:
    raise ConfigError(f'config.{field} must be {requirement}, got {value!r}')


def is_number(value) -> bool:
  """A real number that is not a bool."""
  return isinstance(value, numbers.Real) and not isinstance(value, bool)
