"""A vmapped ensemble of M models trained as one: shared by EL2N/GraNd and confident learning.

`ensemble_task(task, M)` is a Task whose params are M stacked member params
(independent initialisations, one key split M ways) and whose optimizer is
the task's optimizer vmapped over the members (each member keeps its own
optimizer state; global-norm clipping stays per member). Its `logits` are the
ensemble's prediction log(mean_m softmax(z_m)), so the loop's evaluation
reports the ensemble's test loss and accuracy. `ensemble_method` trains every
member uniformly on its own batch of B rows, drawn from the rows that member
may see (`member_indices`: a pure function of (seed, step)).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from datarater.data import sampler
from datarater.train.state import Method, TrainState, no_state

# Data-order stream of member m: MEMBER_STREAM + m (apart from sampler's TRAIN/META/MIXTURE).
MEMBER_STREAM = 1000


@dataclasses.dataclass(frozen=True)
class Ensemble:
  """M copies of a flax module with stacked params; quacks like the module for `Task`.

  Attributes:
    member: the flax module of one member.
    size: M, the number of members.
  """
  member: object
  size: int

  def init(self, key, x):
    """{'params': member params stacked [M, ...]}, one independent key per member."""
    init_one = lambda k: self.member.init(k, x)['params']  # noqa: E731
    return {'params': jax.vmap(init_one)(jax.random.split(key, self.size))}

  def members(self, params, x):
    """Logits of every member on the same inputs: [M, B, ...]."""
    return jax.vmap(lambda p: self.member.apply({'params': p}, x))(params)

  def apply(self, variables, x):
    """Ensemble log-probabilities log(mean_m softmax(z_m)) (usable as logits)."""
    logp = jax.nn.log_softmax(self.members(variables['params'], x), axis=-1)
    return jax.nn.logsumexp(logp, axis=0) - jnp.log(self.size)


def vmapped_optimizer(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
  """`optimizer` applied to each member of stacked params independently."""
  return optax.GradientTransformation(jax.vmap(optimizer.init), jax.vmap(optimizer.update))


def ensemble_task(task, size: int):
  """The Task of an M-member ensemble of `task`'s model (see the module docstring).

  Args:
    task: the run's Task (one model).
    size: M.

  Returns:
    A Task with stacked params, a vmapped optimizer and ensemble logits.
  """
  return dataclasses.replace(task, model=Ensemble(task.model, size),
                             optimizer=vmapped_optimizer(task.optimizer))


def member_indices(rows: list, batch_size: int, seed: int, step: int) -> np.ndarray:
  """Member m's batch `step` of reshuffled passes over rows[m], concatenated over m.

  Args:
    rows: M int arrays, the training rows each member may see.
    batch_size: B, examples per member.
    seed: run seed.
    step: loop step.

  Returns:
    int64 [M * B] row indices, member-major.
  """
  return np.concatenate([
      r[sampler.sequential_indices(len(r), batch_size, seed, step, MEMBER_STREAM + m)]
      for m, r in enumerate(rows)])


def ensemble_step(task, train_state: TrainState, batch: dict, size: int):
  """One optimizer step of every member on the mean loss of its own B rows.

  Args:
    task: the run's Task (one model; its per-example loss).
    train_state: TrainState of the `ensemble_task` (stacked params).
    batch: [M * B] rows, member-major (member m trains on rows m*B..(m+1)*B-1).
    size: M.

  Returns:
    (new train_state, metrics with 'train/loss' over all members).
  """
  members = jax.tree.map(lambda a: a.reshape((size, -1) + a.shape[1:]), batch)

  def objective(params):  # members are separable: d/dparams_m is member m's own gradient
    losses = jax.vmap(task.per_example_loss)(params, members)
    return jnp.sum(losses.mean(axis=1)), losses

  (_, losses), grads = jax.value_and_grad(objective, has_aux=True)(train_state.params)
  optimizer = vmapped_optimizer(task.optimizer)
  updates, opt_state = optimizer.update(grads, train_state.opt_state, train_state.params)
  params = optax.apply_updates(train_state.params, updates)
  metrics = {'train/loss': losses.mean(), 'train/member_loss_spread': jnp.std(losses.mean(axis=1))}
  return TrainState(train_state.step + 1, params, opt_state), metrics


def ensemble_method(config, task, rows: list) -> Method:
  """Uniform training of M members, member m on `config.batch_size` rows of rows[m] per step.

  Args:
    config: run config (batch_size, seed).
    task: the run's Task (one model); the phase trains `ensemble_task(task, M)`.
    rows: M int arrays, the training rows each member may see.

  Returns:
    Method with no state, drawing M * B rows per step.
  """
  size, b = len(rows), config.batch_size

  def step(train_state, state, batch, key):
    del key
    train_state, metrics = ensemble_step(task, train_state, batch, size)
    return train_state, state, metrics

  return Method(init=no_state, step=step, train_batch_size=size * b,
                sample=lambda step, state: member_indices(rows, b, config.seed, step))
