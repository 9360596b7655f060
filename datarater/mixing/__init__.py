"""Source mixing and data selection against a target split (pure math).

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
- ``regmix``: RegMix (Liu et al. 2024, arXiv 2407.01492): Dirichlet draws of
  source mixtures around the row-share prior, linear (least squares / ridge)
  and gradient-boosted-tree regressions from mixture to validation loss, and
  the chosen mixture as the mean of the top-k predicted-best simulated
  candidates.
- ``aioli``: Aioli (Chen, Hu, Lourie, Cho, Re 2024, arXiv 2411.05735): the
  linear dynamic mixing law, LearnParams' least-squares fit of the
  interaction matrix A from perturbed-mixture visits, the normalised
  exponentiated-gradient mixture step, and the round schedule as a pure
  function of the step (builds on datarater.weighting.simplex).
- ``agent``: a Data Mixing Agent after "Data Mixing Agent: Learning to
  Re-weight Domains for Continual Pre-training" (this project's construction
  at its scale: a small policy from per-source meta losses, their trends, the
  mixture and progress to the next mixture, trained by REINFORCE with a
  leave-one-out baseline on vmapped short proxy trajectories, reward = minus
  the final meta loss).

dsir, upsample and regmix import only numpy (regmix's gradient boosting
imports scikit-learn inside `fit_gbm`); aioli and agent use jax. Nothing is imported here, so
``import datarater.mixing.dsir`` pulls in no training or plotting stack.
Invalid arguments raise ``ValueError`` naming the argument.
"""
