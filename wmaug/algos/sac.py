"""Soft Actor-Critic (Haarnoja et al. 2018) with automatic entropy tuning and twin critics."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from wmaug.algos.common import StatefulAgent
from wmaug.data.buffer import Batch
from wmaug.core.nets import QEnsemble, TanhGaussianActor, frozen, make_adam, soft_update


TEMPERATURE_UPDATES = ("log_alpha_after_actor", "alpha_before_actor")


@dataclass
class SACConfig:
    hidden: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    init_alpha: float = 1.0
    target_entropy: float | None = None  # None = -|A|
    gamma: float = 0.99
    tau: float = 0.005
    # How the temperature learns. "log_alpha_after_actor": J_alpha's gradient taken in log alpha, stepped after
    # the actor (Algorithm 1's order, Haarnoja et al. 2018b). "alpha_before_actor": J_alpha = E[-alpha (log pi +
    # target_entropy)] in alpha itself (their eq. 18), stepped before the actor, which then uses the new alpha:
    # d3rlpy 2.8's rule, kept so the parity suite can run the harness's SAC with it (benchmarks/parity).
    temperature_update: str = "log_alpha_after_actor"

    def __post_init__(self):
        if self.temperature_update not in TEMPERATURE_UPDATES:
            raise ValueError(f"SAC temperature_update {self.temperature_update!r}: expected one of {TEMPERATURE_UPDATES}")


class SAC(StatefulAgent):
    state_parts = ("actor", "critic", "critic_target", "actor_opt", "critic_opt", "alpha_opt")

    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig, max_action: float = 1.0, device="cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        self.actor = TanhGaussianActor(obs_dim, act_dim, cfg.hidden, max_action).to(self.device)
        self.critic = QEnsemble(obs_dim, act_dim, cfg.hidden, members=2).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.init_alpha), device=self.device, requires_grad=True)
        self.target_entropy = -float(act_dim) if cfg.target_entropy is None else cfg.target_entropy
        self.actor_opt = make_adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = make_adam(self.critic.parameters(), cfg.critic_lr)
        self.alpha_opt = make_adam([self.log_alpha], cfg.alpha_lr)
        self.updates = 0

    def update(self, b: Batch) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        self.updates += 1
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_action, next_log_prob = self.actor(b.next_observations)
            # y = r + gamma (1 - d) (min_i Q'_i(s', a') - alpha log pi(a'|s'))
            target_v = self.critic_target(b.next_observations, next_action).min(0).values - alpha * next_log_prob
            y = b.rewards + cfg.gamma * (1.0 - b.terminals) * target_v
        q = self.critic(b.observations, b.actions)
        critic_loss = F.mse_loss(q, y.expand_as(q), reduction="none").mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        action, log_prob = self.actor(b.observations)
        alpha_first = cfg.temperature_update == "alpha_before_actor"
        if alpha_first:
            # J_alpha = E[-alpha (log pi(a|s) + target_entropy)]
            self.step_temperature(-(self.log_alpha.exp() * (log_prob.detach() + self.target_entropy)).mean())
            alpha = self.log_alpha.exp().detach()
        # J_pi = E[alpha log pi(a|s) - min_i Q_i(s, a)]
        with frozen(self.critic):
            q_pi = self.critic(b.observations, action).min(0).values
        actor_loss = (alpha * log_prob - q_pi).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        if not alpha_first:
            # J_alpha = E[-alpha (log pi(a|s) + target_entropy)], taken in log alpha
            self.step_temperature(-(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean())

        soft_update(self.critic_target, self.critic, cfg.tau)
        # detached device scalars, not floats: no host sync per update (the loop reads them when it logs)
        return {
            "critic_loss": critic_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "alpha": alpha,
            "q_mean": q[0].detach().mean(),
        }

    def step_temperature(self, loss: torch.Tensor) -> None:
        self.alpha_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.alpha_opt.step()

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self.actor.act(obs, deterministic)
