"""Training-dynamics and held-out scorers against hand-computed tiny cases."""

import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from datarater.dynamics import aum
from datarater.dynamics import cartography
from datarater.dynamics import confident_learning as cl
from datarater.dynamics import data_diet
from datarater.dynamics import forgetting

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------
# AUM.
# ----------------------------------------------------------------------------


def test_aum_of_a_fixed_logit_sequence():
  # Example 0 (label 0) seen three times, example 1 (label 2) once, example 2
  # never. Margins of example 0: 2 - 1 = 1, 0 - 3 = -3, 1 - 1 = 0.
  state = aum.aum_init(3)
  state = aum.aum_update(state, jnp.array([0, 1]),
                         jnp.array([[2., 1., 0.], [0., 0., 5.]]),
                         jnp.array([0, 2]))
  # A padded entry (valid=False) repeating id 1 must not count.
  state = aum.aum_update(state, jnp.array([0, 1]),
                         jnp.array([[0., 3., 1.], [9., 0., 0.]]),
                         jnp.array([0, 2]), valid=jnp.array([True, False]))
  state = aum.aum_update(state, jnp.array([0]), jnp.array([[1., 1., -2.]]),
                         jnp.array([0]))
  scores = np.asarray(aum.aum_scores(state))
  np.testing.assert_allclose(scores[:2], [(1 - 3 + 0) / 3, 5.0], rtol=1e-6)
  assert np.isnan(scores[2])
  np.testing.assert_array_equal(state.count, [3, 1, 0])


def test_threshold_samples_and_cut():
  labels = jnp.arange(40) % 3
  new, mask = aum.assign_threshold_samples(labels, 3, None, jax.random.key(0))
  assert int(mask.sum()) == 10  # 40 / (3 + 1)
  np.testing.assert_array_equal(new[mask], 3)  # the fake class C
  np.testing.assert_array_equal(new[~mask], labels[~mask])
  _, mask = aum.assign_threshold_samples(labels, 3, 0.25, jax.random.key(1))
  assert int(mask.sum()) == 10
  # Sorted AUMs -3, -1, 2 (NaN ignored): the 50th percentile is -1, the 99th
  # sits at position 0.99 * 2 = 1.98, i.e. -1 + 0.98 * (2 - (-1)) = 1.94.
  aums = jnp.array([2.0, jnp.nan, -3.0, -1.0])
  assert float(aum.aum_threshold(aums, 50)) == pytest.approx(-1.0)
  assert float(aum.aum_threshold(aums)) == pytest.approx(1.94, rel=1e-6)


# ----------------------------------------------------------------------------
# EL2N and GraNd.
# ----------------------------------------------------------------------------


def test_el2n_of_a_fixed_softmax():
  logits = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1]]))
  # p - onehot(0) = (-0.3, 0.2, 0.1); p - onehot(1) = (0.7, -0.8, 0.1).
  want = [math.sqrt(0.09 + 0.04 + 0.01), math.sqrt(0.49 + 0.64 + 0.01)]
  got = data_diet.el2n_scores(logits, jnp.array([0, 1]))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # The same two rows as the two tokens of one sequence: token mean.
  seq = data_diet.el2n_scores(logits[None], jnp.array([[0, 1]]))
  np.testing.assert_allclose(seq, [(want[0] + want[1]) / 2], rtol=1e-5)
  masked = data_diet.el2n_scores(logits[None], jnp.array([[0, 1]]),
                                 mask=jnp.array([[1, 0]]))
  np.testing.assert_allclose(masked, [want[0]], rtol=1e-5)


def _linear_loss(params, x, y):
  logits = params['w'] @ x
  return -jax.nn.log_softmax(logits)[y]


def test_grand_matches_closed_form_of_a_linear_model():
  # Softmax cross-entropy of logits W x: grad_W = (p - onehot(y)) x^T, whose
  # Frobenius norm is ||p - onehot(y)|| * ||x||.
  rng = np.random.default_rng(0)
  m, c, d, b = 3, 4, 5, 6
  ws = rng.normal(size=(m, c, d)).astype(np.float32)
  x = rng.normal(size=(b, d)).astype(np.float32)
  y = rng.integers(0, c, size=b)

  def closed_form(w):
    z = x @ w.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return np.linalg.norm(p - np.eye(c)[y], axis=1) * np.linalg.norm(x, axis=1)

  got = data_diet.grand_scores(_linear_loss, {'w': jnp.asarray(ws[0])}, x, y)
  np.testing.assert_allclose(got, closed_form(ws[0]), rtol=1e-5)
  ens = data_diet.ensemble_grand(_linear_loss, {'w': jnp.asarray(ws)}, x, y)
  want = np.mean([closed_form(w) for w in ws], axis=0)
  np.testing.assert_allclose(ens, want, rtol=1e-5)
  # EL2N over the same three models: the mean of ||p - onehot(y)||.
  el2n = data_diet.ensemble_el2n(lambda p, x: x @ p['w'].T, {'w': ws}, x, y)
  want = np.mean([closed_form(w) / np.linalg.norm(x, axis=1) for w in ws], 0)
  np.testing.assert_allclose(el2n, want, rtol=1e-5)


