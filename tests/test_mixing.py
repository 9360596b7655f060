"""DSIR and end-of-training upsampling: the math (datarater/mixing/) on hand-made cases, the
methods (datarater/methods/dsir.py, upsample_end.py) in the loop, and their config checks."""

import collections
import json
import os

import numpy as np
import pytest

from conftest import load_config
from datarater.data import load_dataset
from datarater.errors import ConfigError
from datarater.methods import dsir as dsir_method
from datarater.methods import upsample_end
from datarater.mixing import dsir, upsample

# ----------------------------------------------------------------------------- DSIR math


def test_hashed_ngrams_equal_a_hand_count():
  """b'abcab': unigrams a:2 b:2 c:1, bigrams ab:2 bc:1 ca:1, each in its own bucket."""
  b = 10000
  x = np.frombuffer(b'abcab', np.uint8).astype(np.int32)[None]
  a_, b_, c_ = (ord(ch) for ch in 'abc')
  hand = {(a_,): 2, (b_,): 2, (c_,): 1, (a_, b_): 2, (b_, c_): 1, (c_, a_): 1}
  buckets = {g: dsir.hash_ngram(g, b) for g in hand}
  assert len(set(buckets.values())) == len(hand)  # no collision: the count is the n-grams'
  expected = np.zeros(b, np.int64)
  for g, count in hand.items():
    expected[buckets[g]] += count
  got = dsir.count_matrix(dsir.ngram_buckets(x, b, ngrams=2), b)
  np.testing.assert_array_equal(got, expected[None])
  np.testing.assert_array_equal(dsir.bucket_totals(dsir.featurize(x, b, 2), b), expected)
  assert dsir.hash_ngram((a_, b_), b) != dsir.hash_ngram((b_, a_), b)  # order matters
  unigrams = dsir.count_matrix(dsir.ngram_buckets(x, b, ngrams=1), b)[0]
  assert unigrams.sum() == 5 and unigrams[buckets[(a_,)]] == 2
  assert dsir.count_matrix(dsir.ngram_buckets(x, 1, ngrams=2), 1)[0, 0] == 5 + 4


def test_real_valued_rows_are_binned_per_feature_and_hashed_with_the_position():
  x = np.array([[0.1, 0.9], [0.5, 0.2]], np.float32)
  edges = dsir.quantile_edges(x, 2)  # each feature's median
  np.testing.assert_allclose(edges, [[0.3], [0.55]])
  np.testing.assert_array_equal(dsir.quantize(x, edges), [[0, 1], [1, 0]])
  b = 10000
  got = dsir.featurize(x, b, 2, edges)
  want = [[dsir.hash_ngram([0], b, position=0), dsir.hash_ngram([1], b, position=1),
           dsir.hash_ngram([0, 1], b, position=0)],
          [dsir.hash_ngram([1], b, position=0), dsir.hash_ngram([0], b, position=1),
           dsir.hash_ngram([1, 0], b, position=0)]]
  np.testing.assert_array_equal(got, want)
  labelled = dsir.featurize(x, b, 2, edges, labels=np.array([3, 3]))
  assert labelled[0, 0] == dsir.hash_ngram([0], b, position=0, label=3) != got[0, 0]


def test_smoothed_distributions_and_log_weights_by_hand():
  """Raw pool: documents with buckets (0, 0), (0, 1), (2, 2); target: (0, 1), (1, 1); B = 3."""
  raw = np.array([[0, 0], [0, 1], [2, 2]])
  target = np.array([[0, 1], [1, 1]])
  p_raw = dsir.smoothed_distribution(dsir.bucket_totals(raw, 3))       # counts 3, 1, 2
  p_target = dsir.smoothed_distribution(dsir.bucket_totals(target, 3))  # counts 1, 3, 0
  np.testing.assert_allclose(p_raw, [4 / 9, 2 / 9, 3 / 9])
  np.testing.assert_allclose(p_target, [2 / 7, 4 / 7, 1 / 7])
  r0, r1, r2 = np.log(2 / 7 * 9 / 4), np.log(4 / 7 * 9 / 2), np.log(1 / 7 * 9 / 3)
  log_w = dsir.log_importance_weights(raw, p_target, p_raw)
  np.testing.assert_allclose(log_w, [2 * r0, r0 + r1, 2 * r2])
  dense = dsir.count_matrix(raw, 3) @ (np.log(p_target) - np.log(p_raw))  # sum_j c_ij log ratio
  np.testing.assert_allclose(log_w, dense)
  assert np.argmax(log_w) == 1  # the document made of the target's buckets


