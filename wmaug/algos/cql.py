"""Conservative Q-Learning, CQL(H) on SAC (Kumar et al. 2020), for E independent agents trained as one batch.

Paper B pre-trains its agents with this rule (docs/protocol.md: 2x256 networks, policy lr 1e-4, Q lr 3e-4, min-Q
weight 5, 10 sampled actions, no Lagrange). Every tensor carries a leading agent axis: agent i has its own
actor, twin critics, targets, temperature and minibatch, so the E agents are as independent as E separate
runs; they only share the matmul that computes them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from wmaug.algos.common import GaussianMembers, SoftActorCritic, StatefulAgent
from wmaug.data.buffer import Batch
from wmaug.core.errors import InputError
from wmaug.core.nets import EnsembleTanhGaussianActor, TwinCriticEnsemble, make_adam


@dataclass
class CQLConfig:
    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 1e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 1e-4
    init_alpha: float = 1.0
    gamma: float = 0.99
    tau: float = 5e-3
    min_q_weight: float = 5.0
    n_actions: int = 10
    temperature: float = 1.0
    # "bf16": the networks' matmuls in bfloat16 (torch.autocast; weights, optimiser and losses stay float32).
    # About 2.4x the updates per second on a CPU with AMX (benchmarks/speed.py), the CQL penalty's 31 critic rows
    # per state being matmul-bound. Opt-in: the papers trained in float32.
    precision: str = "fp32"


def repeat_actions(x: torch.Tensor, n: int) -> torch.Tensor:
    """(E, B, d) -> (E, n B, d): each state n times, sample-major, so results unflatten to (.., n, B)."""
    return x.repeat(1, n, 1)


def cql_penalty(q_fn, policy_fn, b: Batch, q_data: torch.Tensor, n_actions: int, temperature: float) -> torch.Tensor:
    """CQL(H)'s regulariser per critic: E_s[log sum_a exp Q(s, a)] - E_(s,a)~D[Q(s, a)], the log-sum-exp
    estimated by importance sampling over uniform actions and policy actions at s and s' (Kumar et al. 2020,
    appendix F; their code's `with_lagrange=False` branch).

    q_fn(obs, act) -> (E, 2, N); policy_fn(obs (E, B, d), samples=n) -> n actions per state, sample-major
    (act (E, n B, A), log_prob (E, n B)); q_data (E, 2, B). Returns (E, 2): one penalty per agent and critic.
    """
    E, B, act_dim = b.actions.shape
    obs = repeat_actions(b.observations, n_actions)
    with torch.no_grad():  # the policy network runs once per state, its n samples drawn from that one output
        a_cur, logp_cur = policy_fn(b.observations, samples=n_actions)
        a_next, logp_next = policy_fn(b.next_observations, samples=n_actions)
    a_rand = torch.empty_like(a_cur).uniform_(-1.0, 1.0)
    log_uniform = torch.full_like(logp_cur, act_dim * math.log(0.5))
    # Q(s, .) of the 3 n actions per state in one pass (one large matmul per layer, not three): (E, 2, 3 n, B)
    q_samples = q_fn(obs.repeat(1, 3, 1), torch.cat([a_rand, a_next, a_cur], dim=1)).float().unflatten(
        -1, (3 * n_actions, B))
    log_density = torch.cat([log_uniform, logp_next, logp_cur], dim=1).unflatten(-1, (3 * n_actions, B))
    samples = q_samples - log_density.unsqueeze(1)  # importance weights: Q(s, a) - log mu(a|s)
    logsumexp = temperature * torch.logsumexp(samples / temperature, dim=2)  # (E, 2, B)
    return logsumexp.mean(-1) - q_data.mean(-1)


class CQL(SoftActorCritic, GaussianMembers, StatefulAgent):
    state_parts = ("actor", "critic", "critic_target", "actor_opt", "critic_opt", "alpha_opt")

    def __init__(self, obs_dim: int, act_dim: int, cfg: CQLConfig, members: int = 1, device="cpu"):
        if cfg.precision not in ("fp32", "bf16"):
            raise InputError(f"cql precision must be fp32 or bf16, got {cfg.precision!r}")
        self.cfg, self.members, self.act_dim = cfg, members, act_dim
        self.device = torch.device(device)
        self.actor = EnsembleTanhGaussianActor(members, obs_dim, act_dim, cfg.hidden).to(self.device)
        self.critic = TwinCriticEnsemble(members, obs_dim, act_dim, cfg.hidden).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.full((members,), math.log(cfg.init_alpha), device=self.device, requires_grad=True)
        self.target_entropy = -float(act_dim)
        self.actor_opt = make_adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = make_adam(self.critic.parameters(), cfg.critic_lr)
        self.alpha_opt = make_adam([self.log_alpha], cfg.alpha_lr)
        self.updates = 0

    def critic_loss(self, b: Batch, alpha: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The critics' loss summed over agents (each gets its own gradient); the mean Bellman error, penalty and Q."""
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            with torch.no_grad():
                next_action, next_log_prob = self.actor(b.next_observations)
                # y_i = r + gamma (1 - d) (min_j Q'_ij(s', a') - alpha_i log pi_i(a'|s'))
                target_v = (self.critic_target(b.next_observations, next_action).min(1).values.float()
                            - alpha * next_log_prob.float())
                y = b.rewards + cfg.gamma * (1.0 - b.terminals) * target_v  # (E, B)
            q = self.critic(b.observations, b.actions).float()  # (E, 2, B); losses in float32 at any precision
            bellman = (q - y.unsqueeze(1)).pow(2).mean(-1)  # (E, 2)
            penalty = cql_penalty(self.critic, self.actor, b, q, cfg.n_actions, cfg.temperature)
        critic_loss = (bellman + cfg.min_q_weight * penalty).sum()
        return critic_loss, {"critic_loss": bellman.detach().mean(), "cql_penalty": penalty.detach().mean(),
                             "q_mean": q.detach().mean()}

    def actor_loss(self, b: Batch, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """J_pi_i = E[alpha_i log pi_i(a|s) - min_j Q_ij(s, a)], summed over agents (each gets its own gradient),
        and log pi_i(a|s); called with the critics frozen."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16"):
            action, log_prob = self.actor(b.observations)
            log_prob = log_prob.float()
            q_pi = self.critic(b.observations, action).min(1).values.float()
        return (alpha * log_prob - q_pi).mean(-1).sum(), log_prob
