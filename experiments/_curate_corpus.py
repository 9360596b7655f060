"""`experiments.curate --scores`: keep the best-scored documents of a corpus, in its own format.

  python -m experiments.curate --workdir=runs/dr_text --scores=scores.parquet --keep=0.7 \\
      --out=kept.jsonl [--per_source]

--scores is a file written by `experiments.score` with the rater of --workdir (its metadata
records the rater's SHA-256, the corpus and how it was read; both are checked: another run's
scores, or a corpus changed since (its files' sizes or modification times), are refused).
Documents are ranked by score (higher = keep): the round(keep * n) best of the n documents that
have a score are kept, over the whole corpus or, with --per_source, within each source; equal
scores go to the earlier document. Documents without a score (shorter than one window, score
NaN) are kept and counted, as curate keeps rows without a score.

The kept documents are written in corpus read order with every field of the input rows (the
columns `datasets` read), in the input's format: .jsonl / .json -> .jsonl (JSON lines),
.parquet -> .parquet, .csv -> .csv, a datasets.save_to_disk directory -> .parquet or .jsonl, .txt
files -> .jsonl with the fields "text" (the document) and "source" (its source: the directory
under txt_unit=file, the file under txt_unit=line). --out's extension must be that format; it is
written to a temporary file, then renamed. data.max_examples of the scoring applies: documents
past it were not scored and are not written.

The corpus is read and written a chunk at a time, and the pages of its memory-mapped Arrow
cache that a chunk read are dropped after it (`corpus.release_pages`, as `experiments.score`
does), so memory stays flat in the corpus's size: .jsonl and .csv chunks are CHUNK documents of
the corpus; a .parquet chunk is one row group of ROW_GROUP kept documents (the corpus rows
holding them, read at once), so the file does not depend on CHUNK. A corpus of at most ROW_GROUP
documents gives one row group, as writing every kept row at once would.
"""

from __future__ import annotations

import json
import os

import numpy as np

from experiments._runs import out_problem


class CurateError(ValueError):
  """Bad input of `curate_corpus`; one line naming the flag or file (exit status 2)."""


# The input format (extension of the corpus files, or 'saved') -> the extensions --out may have.
OUTPUTS = {'.jsonl': ('.jsonl',), '.json': ('.jsonl',), '.parquet': ('.parquet',),
           '.csv': ('.csv',), '.txt': ('.jsonl',), 'saved': ('.parquet', '.jsonl')}
CHUNK = 1024       # corpus rows read and written at a time (.jsonl, .csv)
ROW_GROUP = 1024   # kept rows per row group of a .parquet --out (not CHUNK: see above)


def _input_format(path: str) -> str:
  from datarater.data import corpus
  files, _ = corpus.resolve(path, 'text', corpus.TEXT_FORMATS)
  return 'saved' if files is None else os.path.splitext(files[0])[1].lower()


def _check_out(out: str) -> None:
  problem = out_problem(out)
  if problem:
    raise CurateError(problem)


def _open(workdir: str, scores_path: str):
  """(scores Table, opened corpus, input format) after every check."""
  import ml_collections
  from datarater.data import corpus, corpus_scores
  from datarater.errors import ConfigError, DataError, WorkdirError
  from datarater.methods._corpus_rater import read_rater_run
  from datarater.methods.datarater import RATER_FILE
  if not os.path.isfile(scores_path):
    raise CurateError(f'--scores={scores_path}: no such file')
  try:
    read_rater_run(workdir)
    table, manifest = corpus_scores.read_scores(scores_path)
  except (DataError, WorkdirError) as e:
    raise CurateError(str(e)) from None
  if manifest.get('rater_sha256') != corpus_scores.file_sha256(os.path.join(workdir, RATER_FILE)):
    raise CurateError(f'--scores={scores_path} holds the scores of another rater than the one in '
                      f'--workdir={workdir}')
  data = ml_collections.ConfigDict(manifest['data'])
  try:
    changed = corpus_scores.corpus_files(data.path) != manifest['corpus_files']
    text = None if changed else corpus.open_text(data)
  except (ConfigError, DataError) as e:
    raise CurateError(f'the corpus of --scores={scores_path} cannot be read: {e}') from None
  if changed or text.table.num_rows != table.num_rows:
    raise CurateError(f'the corpus {data.path} changed since --scores={scores_path} was written '
                      '(its files differ); score it again')
  return table, text, _input_format(data.path)


