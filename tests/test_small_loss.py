"""Small-loss selection: the rule (datarater.weighting.small_loss) on hand-made losses, and
the method (datarater.methods.small_loss) in the loop."""

import jax.numpy as jnp
import numpy as np
import pytest

from datarater.errors import ConfigError
from datarater.weighting.small_loss import forget_rate_schedule, small_loss_weights


def test_keeps_the_smallest_losses():
  losses = jnp.array([0.3, 2.0, 0.1, 5.0, 0.2])
  w = small_loss_weights(losses, 0.4)  # keep ceil(0.6 * 5) = 3: indices 0, 2, 4
  np.testing.assert_allclose(w, [1 / 3, 0, 1 / 3, 0, 1 / 3], rtol=1e-6)
  np.testing.assert_allclose(small_loss_weights(losses, 0.0), np.full(5, 0.2), rtol=1e-6)


def test_forget_rate_ramps_linearly_then_holds():
  rates = [float(forget_rate_schedule(t, 0.4, 10)) for t in (0, 5, 10, 20)]
  np.testing.assert_allclose(rates, [0.0, 0.2, 0.4, 0.4], rtol=1e-6)
  assert float(forget_rate_schedule(0, 0.4, 0)) == pytest.approx(0.4)  # no ramp: r at once


def test_bad_arguments_name_the_argument():
  with pytest.raises(ValueError, match='forget_rate'):
    small_loss_weights(jnp.ones(4), 1.0)
  with pytest.raises(ValueError, match='ramp_steps'):
    forget_rate_schedule(0, 0.4, -1)


def test_in_the_loop_noisy_sources_lose_weight(run_smoke):
  # The full-size MLP for 200 steps: the smoke MLP's losses barely separate the sources in a
  # few steps (its mass was flat within +-0.03 of 0.2), so it could not show the rule at work.
  summary, rows, _ = run_smoke('small_loss', arg='dataset=digits', scores=True, num_steps=200,
                               eval_every=100, checkpoint_every=200, method__forget_rate=0.5,
                               method__ramp_steps=20)
  mass = summary['source_weight_mass']  # sources with label noise 0, .2, .4, .6, .8
  assert mass[0] > 0.24 and mass[-1] < 0.16 and mass[0] > mass[2] > mass[-1], mass
  assert any(r.get('small_loss/forget_rate') == 0.5 for r in rows)


def test_bad_forget_rate_is_one_line(run_smoke):
  with pytest.raises(ConfigError, match='config.method.forget_rate'):
    run_smoke('small_loss', method__forget_rate=1.0)
