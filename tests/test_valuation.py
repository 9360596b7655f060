"""Data valuation (datarater.valuation): each estimator against a brute-force or closed-form
reference on a tiny case, and each method module (datarater.methods.<name>) in a smoke run."""

import itertools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config
from datarater.data import load_dataset
from datarater.errors import ConfigError
from datarater.methods import tmc_shapley as tmc_method
from datarater.methods._valuation import standardize
from datarater.run import prepare
from datarater.train.context import phase_key
from datarater.valuation import influence as inf
from datarater.valuation import knn_shapley as knn
from datarater.valuation import prototypes as proto
from datarater.valuation import tmc_shapley as tmc
from datarater.valuation import tracin as tr


def exact_shapley(n, utility):
  """Shapley values by enumerating every subset: sum_S |S|! (n-|S|-1)! / n! [U(S+i) - U(S)]."""
  value = {}
  for r in range(n + 1):
    for s in itertools.combinations(range(n), r):
      value[frozenset(s)] = utility(frozenset(s))
  phi = np.zeros(n)
  for i in range(n):
    for s, u in value.items():
      if i not in s:
        phi[i] += (math.factorial(len(s)) * math.factorial(n - len(s) - 1) / math.factorial(n)
                   * (value[s | {i}] - u))
  return phi


# ----------------------------------------------------------------------------- KNN-Shapley


def knn_utility(train_x, train_y, val_x, val_y, k, subset):
  """Mean over validation points of (1/K) #{the min(K, |S|) nearest of S with the right label}."""
  rows = np.array(sorted(subset), int)
  total = 0.0
  for x, y in zip(val_x, val_y):
    if len(rows):
      d = np.sum((train_x[rows] - x) ** 2, axis=1)
      nearest = rows[np.argsort(d, kind='stable')[:k]]
      total += np.sum(train_y[nearest] == y) / k
  return total / len(val_x)


@pytest.mark.parametrize('k', [1, 2, 3, 6])
def test_knn_shapley_equals_brute_force_enumeration(k):
  rng = np.random.default_rng(k)
  train_x, train_y = rng.normal(size=(6, 2)), rng.integers(0, 2, 6)
  val_x, val_y = rng.normal(size=(4, 2)), np.array([0, 1, 1, 0])
  exact = exact_shapley(6, lambda s: knn_utility(train_x, train_y, val_x, val_y, k, s))
  got = knn.knn_shapley(train_x, train_y, val_x, val_y, k, chunk_size=3)  # 2 chunks, one padded
  np.testing.assert_allclose(got, exact, atol=1e-6)
  assert got.sum() == pytest.approx(knn_utility(train_x, train_y, val_x, val_y, k, range(6)))
  per_point = np.asarray(knn.knn_shapley_per_point(train_x, train_y, val_x[:1], val_y[:1], k))
  np.testing.assert_allclose(per_point[0], exact_shapley(
      6, lambda s: knn_utility(train_x, train_y, val_x[:1], val_y[:1], k, s)), atol=1e-6)


def test_knn_shapley_refuses_bad_arguments():
  with pytest.raises(ValueError, match='k must'):
    knn.knn_shapley(np.zeros((3, 2)), np.zeros(3), np.zeros((1, 2)), np.zeros(1), 0)
  with pytest.raises(ValueError, match='share D'):
    knn.knn_shapley(np.zeros((3, 2)), np.zeros(3), np.zeros((1, 3)), np.zeros(1), 1)


# ----------------------------------------------------------------------------- TMC-Shapley

LEARNER = tmc.Learner(num_classes=3, steps=30, lr=1.0, l2=1e-2, metric='log_likelihood')


def tmc_case(seed=0, n=6):
  rng = np.random.default_rng(seed)
  centres = np.eye(3)[:, :2] * 2.0 - np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
  y = np.array([0, 1, 2, 0, 1, 2])[:n]
  y_val = np.tile([0, 1, 2], 3)
  x = centres[y] + 0.6 * rng.normal(size=(n, 2))
  x[-1], y[-1] = centres[0], 1  # a mislabelled point: negative value
  return (x.astype(np.float32), y, (centres[y_val] + 0.6 * rng.normal(size=(9, 2))).astype(
      np.float32), y_val)


def tmc_exact(x, y, val_x, val_y, learner=LEARNER):
  fit = jax.jit(lambda w: tmc.subset_performance(x, y, val_x, val_y, w, learner))
  subset = lambda s: jnp.zeros(len(y)).at[np.array(sorted(s), int)].set(1.0)  # noqa: E731
  return exact_shapley(len(y), lambda s: float(fit(subset(s))))


