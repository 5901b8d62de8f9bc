"""Fitted Q Evaluation, FQE (Le et al. 2019), of E fixed stochastic policies: paper B's neutral Q (Fig 1c and
the appendix's FQE-initialised ensemble).

Given CQL agent i's policy pi_i (frozen), its twin critics are trained from random initialisation by policy
evaluation alone:

    y_ij = r + gamma (1 - d) Q'_ij(s', a'),      a' ~ pi_i(.|s')
    L_Q  = sum_i sum_j E[(Q_ij(s, a) - y_ij)^2]

Neutral on purpose: each critic regresses on its OWN target (no min over the twins, no CQL regulariser, no
entropy bonus), so Q_ij estimates Q^{pi_i} without pessimism. a' is a sample of the stochastic policy (the
policy the agent runs when fine-tuning starts), not its mean. Paper B (appendix C): Adam, 250K iterations; the
learning rate and batch size did not survive in the text and the authors' FQE code is not public, so lr 3e-4 and
batch 256 (the CQL critics' own) are our choice. Targets follow with Polyak averaging at the CQL agents' tau.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from wmaug.algos.common import GaussianMembers, StatefulAgent
from wmaug.data.buffer import Batch
from wmaug.core.nets import EnsembleTanhGaussianActor, TwinCriticEnsemble, make_adam, soft_update


@dataclass
class FQEConfig:
    hidden: tuple[int, ...] = (256, 256)  # the CQL critics' architecture, so a SAC fine-tune can load them
    lr: float = 3e-4  # lost from paper B's appendix C: our choice (config algorithms.fqe.lr)
    gamma: float = 0.99  # the CQL agents' (pretrain.py passes them)
    tau: float = 5e-3


class FQE(StatefulAgent, GaussianMembers):
    """`policy` holds the E evaluated policies (load a CQL block's actor state into it); `critic` and
    `critic_target` are TwinCriticEnsembles laid out as the CQL/SAC agents', ready for EnsembleSAC.load_pretrained."""

    state_parts = ("policy", "critic", "critic_target", "critic_opt")

    def __init__(self, obs_dim: int, act_dim: int, cfg: FQEConfig, members: int = 1, device="cpu",
                 policy_hidden: tuple[int, ...] | None = None):
        self.cfg, self.members, self.act_dim = cfg, members, act_dim
        self.device = torch.device(device)
        self.policy = EnsembleTanhGaussianActor(members, obs_dim, act_dim, policy_hidden or cfg.hidden).to(self.device)
        self.policy.requires_grad_(False)  # evaluated, never trained
        self.critic = TwinCriticEnsemble(members, obs_dim, act_dim, cfg.hidden).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic_opt = make_adam(self.critic.parameters(), cfg.lr)
        self.updates = 0

    def update(self, b: Batch) -> dict[str, torch.Tensor]:
        """One Bellman-evaluation step for every critic; batch tensors are (E, B, ...), one minibatch per agent."""
        cfg = self.cfg
        self.updates += 1
        with torch.no_grad():
            next_action, _ = self.policy(b.next_observations)  # a' ~ pi_i(.|s')
            # y_ij = r + gamma (1 - d) Q'_ij(s', a'): each twin its own target, no min
            y = b.rewards.unsqueeze(1) + cfg.gamma * (1.0 - b.terminals.unsqueeze(1)) * self.critic_target(
                b.next_observations, next_action)  # (E, 2, B)
        q = self.critic(b.observations, b.actions)  # (E, 2, B)
        bellman = (q - y).pow(2).mean(-1)  # (E, 2)
        critic_loss = bellman.sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        soft_update(self.critic_target, self.critic, cfg.tau)
        # detached device scalars: no host sync per update
        return {"critic_loss": bellman.detach().mean(), "actor_loss": torch.zeros((), device=q.device),
                "q_mean": q.detach().mean()}

    @property
    def actor(self) -> EnsembleTanhGaussianActor:
        """The evaluated policies, under the name GaussianMembers acts with."""
        return self.policy
