"""The one-line errors every layer raises, and `require`, the one config check.

Each message is one line; the entry points turn ConfigError, DataError and
WorkdirError into exit status 2 and Diverged into exit status 3, before
anything is written (Diverged: after the last good state is checkpointed).
Method modules, model and rater builders raise ConfigError through `require`
for bad `config.*` values; the math packages never see a config and raise
plain ValueErrors.
"""

from __future__ import annotations

import numbers


class ConfigError(ValueError):
  """A bad config value; the message is one line naming the field."""


class DataError(ValueError):
  """Bad or missing data; the message is one line naming the problem."""


class WorkdirError(ValueError):
  """The run directory cannot be used; the message is one line naming it."""


class Diverged(RuntimeError):
  """A run stopped on a non-finite value (config.nonfinite='stop'); one-line message."""


def require(ok: bool, field: str, requirement: str, value) -> None:
  """Raises ConfigError('config.<field> must be <requirement>, got <value>') unless ok."""
  if not ok:
    raise ConfigError(f'config.{field} must be {requirement}, got {value!r}')


def is_number(value) -> bool:
  """A real number that is not a bool."""
  return isinstance(value, numbers.Real) and not isinstance(value, bool)