def test_tmc_over_all_permutations_without_truncation_is_exact_shapley():
  x, y, val_x, val_y = tmc_case()
  exact = tmc_exact(x, y, val_x, val_y)
  assert exact[-1] < 0 < exact[0]  # the mislabelled point hurts
  perms = np.array(list(itertools.permutations(range(6))))
  got, report = tmc.tmc_shapley(x, y, val_x, val_y, LEARNER, permutations=perms, tolerance=0.0,
                                chunk=120, block=4)
  np.testing.assert_allclose(got, exact, atol=2e-5)
  assert report['permutations'] == 720 and report['fits'] == 720 * 6
  assert got.sum() == pytest.approx(report['v_full'] - report['v_empty'], abs=1e-5)


def test_tmc_truncation_follows_algorithm_1():
  x, y, val_x, val_y = tmc_case()
  perms = np.stack([np.random.default_rng(i).permutation(6) for i in range(10)])
  fit = jax.jit(lambda w: tmc.subset_performance(x, y, val_x, val_y, w, LEARNER))
  v_full = float(fit(jnp.ones(6)))
  tolerance = 0.15
  expected, fits = np.zeros((10, 6)), 0
  for t, perm in enumerate(perms):  # Algorithm 1, written out
    v = float(fit(jnp.zeros(6)))
    for j in range(1, 7):
      if abs(v_full - v) < tolerance:
        break  # the remaining marginal contributions are 0
      new = float(fit(jnp.zeros(6).at[perm[:j]].set(1.0)))
      expected[t, perm[j - 1]] = new - v
      v, fits = new, fits + 1
  got, report = tmc.tmc_shapley(x, y, val_x, val_y, LEARNER, permutations=perms,
                                tolerance=tolerance, chunk=4, block=2)
  final = expected.mean(axis=0)
  np.testing.assert_allclose(got, final, atol=2e-5)
  assert report['fits'] == fits < 60
  # chunks of 4, 4, 2 permutations: the change over the last chunk, estimates after 10 and 8
  before = expected[:8].mean(axis=0)
  assert report['mean_relative_change'] == pytest.approx(
      np.mean(np.abs(final - before) / np.abs(final)), rel=1e-3)


def test_tmc_random_permutations_converge_to_exact_shapley():
  x, y, val_x, val_y = tmc_case(seed=2)
  exact = tmc_exact(x, y, val_x, val_y)
  got, report = tmc.tmc_shapley(x, y, val_x, val_y, LEARNER, num_permutations=800,
                                tolerance=0.02, chunk=50, block=7, seed=0)
  assert np.max(np.abs(got - exact)) < 0.05 * np.max(np.abs(exact)), (got, exact)
  assert report['mean_relative_change'] < 0.05 and report['converged']
  assert report['fits'] < report['fits_without_truncation'] == 800 * 6  # truncation saved fits
  # convergence_tol stops at the first chunk whose mean relative change is below it
  _, early = tmc.tmc_shapley(x, y, val_x, val_y, LEARNER, num_permutations=5000, tolerance=0.02,
                             chunk=50, block=7, seed=0, convergence_tol=0.05)
  assert early['permutations'] <= 800 and early['mean_relative_change'] < 0.05


# ----------------------------------------------------------------------------- TracIn


def linear_case():
  """A two-layer linear model f(x) = v . (A x) + c with squared loss; closed-form gradients."""
  rng = np.random.default_rng(0)
  params = lambda s: {'hidden': {'kernel': jnp.asarray(rng.normal(size=(3, 2)))},  # noqa: E731
                      'out': {'kernel': jnp.asarray(rng.normal(size=2)), 'bias': jnp.asarray(s)}}
  checkpoints = [(params(0.1), 0.5), (params(-0.3), 0.2)]
  x, y = rng.normal(size=(4, 3)), rng.normal(size=4)
  val_x, val_y = rng.normal(size=(3, 3)), rng.normal(size=3)

  def loss(p, xi, yi):
    h = xi @ p['hidden']['kernel']
    return 0.5 * (h @ p['out']['kernel'] + p['out']['bias'] - yi) ** 2
  return checkpoints, loss, x, y, val_x, val_y


