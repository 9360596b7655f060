"""Text corruptions like the DataRater paper's findings (mojibake, OCR errors, boilerplate)
and the 'mixed' preset: what each kind does to a window, which windows it touches, and that
source k of 'mixed' gets MIXED_KINDS[k]."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from configs.common import base_config, parse_arg
from datarater.data import DataError, corruption, load_dataset
from datarater.data.loaders import stdlib_package_bytes
from datarater.report.scoring import score_quality

NEW_KINDS = ('mojibake', 'ocr', 'boilerplate')
OCR_PAIRS = {(b'r', b'm'), (b'm', b'r'), (b'l', b'1'), (b'O', b'0'), (b'I', b'l'), (b'e', b'c')}


def _text_windows(n=60, length=65):
  """n consecutive windows of real text (json's source) and the text after each."""
  stream = stdlib_package_bytes('json')[:(n + 1) * length].astype(np.int32)
  windows = stream.reshape(n + 1, length)
  return windows[:-1], windows[1:]


def _text_cfg(kind):
  c = base_config(parse_arg('dataset=stdlib_text,smoke')).data
  c.corruption = kind
  return c


def _bytes(row) -> bytes:
  return bytes(np.asarray(row, np.uint8))


def _cp1252(byte: int) -> str:
  try:
    return bytes([byte]).decode('cp1252')
  except UnicodeDecodeError:   # one of the five bytes CP1252 leaves undefined: read as Latin-1
    return chr(byte)


def _mojibake_forms(window: bytes) -> set:
  """The two codecs' versions of a window, by Python's own codecs."""
  wrong = ''.join(map(_cp1252, window)).encode('utf-8').decode('latin-1')
  return {wrong.encode(c)[:len(window)] for c in ('utf-16-le', 'cp037')}


@pytest.mark.parametrize('kind', NEW_KINDS)
def test_new_kinds_change_the_masked_windows_and_only_them(kind):
  seqs, following = _text_windows()
  source = np.zeros(len(seqs), np.int32)
  out, mask = corruption.corrupt_sequences(seqs, following, source, (0.5,), kind,
                                           np.random.default_rng(0), 0.5)
  assert mask.sum() == 30 and out.shape == seqs.shape and out.dtype == seqs.dtype
  assert out.min() >= 0 and out.max() <= 255
  np.testing.assert_array_equal(out[~mask], seqs[~mask])
  assert (out[mask] != seqs[mask]).any(axis=1).all()


def test_ocr_hand_computed_window():
  window = np.frombuffer(b'rn m lOIe x', np.uint8)[None].astype(np.int32)
  following = np.frombuffer(b'abcdefghijk', np.uint8)[None].astype(np.int32)
  rng = np.random.default_rng(0)
  every = corruption.ocr(window, np.ones(1, bool), following, 1.0, rng)
  # Every site confused (spaces between non-space characters dropped); the 3 bytes lost are
  # filled from the (confused) following text.
  assert _bytes(every[0]) == b'mrn10lcxabc'
  none = corruption.ocr(window, np.ones(1, bool), following, 0.0, rng)
  np.testing.assert_array_equal(none, window)
  # Indentation and double spaces are not word gaps: kept.
  indent = np.frombuffer(b'    a  b', np.uint8)[None].astype(np.int32)
  kept = corruption.ocr(indent, np.ones(1, bool), indent, 1.0, rng)
  assert _bytes(kept[0]) == b'    a  b'


def test_ocr_rate_is_per_site_for_a_fixed_rng():
  window = np.full((1, 200), ord('e'), np.int32)
  out = corruption.ocr(window, np.ones(1, bool), window, 0.25, np.random.default_rng(7))
  # One uniform per site, in order: the window's 200 sites are the first 200 draws.
  expect = np.where(np.random.default_rng(7).random(400)[:200] < 0.25, ord('c'), ord('e'))
  np.testing.assert_array_equal(out[0], expect)
  assert 30 < (out[0] == ord('c')).sum() < 70


def test_mojibake_pure_ascii_and_double_encoding():
  ascii_rows = [b'def f(x):\n    return x + 1  # add one', b'Hello, World! 0123456789 abc xyz.']
  accented = 'café, naïve résumé'.encode('utf-8')
  length = 20
  rows = [r[:length] for r in (*ascii_rows, accented)] * 8
  seqs = np.stack([np.frombuffer(r, np.uint8) for r in rows]).astype(np.int32)
  out = corruption.mojibake(seqs, np.ones(len(rows), bool), np.random.default_rng(1))
  codecs = set()
  for row, new in zip(rows, out):
    assert _bytes(new) in _mojibake_forms(row) and _bytes(new) != row
    codecs.add(0 in new)   # UTF-16-LE puts a NUL after each character; cp037 has none here
  assert codecs == {True, False}
  # The classic double encoding of 'é' (C3 A9 -> 'Ã©' = C3 83 C2 A9) shows through UTF-16-LE.
  wide = [new for row, new in zip(rows, out) if row == accented[:length] and 0 in new][0]
  assert _bytes(wide[6:14]) == 'Ã©'.encode('utf-8').decode('latin-1').encode('utf-16-le')


def test_boilerplate_windows_are_drawn_from_the_boilerplate_text():
  seqs, _ = _text_windows()
  mask = np.arange(len(seqs)) % 2 == 0
  out = corruption.boilerplate(seqs, mask, np.random.default_rng(0))
  text = corruption.BOILERPLATE * 3
  assert all(_bytes(row) in text for row in out[mask])
  assert len({_bytes(row) for row in out[mask]}) > 20    # random offsets
  np.testing.assert_array_equal(out[~mask], seqs[~mask])


def _is_kind(kind, clean: bytes, noisy: bytes) -> bool:
  """Whether a corrupted window looks like `kind` applied to its clean window."""
  if kind == 'boilerplate':
    return noisy in corruption.BOILERPLATE * 3
  if kind == 'mojibake':
    return noisy in _mojibake_forms(clean)
  if kind == 'random_bytes':   # about half the bytes replaced
    return 0.25 < np.mean(np.frombuffer(clean, np.uint8) != np.frombuffer(noisy, np.uint8)) < 0.75
  if kind == 'ocr':            # the first difference is a confusion (or a dropped space)
    i = next(i for i in range(len(clean)) if clean[i] != noisy[i])
    return (clean[i:i + 1], noisy[i:i + 1]) in OCR_PAIRS or clean[i:i + 1] == b' '
  raise AssertionError(kind)


def test_mixed_gives_source_k_its_kind_at_its_rate():
  clean, mixed = load_dataset(_text_cfg('none'), 1), load_dataset(_text_cfg('mixed'), 1)
  rates = mixed.info.corruption_rates
  assert rates == (0.0, 0.2, 0.4, 0.6, 0.8) and mixed.info.corruption == 'mixed'
  kinds = ('', 'ocr', 'boilerplate', 'mojibake', 'random_bytes')
  assert mixed.info.source_corruption == kinds
  assert kinds[1:] == corruption.MIXED_KINDS[1:]
  full = lambda s: np.concatenate([s.x, s.y[:, -1:]], axis=1)  # noqa: E731
  before, after = full(clean.train), full(mixed.train)
  for k, (rate, kind) in enumerate(zip(rates, kinds)):
    rows = mixed.train.source == k
    flagged = rows & mixed.train.corrupted
    assert flagged.sum() == round(rate * rows.sum()), k
    changed = (before != after).any(axis=1)
    np.testing.assert_array_equal(changed & rows, flagged)
    for i in np.flatnonzero(flagged):
      assert _is_kind(kind, _bytes(before[i]), _bytes(after[i])), (kind, i)


def test_source_kinds():
  assert corruption.source_kinds('mixed', (0.1,) * 6) == (*corruption.MIXED_KINDS, 'shuffle')
  assert corruption.source_kinds('ocr', (0.0, 0.3)) == ('', 'ocr')
  assert corruption.source_kinds('none', (0.0, 0.3)) == ('', '')
  assert load_dataset(_text_cfg('random_bytes'), 0).info.source_corruption == (
      ('',) + ('random_bytes',) * 4)


def test_kind_mean_score_groups_rows_by_kind():
  d = load_dataset(_text_cfg('mixed'), 1)
  kind = np.array(d.info.source_corruption)[d.train.source]
  # A score that is 0 on clean rows and -(index of the kind + 1) on corrupted rows.
  code = {k: i + 1.0 for i, k in enumerate(corruption.MIXED_KINDS)}
  scores = np.where(d.train.corrupted, -np.vectorize(lambda k: code.get(k, 0.0))(kind), 0.0)
  q = score_quality(d, scores)
  assert q['kind_mean_score'] == {'clean': 0.0, 'ocr': -2.0, 'boilerplate': -3.0,
                                  'mojibake': -4.0, 'random_bytes': -5.0}
  assert q['kind_auroc'] == {'ocr': 1.0, 'boilerplate': 1.0, 'mojibake': 1.0, 'random_bytes': 1.0}
  # A score that ranks the OCR rows above the clean ones: only OCR's AUROC falls (to 0).
  q = score_quality(d, np.where(kind == 'ocr', np.where(d.train.corrupted, 1.0, 0.0), scores))
  assert q['kind_auroc']['ocr'] == 0.0 and q['kind_auroc']['random_bytes'] == 1.0


@pytest.mark.parametrize('name,kind', [('stdlib_text', 'mixd'), ('digits', 'mixed')])
def test_bad_corruption_is_a_one_line_data_error(name, kind):
  c = base_config(parse_arg(f'dataset={name},smoke')).data
  c.corruption = kind
  with pytest.raises(DataError, match=f"config.data.corruption='{kind}' is not one of") as e:
    load_dataset(c, 0)
  assert '\n' not in str(e.value)


def test_cli_bad_text_corruption_exits_2_with_one_line(tmp_path):
  proc = subprocess.run(
      [sys.executable, '-m', 'experiments.train',
       '--config=configs/uniform.py:dataset=stdlib_text,smoke', f'--workdir={tmp_path / "run"}',
       '--config.data.corruption=mojibak'],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1 and 'config.data.corruption' in errors[0], proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