def test_gumbel_top_k_follows_the_weights():
  gap = np.zeros(20)
  gap[[3, 11, 17]] = 1000.0
  for seed in range(50):
    picked = dsir.gumbel_top_k(gap, 3, seed)
    assert sorted(picked.tolist()) == [3, 11, 17]
  # Equal weights: each of 5 items is in a draw of 2 with probability 2/5 (chi-square, 4 dof).
  counts = np.zeros(5)
  for seed in range(2000):
    picked = dsir.gumbel_top_k(np.zeros(5), 2, seed)
    assert len(set(picked.tolist())) == 2
    counts[picked] += 1
  expected = 2000 * 2 / 5
  assert ((counts - expected) ** 2 / expected).sum() < 25, counts  # 99.99th pct is ~23.5
  # k = 1: picked with probability proportional to w = (1, 2, 3, 4).
  first = collections.Counter(int(dsir.gumbel_top_k(np.log([1., 2., 3., 4.]), 1, s)[0])
                              for s in range(4000))
  expected = 4000 * np.arange(1, 5) / 10
  got = np.array([first[i] for i in range(4)])
  assert ((got - expected) ** 2 / expected).sum() < 25, got
  np.testing.assert_array_equal(dsir.gumbel_top_k(gap, 5, 7), dsir.gumbel_top_k(gap, 5, 7))


