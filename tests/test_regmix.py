"""RegMix: the maths (datarater.mixing.regmix) on known answers, and the method
(datarater.methods.regmix) in the loop: summary, ledger, the final phase's batches, and a
5-source digits case whose pure-noise source must lose its weight."""


import jax
import numpy as np
import pytest

from conftest import assert_bad_method_field, load_config
from datarater.data import sampler
from datarater.errors import ConfigError
from datarater.methods import regmix as method
from datarater.methods import static_mixture
from datarater.mixing import regmix
from datarater.report import detection
from datarater.run import prepare

PRIOR = np.array([0.1, 0.2, 0.3, 0.4, 0.0])


# ----------------------------------------------------------------------------- maths


def test_dirichlet_draws_have_the_prior_as_mean_and_lie_on_the_simplex():
  strengths = regmix.log_strengths(0.1, 5.0)  # the authors' 15 strengths
  assert len(strengths) == 15 and strengths[0] == pytest.approx(0.1)
  assert strengths[-1] == pytest.approx(5.0)
  w = regmix.dirichlet_mixtures(PRIOR, 100_000, 0, strengths)
  assert np.isfinite(w).all() and (w >= 0).all()
  np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
  np.testing.assert_allclose(w.mean(axis=0), PRIOR, atol=4e-3)
  assert (w[:, 4] == 0).all()  # a source without rows is never drawn
  tempered = regmix.tempered_prior(PRIOR, 0.5)
  np.testing.assert_allclose(tempered, np.sqrt(PRIOR) / np.sqrt(PRIOR).sum())
  np.testing.assert_allclose(regmix.dirichlet_mixtures(PRIOR, 100_000, 1, (1.0,), 0.5).mean(0),
                             tempered, atol=4e-3)
  np.testing.assert_allclose(regmix.row_prior(np.array([0, 1, 1, 3]), 5), [.25, .5, 0, .25, 0])


def test_linear_regression_recovers_known_coefficients():
  beta = np.array([2.0, 1.5, 3.0, 0.5, 1.0])
  x = regmix.dirichlet_mixtures(np.ones(5), 40, 0, (1.0,))
  model = regmix.fit_linear(x, x @ beta)
  np.testing.assert_allclose(model.coef, beta, atol=1e-10)  # noiseless: exact
  # ridge shrinks the predictions towards the mean loss, not towards 0
  y = x @ beta
  flat = regmix.fit_linear(x, y, ridge=1e12)
  np.testing.assert_allclose(flat.predict(x), y.mean(), atol=1e-6)
  mid = regmix.fit_linear(x, y, ridge=1.0).predict(x)
  assert np.abs(mid - y.mean()).sum() < np.abs(y - y.mean()).sum()


def test_gradient_boosting_fits_a_nonlinear_surface_better_than_linear():
  def loss(w):
    return 4 * (w[:, 0] - 0.4) ** 2 + 3 * w[:, 1] * w[:, 2]
  x = regmix.dirichlet_mixtures(np.ones(4), 300, 0, (1.0,))
  test = regmix.dirichlet_mixtures(np.ones(4), 200, 1, (1.0,))
  mse = {kind: np.mean((regmix.fit_regression(kind, x, loss(x)).predict(test) - loss(test)) ** 2)
         for kind in regmix.KINDS}
  assert mse['gbm'] < 0.5 * mse['linear'], mse


def test_the_chosen_mixture_is_the_argmin_of_a_quadratic_surface_by_top_k_averaging():
  target = np.array([0.1, 0.2, 0.3, 0.25, 0.15])

  def predict(w):
    return ((w - target) ** 2).sum(axis=1)
  candidates = regmix.dirichlet_mixtures(np.ones(5), 20_000, 0, (20.0,))
  out = regmix.choose_mixture(predict, candidates, 20)
  np.testing.assert_allclose(out['mixture'], target, atol=0.02)
  # the mean of the k candidates with the lowest predicted loss, lowest first
  order = np.argsort(predict(candidates))
  np.testing.assert_array_equal(out['top'], order[:20])
  np.testing.assert_allclose(out['mixture'], candidates[order[:20]].mean(axis=0), atol=1e-12)
  assert regmix.choose_mixture(predict, candidates, 1)['mixture'] == pytest.approx(
      candidates[order[0]])
  tied = regmix.choose_mixture(lambda w: np.zeros(len(w)), candidates[:10], 3)
  np.testing.assert_array_equal(tied['top'], [0, 1, 2])  # ties: lower index first
  with pytest.raises(ValueError, match='top_k'):
    regmix.choose_mixture(predict, candidates[:5], 6)


