"""SAC over a pessimistic Q-ensemble (Lee et al. 2021, sec. 4.2): paper B's online fine-tuning rule.

E pre-trained agents become one: each member keeps its twin critics, the policy is the moment-matched mixture
of the members' pre-tanh Gaussians, and one temperature is shared.

    y_i      = r + gamma (1 - d) (min_j Q'_ij(s', a') - alpha log pi(a'|s')),   a' ~ pi(.|s')
    L_Q      = sum_i sum_j E[(Q_ij(s, a) - y_i)^2]
    L_pi     = E[alpha log pi(a|s) - mean_i min_j Q_ij(s, a)],                a ~ pi(.|s)

With E = 1 this is plain SAC. `cql_weight` > 0 keeps CQL's regulariser during fine-tuning (an appendix
ablation of the paper).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from wmaug.algos.cql import cql_penalty
from wmaug.algos.common import GaussianMembers, SoftActorCritic, StatefulAgent
from wmaug.data.buffer import Batch
from wmaug.core.nets import EnsembleTanhGaussianActor, TwinCriticEnsemble, make_adam


@dataclass
class EnsembleSACConfig:
    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4  # docs/protocol.md: alpha lr = policy lr
    init_alpha: float = 1.0
    gamma: float = 0.99
    tau: float = 5e-3
    cql_weight: float = 0.0
    n_actions: int = 10  # only used with cql_weight > 0


class EnsembleSAC(SoftActorCritic, GaussianMembers, StatefulAgent):
    state_parts = ("actor", "critic", "critic_target", "actor_opt", "critic_opt", "alpha_opt")
    independent_policies = False  # one mixture policy

    def __init__(self, obs_dim: int, act_dim: int, cfg: EnsembleSACConfig, members: int, device="cpu"):
        self.cfg, self.members, self.act_dim = cfg, members, act_dim
        self.device = torch.device(device)
        self.actor = EnsembleTanhGaussianActor(members, obs_dim, act_dim, cfg.hidden).to(self.device)
        self.critic = TwinCriticEnsemble(members, obs_dim, act_dim, cfg.hidden).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.init_alpha), device=self.device, requires_grad=True)
        self.target_entropy = -float(act_dim)
        self.actor_opt = make_adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = make_adam(self.critic.parameters(), cfg.critic_lr)
        self.alpha_opt = make_adam([self.log_alpha], cfg.alpha_lr)
        self.updates = 0

    def load_pretrained(self, networks: dict) -> None:
        """Actors and critics of E pre-trained agents (their optimisers and temperatures are not carried:
        fine-tuning has its own learning rates and restarts alpha at init_alpha)."""
        self.actor.load_state_dict(networks["actor"])
        self.critic.load_state_dict(networks["critic"])
        self.critic_target.load_state_dict(networks["critic_target"])

    def critic_loss(self, b: Batch, alpha: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L_Q over a batch shared by all members, tensors (B, ...); the mean Bellman error and Q."""
        cfg = self.cfg
        with torch.no_grad():
            next_action, next_log_prob = self.actor.mixture(b.next_observations)
            target_v = self.critic_target(b.next_observations, next_action).min(1).values - alpha * next_log_prob
            y = b.rewards + cfg.gamma * (1.0 - b.terminals) * target_v  # (E, B)
        q = self.critic(b.observations, b.actions)  # (E, 2, B)
        bellman = (q - y.unsqueeze(1)).pow(2).mean(-1)  # (E, 2)
        critic_loss = bellman.sum()
        if cfg.cql_weight > 0:
            # each member's own policy proposes the sampled actions, as in its CQL pre-training
            critic_loss = critic_loss + cfg.cql_weight * cql_penalty(
                self.critic, self.actor, b.for_members(self.members), q, cfg.n_actions, 1.0).sum()
        return critic_loss, {"critic_loss": bellman.detach().mean(), "q_mean": q.detach().mean()}

    def actor_loss(self, b: Batch, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L_pi of the mixture policy, and log pi(a|s); called with the critics frozen."""
        action, log_prob = self.actor.mixture(b.observations)
        q_pi = self.critic(b.observations, action).min(1).values.mean(0)
        return (alpha * log_prob - q_pi).mean(), log_prob
