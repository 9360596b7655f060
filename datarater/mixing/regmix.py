"""RegMix: data mixture as regression (Liu et al. 2024, arXiv 2407.01492).

RegMix trains many small proxy models, each on its own random source mixture,
fits a regression from the mixture (K weights on the simplex) to the proxies'
validation loss, predicts the loss of many simulated candidate mixtures and
trains the large model on the average of the predicted-best ones. This module
holds the maths of those steps (numpy; scikit-learn only inside `fit_gbm`):

1. Proxy mixtures (`dirichlet_mixtures`), as the authors' code
   (mixture_config/synthesize_mixture.py): a prior p over the sources (the
   paper: the token distribution of the training corpus; here each source's
   share of the training rows, `row_prior`), tempered p_k^t / sum_l p_l^t
   (their TEMP = 0.5 flattens a skewed prior), and per mixture a Dirichlet

       w ~ Dir(s * p^t / sum p^t),   s drawn uniformly from `strengths`

   (theirs: 15 strengths log-spaced in [0.1, 5.0], `log_strengths`; a small s
   puts the mass on few sources, a large one keeps w near the prior). Every
   one of these Dirichlets has mean p^t / sum p^t, so the draws' mean is the
   tempered prior (the prior itself at t = 1) whatever the strengths. A source
   with p_k = 0 (no training rows) gets w_k = 0. Their rejection of mixtures
   that would repeat a source's tokens more than 15 times, the zeroing of
   weights below 2e-4 and the de-duplication are left out (they change the
   draws' mean; with a fixed budget of rows per step they do not apply here).
2. Regression from mixture to loss:
   - 'linear' (`fit_linear`; the paper's linear ablation): loss(w) = sum_k
     beta_k w_k. No separate intercept: on the simplex sum_k w_k = 1, so an
     intercept is already the constant part of beta, and beta_k reads as the
     predicted loss of a model trained on source k alone. Least squares; with
     ridge lambda > 0 beta is shrunk towards the constant mean loss c (beta =
     c 1 + d, d minimising ||y - c - X d||^2 + lambda ||d||^2), not towards
     0; directions no proxy varied (e.g. a source every proxy left out) take
     beta_k = c (the minimum-norm d).
   - 'gbm' (`fit_gbm`): gradient-boosted regression trees, scikit-learn's
     GradientBoostingRegressor (squared error, `n_estimators` trees of depth
     `max_depth`, shrinkage `learning_rate`, every row and feature per tree:
     deterministic), standing in for the paper's LightGBM (gbdt, 1000
     iterations at learning rate 1e-2 with early stopping in the authors'
     notebook; LightGBM is not a dependency here). Its default min_samples_leaf
     of 1 suits the few dozen proxies of a CPU run (HistGradientBoosting's 20
     would fit a constant).
3. Held-out check (`holdout_split`): a seeded random subset of the proxies is
   held out of the fit; the rank correlation of the predictions with their
   true losses (Spearman, as the paper reports) is computed by the caller
   (datarater.report.detection.spearman, a layer above this one).
4. Choosing the mixture (`choose_mixture`), as the authors' notebook: draw
   `num_candidates` candidate mixtures (theirs: 100,000 from Dir(p)), predict
   their loss, and return the mean of the `top_k` candidates with the lowest
   predicted loss (theirs: k = 128), ties broken by the candidate's index.
   Averaging the top k, rather than taking the single argmin, smooths the
   regression's noise; the mean of mixtures is a mixture.

Invalid arguments raise ValueError naming the argument.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

KINDS = ('linear', 'gbm')
# The authors' strengths: 15 values log-spaced (from 0.1 to 5.0), one drawn per mixture.
PAPER_NUM_STRENGTHS = 15


def _check(name: str, ok: bool, requirement: str, value) -> None:
  if not ok:
    raise ValueError(f'{name} must be {requirement}, got {value!r}')


def _prior(prior) -> np.ndarray:
  p = np.asarray(prior, np.float64)
  _check('prior', p.ndim == 1 and len(p) >= 1 and np.isfinite(p).all() and (p >= 0).all()
         and p.sum() > 0, 'a 1-D array of non-negative finite numbers with a positive sum', prior)
  return p / p.sum()


def row_prior(source, num_sources: int) -> np.ndarray:
  """Each source's share of the rows: the prior the mixtures are drawn around.

  Args:
    source: [N] int source ids of the training rows.
    num_sources: K.

  Returns:
    [K] float64 shares summing to one (0 for a source with no rows).
  """
  source = np.asarray(source)
  _check('source', source.ndim == 1 and len(source) > 0, 'a non-empty 1-D array', source.shape)
  counts = np.bincount(source, minlength=num_sources).astype(np.float64)
  _check('num_sources', len(counts) == num_sources, '> the largest source id', num_sources)
  return counts / counts.sum()


def tempered_prior(prior, temperature: float = 1.0) -> np.ndarray:
  """p_k^t / sum_l p_l^t (zeros stay zero); t = 1 is the prior itself.

  Args:
    prior: [K] non-negative weights (normalised here).
    temperature: t > 0 (the authors: 0.5).

  Returns:
    [K] float64, summing to one.
  """
  p = _prior(prior)
  _check('temperature', np.isfinite(temperature) and temperature > 0, '> 0', temperature)
  q = p ** temperature  # 0 stays 0 for t > 0
  return q / q.sum()


def log_strengths(low: float, high: float, num: int = PAPER_NUM_STRENGTHS) -> np.ndarray:
  """`num` Dirichlet strengths log-spaced from low to high (one value if low == high)."""
  _check('low', np.isfinite(low) and low > 0, '> 0', low)
  _check('high', np.isfinite(high) and high >= low, f'>= low ({low})', high)
  _check('num', isinstance(num, (int, np.integer)) and num >= 1, 'an int >= 1', num)
  if low == high:
    return np.array([float(low)])
  return np.logspace(np.log10(low), np.log10(high), num)


def dirichlet_mixtures(prior, num: int, seed, strengths=(1.0,),
                       temperature: float = 1.0) -> np.ndarray:
  """`num` random mixtures w ~ Dir(s * p^t / sum p^t), s uniform over `strengths` (module doc).

  The mean of the draws is the tempered prior p^t / sum p^t for any strengths.

  Args:
    prior: [K] non-negative prior weights p (normalised here).
    num: number of mixtures.
    seed: an int or a sequence of ints seeding numpy's default_rng.
    strengths: positive Dirichlet strengths s; each mixture draws one uniformly.
    temperature: t > 0.

  Returns:
    [num, K] float64 mixtures, each row summing to one, 0 where p_k = 0.
  """
  _check('num', isinstance(num, (int, np.integer)) and num >= 1, 'an int >= 1', num)
  s = np.atleast_1d(np.asarray(strengths, np.float64))
  _check('strengths', s.ndim == 1 and len(s) >= 1 and np.isfinite(s).all() and (s > 0).all(),
         'positive finite numbers', strengths)
  q = tempered_prior(prior, temperature)
  rng = np.random.default_rng(seed)
  scale = s[rng.integers(len(s), size=num)]
  support = q > 0
  out = np.zeros((num, len(q)))
  if support.sum() == 1:
    out[:, support] = 1.0
    return out
  # Dir(a) as normalised Gamma(a_k) draws, in logs: Gamma(a) = Gamma(a + 1) U^(1/a). A
  # small a_k's draw can underflow float64 (Gamma(0.01) < 1e-300 with probability ~1e-3), so
  # each row is normalised after subtracting its largest log-draw: no row is 0 / 0.
  alpha = scale[:, None] * q[support][None, :]
  log_u = np.log1p(-rng.random(alpha.shape))  # log U, U uniform in (0, 1]
  log_g = np.log(rng.gamma(alpha + 1.0)) + log_u / alpha
  log_g -= log_g.max(axis=1, keepdims=True)
  g = np.exp(log_g)
  out[:, support] = g / g.sum(axis=1, keepdims=True)
  return out


def _design(mixtures, losses=None):
  x = np.asarray(mixtures, np.float64)
  _check('mixtures', x.ndim == 2 and len(x) >= 1 and np.isfinite(x).all(),
         'a finite 2-D array [N, K] with N >= 1', getattr(x, 'shape', mixtures))
  if losses is None:
    return x, None
  y = np.asarray(losses, np.float64)
  _check('losses', y.shape == (len(x),) and np.isfinite(y).all(),
         f'a finite array of {len(x)} losses (one per mixture)', getattr(y, 'shape', losses))
  return x, y


class LinearModel(NamedTuple):
  """loss(w) = w @ coef; coef[k] is the predicted loss of training on source k alone."""
  coef: np.ndarray
  ridge: float

  def predict(self, mixtures) -> np.ndarray:
    x, _ = _design(mixtures)
    _check('mixtures', x.shape[1] == len(self.coef), f'[N, {len(self.coef)}]', x.shape)
    return x @ self.coef


def fit_linear(mixtures, losses, ridge: float = 0.0) -> LinearModel:
  """Least squares of loss on the mixture weights, optional ridge towards the mean loss.

  coef = c 1 + d, c = mean(losses), d = argmin ||y - c - X d||^2 + ridge ||d||^2 (the
  minimum-norm d when ridge = 0 and X is rank deficient). On mixtures (rows summing to
  one) c 1 + d predicts X d + c, so ridge shrinks the predictions towards the mean
  loss; with ridge = 0 and X of full column rank coef is the exact least-squares fit.

  Args:
    mixtures: [N, K] mixtures (rows on the simplex).
    losses: [N] their losses.
    ridge: lambda >= 0.

  Returns:
    LinearModel.
  """
  x, y = _design(mixtures, losses)
  _check('ridge', np.isfinite(ridge) and ridge >= 0, '>= 0', ridge)
  c = float(y.mean())
  if ridge == 0:
    d = np.linalg.lstsq(x, y - c, rcond=None)[0]
  else:
    k = x.shape[1]
    d = np.linalg.solve(x.T @ x + ridge * np.eye(k), x.T @ (y - c))
  return LinearModel(c + d, float(ridge))


def fit_gbm(mixtures, losses, seed: int = 0, n_estimators: int = 200,
            learning_rate: float = 0.05, max_depth: int = 3):
  """Gradient-boosted regression trees from mixture to loss (scikit-learn, imported here).

  Args:
    mixtures: [N, K] mixtures.
    losses: [N] their losses.
    seed: random_state (the fit uses every row and feature, so it is deterministic).
    n_estimators, learning_rate, max_depth: the boosting's trees, shrinkage and depth.

  Returns:
    A fitted sklearn GradientBoostingRegressor (its `predict([M, K])` gives [M] losses).
  """
  from sklearn.ensemble import GradientBoostingRegressor
  x, y = _design(mixtures, losses)
  _check('n_estimators', isinstance(n_estimators, (int, np.integer)) and n_estimators >= 1,
         'an int >= 1', n_estimators)
  _check('learning_rate', np.isfinite(learning_rate) and learning_rate > 0, '> 0', learning_rate)
  _check('max_depth', isinstance(max_depth, (int, np.integer)) and max_depth >= 1, 'an int >= 1',
         max_depth)
  model = GradientBoostingRegressor(n_estimators=n_estimators, learning_rate=learning_rate,
                                    max_depth=max_depth, min_samples_leaf=1, subsample=1.0,
                                    random_state=seed)
  return model.fit(x, y)


def fit_regression(kind: str, mixtures, losses, ridge: float = 0.0, seed: int = 0):
  """`fit_linear` (kind 'linear', with `ridge`) or `fit_gbm` (kind 'gbm', with `seed`)."""
  _check('kind', kind in KINDS, f'one of {KINDS}', kind)
  if kind == 'linear':
    return fit_linear(mixtures, losses, ridge)
  return fit_gbm(mixtures, losses, seed)


def holdout_split(num: int, fraction: float, seed) -> tuple:
  """A seeded split of `num` proxies into fitted and held-out ones.

  Args:
    num: N proxies.
    fraction: the held-out share h in [0, 1); round(h N) proxies are held out.
    seed: int or sequence of ints for numpy's default_rng.

  Returns:
    (fit indices, held-out indices), each sorted int64; at least one proxy is fitted.
  """
  _check('num', isinstance(num, (int, np.integer)) and num >= 1, 'an int >= 1', num)
  _check('fraction', np.isfinite(fraction) and 0 <= fraction < 1, 'in [0, 1)', fraction)
  held = min(int(round(fraction * num)), num - 1)
  order = np.random.default_rng(seed).permutation(num)
  return np.sort(order[held:]).astype(np.int64), np.sort(order[:held]).astype(np.int64)


def choose_mixture(predict, candidates, top_k: int) -> dict:
  """The mean of the `top_k` candidates with the lowest predicted loss (module docstring).

  Args:
    predict: [M, K] mixtures -> [M] predicted losses (e.g. a fitted model's `predict`).
    candidates: [M, K] candidate mixtures.
    top_k: k in [1, M].

  Returns:
    {'mixture': [K] float64 mean of the top k (sums to one), 'top': int64 [k] their
     candidate indices, lowest predicted loss first (ties: lower index first),
     'predicted': [M] the candidates' predicted losses}.
  """
  x, _ = _design(candidates)
  _check('top_k', isinstance(top_k, (int, np.integer)) and 1 <= top_k <= len(x),
         f'an int in [1, {len(x)}]', top_k)
  predicted = np.asarray(predict(x), np.float64).reshape(-1)
  _check('predict', predicted.shape == (len(x),) and np.isfinite(predicted).all(),
         f'a function giving {len(x)} finite losses', predicted.shape)
  top = np.argsort(predicted, kind='stable')[:top_k].astype(np.int64)
  mixture = x[top].mean(axis=0)
  return {'mixture': mixture / mixture.sum(), 'top': top, 'predicted': predicted}
