"""DSIR: importance weights of hashed n-gram features against the meta split (method 'dsir').

Xie, Santurkar, Ma, Liang, "Data Selection for Language Models via Importance
Resampling", NeurIPS 2023 (arXiv 2302.03169); the math is in
datarater/mixing/dsir.py, the config in configs/dsir.py. The target is the
meta split (clean or noisy by data.meta_mode), the raw pool the train split:

1. every train and meta row is featurised into its hashed n-grams
   (`method.num_buckets`, `method.ngrams`; byte / token ids as the paper's
   words, real-valued inputs by per-feature quantile bins of the train split,
   `method.num_bins`; with `method.label_features` the class label is hashed
   into every feature, classification only);
2. the add-`method.smoothing` (add-one by default) smoothed bag-of-hashed-
   features distributions of the meta split and of the train split;
3. every training row's score is its log importance weight
   log w_i = sum_j c_ij (log p_meta_j - log p_train_j): higher = more
   meta-like = keep (scores_train.npy holds log w itself);
4. summary.json's `dsir` reports the paper's selection: a Gumbel top-k draw
   (sampling without replacement proportional to w) of k = round(s N) rows,
   s = `method.select_fraction`, and its KL reduction against the meta split
   (and, for reference, that of a uniformly random selection of the same k).

No model is trained to score: the scoring phase 'score' has 0 steps (the
framework allows it; its model is the untrained initial one, evaluated once,
as EL2N's `score_steps=0`), and the hashing runs on the host in its finalize
(not in the compute ledger, which counts model FLOPs). With
`method.discard_fraction` > 0 or 'auto' the scores drive the shared filtered
retraining (datarater/methods/_filter.py), as for every scorer. Its filter
keeps the highest log w (the top-k of the scores, per batch or over the
dataset by `method.filter_mode`), not a Gumbel draw: the paper's resampling
is what the reported selection and its KL reduction use; the filter ranks
deterministically, as it does for every scorer (DSIR's top-k variant).
"""

from __future__ import annotations

import numpy as np

from datarater.errors import is_number, require
from datarater.methods import _filter, uniform
from datarater.mixing import dsir
from datarater.train.pipeline import Phase
from datarater.weighting import scores as score_ops

DECLARES = dict(family='scorer', label='DSIR', scores=True, mixing=True,
                information='meta rows')

FILTER = 'filter'  # method.select_fraction: the fraction the filter keeps
NO_FILTER_FRACTION = 0.5  # select_fraction='filter' with discard_fraction=0 (no filter)
GUMBEL_STREAM = 0x5D51  # the seed stream of the reported Gumbel top-k selection


def check(config, dataset) -> None:
  """ConfigError (one line naming the field) for a bad DSIR featurisation field.

  Args:
    config: the run config (method.num_buckets, ngrams, num_bins, smoothing,
      label_features).
    dataset: the Dataset (label_features needs classification).
  """
  m = config.method
  whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
  require(whole(m.num_buckets) and 1 <= m.num_buckets < 2 ** 31, 'method.num_buckets',
          'an int in [1, 2**31)', m.num_buckets)
  require(whole(m.ngrams) and m.ngrams >= 1, 'method.ngrams', 'an int >= 1', m.ngrams)
  require(whole(m.num_bins) and m.num_bins >= 2, 'method.num_bins', 'an int >= 2', m.num_bins)
  require(is_number(m.smoothing) and m.smoothing > 0, 'method.smoothing', 'a number > 0',
          m.smoothing)
  require(isinstance(m.label_features, bool), 'method.label_features', 'True or False',
          m.label_features)
  require(not m.label_features or dataset.info.task == 'classification', 'method.label_features',
          'False on a dataset without class labels (language modelling)', m.label_features)


def log_weights(config, dataset) -> dict:
  """DSIR's log importance weights of the train rows against the meta split (module docstring).

  Args:
    config: the run config (method fields checked by `check`).
    dataset: the Dataset (train = raw pool, meta = target).

  Returns:
    {'log_w': float64 [N train], 'train_buckets': int32 [N, F], 'meta_buckets': int32 [M, F],
     'features_per_row': F}.
  """
  m = config.method
  train, meta = dataset.train, dataset.meta
  integer = np.issubdtype(np.asarray(train.x).dtype, np.integer)
  edges = None if integer else dsir.quantile_edges(train.x, m.num_bins)
  labels = (lambda s: s.y) if m.label_features else (lambda s: None)  # noqa: E731
  raw = dsir.featurize(train.x, m.num_buckets, m.ngrams, edges, labels(train))
  target = dsir.featurize(meta.x, m.num_buckets, m.ngrams, edges, labels(meta))
  p_raw = dsir.smoothed_distribution(dsir.bucket_totals(raw, m.num_buckets), m.smoothing)
  p_target = dsir.smoothed_distribution(dsir.bucket_totals(target, m.num_buckets), m.smoothing)
  return {'log_w': dsir.log_importance_weights(raw, p_target, p_raw), 'train_buckets': raw,
          'meta_buckets': target, 'features_per_row': int(raw.shape[1])}


