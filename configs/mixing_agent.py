"""Data Mixing Agent (issue #21): a policy trained by RL on proxy runs re-decides the mixture.

Command:
  python -m experiments.train --config=configs/mixing_agent.py:dataset=digits --workdir=runs/agent
  # the trained policy, unchanged, on a wider model (no agent phase; its cost is charged):
  python -m experiments.train --config=configs/mixing_agent.py:dataset=digits \
      --config.method.policy_from=runs/agent --config.model.kwargs.hidden='(512,512)' \
      --workdir=runs/agent_wide

Arguments after ':' : dataset=digits|stdlib_text|mnist1d|tabular|npz|<tfds name>, model=<name>,
smoke (shared keys, configs/common.py). Not measured yet (no README row); with the defaults
the agent phase trains population x agent_steps x proxy_steps = 8 x 30 x 100 = 24,000 proxy
steps (16 times the 1500 steps of the result model), all charged to the method.

Two phases (datarater/methods/mixing_agent.py has the full story; the maths is
datarater/mixing/agent.py): 'agent' trains a small policy network by REINFORCE
with a leave-one-out baseline: each of its method.agent_steps updates runs
method.population proxy trajectories (one vmapped program), each a fresh proxy
model trained for method.proxy_steps steps whose mixture the policy re-decides
every method.proxy_decision_every steps from the proxy's per-source META losses,
rewarded with minus its final mean META loss. Then 'train' trains the task's
model from scratch for config.num_steps steps, the trained policy (unchanged,
without exploration noise) deciding the mixture every method.decision_every
steps from the model's own per-source META losses: the run's result. The
paper's network, RL algorithm and scale are not in ../shared/REFERENCES.md;
every value below is this project's choice, not a published one.

Method fields:
  method.population       int >= 2: proxy trajectories per RL update (vmapped);
                          each member's baseline is the mean reward of the others.
  method.agent_steps      int >= 1: RL updates of the policy (the 'agent' phase's steps).
  method.agent_learning_rate  > 0: Adam's step size on the policy parameters
                          (the update ascends the REINFORCE estimate).
  method.proxy_steps      int >= 1: optimizer steps of each proxy trajectory, each on
                          config.batch_size rows drawn from the mixture in force;
                          config.optimizer's schedule runs over these steps.
  method.proxy_decision_every  int >= 1 dividing proxy_steps: steps between the
                          policy's decisions in a proxy trajectory (decisions at
                          steps 0, e, 2e, ...). Keep proxy_steps / proxy_decision_every
                          near num_steps / decision_every: the policy then makes as
                          many decisions in the proxies as in the result run (it
                          sees progress t / T, not the step).
  method.proxy_model.kwargs  dict overriding config.model.kwargs for the proxies
                          (same model name), e.g. {'hidden': (64,)} for a narrower
                          MLP; {} = the task's model (default, but for the
                          transformer: d_model 32, 1 layer, 2 heads, mlp_ratio 2,
                          about 1/8 of the default target's FLOPs per step; the
                          seed papers' proxies are far smaller than their
                          targets). Set it in a config file or from Python (not a
                          command-line flag: ml_collections cannot add keys to an
                          empty dict).
  method.decision_every   int in [1, num_steps]: steps between the policy's decisions
                          in the result run ('train'; decisions at 0, d, 2d, ... < num_steps).
  method.policy_hidden    tuple of ints >= 1: the policy MLP's hidden widths (tanh);
                          () = a linear policy. Its input: per source, the meta loss
                          and its change since the last decision (both divided by the
                          first decision's mean meta loss) and the mixture in force
                          (times the number of sources), plus progress t / T; its
                          output: one logit per source, the mixture their softmax.
  method.policy_noise     sigma > 0: the exploration noise of the RL policy, a
                          Gaussian on the logits (the result run uses the mean, no noise).
  method.policy_from      '' (default: train the policy in this run's 'agent' phase)
                          or the directory of a finished mixing_agent run: its saved
                          policy (agent_policy.msgpack) is applied unchanged and the
                          'agent' phase runs no step, so the fields above that shape
                          the agent's training (population, agent_steps,
                          agent_learning_rate, proxy_*, policy_noise) are not used.
                          The target model, its size, the dataset and num_steps may
                          differ from that run's (the policy reads scale-free
                          state); the number of sources with training rows and
                          method.policy_hidden must match (else a ConfigError).
                          That run's agent-phase cost (FLOPs and gradient
                          evaluations of its summary's phases.agent.ledger) is
                          charged to this run's method compute (`method_ledger`),
                          as DataRater's method.rater_from; summary.json's
                          `mixing_agent` names the run (`policy_from`), the cost
                          (`imported_agent_cost`) and that run's agent training.
  method.pretrain_sources  () (default: the model trains from scratch) or a tuple of source
                          ids, the "source field" of continual pre-training (the paper's
                          setting; datarater/methods/_continual.py): the task's model is
                          first pre-trained for method.pretrain_steps steps on uniform
                          batches of those sources' training rows, then continued for
                          num_steps steps on the mixture the agent decides over every
                          source; the other sources are the "target field". The proxies
                          continue a proxy pre-trained the same way (charged to the
                          method), the reward and the policy's mean loss average the two
                          fields' meta losses, and two reference arms continue the same
                          pre-trained model: on the target field only ('target_only') and
                          on every training row ('all_sources', the paired baseline).
                          summary.json's `continual` gives each field's test and validation
                          loss for the pre-trained model and each arm.
  method.pretrain_steps   int >= 1 with method.pretrain_sources (0 without): the
                          pre-training steps (config.optimizer, its schedule over them).
                          Each field needs rows in the meta split (else a ConfigError).
Every run writes the policy it applied to agent_policy.msgpack (flax msgpack) in its run
directory: the file method.policy_from reads.
Writes `source_weights` (last decided mixture), `source_weights_time_avg` (the mixture
in force averaged over the train steps), `source_weights_trajectory` ([[step, mixture],
...]), `decision_meta_losses`, `mixing_agent` (estimator, reward, schedule, policy size,
mean reward per RL update) to summary.json, plots/source_weights.png and
plots/agent_mixture.png (not with method.policy_from). Shared fields: configs/common.py.
"""

import ml_collections

from configs.common import base_config, parse_arg


def get_config(arg=None):
  arg = parse_arg(arg)
  config = base_config(arg)
  config.method.name = 'mixing_agent'
  config.method.population = 8
  config.method.agent_steps = 30
  config.method.agent_learning_rate = 0.03
  config.method.proxy_steps = 100
  config.method.proxy_decision_every = 10
  config.method.proxy_model = ml_collections.ConfigDict({'kwargs': {}})
  config.method.decision_every = 150
  config.method.policy_hidden = (32,)
  config.method.policy_noise = 0.5
  config.method.policy_from = ''
  config.method.pretrain_sources = ()
  config.method.pretrain_steps = 0
  if config.model.name == 'transformer' and not arg.smoke:
    # The seed papers' proxies are far smaller than their targets: on text the proxies are
    # 1-layer transformers of width 32 (the smoke model), about 1/8 of the default target's
    # FLOPs per step; the target model is config.model.
    config.method.proxy_model.kwargs = {'d_model': 32, 'num_layers': 1, 'num_heads': 2,
                                        'mlp_ratio': 2}
  if arg.smoke:  # 2 RL updates of 3 four-step proxies (2 decisions), then 6 steps (2 decisions)
    config.method.population = 3
    config.method.agent_steps = 2
    config.method.proxy_steps = 4
    config.method.proxy_decision_every = 2
    config.method.decision_every = 3
    config.method.policy_hidden = (8,)
  return config
