"""Confident learning (method 'confident_learning'; config: configs/confident_learning.py).

Northcutt, Jiang, Chuang, JAIR 2021 (arXiv 1911.00068), scores as in the
cleanlab library; math in datarater/dynamics/confident_learning.py. The
training rows are split into K = `method.num_folds` balanced random folds
(fixed by the seed). Phase 'score' trains K models as one vmapped ensemble
(datarater/methods/_ensemble.py) for `config.num_steps` steps; model k draws
its B rows per step only from the rows outside fold k (reshuffled passes over
that subset, a pure function of (seed, step)). Every row's out-of-fold
predicted probabilities then come from the one model that never trained on
it, and:

  method.score='self_confidence':   p_hat(y | x)
  method.score='normalized_margin': (p_hat(y | x) - max_{j != y} p_hat(j | x) + 1) / 2

Low = likely mislabelled. Summary extras: `confident_learning` {per-class
thresholds t_j, confident joint, label-issue count and fraction (the joint's
off-diagonal), and the issues' precision and recall against the ground-truth
flag}; `oof_pred_probs.npy` holds the [N, C] out-of-fold probabilities (e.g.
to compare with cleanlab). The phase's test metrics are those of the K-model
ensemble. With `method.discard_fraction` > 0 the scores drive the shared
top-K filtered retraining (datarater/methods/_filter.py), keeping high scores.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from datarater.dynamics import confident_learning as cl
from datarater.errors import require
from datarater.methods import _ensemble, _filter
from datarater.train.context import phase_key
from datarater.train.evaluation import map_split
from datarater.train.pipeline import Phase

DECLARES = dict(family='scorer', label='confident learning', scores=True)

SCORES = {'self_confidence': cl.self_confidence, 'normalized_margin': cl.normalized_margin}


def folds_of(config, num_rows: int) -> np.ndarray:
  """The fold of every training row: balanced, random, fixed by config.seed."""
  k = config.method.num_folds
  return np.asarray(cl.fold_assignment(num_rows, k, phase_key(config.seed, 'cl_folds')))


def make(config, task, dataset):
  """The K-fold scoring phase, with the filtered retraining when rho > 0."""
  m = config.method
  _filter.require_classification(config, dataset)
  n, c = dataset.train.size, dataset.info.num_classes
  require(m.score in SCORES, 'method.score', f'one of {sorted(SCORES)}', m.score)
  require(isinstance(m.num_folds, int) and 2 <= m.num_folds <= n, 'method.num_folds',
          f'an int in [2, {n}] (the training rows)', m.num_folds)
  k = m.num_folds
  folds = folds_of(config, n)

  def score_fn(ctx, train_state, state):
    del state
    members = _ensemble.Ensemble(task.model, k).members
    fn = jax.jit(lambda bt: jnp.swapaxes(jax.nn.softmax(members(train_state.params, bt['x'])),
                                         0, 1))  # [B, K, C]
    per_fold = map_split(fn, ctx.dataset.train, ctx)
    probs = np.asarray(cl.gather_out_of_fold(np.swapaxes(per_fold, 0, 1), folds))
    np.save(ctx.run.file('oof_pred_probs.npy'), probs)
    labels = dataset.train.y
    thresholds = cl.per_class_thresholds(probs, labels, c)
    issues = np.asarray(cl.label_issue_mask(probs, labels, thresholds))
    corrupted = dataset.train.corrupted
    scores = np.asarray(SCORES[m.score](probs, labels))
    return scores, np.ones(n, bool), {'confident_learning': {
        'thresholds': np.asarray(thresholds).tolist(),
        'confident_joint': np.asarray(cl.confident_joint(probs, labels, thresholds)).tolist(),
        'label_issues': int(issues.sum()),
        'label_issue_fraction': float(issues.mean()),
        'issue_precision': float(corrupted[issues].mean()) if issues.any() else None,
        'issue_recall': float(issues[corrupted].mean()) if corrupted.any() else None}}

  method = _ensemble.ensemble_method(config, task, [np.flatnonzero(folds != f) for f in range(k)])
  phase = Phase('score', method, config.num_steps, task=_ensemble.ensemble_task(task, k))
  return _filter.scorer_pipeline(config, task, dataset, phase, score_fn,
                                 f'out-of-fold {m.score}')
