"""The two normalisers of the math floor (weighting/normalize.py), on hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np

from datarater.weighting import groups, normalize, simplex


def test_mean_one_hand_values_and_zero_sum():
  v = jnp.array([0.2, 0.6, 0.2])   # mean 1/3
  np.testing.assert_allclose(normalize.mean_one(v), [0.6, 1.8, 0.6], rtol=1e-6)
  np.testing.assert_array_equal(normalize.mean_one(jnp.zeros(3)), np.zeros(3))   # no NaN
  tiny = jnp.array([1e-30, 3e-30])   # no epsilon: a tiny positive sum is still normalised
  np.testing.assert_allclose(normalize.mean_one(tiny), [0.5, 1.5], rtol=1e-6)


def test_sum_one_hand_values_and_zero_sum():
  np.testing.assert_allclose(normalize.sum_one(jnp.array([1.0, 3.0, 0.0])), [0.25, 0.75, 0.0],
                             rtol=1e-6)
  np.testing.assert_array_equal(normalize.sum_one(jnp.zeros(2)), np.zeros(2))
  np.testing.assert_allclose(normalize.sum_one(jnp.array([1e-30, 3e-30])), [0.25, 0.75],
                             rtol=1e-6)


def test_mean_one_gradient_is_finite_and_redistributes():
  """d/dv of sum_i mean_one(v)_i = B is 0: the normaliser can only redistribute weight."""
  g = jax.grad(lambda v: jnp.sum(normalize.mean_one(v)))(jnp.array([0.2, 0.5, 0.3]))
  np.testing.assert_allclose(g, np.zeros(3), atol=1e-6)
  g0 = jax.grad(lambda v: jnp.sum(normalize.mean_one(v)))(jnp.zeros(3))
  assert np.all(np.isfinite(g0))


def test_source_weights_to_example_weights_hand_case():
  """q = (0.5, 0.3, 0.2) on groups [0, 0, 1] (group 2 absent): w = q_g / n_g renormalised."""
  q = jnp.array([0.5, 0.3, 0.2])
  w = simplex.group_example_weights(q, jnp.array([0, 0, 1]), jnp.array([2, 1, 0]))
  # raw 0.25, 0.25, 0.3 over 0.8 -> 0.3125, 0.3125, 0.375
  np.testing.assert_allclose(w, [0.3125, 0.3125, 0.375], rtol=1e-6)
  np.testing.assert_allclose(groups.group_share(w, jnp.array([0, 0, 1]), 3), [0.625, 0.375, 0.0],
                             rtol=1e-6)
