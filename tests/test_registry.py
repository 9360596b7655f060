"""The method registry: every method declares what it is, and the experiments take their
methods from the declarations (datarater.run.methods_with), never from a list.

A method written only as a module (here: a file in a temporary folder put on
`datarater.methods.__path__`) must appear in the detection report's scorers,
the label_error_detection suite, the benchmark's per-method table and the
suite its declaration makes it relevant to, with no edit under experiments/;
re-introducing a hand-kept list anywhere there makes these tests fail. The
runs of the methods registered today are pinned, so that a declaration change
cannot silently change a suite whose runs are cached.
"""

import importlib
import os
import sys

import pytest

import datarater.methods
from conftest import ROOT
from datarater.methods import FAMILIES, Declares
from datarater.run import declaration, method_names, methods_with
from experiments import _runs
from experiments.benchmark import methods as bench
from experiments.reproduce.suites import (label_error_detection, long_tail, noisy_labels,
                                          source_mixture)
from experiments.reproduce.suites._common import table_label

# The methods registered when the runs below were pinned.
PINNED = {'aum', 'cartography', 'chi2_dro', 'confident_learning', 'cvar', 'datarater', 'doremi',
          'el2n', 'forgetting', 'group_dro', 'infobatch', 'kl_dro', 'l2rw', 'loss_reweight',
          'mwn', 'scalebio', 'score_filter', 'small_loss', 'static_mixture', 'storm', 'uniform'}

RULE = '''
import jax.numpy as jnp

from datarater.methods import _per_example as per_example

DECLARES = dict(family='rule', label='zz rule', scores=True, loss_scores=True)


def make(config, task, dataset):
  def rule(losses, step):
    return jnp.full_like(losses, 1 / losses.shape[0]), {}
  return per_example.make_per_example_method(config, task, dataset, rule, 'zz rule')
'''


def module_text(**declares) -> str:
  """A method module that declares `declares` (its make is never called by these tests)."""
  return (f'DECLARES = {declares!r}\n\n\n'
          'def make(config, task, dataset):\n  raise NotImplementedError\n')


@pytest.fixture
def add_method(tmp_path, monkeypatch):
  """add_method(name, text): registers a method module written to a temporary folder."""
  monkeypatch.setattr(datarater.methods, '__path__', [*datarater.methods.__path__, str(tmp_path)])
  added = []

  def add(name, text):
    (tmp_path / f'{name}.py').write_text(text)
    importlib.invalidate_caches()
    added.append(name)

  yield add
  for name in added:
    sys.modules.pop(f'datarater.methods.{name}', None)


def first_setting(runs) -> list:
  """(row label, config) of the runs of a suite's first setting, of the PINNED methods (not
  the compute-matched uniform rows added since)."""
  return [(r.method, r.config) for r in runs if r.setting == runs[0].setting and r.config in PINNED
          and not r.match_compute]


# ----------------------------------------------------------------------------- declarations


def test_every_method_declares_what_it_is():
  labels = []
  for name in method_names():
    declared = declaration(name)
    assert declared.family in FAMILIES, name
    assert not declared.loss_scores or declared.scores, name
    assert not declared.variants or declared.scores, name  # variants are reported scorers
    assert os.path.isfile(os.path.join(ROOT, 'configs', f'{name}.py')), name
    labels.append(declared.label)
  assert len(set(labels)) == len(labels), labels


def test_methods_with_filters_and_sorts_by_family_then_name():
  assert methods_with(source_weights=True) == ['scalebio', 'aioli', 'doremi', 'group_dro',
                                               'mixing_agent', 'regmix']
  assert methods_with(family=('pruning', 'baseline')) == ['finetune_meta', 'meta_only', 'oracle',
                                                          'uniform', 'infobatch']
  everything = methods_with()
  assert sorted(everything) == method_names()
  keys = [(FAMILIES.index(declaration(n).family), n) for n in everything]
  assert keys == sorted(keys)
  with pytest.raises(TypeError, match='no Declares field'):
    methods_with(scorez=True)


def test_a_module_without_a_valid_declaration_is_refused(add_method):
  add_method('zz_silent', 'def make(config, task, dataset):\n  pass\n')
  add_method('zz_odd', module_text(family='oracle', label='odd'))
  add_method('zz_typo', module_text(family='rule', label='typo', scorez=True))
  with pytest.raises(TypeError, match='zz_silent has no DECLARES'):
    declaration('zz_silent')
  with pytest.raises(ValueError, match="family='oracle'"):
    declaration('zz_odd')
  with pytest.raises(TypeError, match='scorez'):
    declaration('zz_typo')
  assert Declares._fields == ('family', 'label', 'scores', 'loss_scores', 'source_weights',
                              'mixing', 'variants', 'variant_labels', 'information')


# ----------------------------------------------------------------------------- today's runs


