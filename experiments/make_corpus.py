"""Writes a corpus the project has never seen, from text files on this machine, with documents
corrupted at known per-source rates: the input of the end-to-end example (train, score, curate)
in the README.

  python -m experiments.make_corpus --out=corpus.jsonl [--packages=numpy,scipy,sklearn,matplotlib,jax]
      [--rates=0,0.2,0.4,0.6,0.8] [--docs_per_source=200] [--noise=0.3] [--seed=0]

Sources: one per installed package of --packages (its folder, found with importlib without
importing it); documents: the package's .py files of 1-16 KB, sorted by path, then
--docs_per_source of them drawn with --seed. Not the standard library (the embedded
`stdlib_text` preset), so the corpus is new to the project. Corruption: in source k, each
document is corrupted with probability rates[k] (drawn with --seed): a --noise fraction of its
characters, at random positions, is replaced by characters drawn uniformly from U+0021..U+024F
(printable Latin, so the text stays valid UTF-8; about half encode to two bytes).

Output: a .jsonl file, one document per line: {"text", "src" (the package), "id" (the file's
path inside the package), "bad" (true when corrupted: ground truth for evaluation only, to
pass as data.corrupted_field)}. It prints documents and corrupted documents per source.
Bad flags (an unknown package, a rate outside [0, 1], a count per rate mismatch, an --out that
is not a writable .jsonl path) exit with status 2 and one line, before anything is written.
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
from absl import app, flags

from experiments._runs import fail, out_problem, parse_flags

_OUT = flags.DEFINE_string('out', None, 'The corpus file to write (.jsonl).')
_PACKAGES = flags.DEFINE_list('packages', ['numpy', 'scipy', 'sklearn', 'matplotlib', 'jax'],
                              'Installed packages, one source each.')
_RATES = flags.DEFINE_list('rates', ['0', '0.2', '0.4', '0.6', '0.8'],
                           'Corruption rate of each source (one per package).')
_DOCS = flags.DEFINE_integer('docs_per_source', 200, 'Documents drawn per source.')
_NOISE = flags.DEFINE_float('noise', 0.3, 'Fraction of a corrupted document\'s characters replaced.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the document draw and the corruption.')

MIN_BYTES, MAX_BYTES = 1024, 16384
NOISE_CHARS = np.arange(0x21, 0x250)  # printable Latin: valid UTF-8, one or two bytes each


class CorpusError(ValueError):
  """Bad input; one line naming the flag."""


def package_dir(name: str) -> str:
  """The folder of an installed package, found without importing it."""
  spec = importlib.util.find_spec(name)
  if spec is None or not spec.submodule_search_locations:
    raise CorpusError(f'--packages: {name!r} is not an installed package')
  return list(spec.submodule_search_locations)[0]


def documents(root: str, count: int, rng: np.random.Generator) -> list:
  """[(path inside root, text)]: `count` .py files of MIN_BYTES..MAX_BYTES under root, drawn
  from the sorted list (all of them when there are fewer)."""
  paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files
                 if f.endswith('.py') and MIN_BYTES <= os.path.getsize(os.path.join(d, f))
                 <= MAX_BYTES)
  chosen = sorted(rng.choice(len(paths), min(count, len(paths)), replace=False))
  out = []
  for i in chosen:
    with open(paths[i], encoding='utf-8', errors='replace') as f:
      out.append((os.path.relpath(paths[i], root), f.read()))
  return out


def corrupt(text: str, noise: float, rng: np.random.Generator) -> str:
  """`text` with round(noise * len) characters, at distinct random positions, replaced by random
  printable Latin characters."""
  chars = list(text)
  where = rng.choice(len(chars), int(round(noise * len(chars))), replace=False)
  for i, c in zip(where, rng.choice(NOISE_CHARS, len(where))):
    chars[i] = chr(int(c))
  return ''.join(chars)


def make_corpus(out: str, packages, rates, docs_per_source: int, noise: float,
                seed: int) -> dict:
  """Writes the corpus; returns {package: (documents, corrupted)}."""
  problem = out_problem(out, '.jsonl')
  if problem:
    raise CorpusError(problem)
  if len(rates) != len(packages):
    raise CorpusError(f'--rates has {len(rates)} values for {len(packages)} --packages')
  if any(not 0.0 <= r <= 1.0 for r in rates):
    raise CorpusError(f'--rates must be in [0, 1], got {list(rates)}')
  if not 0.0 < noise <= 1.0 or docs_per_source < 1:
    raise CorpusError('--noise must be in (0, 1] and --docs_per_source >= 1')
  roots = [package_dir(p) for p in packages]  # every package checked before writing
  rng = np.random.default_rng(seed)
  counts, lines = {}, []
  for name, root, rate in zip(packages, roots, rates):
    docs = documents(root, docs_per_source, rng)
    bad = rng.random(len(docs)) < rate
    for (path, text), flag in zip(docs, bad):
      lines.append({'text': corrupt(text, noise, rng) if flag else text, 'src': name,
                    'id': f'{name}/{path}', 'bad': bool(flag)})
    counts[name] = (len(docs), int(bad.sum()))
  tmp = out + '.tmp'
  with open(tmp, 'w', encoding='utf-8') as f:
    for line in lines:
      f.write(json.dumps(line, ensure_ascii=False) + '\n')
  os.replace(tmp, out)
  return counts


def main(argv):
  del argv
  try:
    rates = [float(r) for r in _RATES.value]
  except ValueError:
    fail(2, f'--rates must be numbers, got {_RATES.value}')
  if not _OUT.value:
    fail(2, '--out is required')
  try:
    counts = make_corpus(_OUT.value, _PACKAGES.value, rates, _DOCS.value, _NOISE.value,
                         _SEED.value)
  except CorpusError as e:
    fail(2, e)
  for (name, (n, bad)), rate in zip(counts.items(), rates):
    print(f'[corpus] {name}: {n} documents, {bad} corrupted (rate {rate:g})')
  print(f'[corpus] wrote {sum(n for n, _ in counts.values())} documents to {_OUT.value}')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
