"""Per-example training-dynamics and held-out data scorers (pure math).

Each module is a handful of small, pure, jit-able functions in jax.numpy; the
scores that accumulate over training keep a NamedTuple state indexed by
example id, with ``*_init`` / ``*_update`` / ``*_scores`` functions:

- ``aum``: Area Under the Margin and threshold-sample calibration
  (Pleiss et al., NeurIPS 2020).
- ``data_diet``: EL2N and GraNd, averaged over independently initialised
  models (Paul, Ganguli, Dziugaite, NeurIPS 2021).
- ``forgetting``: forgetting events (Toneva et al., ICLR 2019).
- ``cartography``: dataset cartography confidence / variability /
  correctness (Swayamdipta et al., EMNLP 2020).
- ``confident_learning``: K-fold out-of-fold bookkeeping, per-class
  thresholds, the confident joint, label-issue mask and cleanlab-style
  label-quality scores (Northcutt, Jiang, Chuang, JAIR 2021).

The modules import only jax, numpy and optax; nothing is imported here, so
``import datarater.dynamics.aum`` pulls in no training or plotting stack.
"""