def select_fraction(config, log_w) -> tuple:
  """(s, why): the fraction of the train rows the reported Gumbel top-k selection keeps.

  `method.select_fraction` as given when a number; 'filter': the fraction the filter
  keeps, 1 - rho for a number rho = method.discard_fraction > 0, 1 - the estimated
  fraction of low-scored rows for 'auto' (what its 'filtered' arm aims to drop,
  `weighting.scores.mixture_discard_fraction` of these scores), NO_FILTER_FRACTION
  when rho = 0 (no filter).
  """
  s, rho = config.method.select_fraction, config.method.discard_fraction
  if s != FILTER:
    return float(s), 'method.select_fraction'
  if rho == _filter.AUTO:
    f = score_ops.mixture_discard_fraction(log_w)['estimated_fraction']
    return 1.0 - f, "1 - the estimated fraction of low-scored rows (discard_fraction='auto')"
  if rho == 0:
    return NO_FILTER_FRACTION, 'discard_fraction=0 (no filter): half the rows'
  return 1.0 - float(rho), '1 - method.discard_fraction'


def selection_report(config, dataset, weights: dict) -> dict:
  """summary.json's `dsir`: the Gumbel top-k selection and its KL reduction (module docstring)."""
  m, train = config.method, dataset.train
  log_w, raw = weights['log_w'], weights['train_buckets']
  n, b = len(log_w), m.num_buckets
  frac, why = select_fraction(config, log_w)
  k = min(max(int(round(frac * n)), 1), n)
  seed = [int(config.seed), GUMBEL_STREAM]
  chosen = dsir.gumbel_top_k(log_w, k, seed)
  at_random = np.random.default_rng(seed + [1]).permutation(n)[:k]
  target_totals = dsir.bucket_totals(weights['meta_buckets'], b)
  raw_totals = dsir.bucket_totals(raw, b)
  kl = dsir.kl_reduction(target_totals, raw_totals, dsir.bucket_totals(raw[chosen], b),
                         m.smoothing)
  random_kl = dsir.kl_reduction(target_totals, raw_totals, dsir.bucket_totals(raw[at_random], b),
                                m.smoothing)
  k_src = dataset.info.num_sources
  share = np.bincount(train.source[chosen], minlength=k_src) / k
  pool = np.bincount(train.source, minlength=k_src) / n
  return {
      'select_fraction': frac, 'select_fraction_from': why, 'selected_rows': k,
      'features_per_row': weights['features_per_row'], 'num_buckets': b, 'ngrams': m.ngrams,
      'kl_target_raw': kl['kl_target_raw'], 'kl_target_selected': kl['kl_target_selected'],
      'kl_reduction': kl['kl_reduction'], 'kl_reduction_random': random_kl['kl_reduction'],
      'selected_source_share': share.tolist(), 'pool_source_share': pool.tolist(),
      'selected_corrupted_fraction': float(train.corrupted[chosen].mean()),
      'log_weight_quantiles': dict(zip(('min', 'q25', 'median', 'q75', 'max'),
                                       np.quantile(log_w, [0, .25, .5, .75, 1]).tolist())),
  }


def make(config, task, dataset):
  """The 0-step scoring phase, with the filtered retraining when rho > 0 or 'auto'."""
  m = config.method
  check(config, dataset)
  s = m.select_fraction
  require(s == FILTER or (is_number(s) and 0 < s <= 1), 'method.select_fraction',
          f"{FILTER!r} or a number in (0, 1]", s)
  require(dataset.meta.size > 0, 'data.meta_size', '> 0 (the meta split is DSIR\'s target)',
          config.data.get('meta_size'))

  def score_fn(ctx, train_state, state):
    del train_state, state
    weights = log_weights(config, ctx.dataset)
    report = selection_report(config, ctx.dataset, weights)
    print(f"[dsir] Gumbel top-k of {report['selected_rows']} rows: KL reduction "
          f"{report['kl_reduction']:.4f} nats (random selection "
          f"{report['kl_reduction_random']:.4f})", flush=True)
    return weights['log_w'], np.ones(len(weights['log_w']), bool), {'dsir': report}

  phase = Phase('score', uniform.make(config, task, dataset), 0)
  return _filter.scorer_pipeline(config, task, dataset, phase, score_fn,
                                 'DSIR log importance weight')
