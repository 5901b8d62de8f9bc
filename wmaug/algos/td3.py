"""TD3 (Fujimoto et al. 2018) with the behaviour-cloning term of TD3+BC (Fujimoto & Gu 2021) as an option, for E
independent agents at once.

Numbers: docs/protocol.md, paper A (the TD3 / TD3+BC reference code).

E members (independent agents: the seeds of one cell) are one batched computation: every layer is one weight
tensor with a leading member axis (``wmaug.core.nets``), each member reads its own minibatch, and the loss is the sum
of the members' losses. Member i's loss depends only on its own weights and batch, so the sum hands each member
exactly its own gradient, and Adam, being elementwise, makes exactly its own step: members trained together follow
the update rule of agents trained alone. Batches carry the member axis first, (E, B, ...), and losses come out
per member, (E,). With one member the axis may be left out of the batch and of ``act``'s input.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields

import torch

from wmaug.algos.common import CompilableLosses, optimiser_step
from wmaug.data.buffer import Batch
from wmaug.core.nets import EnsembleDeterministicActor, TwinCriticEnsemble, frozen, make_adam, soft_update


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


class TD3(CompilableLosses):
    def __init__(self, obs_dim: int, act_dim: int, cfg: TD3Config, max_action: float = 1.0, device="cpu",
                 members: int = 1):
        self.cfg = cfg
        self.max_action = max_action
        self.members = members
        self.device = torch.device(device)
        self.actor = EnsembleDeterministicActor(members, obs_dim, act_dim, cfg.hidden, max_action).to(self.device)
        self.critic = TwinCriticEnsemble(members, obs_dim, act_dim, cfg.hidden).to(self.device)  # (E, 2, B)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = make_adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = make_adam(self.critic.parameters(), cfg.critic_lr)
        # The BC term is switched off at the offline -> online hand-off, so it is state, not config.
        self.bc_alpha = cfg.bc_alpha
        # One random stream per member for the target smoothing noise (seeds trained together draw what they would
        # alone); None: torch's default generator.
        self.noise_generators: list[torch.Generator] | None = None
        self.updates = 0

    def update(self, b: Batch) -> dict[str, torch.Tensor]:
        """One TD3 step of every member; returns each member's losses, (E,) tensors (no host sync)."""
        b = self._with_member_axis(b)
        self.updates += 1
        critic_loss, q_mean = self._critic_loss(b, self.standard_normal(b.actions))
        optimiser_step(self.critic_opt, critic_loss.sum())
        metrics = self.kept({"critic_loss": critic_loss.detach(), "q_mean": q_mean})  # before the actor's graph runs
        if self.updates % self.cfg.policy_delay == 0:
            with frozen(self.critic):  # the actor step needs dQ/da, not the critic's weight gradients
                actor_loss = self._actor_loss(b, self.bc_alpha)
            optimiser_step(self.actor_opt, actor_loss.sum())
            soft_update(self.critic_target, self.critic, self.cfg.tau)
            soft_update(self.actor_target, self.actor, self.cfg.tau)
            metrics.update(self.kept({"actor_loss": actor_loss.detach()}))
        return metrics

    def critic_loss(self, b: Batch, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's critic loss and mean Q1, (E,) each; `noise` is N(0, 1) shaped like the actions."""
        cfg = self.cfg
        with torch.no_grad():
            noise = (noise * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_action = (self.actor_target(b.next_observations) + noise * self.max_action).clamp(
                -self.max_action, self.max_action
            )
            # y = r + gamma (1 - d) min_i Q'_i(s', pi'(s') + eps); k-step augmented rows carry gamma^k
            target_q = self.critic_target(b.next_observations, next_action).min(1).values  # (E, B)
            gamma = cfg.gamma if b.discounts is None else b.discounts
            y = b.rewards + gamma * (1.0 - b.terminals) * target_q
        q = self.critic(b.observations, b.actions)  # (E, 2, B)
        critic_loss = (q - y.unsqueeze(1)).pow(2).mean(-1).sum(-1)  # per member: sum_i mean_B (Q_i - y)^2
        return critic_loss, q[:, 0].mean(-1).detach()

    def actor_loss(self, b: Batch, bc_alpha: float | None) -> torch.Tensor:
        """Each member's policy loss, (E,); called with the critic frozen."""
        pi = self.actor(b.observations)
        q_pi = self.critic.first(b.observations, pi)  # Q1(s, pi(s)), (E, B)
        if bc_alpha is None:
            return -q_pi.mean(-1)
        # TD3+BC: lambda = alpha / mean|Q(s, pi(s))|, loss = -lambda Q + (pi(s) - a)^2, per member
        lmbda = bc_alpha / q_pi.abs().mean(-1).detach()
        return -lmbda * q_pi.mean(-1) + (pi - b.actions).pow(2).mean((-2, -1))

    def standard_normal(self, like: torch.Tensor) -> torch.Tensor:
        """N(0, 1) draws shaped like `like` (E, B, A), member i's from its own generator when there are some."""
        if self.noise_generators is None:
            return torch.randn_like(like)
        return torch.stack([torch.randn(like.shape[1:], generator=g, device=like.device, dtype=like.dtype)
                            for g in self.noise_generators])

    def _with_member_axis(self, b: Batch) -> Batch:
        if b.observations.dim() == 3:
            if b.observations.shape[0] != self.members:
                raise ValueError(f"a batch for {b.observations.shape[0]} members, this TD3 trains {self.members}")
            return b
        if self.members != 1:
            raise ValueError(f"a batch without member axis for {self.members} members: sample one per member")
        return Batch(*(None if getattr(b, f.name) is None else getattr(b, f.name).unsqueeze(0) for f in fields(b)))

    @torch.no_grad()
    def act_members(self, obs: torch.Tensor, deterministic: bool = True, target: bool = False) -> torch.Tensor:
        """Each member's action, obs (N, d) shared or (E, N, d) -> (E, N, A). Exploration noise is the caller's:
        the online loop owns its random streams."""
        return (self.actor_target if target else self.actor)(obs)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True, target: bool = False) -> torch.Tensor:
        """The single agent's action, obs (N, d) -> (N, A) (one member), else as :meth:`act_members`."""
        out = self.act_members(obs, deterministic, target)
        return out.squeeze(0) if self.members == 1 and obs.dim() == 2 else out

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor, member: int = 0) -> torch.Tensor:
        """One member's min(Q1, Q2)(s, a): (N,)."""
        return self.critic(obs, act)[member].min(0).values

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
