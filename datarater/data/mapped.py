"""Read-only file mappings of a `datasets` Arrow cache whose resident pages can be dropped.

`datarater.data.corpus` reads a corpus through these, so that decoding it range by range
(`corpus.text_rows`, `experiments.score`, `experiments.curate`) keeps the process's resident
set flat in the corpus's size.
"""

from __future__ import annotations

import mmap


def arrow_table(ds):
  """(A datasets.Dataset's rows as one pyarrow Table, the file mappings the table lies in).

  The table is the Dataset's Arrow cache files, memory-mapped read-only and read zero-copy as
  `datasets` reads them, but through mappings of our own, each kept as one pyarrow Buffer
  spanning it, so that `release_pages` can drop the pages a reader has touched: a page of a file
  mapping, once read, stays in the process's resident set (and in its peak RSS, ru_maxrss) until
  it is unmapped or advised away, so decoding a corpus shard by shard through one long-lived
  mapping would grow RSS by the corpus's size (all of its Arrow cache by the last shard).
  Falls back to `datasets`' table (and no mappings) where the Dataset is not exactly its cache
  files (in memory, an indices mapping, a cast schema) or the platform has no madvise.
  """
  if not len(ds):
    return ds.data.table.slice(0, 0), ()
  files = [f['filename'] for f in ds.cache_files]
  if files and getattr(ds, '_indices', None) is None and hasattr(mmap, 'MADV_DONTNEED'):
    import pyarrow as pa
    tables, maps = [], []
    for name in files:
      with pa.memory_map(name) as f:   # closing the file keeps the mapping (while referenced)
        tables.append(pa.ipc.open_stream(f).read_all())
        f.seek(0)
        maps.append(f.read_buffer())   # zero-copy: the whole mapping
    table = pa.concat_tables(tables)
    if table.num_rows == len(ds) and table.schema == ds.data.schema:
      return table, tuple(maps)
  return ds.with_format('arrow')[:], ()


def release_pages(maps) -> None:
  """Drops the resident pages of `arrow_table`'s file mappings from this process (madvise
  MADV_DONTNEED). Nothing is lost: the mappings are read-only, of files that do not change, so
  their pages are the file's (in the kernel's page cache) and a later read faults them back in.
  """
  if not maps:
    return
  import ctypes
  madvise = ctypes.CDLL(None, use_errno=True).madvise
  madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
  for buffer in maps:   # a mapping starts on a page boundary, as madvise requires
    if madvise(buffer.address, buffer.size, mmap.MADV_DONTNEED):
      raise OSError(ctypes.get_errno(), 'madvise(MADV_DONTNEED) of the corpus mapping')
