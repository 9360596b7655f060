"""The training input pipeline on grain: step -> global indices -> this process's rows.

Every process runs the same pipeline: the global batch of step t is a pure
function of (seed, t) (datarater.data.sampler), or of (t, method state) for a
method that samples its own batches; each process gathers only its rows of
it. grain's `MapDataset.range(num_steps).map(make_batch)` yields step t's batch
at index t and prefetches on a background thread, so the position of the
iterator is the step: its checkpointable state {'next_index': t} is saved
with each checkpoint and restored on resume.
"""

from __future__ import annotations

from typing import Callable


def step_batches(make_batch: Callable[[int], dict], num_steps: int, state: dict | None = None,
                 prefetch: int = 2):
  """A grain iterator over make_batch(step), step = 0 .. num_steps - 1.

  Args:
    make_batch: step -> host batch (pytree of numpy arrays).
    num_steps: steps of the phase.
    state: the iterator state of a checkpoint ({'next_index': step}) to
      continue from; None starts at step 0.
    prefetch: batches computed ahead on a background thread.

  Returns:
    A grain DatasetIterator (`next`, `get_state`, `set_state`).
  """
  import grain.python as grain  # here, not at the top: `--help` and the configs need no grain
  dataset = grain.MapDataset.range(num_steps).map(make_batch)
  iterator = iter(dataset.to_iter_dataset(
      grain.ReadOptions(num_threads=1, prefetch_buffer_size=prefetch)))
  if state is not None:
    iterator.set_state(state)
  return iterator


def position(step: int) -> dict:
  """The iterator state at `step` (what `get_state` returns there)."""
  return {'next_index': int(step)}