# ----------------------------------------------------------------------------
# Forgetting events.
# ----------------------------------------------------------------------------


def test_forgetting_counts_of_fixed_sequences():
  # Rows: presentations; columns: examples 0..4 (example 5 never seen).
  #   0: 1 0 1 1 0 -> correct->wrong twice: 2 events
  #   1: 1 1 1 1 1 -> learned, never forgotten: 0
  #   2: 0 0 0 0 0 -> never learned: max_forgets + 1 = 3
  #   3: 0 1 1 0 1 -> first wrong is no event: 1
  #   4: 0 1 (then not presented) -> 0
  seqs = [[1, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [0, 1, 1, 0, 1],
          [0, 1]]
  state = forgetting.forgetting_init(6)
  for t in range(5):
    ids = [i for i, s in enumerate(seqs) if t < len(s)]
    correct = [bool(seqs[i][t]) for i in ids]
    # Pad with an invalid repeat of id 0 that claims the opposite result.
    state = forgetting.forgetting_update(
        state, jnp.array(ids + [0]), jnp.array(correct + [not correct[0]]),
        valid=jnp.array([True] * len(ids) + [False]))
  np.testing.assert_array_equal(state.forgets, [2, 0, 0, 1, 0, 0])
  np.testing.assert_array_equal(state.seen, [5, 5, 5, 5, 2, 0])
  scores = np.asarray(forgetting.forgetting_scores(state))
  np.testing.assert_array_equal(scores[:5], [2, 0, 3, 1, 0])
  assert np.isnan(scores[5])


# ----------------------------------------------------------------------------
# Dataset cartography.
# ----------------------------------------------------------------------------


def test_cartography_of_a_fixed_probability_sequence():
  # Example 0 (label 0): p(y*) = 0.2, 0.6, 0.7 over three epochs. Mean 0.5;
  # deviations -0.3, 0.1, 0.2 -> population variance 0.14 / 3; correct at the
  # last two epochs -> 2/3. Example 1 (label 1): p = 0.9 twice. Example 2:
  # never recorded.
  state = cartography.cartography_init(3)
  for p0, p1 in [(0.2, 0.9), (0.6, 0.9), (0.7, None)]:
    rows = [[p0, 1 - p0]] + ([[1 - p1, p1]] if p1 is not None else [])
    ids = [0, 1][:len(rows)]
    state = cartography.cartography_update(
        state, jnp.array(ids), jnp.log(jnp.array(rows)),
        jnp.array([0, 1][:len(rows)]))
  conf, var, corr = (np.asarray(a) for a in
                     cartography.cartography_scores(state))
  np.testing.assert_allclose(conf[:2], [0.5, 0.9], rtol=1e-5)
  np.testing.assert_allclose(var[:2], [math.sqrt(0.14 / 3), 0.0], atol=1e-3)
  np.testing.assert_allclose(var[0], math.sqrt(0.14 / 3), rtol=1e-4)
  np.testing.assert_allclose(corr[:2], [2 / 3, 1.0], rtol=1e-6)
  assert np.isnan(conf[2]) and np.isnan(var[2]) and np.isnan(corr[2])


# ----------------------------------------------------------------------------
# Confident learning.
# ----------------------------------------------------------------------------

# Handmade 4 x 3 case: example 1 is labelled 0 but confidently class 1.
PROBS = np.array([[0.9, 0.05, 0.05],
                  [0.1, 0.8, 0.1],
                  [0.1, 0.6, 0.3],
                  [0.3, 0.1, 0.6]], np.float32)
LABELS = np.array([0, 0, 1, 2])


def test_folds_and_out_of_fold_mask():
  folds = cl.fold_assignment(10, 3, jax.random.key(0))
  assert sorted(np.bincount(np.asarray(folds), minlength=3)) == [3, 3, 4]
  mask = np.asarray(cl.out_of_fold_mask(folds, 3))
  assert mask.shape == (3, 10)
  assert not mask[np.asarray(folds), np.arange(10)].any()  # never own fold
  np.testing.assert_array_equal(mask.sum(0), 2)  # trained on by k - 1 models
  np.testing.assert_array_equal(mask, np.arange(3)[:, None] != np.asarray(folds))
  per_fold = np.arange(3)[:, None, None] * 100 + np.arange(10)[None, :, None]
  oof = np.asarray(cl.gather_out_of_fold(per_fold, folds))[:, 0]
  np.testing.assert_array_equal(oof, np.asarray(folds) * 100 + np.arange(10))


def test_thresholds_joint_and_label_issues_by_hand():
  t = np.asarray(cl.per_class_thresholds(PROBS, LABELS, 3))
  # t_0 = (0.9 + 0.1) / 2, t_1 = 0.6 (example 2 alone), t_2 = 0.6.
  np.testing.assert_allclose(t, [0.5, 0.6, 0.6], rtol=1e-6)
  # Confident classes: 0, 1, 1 (0.6 >= t_1: ties count), 2.
  np.testing.assert_array_equal(cl.confident_class(PROBS, t), [0, 1, 1, 2])
  np.testing.assert_array_equal(cl.confident_joint(PROBS, LABELS, t),
                                [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
  np.testing.assert_array_equal(cl.label_issue_mask(PROBS, LABELS, t),
                                [False, True, False, False])
  # A class nobody is labelled with gets the unreachable threshold 2.
  t = cl.per_class_thresholds(PROBS, np.array([0, 0, 1, 1]), 3)
  assert float(t[2]) == 2.0


def test_confident_class_argmax_is_over_classes_above_threshold():
  t = jnp.array([0.9, 0.3, 0.1])
  probs = jnp.array([[0.5, 0.35, 0.15],   # 1 and 2 pass: 1 (not argmax 0)
                     [0.8, 0.15, 0.05],   # nothing passes: -1
                     [0.95, 0.03, 0.02]])  # 0 passes
  np.testing.assert_array_equal(cl.confident_class(probs, t), [1, -1, 0])
  labels = jnp.array([0, 0, 0])
  joint = cl.confident_joint(probs, labels, t)
  np.testing.assert_array_equal(joint, [[1, 1, 0], [0, 0, 0], [0, 0, 0]])
  # No confident class is no evidence of a label issue.
  np.testing.assert_array_equal(cl.label_issue_mask(probs, labels, t),
                                [True, False, False])


def test_label_quality_scores_by_hand():
  np.testing.assert_allclose(cl.self_confidence(PROBS, LABELS),
                             [0.9, 0.1, 0.6, 0.6], rtol=1e-6)
  # (p_label - max other + 1) / 2.
  want = [(0.9 - 0.05 + 1) / 2, (0.1 - 0.8 + 1) / 2, (0.6 - 0.3 + 1) / 2,
          (0.6 - 0.3 + 1) / 2]
  np.testing.assert_allclose(cl.normalized_margin(PROBS, LABELS), want,
                             rtol=1e-6)
  # Adjusted: p - t + max(t) with t = (0.5, 0.6, 0.6), then renormalised.
  adj = PROBS - np.array([0.5, 0.6, 0.6]) + 0.6
  adj /= adj.sum(1, keepdims=True)
  np.testing.assert_allclose(cl.self_confidence(PROBS, LABELS, True),
                             adj[np.arange(4), LABELS], rtol=1e-5)


def test_label_quality_matches_cleanlab():
  """Against cleanlab's own outputs on 200 random rows, vendored with the inputs
  (tests/data/cleanlab_reference.py made them with cleanlab 2.7.1), so it always runs."""
  ref = np.load(os.path.join(os.path.dirname(__file__), 'data', 'cleanlab_reference.npz'))
  probs, labels = ref['probs'], ref['labels']
  for method, ours in [('self_confidence', cl.self_confidence),
                       ('normalized_margin', cl.normalized_margin)]:
    for adjust in (False, True):
      np.testing.assert_allclose(ours(probs, labels, adjust),
                                 ref[f'{method}_adjust{int(adjust)}'], atol=1e-6,
                                 err_msg=f'{method} adjust={adjust}')
  np.testing.assert_allclose(cl.per_class_thresholds(probs, labels, 5),
                             ref['confident_thresholds'], rtol=1e-6)


# ----------------------------------------------------------------------------
# Errors and imports.
# ----------------------------------------------------------------------------


def test_bad_arguments_raise_plain_value_errors():
  cases = [
      lambda: aum.assign_threshold_samples(jnp.zeros(4, int), 3, 1.5,
                                           jax.random.key(0)),
      lambda: aum.aum_threshold(jnp.zeros(3), 101),
      lambda: aum.aum_update(aum.aum_init(3), jnp.zeros(2, int),
                             jnp.zeros((2, 3)), jnp.zeros(3, int)),
      lambda: data_diet.el2n_scores(jnp.zeros((2, 3)), jnp.zeros((2, 3), int)),
      lambda: forgetting.forgetting_update(forgetting.forgetting_init(3),
                                           jnp.zeros(2, int), jnp.zeros(3)),
      lambda: cl.fold_assignment(3, 4, jax.random.key(0)),
      lambda: cl.per_class_thresholds(PROBS, LABELS, 4),
  ]
  for case in cases:
    with pytest.raises(ValueError) as err:
      case()
    assert 'config' not in str(err.value)


def test_import_loads_no_heavy_modules():
  code = ('import datarater.dynamics, datarater.dynamics.aum, '
          'datarater.dynamics.data_diet, datarater.dynamics.forgetting, '
          'datarater.dynamics.cartography, '
          'datarater.dynamics.confident_learning; import sys; '
          'heavy = [m for m in ("orbax", "matplotlib", "flax", "ml_collections", '
          '"datarater.train", "datarater.report", "datarater.methods", "datarater.run", '
          '"configs") '
          'if m in sys.modules]; assert not heavy, heavy')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT)
