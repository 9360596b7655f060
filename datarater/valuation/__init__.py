"""Data valuation: how much each training example is worth to a held-out objective (pure math).

One module per estimator, each a handful of pure numpy / jax.numpy functions
with the paper's equation in its docstring. Every estimator returns one value
per training example, averaged over the validation (meta) points, with the sign
'higher = more valuable' unless its docstring says otherwise (influence):

- ``knn_shapley``: exact Shapley values of the K-nearest-neighbour classifier's
  utility, by the closed-form recursion over the training points sorted by
  distance to each validation point (Jia et al., VLDB 2019).
- ``tmc_shapley``: truncated Monte Carlo Shapley over random permutations,
  with a cheap learner (multinomial logistic regression on fixed features,
  fixed full-batch gradient steps) and a convergence report (Ghorbani & Zou,
  ICML 2019).
- ``tracin``: TracInCP, the sum over checkpoints of the learning rate times
  the dot product of a training example's and the validation loss's
  gradients, on a parameter subset (last layer by default) or all parameters
  (Pruthi et al., NeurIPS 2020). Also the parameter-subset selectors shared
  with ``influence``.
- ``influence``: influence functions, -grad_val^T (H + damping I)^{-1} grad_i,
  solved by conjugate gradient (or a Neumann series) on Hessian-vector
  products (Koh & Liang, ICML 2017). Positive = up-weighting the example
  raises the validation loss (harmful): the one estimator whose raw sign is
  'lower = more valuable'.
- ``prototypes``: label-free prototype pruning score: spherical k-means on
  normalised embeddings, score = cosine distance to the nearest prototype
  (Sorscher et al., NeurIPS 2022, "Beyond neural scaling laws").

The modules import only jax, numpy and datarater.bilevel (the influence
solver); nothing is imported here, so ``import datarater.valuation.knn_shapley``
pulls in no training or plotting stack.
"""
