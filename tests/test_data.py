"""Data contracts: ground truth matches the corruption, splits partition the data,
npz validation, TFDS loading, the sampler is a pure function of (seed, step)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from configs.common import base_config, parse_arg
from datarater.data import DataError, load_dataset, sampler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits_cfg(**kw):
  c = base_config(parse_arg('dataset=digits')).data
  for k, v in kw.items():
    c[k] = v
  return c


@pytest.mark.parametrize('kind', ['label_symmetric', 'label_pairflip', 'label_uniform',
                                  'label_flip2', 'feature_noise'])
def test_flags_match_applied_corruption(kind):
  clean = load_dataset(digits_cfg(corruption='none'), seed=3)
  noisy = load_dataset(digits_cfg(corruption=kind), seed=3)
  np.testing.assert_array_equal(clean.train.source, noisy.train.source)
  if kind == 'feature_noise':
    changed = np.any(clean.train.x != noisy.train.x, axis=(1, 2, 3))
    np.testing.assert_array_equal(clean.train.y, noisy.train.y)
  else:
    changed = clean.train.y != noisy.train.y
    np.testing.assert_array_equal(clean.train.x, noisy.train.x)
  np.testing.assert_array_equal(changed, noisy.train.corrupted)
  if kind == 'label_pairflip':
    c = noisy.train.corrupted
    np.testing.assert_array_equal(noisy.train.y[c], (clean.train.y[c] + 1) % 10)
  # Per-source rates over the corrupted pool: train and the validation rows carved from it.
  pool = [np.concatenate([s.corrupted[s.source == k] for s in (noisy.train, noisy.valid)])
          for k in range(5)]
  # label_uniform keeps the true label of ~1/10 of the drawn rows: those are not corrupted.
  expected = np.array([0, 0.2, 0.4, 0.6, 0.8]) * (0.9 if kind == 'label_uniform' else 1.0)
  np.testing.assert_allclose([p.mean() for p in pool], expected,
                             atol=0.05 if kind == 'label_uniform' else 0.005)
  assert not noisy.meta.corrupted.any() and not noisy.test.corrupted.any()  # clean meta mode


def test_mwnet_uniform_noise_may_keep_the_label_and_flags_only_changes():
  """label_uniform: round(r n) rows drawn, each relabelled uniformly over all C classes."""
  from datarater.data import corruption
  from datarater.data.core import make_split
  n, c = 20000, 4
  split = make_split(np.zeros((n, 1)), np.arange(n) % c, np.zeros(n, int))
  out = corruption.corrupt_sources(split, (0.5,), 'label_uniform', c, np.random.default_rng(0))
  changed = out.y != split.y
  np.testing.assert_array_equal(out.corrupted, changed)
  assert changed.mean() == pytest.approx(0.5 * (c - 1) / c, abs=0.01)   # 3/8, not 1/2
  # Each of the C classes is equally likely as the new label, the true one included.
  np.testing.assert_allclose(np.bincount((out.y - split.y) % c, minlength=c)[1:] / n,
                             [0.125] * 3, atol=0.01)


def test_mwnet_flip2_noise_uses_two_targets_per_class():
  from datarater.data import corruption
  from datarater.data.core import make_split
  targets = corruption.flip2_targets(10)
  assert targets.shape == (10, 2) and (targets != np.arange(10)[:, None]).all()
  assert (targets[:, 0] != targets[:, 1]).all()
  np.testing.assert_array_equal(targets, corruption.flip2_targets(10))   # fixed, every run
  assert len({tuple(t) for t in targets}) > 1                            # random, not a shift
  n = 10000
  split = make_split(np.zeros((n, 1)), np.arange(n) % 10, np.zeros(n, int))
  out = corruption.corrupt_sources(split, (0.4,), 'label_flip2', 10, np.random.default_rng(1))
  assert out.corrupted.sum() == 4000 and (out.corrupted == (out.y != split.y)).all()
  for cls in range(10):
    moved = out.y[out.corrupted & (split.y == cls)]
    assert set(moved.tolist()) == set(targets[cls].tolist())             # both, and only them
    assert abs((moved == targets[cls, 0]).mean() - 0.5) < 0.1
  with pytest.raises(DataError, match='at least 3 classes'):
    corruption.flip2_targets(2)


def test_splits_partition_digits():
  d = load_dataset(digits_cfg(), seed=0)
  full = load_digits().images.reshape(1797, -1) / 16.0
  got = np.concatenate([s.x.reshape(s.size, -1) for s in (d.train, d.meta, d.valid, d.test)])
  assert len(got) == 1797
  key = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
  np.testing.assert_allclose(key(got), key(full), atol=1e-6)
  assert d.meta.size == 100 and d.info.meta_mode == 'clean'


def test_noisy_meta_mode_is_corrupted_like_train():
  d = load_dataset(digits_cfg(meta_mode='noisy', meta_size=400), seed=0)
  assert d.info.meta_mode == 'noisy'
  assert 0.25 < d.meta.corrupted.mean() < 0.55


@pytest.mark.parametrize('factor', [10.0, 200.0])
def test_imbalance_long_tail_with_a_balanced_meta_split_drawn_first(factor):
  """Train is long-tailed; the clean meta split holds meta_size // C = 10 rows of every
  class, drawn before the imbalance (so even the rarest class has 10), disjoint from train."""
  d = load_dataset(digits_cfg(imbalance=factor, corruption_rates=()), seed=0)
  train, meta = np.bincount(d.train.y, minlength=10), np.bincount(d.meta.y, minlength=10)
  assert train[0] > 5 * train[9] and train[9] >= 1
  assert (meta == 10).all() and d.info.meta_mode == 'clean'
  assert not set(d.meta.row) & set(d.train.row)


def test_balanced_meta_split_needs_a_row_per_class():
  with pytest.raises(DataError, match='config.data.meta_size=5 must be at least the number of '
                                      'classes'):
    load_dataset(digits_cfg(imbalance=10.0, corruption_rates=(), meta_size=5), seed=0)


@pytest.mark.parametrize('kind', ['random_bytes', 'shuffle', 'repeat'])
def test_text_flags_match(kind):
  c = base_config(parse_arg('dataset=stdlib_text,smoke')).data
  clean_c = base_config(parse_arg('dataset=stdlib_text,smoke')).data
  c.corruption, clean_c.corruption = kind, 'none'
  clean, noisy = load_dataset(clean_c, 1), load_dataset(c, 1)
  changed = np.any(clean.train.x != noisy.train.x, axis=1) | np.any(clean.train.y != noisy.train.y, axis=1)
  # A window of one repeated byte (a line of '-') is flagged but left as it is by shuffle/repeat.
  windows = np.concatenate([clean.train.x, clean.train.y[:, -1:]], axis=1)
  no_op = (windows == windows[:, :1]).all(axis=1) & (kind != 'random_bytes')
  np.testing.assert_array_equal(changed, noisy.train.corrupted & ~no_op)
  np.testing.assert_array_equal(noisy.train.x[:, 1:], noisy.train.y[:, :-1])  # next-byte targets
  assert noisy.info.task == 'lm' and noisy.info.source_names[0] == 'asyncio'
  assert noisy.train.x.shape[1] == c.seq_len and noisy.train.x.max() < 256


def test_sampler_is_pure_and_covers_epochs():
  a = [sampler.sequential_indices(100, 32, 7, s) for s in range(10)]
  b = [sampler.sequential_indices(100, 32, 7, s) for s in reversed(range(10))][::-1]
  np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
  first_epoch = np.concatenate(a)[:100]
  assert sorted(first_epoch.tolist()) == list(range(100))
  src = np.repeat(np.arange(3), 50)
  idx = sampler.mixture_indices(src, [0.0, 0.25, 0.75], 4000, 0, 0)
  frac = np.bincount(src[idx], minlength=3) / 4000
  np.testing.assert_allclose(frac, [0, 0.25, 0.75], atol=0.03)


def _write(path, **arrays):
  np.savez(path, **arrays)
  return str(path)


def _good(n=60):
  rng = np.random.default_rng(0)
  return dict(x_train=rng.normal(size=(n, 4)).astype(np.float32), y_train=rng.integers(0, 3, n),
              x_test=rng.normal(size=(20, 4)).astype(np.float32), y_test=rng.integers(0, 3, 20))


BAD = {
    'missing y_test': (lambda g: g.pop('y_test'), "'y_test'"),
    'label float': (lambda g: g.update(y_train=g['y_train'].astype(np.float32)), "'y_train'"),
    'nan input': (lambda g: g['x_train'].__setitem__((0, 0), np.nan), "'x_train'"),
    'shape mismatch': (lambda g: g.update(y_train=g['y_train'][:-1]), "'y_train'"),
    'test label unseen': (lambda g: g['y_test'].__setitem__(0, 7), "'y_test'"),
    'source shape': (lambda g: g.update(source_train=np.zeros(3, int)), "'source_train'"),
    'meta without y': (lambda g: g.update(x_meta=g['x_test']), "'x_meta'"),
    'empty test': (lambda g: g.update(x_test=g['x_test'][:0], y_test=g['y_test'][:0]),
                   "'y_test' is empty"),
    'empty meta': (lambda g: g.update(x_meta=g['x_test'][:0], y_meta=g['y_test'][:0]),
                   "'y_meta' is empty"),
    'meta feature shape': (lambda g: g.update(x_meta=np.zeros((5, 3)), y_meta=np.zeros(5, int)),
                           "'x_meta' shape (3,) differs"),
    'label beyond int32': (lambda g: g['y_train'].__setitem__(0, 2**31), "'y_train' has labels"),
    'complex input': (lambda g: g.update(x_train=g['x_train'] + 1j), "'x_train' must be real"),
    'corrupted not boolean': (lambda g: g.update(corrupted_train=np.arange(60) % 2),
                              "'corrupted_train' must be boolean"),
    'no test label in train': (lambda g: g.update(y_train=7 + g['y_train'], y_test=g['y_test']),
                               "no label of 'y_test' occurs in 'y_train'"),
    'source_test alone': (lambda g: g.update(source_test=np.zeros(20, int)),
                          "'source_test' needs 'source_train'"),
    'source_test id unknown': (lambda g: g.update(source_train=np.arange(60) % 3,
                                                  source_test=np.full(20, 5)),
                               "'source_test' has ids that 'source_train' does not have: [5]"),
    'source_test shape': (lambda g: g.update(source_train=np.arange(60) % 3,
                                             source_test=np.zeros(3, int)), "'source_test' must"),
}


@pytest.mark.parametrize('case', sorted(BAD))
def test_npz_validation(tmp_path, case):
  g = _good()
  mutate, needle = BAD[case]
  mutate(g)
  cfg = base_config(parse_arg('dataset=npz')).data
  cfg.path = _write(tmp_path / 'd.npz', **g)
  with pytest.raises(DataError) as e:
    load_dataset(cfg, 0)
  assert needle in str(e.value) and '\n' not in str(e.value)


def test_npz_test_labels_partly_unseen_warn_in_one_line(tmp_path, capsys):
  g = _good()
  g['y_train'] = np.where(g['y_train'] == 1, 0, g['y_train'])   # train labels {0, 2}
  cfg = base_config(parse_arg('dataset=npz')).data
  cfg.path, cfg.meta_size = _write(tmp_path / 'd.npz', **g), 10
  load_dataset(cfg, 0)
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 1 and err[0].startswith('warning:') and "labels [1] never occur" in err[0]


def test_npz_with_sources_and_meta(tmp_path):
  g = _good()
  g.update(source_train=np.arange(60) % 3, corrupted_train=np.arange(60) % 5 == 0,
           x_meta=g['x_test'][:10], y_meta=g['y_test'][:10])
  cfg = base_config(parse_arg('dataset=npz')).data
  cfg.path = _write(tmp_path / 'd.npz', **g)
  d = load_dataset(cfg, 0)
  assert d.info.num_sources == 3 and d.info.meta_mode == 'given' and d.meta.size == 10
  assert d.train.size + d.valid.size == 60   # the validation rows are carved from x_train
  np.testing.assert_array_equal(d.train.corrupted, (np.arange(60) % 5 == 0)[d.train.row])
  np.testing.assert_array_equal(d.valid.corrupted, (np.arange(60) % 5 == 0)[d.valid.row])


def test_test_rows_carry_a_source_only_where_it_is_real(tmp_path):
  """Corruption-rate sources are random partitions: test rows get NO_SOURCE; text sources are
  packages and an npz may give source_test (numbered like source_train)."""
  from datarater.data.core import NO_SOURCE
  assert (load_dataset(digits_cfg(), seed=0).test.source == NO_SOURCE).all()
  text = load_dataset(base_config(parse_arg('dataset=stdlib_text,smoke')).data, 1)
  assert sorted(np.unique(text.test.source)) == list(range(text.info.num_sources))
  g = _good()
  g.update(source_train=10 * (np.arange(60) % 3), source_test=10 * (np.arange(20) % 3))
  cfg = base_config(parse_arg('dataset=npz')).data
  cfg.path, cfg.meta_size = _write(tmp_path / 'd.npz', **g), 10
  np.testing.assert_array_equal(load_dataset(cfg, 0).test.source, np.arange(20) % 3)
  g.pop('source_test')
  cfg.path = _write(tmp_path / 'e.npz', **g)
  assert (load_dataset(cfg, 0).test.source == NO_SOURCE).all()


def test_cli_bad_npz_exits_2_one_line_no_workdir(tmp_path):
  g = _good()
  g.pop('x_test')
  path = _write(tmp_path / 'bad.npz', **g)
  workdir = tmp_path / 'run'
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.train', '--config=configs/uniform.py:dataset=npz,smoke',
       f'--config.data.path={path}', f'--workdir={workdir}'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  err = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(err) == 1 and "'x_test'" in err[0]
  assert not workdir.exists()


def test_tfds_not_prepared_is_one_line(tmp_path):
  cfg = base_config(parse_arg('dataset=mnist')).data
  cfg.data_dir = str(tmp_path)
  with pytest.raises(DataError) as e:
    load_dataset(cfg, 0)
  msg = str(e.value)
  assert 'mnist' in msg and 'download_and_prepare' in msg and '\n' not in msg


def test_tfds_array_record_roundtrip(tmp_path):
  """A tiny TFDS builder prepared as array_record is read through tfds.data_source."""
  from tfds_tiny import DrTinyImages

  DrTinyImages(data_dir=str(tmp_path)).download_and_prepare(file_format='array_record')
  cfg = base_config(parse_arg('dataset=dr_tiny_images')).data
  cfg.data_dir = str(tmp_path)
  cfg.meta_size = 20
  d = load_dataset(cfg, 0)
  assert d.train.size + d.meta.size + d.valid.size == 150 and d.test.size == 30
  assert d.train.x.shape[1:] == (8, 8, 1) and d.info.num_classes == 3
  assert 0.0 <= d.train.x.min() and d.train.x.max() <= 1.0


def test_tfds_text_uses_its_own_test_split(tmp_path):
  """TFDS text: train windows from 'train', test windows from 'test', all of them if it is small."""
  import tensorflow_datasets as tfds
  from tfds_tiny import DrTinyText

  DrTinyText(data_dir=str(tmp_path)).download_and_prepare(file_format='array_record')
  cfg = base_config(parse_arg('dataset=dr_tiny_text')).data
  cfg.data_dir, cfg.seq_len, cfg.meta_size, cfg.corruption_rates = str(tmp_path), 32, 20, ()
  cfg.corruption = 'none'
  src = tfds.data_source('dr_tiny_text', split='test', data_dir=str(tmp_path))
  test_windows = len(b'\n'.join(bytes(r['text']) if isinstance(r['text'], bytes)
                                else r['text'].encode() for r in src)) // 33
  cfg.examples_per_source = 100
  d = load_dataset(cfg, 0)
  assert (d.train.size, d.meta.size, d.test.size) == (100, 20, 25)   # test = train // 4
  cfg.examples_per_source = 4 * test_windows + 40                    # more than the test split holds
  d = load_dataset(cfg, 0)
  assert d.test.size == test_windows and d.train.x.shape[1:] == (32,)


def test_digits_read_without_sklearn_equal_sklearns_load_digits():
  """digits_arrays reads scikit-learn's bundled file without importing scikit-learn (a slow
  import); its arrays are load_digits' own."""
  import sklearn.datasets
  from datarater.data.loaders import digits_arrays
  images, target = digits_arrays()
  d = sklearn.datasets.load_digits()
  np.testing.assert_array_equal(images, d.images)
  np.testing.assert_array_equal(target, d.target)
