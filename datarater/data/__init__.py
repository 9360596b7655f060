"""Source-aware datasets with ground-truth corruption flags, and batch samplers."""
from datarater.data.core import DataError, Dataset, DatasetInfo, Split, make_split
from datarater.data.loaders import load_dataset

DATASETS_EMBEDDED = ('digits', 'stdlib_text', 'npz', 'mnist1d', 'tabular', 'text', 'table')
TEXT_TFDS = ('tiny_shakespeare', 'lm1b', 'wikitext103')  # text TFDS datasets wired to the LM.

__all__ = ['DATASETS_EMBEDDED', 'TEXT_TFDS', 'DataError', 'Dataset', 'DatasetInfo', 'Split', 'make_split', 'load_dataset']
