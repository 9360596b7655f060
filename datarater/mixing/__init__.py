"""Source mixing and data selection against a target split (pure numpy math).

- ``dsir``: Data Selection with Importance Resampling (Xie, Santurkar, Ma,
  Liang, NeurIPS 2023, arXiv 2302.03169): hashed n-gram features of byte /
  token sequences and a documented n-gram featurisation of real-valued
  vectors, the add-one smoothed bag-of-hashed-features models of a target and
  of the raw pool, per-example log importance weights, resampling without
  replacement by Gumbel top-k, and the paper's KL-reduction statistic.
- ``upsample``: end-of-training domain upsampling ("Does your data spark
  joy? Performance gains from domain upsampling at the end of training",
  Blakeney et al. 2024, arXiv 2406.03476): the step at which the source
  mixture switches, the mixture in force at a step, and the default end
  mixture from DSIR's per-source mean importance weight.

The modules import only numpy; nothing is imported here, so
``import datarater.mixing.dsir`` pulls in no training or plotting stack.
Invalid arguments raise ``ValueError`` naming the argument.
"""
