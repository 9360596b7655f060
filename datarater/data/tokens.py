"""Token sequences for dataset=text when `config.data.tokenizer` names a local tokenizer file.

Without a tokenizer a document is its UTF-8 bytes (vocabulary 256, the text preset's). With one,
a document is the token ids that the Hugging Face `tokenizers` library gives its text
(`Tokenizer.from_file(path)`, a `tokenizer.json` as `Tokenizer.save` or a `transformers`
tokenizer's `save_pretrained` writes it; `encode_batch(texts, add_special_tokens=False)`: no
BOS / EOS / padding tokens are added), and the vocabulary is the tokenizer's
(`get_vocab_size(with_added_tokens=True)`). Everything else is the same with tokens in place of
bytes: windows of data.seq_len + 1 tokens cut per document, and a row's offset in its document
(`corpus.Documents.row_offset`) counts tokens. The file is read locally; nothing is downloaded.
"""

from __future__ import annotations

import os
from typing import List, Sequence

import numpy as np

from datarater.data.core import DataError

BYTE_VOCAB = 256   # a document without a tokenizer: its UTF-8 bytes


def load_tokenizer(path: str):
  """The `tokenizers.Tokenizer` in the file `path` (config.data.tokenizer).

  Raises:
    DataError: one line naming config.data.tokenizer when the file is missing or does not load.
  """
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise DataError(f'config.data.tokenizer={path!r}: no such file (a tokenizer.json of the '
                    'Hugging Face tokenizers library is expected)')
  from tokenizers import Tokenizer
  try:
    return Tokenizer.from_file(path)
  except Exception as e:  # noqa: BLE001 - the library raises a bare Exception on a bad file
    message = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    raise DataError(f'config.data.tokenizer={path!r}: not a tokenizers file that loads '
                    f'({message})') from None


def load(cfg):
  """config.data.tokenizer's Tokenizer (`load_tokenizer`), or None for bytes."""
  name = cfg.get('tokenizer', '')
  return load_tokenizer(name) if name else None


def vocab_size(tokenizer) -> int:
  """The vocabulary of dataset=text: the tokenizer's (`load`), or 256 bytes for None."""
  return tokenizer.get_vocab_size(with_added_tokens=True) if tokenizer else BYTE_VOCAB


def encode(docs: Sequence[bytes], tokenizer) -> List[np.ndarray]:
  """Each document (UTF-8 bytes) as its units: int32 token ids of `tokenizer` (`load`), or its
  bytes (uint8) for None, in order."""
  if tokenizer is None:
    return [np.frombuffer(d, np.uint8) for d in docs]
  texts = [d.decode('utf-8', errors='replace') for d in docs]
  out = [np.asarray(e.ids, np.int32)
         for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
  top, vocab = max((int(u.max()) for u in out if len(u)), default=-1), vocab_size(tokenizer)
  if top >= vocab:
    raise DataError(f'config.data.tokenizer: token id {top} is not below the vocabulary size '
                    f'{vocab} (get_vocab_size); the model embeds ids 0..{vocab - 1}')
  return out