def closed_form_grads(p, x, y):
  """Per-example gradients of 0.5 r^2, r = v . (A x) + c - y:
  d/dv = r A x, d/dc = r, d/dA = r x v^T."""
  A, v, c = (np.asarray(p['hidden']['kernel']), np.asarray(p['out']['kernel']),
             float(p['out']['bias']))
  h = x @ A
  r = h @ v + c - y
  return r[:, None] * h, r, r[:, None, None] * x[:, :, None] * v[None, None, :]


def test_tracin_last_layer_equals_closed_form(x64):
  checkpoints, loss, x, y, val_x, val_y = linear_case()
  expected = np.zeros(len(x))
  for p, lr in checkpoints:
    dv, dc, _ = closed_form_grads(p, x, y)
    vv, vc, _ = closed_form_grads(p, val_x, val_y)
    expected += lr * (dv @ vv.mean(0) + dc * vc.mean())
  got = tr.tracin(loss, checkpoints, x, y, val_x, val_y)  # last_layer: 'out', the last entry
  np.testing.assert_allclose(got, expected, rtol=1e-10)
  np.testing.assert_allclose(tr.tracin(loss, checkpoints, x, y, val_x, val_y,
                                       selector=tr.subtree(('out',))), expected, rtol=1e-10)


def test_tracin_all_params_equals_explicit_gradient_dot_products(x64):
  checkpoints, loss, x, y, val_x, val_y = linear_case()
  expected = np.zeros(len(x))
  for p, lr in checkpoints:
    dv, dc, dA = closed_form_grads(p, x, y)
    vv, vc, vA = closed_form_grads(p, val_x, val_y)
    flat = np.concatenate([dA.reshape(len(x), -1), dv, dc[:, None]], axis=1)
    vflat = np.concatenate([vA.reshape(len(val_x), -1), vv, vc[:, None]], axis=1)
    expected += lr * np.mean(flat @ vflat.T, axis=1)  # mean over validation points of the dots
  got = tr.tracin(loss, checkpoints, x, y, val_x, val_y, selector=tr.all_params)
  np.testing.assert_allclose(got, expected, rtol=1e-10)


# ----------------------------------------------------------------------------- influence

L2 = 0.1


def logistic_loss(p, xi, yi):
  """L2-regularised multinomial logistic regression, one example (H positive definite)."""
  logits = xi @ p['dense']['kernel'] + p['dense']['bias']
  return (-jax.nn.log_softmax(logits)[yi]
          + 0.5 * L2 * (jnp.sum(p['dense']['kernel'] ** 2) + jnp.sum(p['dense']['bias'] ** 2)))


def logistic_case():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(12, 3)), rng.integers(0, 3, 12)
  val_x, val_y = rng.normal(size=(5, 3)), rng.integers(0, 3, 5)
  return logistic_loss, x, y, val_x, val_y


def flat(p):
  return jnp.concatenate([p['dense']['bias'], p['dense']['kernel'].ravel()])


def unflat(v):
  return {'dense': {'bias': v[:3], 'kernel': v[3:].reshape(3, 3)}}


def mean_loss(p, x, y):
  return jnp.mean(jax.vmap(logistic_loss, in_axes=(None, 0, 0))(p, x, y))


@jax.jit
def fit(x, y, extra=0.0, i=0):
  """argmin (1/N) sum_j l_j + extra * l_i by 30 Newton steps."""
  def objective(v):
    return mean_loss(unflat(v), x, y) + extra * logistic_loss(unflat(v), x[i], y[i])

  def step(_, v):
    return v - jnp.linalg.solve(jax.hessian(objective)(v), jax.grad(objective)(v))
  return unflat(jax.lax.fori_loop(0, 30, step, jnp.zeros(12)))


@pytest.mark.parametrize('damping', [0.0, 0.3])
def test_influence_equals_explicit_inverse_hessian(x64, damping):
  loss, x, y, val_x, val_y = logistic_case()
  p = fit(x, y)

  @jax.jit
  def explicit(w):  # the explicit 12 x 12 Hessian and gradients, flattened
    H = jax.hessian(lambda v: mean_loss(unflat(v), x, y))(w) + damping * jnp.eye(12)
    g_val = jax.grad(lambda v: mean_loss(unflat(v), val_x, val_y))(w)
    g = jax.vmap(jax.grad(lambda v, xi, yi: loss(unflat(v), xi, yi)), in_axes=(None, 0, 0))(
        w, x, y)
    return -g @ jnp.linalg.solve(H, g_val)
  expected = explicit(flat(p))
  got = jax.jit(lambda p: inf.influence(loss, p, x, y, val_x, val_y, damping=damping,
                                        tol=1e-12))(p)  # the default selector: last_layer
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-10)
  neumann = jax.jit(lambda p: inf.influence(loss, p, x, y, val_x, val_y, damping=damping,
                                            solver='neumann', maxiter=3000, neumann_eta=0.5))(p)
  np.testing.assert_allclose(neumann, expected, rtol=1e-4, atol=1e-8)


