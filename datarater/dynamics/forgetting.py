"""Forgetting events.

Toneva, Sordoni, Combes, Trischler, Bengio, Gordon, "An Empirical Study of
Example Forgetting during Deep Neural Network Learning", ICLR 2019
(arXiv 1812.05159).

Let acc_i^t be 1 if example i is classified correctly at its t-th
presentation (the training forward pass). A forgetting event is a transition
acc_i^{t-1} = 1 -> acc_i^t = 0 between two consecutive presentations; a
learning event is 0 -> 1 (or being correct at the first presentation).
Examples that are learned and never forgotten are "unforgettable" (score 0)
and can be pruned with little loss; examples never learned count as
forgotten infinitely often, represented here by max_forgets + 1 (one more than
the largest count of any seen example), so they rank above every learned one.

State updates take an optional ``valid`` [B] mask; invalid entries (e.g. the
padding of a last batch) are skipped. Valid ids within one update must be
distinct (each example is presented at most once per step).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class ForgettingState(NamedTuple):
  """Per-example forgetting statistics over the N training examples.

  last_correct: [N] bool, correctness at the latest presentation.
  forgets: [N] int32, number of forgetting events so far.
  ever_learned: [N] bool, correct at some presentation.
  seen: [N] int32, number of presentations so far.
  """
  last_correct: jax.Array
  forgets: jax.Array
  ever_learned: jax.Array
  seen: jax.Array


def forgetting_init(num_examples):
  """Empty forgetting state for ``num_examples`` examples."""
  n = num_examples
  return ForgettingState(last_correct=jnp.zeros((n,), bool),
                         forgets=jnp.zeros((n,), jnp.int32),
                         ever_learned=jnp.zeros((n,), bool),
                         seen=jnp.zeros((n,), jnp.int32))


def forgetting_update(state, index, correct, valid=None):
  """Records one presentation of a batch.

  Args:
    state: ForgettingState.
    index: [B] int example ids in [0, N), distinct among valid entries.
    correct: [B] bool, prediction == label at this presentation (e.g.
      ``jnp.argmax(logits, -1) == labels``).
    valid: optional [B] bool; False entries are ignored.

  Returns:
    The updated ForgettingState.
  """
  index = jnp.asarray(index)
  correct = jnp.asarray(correct, bool)
  if index.ndim != 1 or correct.shape != index.shape:
    raise ValueError(f'index and correct must both be [B], got shapes '
                     f'{index.shape} and {correct.shape}')
  n = state.seen.shape[0]
  if valid is not None:
    index = jnp.where(jnp.asarray(valid, bool), index, n)  # n: dropped
  # last_correct starts False, so a first presentation is never an event.
  previous = state.last_correct.at[index].get(mode='fill', fill_value=False)
  forgotten = previous & ~correct
  learned = state.ever_learned.at[index].get(mode='fill', fill_value=False)
  return ForgettingState(
      last_correct=state.last_correct.at[index].set(correct, mode='drop'),
      forgets=state.forgets.at[index].add(forgotten.astype(jnp.int32),
                                          mode='drop'),
      ever_learned=state.ever_learned.at[index].set(learned | correct,
                                                    mode='drop'),
      seen=state.seen.at[index].add(1, mode='drop'))


def forgetting_scores(state):
  """Number of forgetting events per example (higher = more forgettable).

  Args:
    state: ForgettingState.

  Returns:
    [N] float32: the forgetting count for learned examples; max_forgets + 1
    for never-learned ones, with max_forgets the largest count over all seen
    examples ("forgotten infinitely often"); NaN for examples never seen.
  """
  seen = state.seen > 0
  never_learned = jnp.max(jnp.where(seen, state.forgets, 0)) + 1
  scores = jnp.where(state.ever_learned, state.forgets, never_learned)
  return jnp.where(seen, scores.astype(jnp.float32), jnp.nan)
