"""Source-aware datasets with ground-truth corruption flags, and batch samplers."""
from datarater.data.core import DataError, Dataset, DatasetInfo, Split, make_split
from datarater.data.loaders import load_dataset

__all__ = ['DataError', 'Dataset', 'DatasetInfo', 'Split', 'make_split', 'load_dataset']