def test_influence_predicts_the_refitted_validation_loss(x64):
  """d L_val(w*(eps)) / d eps by re-fitting with example i's weight perturbed by +-eps."""
  loss, x, y, val_x, val_y = logistic_case()
  p = fit(x, y)
  got = np.asarray(jax.jit(lambda p: inf.influence(loss, p, x, y, val_x, val_y,
                                                   selector=tr.all_params, tol=1e-12))(p))
  eps = 1e-4
  for i in range(4):
    up, down = fit(x, y, eps, i), fit(x, y, -eps, i)
    actual = (mean_loss(up, val_x, val_y) - mean_loss(down, val_x, val_y)) / (2 * eps)
    assert got[i] == pytest.approx(float(actual), rel=1e-5, abs=1e-9), i
  assert np.any(got > 0) and np.any(got < 0)


# ----------------------------------------------------------------------------- prototypes


def test_kmeans_recovers_separated_clusters_and_scores_the_nearest_centroid_distance():
  rng = np.random.default_rng(0)
  directions = np.eye(4)[:3]  # three orthogonal directions on the sphere
  labels = np.repeat(np.arange(3), 20)
  e = directions[labels] + 0.1 * rng.normal(size=(60, 4))
  e *= rng.uniform(0.2, 5.0, size=(60, 1))  # norms vary: the score must normalise
  for init in proto.INITS:
    centroids, assign = jax.jit(proto.kmeans, static_argnames=('k', 'iterations', 'init'))(
        e, k=3, key=jax.random.key(1), iterations=10, init=init)
    assign = np.asarray(assign)
    assert all(len(set(assign[labels == c])) == 1 for c in range(3)), init  # one cluster each
    assert len(set(assign)) == 3, init
    match = np.asarray(centroids) @ directions.T  # each centroid near one direction
    assert np.all(np.sort(match.max(axis=1)) > 0.98), init
  distances, centroids = proto.prototype_scores(e, 3, jax.random.key(1))
  unit = e / np.linalg.norm(e, axis=1, keepdims=True)
  expected = np.min(1.0 - unit @ np.asarray(centroids).T, axis=1)
  np.testing.assert_allclose(distances, expected, atol=1e-5)
  assert np.all(np.asarray(distances) >= -1e-6)
  np.testing.assert_allclose(proto.keep_scores(distances, 'hard'), distances)
  np.testing.assert_allclose(proto.keep_scores(distances, 'easy'), -np.asarray(distances))
  with pytest.raises(ValueError, match='keep'):
    proto.keep_scores(distances, 'far')


# ----------------------------------------------------------------------------- methods (smoke)


def load(workdir, name):
  return np.load(os.path.join(workdir, name))


def corrupted_auroc(summary):
  """The run's AUROC of 'low score = corrupted' (report.scoring), > 0.5 when values rank clean
  rows above mislabelled ones."""
  return summary['score_auroc']


def raw_digits(config):
  d = load_dataset(config.data, config.seed)
  flat_x = lambda s: np.asarray(s.x, np.float32).reshape(s.size, -1)  # noqa: E731
  return d, flat_x(d.train), flat_x(d.meta)


def test_knn_shapley_method_values_raw_inputs_as_the_math_does(run_smoke):
  summary, _, workdir = run_smoke('knn_shapley', scores=True, method__embedding='raw',
                                  method__score_steps=1, method__discard_fraction=0.0)
  d, train, meta = raw_digits(load_config('knn_shapley'))
  train, meta = standardize(train, meta)
  expected = knn.knn_shapley(train, d.train.y, meta, d.meta.y, 5)
  np.testing.assert_allclose(load(workdir, 'scores_train.npy')[d.train.row], expected, atol=1e-6)
  assert summary['knn_shapley']['efficiency'] == pytest.approx(expected.sum(), abs=1e-5)
  assert corrupted_auroc(summary) > 0.8  # mislabelled rows have low KNN-Shapley values
  assert summary['valuation_seconds'] > 0 and summary['valuation_flops'] > 0


