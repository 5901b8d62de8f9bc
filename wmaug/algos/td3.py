"""TD3 (Fujimoto et al. 2018) with the behaviour-cloning term of TD3+BC (Fujimoto & Gu 2021) as an option.

Numbers: PROTOCOL.md, paper A (the TD3 / TD3+BC reference code).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from wmaug.data.buffer import Batch
from wmaug.nets import DeterministicActor, QEnsemble, frozen, soft_update


@dataclass
class TD3Config:
    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    policy_noise: float = 0.2  # target policy smoothing, times max_action
    noise_clip: float = 0.5
    policy_delay: int = 2
    bc_alpha: float | None = None  # TD3+BC's alpha; None = plain TD3


class TD3:
    def __init__(self, obs_dim: int, act_dim: int, cfg: TD3Config, max_action: float = 1.0, device="cpu"):
        self.cfg = cfg
        self.max_action = max_action
        self.device = torch.device(device)
        self.actor = DeterministicActor(obs_dim, act_dim, cfg.hidden, max_action).to(self.device)
        self.critic = QEnsemble(obs_dim, act_dim, cfg.hidden, members=2).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        # The BC term is switched off at the offline -> online hand-off, so it is state, not config.
        self.bc_alpha = cfg.bc_alpha
        self.updates = 0

    def update(self, b: Batch) -> dict[str, float]:
        cfg = self.cfg
        self.updates += 1
        with torch.no_grad():
            noise = (torch.randn_like(b.actions) * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_action = (self.actor_target(b.next_observations) + noise * self.max_action).clamp(
                -self.max_action, self.max_action
            )
            # y = r + gamma (1 - d) min_i Q'_i(s', pi'(s') + eps); k-step augmented rows carry gamma^k
            target_q = self.critic_target(b.next_observations, next_action).min(0).values
            gamma = cfg.gamma if b.discounts is None else b.discounts
            y = b.rewards + gamma * (1.0 - b.terminals) * target_q
        q = self.critic(b.observations, b.actions)  # (2, B)
        critic_loss = F.mse_loss(q, y.expand_as(q), reduction="none").mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        metrics = {"critic_loss": critic_loss.item(), "q_mean": q[0].mean().item()}

        if self.updates % cfg.policy_delay == 0:
            pi = self.actor(b.observations)
            with frozen(self.critic):
                q_pi = self.critic(b.observations, pi)[0]
            if self.bc_alpha is None:
                actor_loss = -q_pi.mean()
            else:
                # TD3+BC: lambda = alpha / mean|Q(s, pi(s))|, loss = -lambda Q + (pi(s) - a)^2
                lmbda = self.bc_alpha / q_pi.abs().mean().detach()
                actor_loss = -lmbda * q_pi.mean() + F.mse_loss(pi, b.actions)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            soft_update(self.critic_target, self.critic, cfg.tau)
            soft_update(self.actor_target, self.actor, cfg.tau)
            metrics["actor_loss"] = actor_loss.item()
        return metrics

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        # Exploration noise is added by the caller (the online loop owns its random stream).
        return self.actor(obs)

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "bc_alpha": self.bc_alpha,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(state[name])
        self.bc_alpha = state["bc_alpha"]
        self.updates = state["updates"]