def test_heldout_spearman_is_detection_spearman_of_the_fit_on_the_other_proxies():
  config = load_config('regmix')
  config.method.holdout_fraction = 0.4
  rng = np.random.default_rng(0)
  x = regmix.dirichlet_mixtures(np.ones(5), 20, 3, (1.0,))
  y = x @ np.array([1.0, 1.5, 2.0, 2.5, 3.0]) + 0.2 * rng.standard_normal(20)
  out = method.fit_and_choose(config, np.full(5, 0.2), x, y)
  fit, held = np.array(out['fit_proxies']), np.array(out['heldout_proxies'])
  assert len(held) == 8 and sorted([*fit, *held]) == list(range(20))
  for kind in regmix.KINDS:
    model = regmix.fit_regression(kind, x[fit], y[fit], 0.0, config.seed)
    assert out['heldout_spearman'][kind] == pytest.approx(
        detection.spearman(model.predict(x[held]), y[held]), abs=1e-12)
  assert out['heldout_spearman']['linear'] > 0.5


def test_each_proxy_draws_its_rows_from_its_own_mixture():
  source = np.repeat(np.arange(3), 100)
  members = sampler.source_members(source, 3)
  mixtures = np.array([[1.0, 0.0, 0.0], [0.0, 0.25, 0.75], [0.0, 0.25, 0.75]])
  rows = np.stack([method.member_mixture_indices(mixtures, 50, 0, t, members).reshape(3, 50)
                   for t in range(40)], axis=1)  # [member, step, row]
  share = np.stack([np.bincount(source[r.ravel()], minlength=3) / r.size for r in rows])
  np.testing.assert_allclose(share, mixtures, atol=0.03)
  assert not np.array_equal(rows[1], rows[2])  # same mixture, own random stream


# ----------------------------------------------------------------------------- method


