"""The train/meta batch sampler: distinct rows per batch, once per epoch, pure in (seed, step)."""

import numpy as np
import pytest

from datarater.data import sampler
from datarater.errors import DataError


def _alone(n, b, seed, step):
  """Batch `step` computed with no cached epoch from earlier steps (as a resumed run would)."""
  sampler.served_order.cache_clear()
  sampler.epoch_order.cache_clear()
  return sampler.sequential_indices(n, b, seed, step)


# n not a multiple of B, including n < 2B - 1 (an epoch's order depends on earlier epochs').
@pytest.mark.parametrize('n,b', [(100, 32), (37, 20), (5, 4), (7, 4), (33, 32), (11, 10)])
def test_batches_are_distinct_once_per_epoch_and_resume_exact(n, b):
  steps = 12 * n // b + 5
  seq = [sampler.sequential_indices(n, b, 3, s) for s in range(steps)]
  assert all(len(np.unique(x)) == b for x in seq)
  flat = np.concatenate(seq)
  for e in range(len(flat) // n):
    np.testing.assert_array_equal(np.sort(flat[e * n:(e + 1) * n]), np.arange(n))
  for s in range(0, steps, 3):
    np.testing.assert_array_equal(_alone(n, b, 3, s), seq[s])
  assert not np.array_equal(seq[0], sampler.sequential_indices(n, b, 4, 0))  # the seed matters


def test_plain_permutation_where_no_batch_crosses_an_epoch():
  np.testing.assert_array_equal(np.concatenate([sampler.sequential_indices(12, 4, 0, s)
                                                for s in range(3)]), sampler.epoch_order(12, 0, 0))


def test_batch_larger_than_split_is_a_data_error_for_training_and_wraps_elsewhere():
  with pytest.raises(DataError, match='batch of 9 rows.*of 8 rows'):
    sampler.check_batch_size(8, 9)
  flat = np.concatenate([sampler.sequential_indices(8, 12, 0, s) for s in range(2)])
  np.testing.assert_array_equal(flat, np.concatenate([sampler.epoch_order(8, 0, e)
                                                      for e in range(3)]))


def test_a_run_whose_batch_exceeds_its_split_fails_before_training():
  from conftest import load_config
  from datarater.run import prepare
  config = load_config('uniform')
  config.batch_size = 4096   # digits has ~1,300 training rows
  with pytest.raises(DataError, match='batch of 4096 rows .* from the train split'):
    prepare(config)
