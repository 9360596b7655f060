"""Tests for scores -> weights (datarater.weighting.scores)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from datarater.weighting import scores as S


def test_batch_softmax_sums_to_one_over_batch_axis():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16, 3)) * 5
  w = np.asarray(S.batch_softmax(x))
  assert w.shape == (16, 3) and np.all(w > 0)
  np.testing.assert_allclose(w.sum(axis=0), np.ones(3), rtol=1e-6)
  ref = np.exp(x - x.max(0)) / np.exp(x - x.max(0)).sum(0)
  np.testing.assert_allclose(w, ref, rtol=1e-5)
  # Shift invariance and a sharper distribution at a lower temperature.
  np.testing.assert_allclose(np.asarray(S.batch_softmax(x[:, 0] + 100.0)), w[:, 0], rtol=1e-4)
  cold = np.asarray(S.batch_softmax(x[:, 0], temperature=0.1))
  np.testing.assert_allclose(cold.sum(), 1.0, rtol=1e-6)
  assert cold.max() > w[:, 0].max()
  assert cold.argmax() == x[:, 0].argmax()


@pytest.mark.parametrize('temperature', [0.0, -1.0])
def test_batch_softmax_rejects_bad_temperature(temperature):
  with pytest.raises(ValueError, match='temperature'):
    S.batch_softmax(jnp.ones(3), temperature=temperature)


def test_top_k_mask_keeps_exactly_k():
  rng = np.random.default_rng(1)
  x = rng.normal(size=20).astype(np.float32)
  mask_fn = jax.jit(S.top_k_mask, static_argnums=1)
  for k in (1, 5, 20):
    m = np.asarray(mask_fn(x, k))
    assert m.dtype == np.bool_ and m.sum() == k
    if k < 20:
      assert x[m].min() > x[~m].max()
  # Ties: all equal scores still keep exactly k, the lowest indices.
  m = np.asarray(S.top_k_mask(np.zeros(6, np.float32), 4, dtype=jnp.float32))
  np.testing.assert_array_equal(m, [1, 1, 1, 1, 0, 0])
  m = np.asarray(S.top_k_mask(np.array([1., 3., 3., 0., 3.], np.float32), 2))
  np.testing.assert_array_equal(m, [False, True, True, False, False])


def test_filter_top_k_indices():
  x = np.array([0.1, 0.9, -1.0, 0.5, 0.7, 0.2, 0.3, 0.0], np.float32)
  np.testing.assert_array_equal(np.asarray(S.filter_top_k(x, k=3)), [1, 4, 3])
  # Drop the bottom rho = 75%: keep 2 of 8.
  np.testing.assert_array_equal(np.asarray(S.filter_top_k(x, keep_fraction=0.25)), [1, 4])
  assert S.keep_count(10, 0.5) == 5 and S.keep_count(10, 0.01) == 1 and S.keep_count(7, 1.0) == 7


def test_top_k_bad_arguments():
  x = jnp.zeros(5)
  for k in (0, 6, -1):
    with pytest.raises(ValueError, match='k must be in'):
      S.top_k_mask(x, k)
  with pytest.raises(ValueError, match='static Python int'):
    S.top_k_mask(x, 2.5)
  with pytest.raises(ValueError, match='exactly one'):
    S.filter_top_k(x)
  with pytest.raises(ValueError, match='exactly one'):
    S.filter_top_k(x, k=2, keep_fraction=0.5)
  with pytest.raises(ValueError, match='keep_fraction'):
    S.filter_top_k(x, keep_fraction=1.5)
  with pytest.raises(ValueError, match=r'shape \[B\]'):
    S.top_k_mask(jnp.zeros((2, 3)), 1)


def _p_accept_direct(p, b, k):
  """The DataRater formula, summed term by term in float64."""
  return sum(math.comb(b - 1, s) * (1 - p) ** s * p ** (b - 1 - s) for s in range(k))


def test_p_accept_matches_formula():
  p = np.linspace(0.0, 1.0, 11)
  for b, k in ((2, 1), (8, 1), (8, 3), (8, 7), (8, 8), (30, 10)):
    got = np.asarray(S.p_accept(p, b, k), np.float64)
    # float32 betainc: a few ulps of relative error (3e-6 seen at B=30 when XLA's
    # backend optimisations are off, as in these tests).
    np.testing.assert_allclose(got, _p_accept_direct(p, b, k), rtol=1e-5, atol=2e-6,
                               err_msg=f'{b},{k}')
    assert np.all(np.diff(got) >= -1e-7)  # Non-decreasing in p.


def test_p_accept_large_batch_is_stable():
  """B = 4096, K = 1024: the term-by-term sum has C(4095, s) ~ 1e1000; the
  beta-function form stays finite and matches a log-space sum."""
  b, k = 4096, 1024
  p = np.array([0.7, 0.74, 0.75, 0.76, 0.8])
  s = np.arange(k)
  log_comb = np.array([math.lgamma(b) - math.lgamma(i + 1) - math.lgamma(b - i) for i in s])
  log_terms = log_comb[None] + s[None] * np.log1p(-p[:, None]) + (b - 1 - s[None]) * np.log(p[:, None])
  ref = np.exp(np.logaddexp.reduce(log_terms, axis=1))
  assert ref[0] < 1e-6 and ref[-1] > 1 - 1e-6  # Sharp threshold at p = 1 - K/B.
  with jax.enable_x64(True):
    got64 = np.asarray(S.p_accept(p, b, k))
    ends64 = np.asarray(S.p_accept(np.array([0.0, 1.0]), b, k))
  assert got64.dtype == np.float64
  np.testing.assert_allclose(got64, ref, rtol=1e-9, atol=1e-15)
  np.testing.assert_array_equal(ends64, [0.0, 1.0])
  # float32: finite, and within the documented ~1e-3 (log-gamma cancellation).
  got32 = np.asarray(S.p_accept(p.astype(np.float32), b, k))
  assert got32.dtype == np.float32 and np.all(np.isfinite(got32))
  np.testing.assert_allclose(got32, ref, atol=3e-3)


def test_p_accept_matches_monte_carlo():
  """An example with score CDF value p is in the top K of a batch of B i.i.d.
  examples iff fewer than K of the other B-1 score higher. With the others'
  scores drawn as CDF values u_j ~ U(0, 1), "higher" is u_j > p."""
  b, k, n = 10, 3, 200_000
  rng = np.random.default_rng(0)
  ps = np.array([0.3, 0.6, 0.75, 0.9])
  exact = np.asarray(S.p_accept(ps, b, k), np.float64)
  for p, e in zip(ps, exact):
    others = rng.random((n, b - 1))
    mc = np.mean((others > p).sum(1) < k)
    se = math.sqrt(e * (1 - e) / n)
    assert abs(mc - e) < 5 * se + 1e-4, (p, mc, e)
  # End to end: real top-K filtering of Gaussian batches; accepted fraction of
  # an example vs P_accept of its own CDF value, plus the overall rate K/B.
  z = rng.normal(size=(n, b))
  in_top_k = (z[:, :1] < z).sum(1) < k  # Example 0 among the K largest.
  p0 = scipy.special.ndtr(z[:, 0])  # The Gaussian CDF.
  pa = np.asarray(S.p_accept(p0, b, k), np.float64)
  assert abs(in_top_k.mean() - k / b) < 5 * math.sqrt(0.21 / n)
  assert abs(pa.mean() - k / b) < 5 * math.sqrt(0.21 / n)
  # Calibration within bins of p0.
  for lo, hi in ((0.5, 0.7), (0.7, 0.8), (0.8, 0.9)):
    sel = (p0 >= lo) & (p0 < hi)
    se = math.sqrt(0.25 / sel.sum())
    assert abs(in_top_k[sel].mean() - pa[sel].mean()) < 5 * se


def test_p_accept_bad_arguments():
  for b, k in ((10, 0), (10, 11), (0, 1)):
    with pytest.raises(ValueError):
      S.p_accept(0.5, b, k)