def _write(text, mask: np.ndarray, fmt: str, out: str, txt: bool) -> None:
  """Writes the rows of text.table where mask holds, in order, as `fmt` ('.jsonl' / '.parquet'
  / '.csv'), chunk by chunk (module docstring), dropping the corpus pages each chunk read; `txt`:
  the corpus is .txt files (a "source" field is added)."""
  import pyarrow as pa
  from datarater.data import corpus
  table, n = text.table, text.table.num_rows
  if fmt == '.parquet':   # a chunk ends after every ROW_GROUP-th kept row
    ends = np.flatnonzero(mask)[ROW_GROUP - 1::ROW_GROUP] + 1
  else:
    ends = np.arange(CHUNK, n, CHUNK)
  bounds = [0, *ends[ends < n].tolist(), n]
  tmp = f'{out}.tmp-{os.getpid()}'
  writer = None
  try:
    with open(tmp, 'wb') as f:
      if fmt == '.parquet':
        import pyarrow.parquet as pq
        writer = pq.ParquetWriter(f, table.schema)
      elif fmt == '.csv':
        import pyarrow.csv as pcsv
        writer = pcsv.CSVWriter(f, table.schema)
      for start, stop in zip(bounds[:-1], bounds[1:]):
        rows = table.slice(start, stop - start)
        if txt:
          rows = rows.append_column('source', pa.array(text.origin[start:stop], pa.string()))
        rows = rows.filter(pa.array(mask[start:stop]))
        if fmt == '.jsonl':
          for row in rows.to_pylist():
            f.write((json.dumps(row, ensure_ascii=False, default=str) + '\n').encode('utf-8'))
        elif rows.num_rows:
          writer.write_table(rows)
        corpus.release_pages(text.maps)
      if writer is not None:
        writer.close()
        writer = None
    os.replace(tmp, out)
  except OSError as e:
    raise CurateError(f'--out={out}: cannot write ({e.strerror or e})') from None
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def curate_corpus(workdir: str, scores_path: str, keep: float, out: str,
                  per_source: bool = False) -> dict:
  """Writes the kept documents of the scored corpus to `out` (module docstring).

  Returns:
    {'kept', 'documents', 'unscored_kept', 'per_source': {source: {'kept', 'dropped'}}}.

  Raises:
    CurateError: one line naming the flag or file; nothing is written.
  """
  from datarater.data.corpus_scores import keep_documents
  if not 0.0 < keep <= 1.0:
    raise CurateError(f'--keep must be in (0, 1], got {keep}')
  fmt = os.path.splitext(out)[1].lower()
  if fmt not in ('.jsonl', '.parquet', '.csv'):
    raise CurateError(f'--out={out} must end with .jsonl, .parquet or .csv (the corpus\'s format)')
  _check_out(out)
  table, text, source_format = _open(workdir, scores_path)
  if fmt not in OUTPUTS[source_format]:
    what = 'a save_to_disk directory' if source_format == 'saved' else f'{source_format} files'
    raise CurateError(f'--out={out}: the corpus is {what}, written as '
                      f'{" or ".join(OUTPUTS[source_format])}')
  scores = table.column('score').to_numpy(zero_copy_only=False).astype(np.float64)
  source = np.asarray(table.column('source').to_pylist(), dtype=str)
  mask = keep_documents(scores, source, keep, per_source)
  _write(text, mask, fmt, out, txt=source_format == '.txt')
  names = sorted(set(source.tolist()))
  return {'kept': int(mask.sum()), 'documents': len(mask),
          'unscored_kept': int(np.isnan(scores).sum()),
          'per_source': {s: {'kept': int((mask & (source == s)).sum()),
                             'dropped': int((~mask & (source == s)).sum())} for s in names}}