def test_knn_shapley_method_with_penultimate_features(run_smoke):
  summary, rows, _ = run_smoke('knn_shapley', scores=True, method__discard_fraction=0.0)
  assert corrupted_auroc(summary) > 0.7
  assert {r['phase'] for r in rows} == {'score'}


def test_tmc_shapley_method_values_its_rows_as_the_math_does(run_smoke):
  summary, _, workdir = run_smoke('tmc_shapley', scores=True, method__embedding='raw',
                                  method__score_steps=1, method__discard_fraction=0.0)
  config = load_config('tmc_shapley')
  d, train, meta = raw_digits(config)
  rows = tmc_method.valued_rows(config, d.train.size)
  train, meta = standardize(train[rows], meta)
  m = config.method
  learner = tmc.Learner(10, m.learner_steps, m.learner_lr, m.learner_l2, m.metric)
  expected, report = tmc.tmc_shapley(train, d.train.y[rows], meta, d.meta.y, learner,
                                     num_permutations=m.num_permutations, tolerance=m.tolerance,
                                     chunk=m.chunk, block=m.block, seed=config.seed)
  scored = load(workdir, 'scored_rows.npy')[d.train.row]
  assert scored.sum() == len(rows) == m.max_rows and scored[rows].all()
  np.testing.assert_allclose(load(workdir, 'scores_train.npy')[d.train.row][rows], expected,
                             atol=1e-6)
  assert summary['tmc_shapley']['fits'] == report['fits'] > 0
  assert summary['tmc_shapley']['permutations'] == m.num_permutations
  assert summary['valuation_flops'] > 0


@pytest.mark.parametrize('params', ['last', 'all'])
def test_tracin_method_ranks_clean_rows_above_mislabelled_ones(run_smoke, params):
  summary, _, _ = run_smoke('tracin', scores=True, method__discard_fraction=0.0,
                            method__params=params)
  assert summary['tracin']['checkpoint_steps'] == [2, 4, 6]  # smoke: 6 steps, 3 checkpoints
  assert summary['tracin']['learning_rates'] == pytest.approx([1e-3] * 3)
  assert corrupted_auroc(summary) > 0.55  # proponents of the clean meta rows are clean rows
  assert summary['valuation_flops'] > 0


def test_influence_method_keeps_rows_that_lower_the_meta_loss(run_smoke):
  summary, _, workdir = run_smoke('influence', scores=True, method__discard_fraction=0.0)
  assert summary['influence']['cg_relative_residual'] < 1e-3
  assert summary['raw_score']  # raw_scores_train.npy: the influence I; scores: -I
  np.testing.assert_array_equal(load(workdir, 'raw_scores_train.npy'),
                                -load(workdir, 'scores_train.npy'))
  assert corrupted_auroc(summary) > 0.75  # up-weighting a mislabelled row raises the meta loss


def test_prototypes_method_scores_the_distance_to_the_nearest_prototype(run_smoke):
  """keep='easy': scores_train.npy = -distance (prototypical rows kept), raw file = distance;
  keep='hard' is `keep_scores`' +distance (tested above), the same line of the method."""
  summary, _, workdir = run_smoke('prototypes', scores=True, method__embedding='raw',
                                  method__score_steps=1, method__discard_fraction=0.0,
                                  method__keep='easy')
  d, train, _ = raw_digits(load_config('prototypes'))
  distances, _ = proto.prototype_scores(train, 10, phase_key(0, 'prototypes_kmeans'), 20)
  np.testing.assert_allclose(load(workdir, 'raw_scores_train.npy')[d.train.row], distances,
                             atol=1e-5)
  np.testing.assert_allclose(load(workdir, 'scores_train.npy')[d.train.row], -distances,
                             atol=1e-5)
  assert summary['raw_score'] and sum(summary['prototypes']['cluster_sizes']) == d.train.size


@pytest.mark.parametrize('name,field,value', [
    ('knn_shapley', 'k', 0), ('knn_shapley', 'embedding', 'pixels'),
    ('tmc_shapley', 'metric', 'f1'), ('tmc_shapley', 'max_rows', 1),
    ('tracin', 'num_checkpoints', 7), ('tracin', 'params', 'first'),
    ('influence', 'damping', -1.0), ('influence', 'cg_maxiter', 0),
    ('prototypes', 'keep', 'far'), ('prototypes', 'num_clusters', 0)])
def test_bad_method_fields_are_one_line(name, field, value):
  config = load_config(name)
  config.method[field] = value
  with pytest.raises(ConfigError, match=f'config.method.{field}'):
    prepare(config)