def test_smoke_run_reports_the_fit_charges_the_proxies_and_trains_on_the_choice(
    run_smoke, monkeypatch):
  passed, drawn, proxies = {}, [], {}
  for_weights, member_losses = static_mixture.for_weights, method.member_losses

  def spy_for_weights(config, task, dataset, weights, mode):
    passed.update(weights=np.asarray(weights), mode=mode, source=dataset.train.source)
    made = for_weights(config, task, dataset, weights, mode)
    passed['sample'] = made.sample

    def sample(step, state):
      drawn.append((step, made.sample(step, state)))
      return drawn[-1][1]
    return made._replace(sample=sample)

  def spy_member_losses(ctx, task, params, size):
    proxies.update(task=task, params=params, meta=ctx.dataset.meta)
    return member_losses(ctx, task, params, size)

  monkeypatch.setattr(static_mixture, 'for_weights', spy_for_weights)
  monkeypatch.setattr(method, 'member_losses', spy_member_losses)
  summary, _, _ = run_smoke('regmix', method__num_proxies=8, method__holdout_fraction=0.5,
                            method__regression='gbm')
  config = load_config('regmix')
  r, m, b = summary['regmix'], 8, config.batch_size
  k = len(summary['source_names'])

  # summary fields
  assert summary['result_phase'] == 'train' and r['regression'] == 'gbm'
  assert np.array(r['proxy_mixtures']).shape == (m, k) and len(r['proxy_losses']) == m
  assert set(r['heldout_spearman']) == set(regmix.KINDS) and len(r['heldout_proxies']) == 4
  np.testing.assert_allclose(np.sum(r['proxy_mixtures'], axis=1), 1.0, atol=1e-9)
  np.testing.assert_allclose(summary['source_weights'], r['chosen_mixture'], atol=1e-12)
  assert sum(summary['source_weights']) == pytest.approx(1.0)
  # each proxy's loss is its own mean loss over the meta split
  meta = proxies['meta']
  batch = {'x': meta.x, 'y': meta.y}
  for i in range(m):
    member = jax.tree.map(lambda p, i=i: p[i], proxies['params'])
    own = float(proxies['task'].per_example_loss(member, batch).mean())
    assert r['proxy_losses'][i] == pytest.approx(own, rel=1e-5)
  assert np.ptp(r['proxy_losses']) > 0

  # the ledger charges the proxies: every member's rows and the vmapped step's FLOPs
  phases, ledger = summary['phases'], summary['method_ledger']
  assert phases['proxies']['ledger']['steps'] == config.method.proxy_steps
  assert phases['proxies']['ledger']['examples_processed'] == m * b * config.method.proxy_steps
  for key in ('flops', 'steps', 'examples_processed'):
    assert ledger[key] == pytest.approx(phases['proxies']['ledger'][key]
                                        + phases['train']['ledger'][key])
  assert phases['proxies']['ledger']['flops'] > phases['train']['ledger']['flops'] > 0

  # the final phase samples the chosen mixture: each of its batches is the mixture draw
  np.testing.assert_allclose(passed['weights'], r['chosen_mixture'], atol=1e-12)
  assert passed['mode'] == 'sample'
  assert {s for s, _ in drawn} == set(range(config.num_steps))  # (step 0 also for its shapes)
  for step, idx in drawn:
    np.testing.assert_array_equal(idx, sampler.mixture_indices(
        passed['source'], passed['weights'], b, config.seed, step))
  many = np.concatenate([passed['sample'](t, None) for t in range(300)])
  share = np.bincount(passed['source'][many], minlength=k) / len(many)
  np.testing.assert_allclose(share, r['chosen_mixture'], atol=0.03)


def test_the_pure_noise_source_is_down_weighted(run_smoke):
  # 5 digits sources with label noise 0 .. 0.6 and one whose every label is wrong.
  summary, _, _ = run_smoke('regmix', data__corruption_rates=(0.0, 0.2, 0.4, 0.6, 1.0),
                            batch_size=32, optimizer__learning_rate=3e-3, num_steps=2,
                            method__num_proxies=20, method__proxy_steps=50)
  r = summary['regmix']
  chosen, coef = np.array(r['chosen_mixture']), np.array(r['linear_coef'])
  # A linear fit's top-k average sits at its best vertex (here the clean source); the other
  # sources keep residues of ~1e-3, so "down-weighted" is: far below its prior share 0.2.
  assert chosen[4] < 0.05 and chosen[4] < chosen[0], chosen
  assert coef[4] == coef.max(), coef  # training on the noise source alone: the worst loss
  assert r['heldout_spearman']['linear'] > 0.5, r['heldout_spearman']
  assert summary['weight_corruption_spearman'] < 0


BAD = [
    ('num_proxies', 1), ('proxy_steps', 0), ('prior_temperature', 0.0),
    ('concentration', (5.0, 0.1)), ('holdout_fraction', 1.0), ('holdout_fraction', 0.9),
    ('regression', 'lightgbm'), ('ridge', -1.0), ('candidate_concentration', 0.0),
    ('num_candidates', 0), ('top_k', 1001), ('proxy_model.kwargs', {'width': 8}),
    ('proxy_model.kwargs', {'hidden': (0,)}),
]


@pytest.fixture(scope='module')
def built():
  config = load_config('regmix')
  dataset, task, _ = prepare(config)
  return config, task, dataset


@pytest.mark.parametrize('field,value', BAD)
def test_a_bad_field_is_a_one_line_config_error_naming_it(built, field, value):
  assert_bad_method_field(method.make, *built, field, value)


def test_one_source_is_refused_naming_the_field():
  config = load_config('regmix')
  config.data.corruption_rates = ()
  with pytest.raises(ConfigError, match='config.data.corruption_rates'):
    prepare(config)
