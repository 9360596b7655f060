"""experiments.reproduce.check_readme: README numbers against the committed tables."""

import os

from experiments.reproduce import check_readme

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def _suite(tmp_path):
  folder = tmp_path / 'results' / 's' / 'cpu'
  os.makedirs(folder / 'runs' / 'a' / 'm' / 'seed1')
  (folder / 'table.csv').write_text(
      'setting,method,seeds,acc mean,acc std,acc seeds,acc diff,acc diff lo,acc diff hi\n'
      'a,uniform,3,80.123,1.5,3,,,\n'
      'a,m,3,90.5,0.25,3,10.38,2.04,18.71\n')
  (folder / 'table.md').write_text('| source 0 (0%) | 0.790 |\n')
  (folder / 'runs' / 'a' / 'm' / 'seed1' / 'reproduce_metrics.json').write_text('{"acc": 88.25}')


def test_checks_pairs_intervals_and_single_numbers(tmp_path):
  _suite(tmp_path)
  readme = tmp_path / 'README.md'
  readme.write_text('\n'.join([
      '## Setup', 'version 0.10.2 is outside Results.',
      '## Results', 'Intro 1.5 outside any block.',
      '### s', '<!-- numbers: results/s/cpu/table.csv -->',
      '| m | **90.50 ± 0.25** | +10.4 [+2.0, +18.7] |',       # pair and interval of one cell
      'm gains 10.4 points; weight 0.79; seed 1 reached 88.2 (`--lr=0.5` is code).',
      'wrong pair 90.50 ± 1.5, wrong interval +10.4 [+2.0, +18.8], stale 91.3; 3 seeds, 1,000 steps.',
      '### Other', 'Per-run 0.9914 not checked.']))
  result = check_readme.check(str(readme))
  assert [(b, i) for i, b, _, _ in result['mismatches']] == [
      ('+10.4 [+2.0, +18.8]', 9), ('90.50 ± 1.5', 9), ('91.3', 9)]
  assert result['checked'] == 8 and not result['missing']
  assert [i for i, _ in result['unchecked']] == [4, 11]
  assert check_readme.main([f'--readme={readme}', '--quiet']) == 1
  readme.write_text('## Results\n<!-- numbers: results/none/table.csv -->\n')
  assert check_readme.main([f'--readme={readme}']) == 2


def test_the_readme_quotes_its_tables():
  result = check_readme.check(os.path.join(ROOT, 'README.md'))
  assert not result['missing'] and result['checked'] > 300
  assert not result['mismatches'], result['mismatches']
