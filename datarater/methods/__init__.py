"""Registered methods: one module per method, found by name.

`config.method.name = 'x'` runs `datarater.methods.x`, whose
`make(config, task, dataset)` returns a `datarater.train.state.Method` (one
phase) or a `datarater.train.pipeline.Pipeline` (several phases). The runner
(datarater.run) looks modules up here by name; the training framework below
imports none of them. Modules whose name starts with '_' are shared helpers,
not methods.

Every method module also declares what it is and what it produces, as a
module-level `DECLARES = dict(...)` of `Declares` fields right after its
imports; the experiments (detection report, benchmark, reproduction suites)
choose their methods by these declarations (`datarater.run.methods_with`), so
no list of methods is kept anywhere. To add a method, add one module here and
one config file in configs/ (README: "Add a method").
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Optional

# Method families, in the order of table rows (datarater.run.methods_with sorts by family,
# then name).
FAMILIES = (
    'baseline',  # uniform training (the paired reference of every comparison) and its
                 # reference variants: other data (meta rows, clean rows), fine-tuning
    'imbalance',  # per-example weights from the training split's class counts (long tail)
    'bilevel',   # per-source weights from a bilevel solver
    'source',    # per-source weights from an online or fixed rule
    'meta',      # per-example weights or scores learned against a held-out objective
    'scorer',    # scores every training row in a scoring phase, then filters on the scores
    'rule',      # per-example weights, a closed form of the batch's losses
    'pruning',   # drops examples from epochs by their loss
    'filter',    # retrains on another run's score file
)


class Declares(NamedTuple):
  """What a registered method is and what it produces (its module's `DECLARES`).

  Attributes:
    family: one of FAMILIES.
    label: the method's name in table rows ('MW-Net').
    scores: writes scores_train.npy, one score per training row.
    loss_scores: those scores are each row's latest training loss (the
      by-product of a loss-based rule), not a score of the method's own.
    source_weights: learns one weight per data source (summary.json's
      `source_weights*`); a fixed mixture learns none.
    mixing: a data-selection method of the mixing papers that is neither a source
      family nor learns source weights (DSIR: importance resampling toward the
      meta split); the source_mixture suite runs it beside the mixers.
    variants: {name: config overrides} when the method is reported as
      several (EL2N and GraNd are one module; STORM and its filtered
      retraining); None: once, under its own name.
    variant_labels: {variant: row label} of the variants whose label is not
      `label` ('grand': 'GraNd', 'storm_filter': 'STORM filter').
    information: what the method uses besides the training rows (one of
      INFORMATION), stated per row in the reproduction tables: 'none',
      'meta rows' (the meta split; clean or noisy by data.meta_mode), or
      'ground truth' (the corrupted flags: an upper reference, not a method).
  """
  family: str
  label: str
  scores: bool = False
  loss_scores: bool = False
  source_weights: bool = False
  mixing: bool = False
  variants: Optional[Mapping[str, Mapping]] = None
  variant_labels: Optional[Mapping[str, str]] = None
  information: str = 'none'


# What a method may use besides the training rows (Declares.information).
INFORMATION = ('none', 'meta rows', 'ground truth')