def test_the_runs_of_todays_methods_are_unchanged():
  """Cached runs stay valid: the same runs, labels, overrides and order as when pinned."""
  es = ('uniform (early-stopped on validation)', 'uniform')  # read from uniform's runs
  assert first_setting(noisy_labels.grid('smoke')) == [
      ('uniform', 'uniform'), es, ('L2RW', 'l2rw'), ('MW-Net', 'mwn'), ('DataRater', 'datarater'),
      ('STORM', 'storm'), ('STORM filter', 'storm'), ('AUM filter', 'aum'), ('KL-DRO', 'kl_dro'),
      ('loss reweighting', 'loss_reweight'), ('InfoBatch', 'infobatch')]
  assert first_setting(long_tail.grid('smoke')) == [
      ('uniform', 'uniform'), es, ('L2RW', 'l2rw'), ('MW-Net', 'mwn')]
  mixture = source_mixture.grid('smoke')
  assert first_setting(mixture) == [('uniform', 'uniform'), ('ScaleBiO', 'scalebio'),
                                    ('DoReMi', 'doremi'), ('group DRO', 'group_dro'),
                                    ('static mixture', 'static_mixture'),
                                    ('DataRater', 'datarater')]
  assert [r.make_config(0).method.retrain for r in mixture if r.config == 'scalebio'] == [True]
  scorers = {k: v for k, v in _runs.scorers().items() if v[0] in PINNED}
  assert scorers == {
      'datarater': ('datarater', {}), 'l2rw': ('l2rw', {}), 'mwn': ('mwn', {}),
      'storm': ('storm', {}), 'aum': ('aum', {}), 'cartography': ('cartography', {}),
      'confident_learning': ('confident_learning', {}),
      'el2n': ('el2n', {'method.score': 'el2n'}), 'grand': ('el2n', {'method.score': 'grand'}),
      'forgetting': ('forgetting', {}), 'kl_dro (latest loss)': ('kl_dro', {}),
      'small_loss (latest loss)': ('small_loss', {})}
  assert list(scorers) == [k for k, v in _runs.scorers().items() if v[0] in PINNED]  # order
  detection = label_error_detection.grid('smoke')
  assert [r.method for r in detection
          if r.setting == detection[0].setting and r.config in PINNED] == list(scorers)
  assert [n for n in bench.timed_methods() if n in PINNED] == [
      'scalebio', 'doremi', 'group_dro', 'static_mixture', 'l2rw', 'mwn', 'storm', 'aum',
      'cartography', 'confident_learning', 'el2n', 'forgetting', 'chi2_dro', 'cvar', 'kl_dro',
      'loss_reweight', 'small_loss', 'infobatch']
  assert set(bench.QUICK_METHODS) <= set(bench.timed_methods())


# ----------------------------------------------------------------------------- new methods


def test_a_new_rule_appears_in_the_report_benchmark_and_noisy_labels(add_method):
  add_method('zz_rule', RULE)
  assert _runs.scorers()['zz_rule (latest loss)'] == ('zz_rule', {})
  detection = label_error_detection.grid('smoke')
  assert {r.setting for r in detection if r.config == 'zz_rule'} == {r.setting for r in detection}
  assert 'zz_rule' in bench.timed_methods() and bench.method_target('zz_rule') == 1.05
  noisy = noisy_labels.grid('smoke')
  assert [r.method for r in noisy if r.config == 'zz_rule'] == ['zz rule'] * 2  # both settings
  assert 'zz_rule' not in {r.config for r in source_mixture.grid('smoke')}
  assert 'zz_rule' not in {r.config for r in long_tail.grid('smoke')}


def test_a_new_source_weighting_appears_in_source_mixture_and_the_benchmark(add_method):
  add_method('zz_mix', module_text(family='source', label='zz mix', source_weights=True))
  assert [(r.method, r.config) for r in source_mixture.grid('smoke')][-4:] == [
      ('end-of-training upsampling', 'upsample_end'), ('zz mix', 'zz_mix'),
      ('DataRater', 'datarater'), ('DSIR filter', 'dsir')]  # table order: source, meta, scorer
  assert bench.method_target('zz_mix') == 1.05
  assert 'zz_mix' not in {cfg for cfg, _ in _runs.scorers().values()}
  assert 'zz_mix' not in {r.config for r in noisy_labels.grid('smoke')}


def test_a_new_scorer_with_variants_is_detected_as_each_and_filtered_in_noisy_labels(add_method):
  add_method('zz_score', module_text(family='scorer', label='ZZ', scores=True,
                                     variants={'zz_a': {'method.score': 'a'},
                                               'zz_b': {'method.score': 'b'}}))
  assert {k: v for k, v in _runs.scorers().items() if v[0] == 'zz_score'} == {
      'zz_a': ('zz_score', {'method.score': 'a'}), 'zz_b': ('zz_score', {'method.score': 'b'})}
  run = next(r for r in label_error_detection.grid('smoke') if r.method == 'zz_b')
  assert run.overrides['method.discard_fraction'] == 0.0  # detection only: no retraining
  assert run.overrides['method.score'] == 'b'
  rows = {r.method: r.overrides.get('method.score') for r in noisy_labels.grid('smoke')}
  assert rows['ZZ filter'] == 'a' and rows['ZZ (zz_b) filter'] == 'b'  # one row per variant
  assert 'zz_score' in bench.timed_methods() and bench.method_target('zz_score') is None


def test_storm_rows_are_the_rescaled_model_and_the_filtered_variant():
  """The 'STORM' row's result is the model trained on rescaled losses; 'STORM filter' retrains."""
  runs = {r.method: r for r in noisy_labels.grid('smoke') if r.config == 'storm'}
  assert sorted(runs) == ['STORM', 'STORM filter']
  assert runs['STORM'].make_config(0).method.filter is False
  assert runs['STORM filter'].make_config(0).method.filter is True
  assert [k for k, v in _runs.scorers().items() if v[0] == 'storm'] == ['storm']  # same scores
  assert table_label('el2n', 'grand') == 'GraNd filter'