def _two_domains(seed=0, n=600, length=30, b=200):
  """Raw pool: half domain A (buckets 0..99), half domain B (buckets 50..199); target: 40
  documents of domain A."""
  rng = np.random.default_rng(seed)
  raw_a = rng.integers(0, 100, (n // 2, length))
  raw_b = rng.integers(50, 200, (n // 2, length))
  target = rng.integers(0, 100, (40, length))
  return np.concatenate([raw_a, raw_b]), target, b


def test_kl_reduction_is_positive_for_a_target_like_selection_and_zero_for_a_random_one():
  raw, target, b = _two_domains()
  t_tot, r_tot = dsir.bucket_totals(target, b), dsir.bucket_totals(raw, b)
  log_w = dsir.log_importance_weights(raw, dsir.smoothed_distribution(t_tot),
                                      dsir.smoothed_distribution(r_tot))
  k = 180
  chosen = dsir.gumbel_top_k(log_w, k, 0)
  assert (chosen < len(raw) // 2).mean() > 0.95  # DSIR picks domain A
  kl = dsir.kl_reduction(t_tot, r_tot, dsir.bucket_totals(raw[chosen], b))
  assert kl['kl_reduction'] == pytest.approx(kl['kl_target_raw'] - kl['kl_target_selected'])
  assert kl['kl_reduction'] > 0.3 * kl['kl_target_raw'] > 0, kl
  # Uniformly random selections of the same size: about 0 on average (each one's share of
  # domain A varies, so single draws spread by ~0.04 nats here).
  randoms = [dsir.kl_reduction(t_tot, r_tot, dsir.bucket_totals(
      raw[np.random.default_rng(s).permutation(len(raw))[:k]], b))['kl_reduction']
      for s in range(50)]
  assert abs(np.mean(randoms)) < 0.1 * kl['kl_target_raw'], randoms
  assert kl['kl_reduction'] > 2 * max(randoms)
  # The definition on a hand-sized case: every set smoothed as a sample of the pool's 6 counts.
  t, r, s = np.array([2, 0, 1]), np.array([3, 1, 2]), np.array([1, 0, 0])
  sm = lambda n: (n * 6 / n.sum() + 1) / (6 + 3)  # noqa: E731
  kl_ = lambda p, q: float(np.sum(p * np.log(p / q)))  # noqa: E731
  assert dsir.kl_reduction(t, r, s)['kl_reduction'] == pytest.approx(
      kl_(sm(t), sm(r)) - kl_(sm(t), sm(s)))


def test_bad_math_arguments_name_the_argument():
  with pytest.raises(ValueError, match='num_buckets'):
    dsir.ngram_buckets(np.zeros((1, 3), np.int32), 0)
  with pytest.raises(ValueError, match='k must be'):
    dsir.gumbel_top_k(np.zeros(3), 4, 0)
  with pytest.raises(ValueError, match='edges'):
    dsir.featurize(np.zeros((2, 3), np.float32), 10)
  with pytest.raises(ValueError, match='end_fraction'):
    upsample.switch_step(10, 1.5)


# ----------------------------------------------------------------------------- upsampling math


def test_switch_step_and_mixture_at():
  assert [upsample.switch_step(t, f) for t, f in
          ((10, 0.2), (6, 0.2), (1500, 0.2), (10, 0.0), (10, 1.0), (10, 0.25))] == \
      [8, 5, 1200, 10, 0, 7]  # the last round(f T) steps, halves up: 2.5 -> 3
  base, end = [1.0, 0.0], [0.0, 1.0]
  assert upsample.mixture_at(7, 8, base, end).tolist() == base
  assert upsample.mixture_at(8, 8, base, end).tolist() == end


def test_similarity_mixture_by_hand():
  """Source 0: w = (1,); source 1: w = (4, 1) (sizes differ: means, not sums); source 2: no
  rows."""
  log_w, source = np.log([1.0, 4.0, 1.0]), np.array([0, 1, 1])
  arithmetic = upsample.similarity_mixture(log_w, source, 3, power=1.0)
  np.testing.assert_allclose(arithmetic['weights'], [1 / 3.5, 2.5 / 3.5, 0])  # means 1, 2.5
  geometric = upsample.similarity_mixture(log_w, source, 3, power=0.0)
  np.testing.assert_allclose(geometric['weights'], [1 / 3, 2 / 3, 0])  # sqrt(4 * 1) = 2
  half = upsample.similarity_mixture(log_w, source, 3, power=0.5)
  np.testing.assert_allclose(half['weights'], [1 / 3.25, 2.25 / 3.25, 0])  # ((2 + 1) / 2)^2
  assert half['log_similarity'][2] == -np.inf


# ----------------------------------------------------------------------------- upsample_end


def _mixture_method(num_steps=400, end_fraction=0.25, base=(0.3, 0.7, 0, 0, 0),
                    end=(0, 0, 0.2, 0.3, 0.5)):
  config = load_config('upsample_end')
  config.num_steps = num_steps
  config.method.end_fraction = end_fraction
  config.method.base_weights = base
  config.method.end_weights = end
  dataset = load_dataset(config.data, config.seed)
  return upsample_end.make(config, None, dataset), dataset, config  # task: used only by step


def test_batches_follow_the_base_then_the_end_mixture():
  method, dataset, config = _mixture_method()
  switch = 300  # 400 - round(0.25 * 400)
  source = dataset.train.source
  drawn = {t: source[method.sample(t, ())] for t in range(400)}
  before = np.concatenate([drawn[t] for t in range(switch)])
  after = np.concatenate([drawn[t] for t in range(switch, 400)])
  # Disjoint supports: the switch is exactly at step 300.
  assert set(before.tolist()) <= {0, 1} and set(after.tolist()) <= {2, 3, 4}
  np.testing.assert_allclose(np.bincount(before, minlength=5) / len(before),
                             [0.3, 0.7, 0, 0, 0], atol=0.03)
  np.testing.assert_allclose(np.bincount(after, minlength=5) / len(after),
                             [0, 0, 0.2, 0.3, 0.5], atol=0.04)
  summary = method.finalize(None, None, ())
  assert summary['upsample_switch_step'] == switch
  assert summary['source_weights'] == [0, 0, 0.2, 0.3, 0.5]
  assert summary['source_weights_schedule'] == [[0, [0.3, 0.7, 0, 0, 0]],
                                                [switch, [0, 0, 0.2, 0.3, 0.5]]]


def test_a_step_draws_the_same_batch_in_any_order():
  method, _, _ = _mixture_method(num_steps=40, end_fraction=0.5)
  in_order = [method.sample(t, ()) for t in range(40)]
  shuffled = np.random.default_rng(0).permutation(40)
  again, _, _ = _mixture_method(num_steps=40, end_fraction=0.5)  # a fresh (resumed) run
  out_of_order = {int(t): again.sample(int(t), ()) for t in shuffled}
  for t in range(40):
    np.testing.assert_array_equal(in_order[t], out_of_order[t])
  assert not all(np.array_equal(in_order[0], in_order[t]) for t in range(1, 40))


def test_default_end_mixture_prefers_the_clean_text_source():
  """stdlib_text sources are corrupted at 0, .2, .4, .6, .8 (random bytes); the meta split is
  clean: DSIR's similarity puts more end weight on source 0 than on source 4."""
  config = load_config('upsample_end', 'dataset=stdlib_text,smoke')
  dataset = load_dataset(config.data, config.seed)
  summary = upsample_end.make(config, None, dataset).finalize(None, None, ())
  w = np.array(summary['source_weights'])
  assert w.sum() == pytest.approx(1.0) and w[0] > 0.5 > w[4], w
  assert summary['end_weights_from'].startswith('DSIR')
  assert summary['source_weights_schedule'][0] == [0, [0.2] * 5]


# ----------------------------------------------------------------------------- end to end


def test_dsir_smoke_on_digits(run_smoke):
  summary, _, workdir = run_smoke('dsir', scores=True, method__discard_fraction=0.2)
  assert summary['result_phase'] == 'filtered' and summary['phases']['score']['ledger'][
      'steps'] == 0
  report = summary['dsir']
  assert report['select_fraction'] == pytest.approx(0.8) and report['features_per_row'] == 127
  assert np.isfinite(report['kl_reduction'])
  scores = np.load(os.path.join(workdir, 'scores_train.npy'))
  assert np.isfinite(scores).all() and scores.std() > 0


def test_dsir_smoke_on_text_finds_the_corrupted_windows(run_smoke):
  """Random-byte windows have bigrams the clean meta split lacks: low log weight."""
  summary, _, workdir = run_smoke('dsir', arg='dataset=stdlib_text,smoke', scores=True,
                                  method__discard_fraction=0.2, method__select_fraction=0.5)
  report = summary['dsir']
  assert summary['score_auroc'] > 0.9, summary['score_auroc']
  assert report['kl_reduction'] > 0.02 > report['kl_reduction_random'], report
  assert report['selected_corrupted_fraction'] < 0.1
  config = load_config('dsir', 'dataset=stdlib_text,smoke')
  dataset = load_dataset(config.data, config.seed)
  log_w = dsir_method.log_weights(config, dataset)['log_w']
  scores = np.load(os.path.join(workdir, 'scores_train.npy'))
  np.testing.assert_allclose(scores[dataset.train.row], log_w, rtol=1e-5)  # higher = keep


def test_upsample_end_smoke_on_digits(run_smoke):
  summary, rows, _ = run_smoke('upsample_end')
  assert summary['upsample_switch_step'] == 5  # 6 smoke steps, the last round(0.2 * 6) = 1
  schedule = summary['source_weights_schedule']
  assert [t for t, _ in schedule] == [0, 5] and schedule[1][1] == summary['source_weights']
  assert sum(summary['source_weights']) == pytest.approx(1.0)
  ends = [r['upsample/end_mixture'] for r in rows if 'upsample/end_mixture' in r]
  assert ends[0] == 0 and ends[-1] > 0


# ----------------------------------------------------------------------------- config errors

DSIR_BAD = [('num_buckets', 0), ('ngrams', 0), ('num_bins', 1), ('smoothing', 0.0),
            ('select_fraction', 1.5), ('discard_fraction', 1.0), ('filter_mode', 'sometimes')]
UPSAMPLE_BAD = [('end_fraction', 1.5), ('similarity_power', 2.0), ('base_weights', (1.0, 1.0)),
                ('end_weights', (1.0, -1.0, 0.0, 0.0, 0.0)), ('num_buckets', 0)]


@pytest.mark.parametrize('name,field,value', [('dsir', f, v) for f, v in DSIR_BAD]
                         + [('upsample_end', f, v) for f, v in UPSAMPLE_BAD])
def test_bad_config_is_one_line_naming_the_field(name, field, value):
  config = load_config(name)
  config.method[field] = value
  dataset = load_dataset(config.data, config.seed)
  module = dsir_method if name == 'dsir' else upsample_end
  with pytest.raises(ConfigError, match=f'config.method.{field} ') as error:
    module.make(config, None, dataset)
  assert '\n' not in str(error.value)


def test_label_features_need_class_labels():
  config = load_config('dsir', 'dataset=stdlib_text,smoke')
  config.method.label_features = True
  with pytest.raises(ConfigError, match='config.method.label_features'):
    dsir_method.make(config, None, load_dataset(config.data, config.seed))
