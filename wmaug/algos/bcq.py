"""Batch-Constrained deep Q-learning, BCQ (Fujimoto et al. 2019), continuous actions, for E independent agents
trained as one batch.

Paper B trains BCQ with the d4rl_evaluations implementation (rail-berkeley/d4rl_evaluations, bcq/), which is
Fujimoto's continuous BCQ; BCQ-ft keeps the same rule online on offline + online samples. Per agent i:

    VAE      G_i(a | s): encoder E_i(s, a) -> N(mu, sigma), decoder D_i(s, z) = tanh(.),  z ~ N(0, 1) clipped to
             [-0.5, 0.5] when sampling from the prior;  L_G = E[(D_i(s, z) - a)^2] + 0.5 KL(N(mu, sigma) || N(0, 1))
    actor    xi_i(s, a) = clip(a + Phi tanh(f_i(s, a)), -1, 1)   (perturbation of at most Phi = 0.05)
    target   y_i = r + gamma (1 - d) max_k [lambda min_j Q'_ij(s', a'_k) + (1 - lambda) max_j Q'_ij(s', a'_k)],
             a'_k = xi'_i(s', D_i(s', z_k)),  k = 1..n (n = 10);  lambda = 0.75 (soft clipped double Q)
    L_Q      = sum_j E[(Q_ij(s, a) - y_i)^2]
    L_xi     = -E[Q_i1(s, xi_i(s, D_i(s, z)))]                 (DPG through the first critic)
    acting   pi_i(s) = argmax_k Q_i1(s, a_k),  a_k = xi_i(s, D_i(s, z_k)),  k = 1..n_act

Ensemble acting (`act`): each member proposes its own n_act perturbed candidates (each inside its own VAE's
support, so every candidate is a batch-constrained action) and the ensemble takes the candidate with the highest
mean-over-members Q_i1. Why: with E = 1 this is exactly BCQ's own rule (same candidates, same argmax), and the
mean over members is the value paper B's ensemble policy maximises (its policy loss uses mean_i min_j Q_ij);
Q_i1 rather than min_j keeps BCQ's own choice of critic for acting.
BCQ has no separate exploration policy: its action is random through the VAE samples either way, so
`deterministic` changes nothing (the reference evaluates with the same sampled argmax).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from wmaug.algos.common import StatefulAgent
from wmaug.algos.cql import repeat_actions
from wmaug.data.buffer import Batch
from wmaug.core.nets import EnsembleMLP, TwinCriticEnsemble, frozen, make_adam, soft_update


@dataclass
class BCQConfig:
    # Sources: d4rl_evaluations bcq/continuous_bcq/BCQ.py (networks, optimisers, update) and
    # bcq/scripts/run_script.py (argparse defaults: discount, tau, lmbda, phi, batch_size=100).
    hidden: tuple[int, ...] = (400, 300)  # perturbation actor and each critic: l1 400, l2 300
    vae_hidden: tuple[int, ...] = (750, 750)  # VAE encoder e1/e2 and decoder d1/d2: 750, 750
    actor_lr: float = 1e-3  # Adam(actor, lr=1e-3)
    critic_lr: float = 1e-3  # Adam(critic, lr=1e-3)
    vae_lr: float = 1e-3  # Adam(vae) with torch's default lr, 1e-3
    gamma: float = 0.99  # --discount 0.99
    tau: float = 5e-3  # --tau 0.005, critic and actor targets
    lmbda: float = 0.75  # --lmbda 0.75, soft clipped double Q
    phi: float = 0.05  # --phi 0.05, max perturbation (times max_action = 1)
    n_target: int = 10  # next states duplicated 10 times for the target (paper and code: n = 10)
    # Candidates per state when acting: the code's select_action repeats the state 100 times; the BCQ paper
    # says n = 10 for both. Paper B used the code.
    n_act: int = 100
    kl_weight: float = 0.5  # vae_loss = recon_loss + 0.5 * KL_loss
    latent_clip: float = 0.5  # prior samples clipped to [-0.5, 0.5]
    # latent dimension: 2 |A| (latent_dim = action_dim * 2); batch size 100 is a loop setting (config batch_size)


def _per_member(x: torch.Tensor, members: int) -> torch.Tensor:
    """(N, d) shared by all members -> (E, N, d) without a copy; (E, N, d) unchanged."""
    return x.unsqueeze(0).expand(members, *x.shape) if x.dim() == 2 else x


class EnsembleVAE(nn.Module):
    """E conditional VAEs G_i(a | s), batched: inputs (E, B, .)."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, latent_dim: int, hidden, latent_clip: float):
        super().__init__()
        self.members, self.latent_dim, self.latent_clip = members, latent_dim, latent_clip
        # mean and log-std heads of the reference as one 2L-wide output layer (same fan-in, same init law)
        self.encoder = EnsembleMLP(members, obs_dim + act_dim, hidden, 2 * latent_dim)
        self.decoder = EnsembleMLP(members, obs_dim + latent_dim, hidden, act_dim)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction D(s, z), z ~ N(mu, sigma) with (mu, sigma) = E(s, a); and mu, sigma."""
        mean, log_std = self.encoder(torch.cat([obs, act], dim=-1)).chunk(2, dim=-1)
        std = log_std.clamp(-4, 15).exp()  # clamped for numerical stability, as the reference
        z = mean + std * torch.randn_like(std)
        return self.decode(obs, z), mean, std

    def decode(self, obs: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Actions D_i(s, z): obs (E, N, d); z (E, N, L), or drawn from the clipped prior."""
        if z is None:
            z = torch.randn(*obs.shape[:-1], self.latent_dim, device=obs.device).clamp(-self.latent_clip, self.latent_clip)
        return torch.tanh(self.decoder(torch.cat([obs, z], dim=-1)))


class EnsemblePerturbation(nn.Module):
    """E perturbation actors xi_i(s, a) = clip(a + Phi tanh(f_i(s, a)), -1, 1), batched: inputs (E, B, .)."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden, phi: float):
        super().__init__()
        self.phi = phi
        self.net = EnsembleMLP(members, obs_dim + act_dim, hidden, act_dim)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return (act + self.phi * torch.tanh(self.net(torch.cat([obs, act], dim=-1)))).clamp(-1.0, 1.0)


class BCQ(StatefulAgent):
    state_parts = ("actor", "actor_target", "critic", "critic_target", "vae", "actor_opt", "critic_opt", "vae_opt")

    def __init__(self, obs_dim: int, act_dim: int, cfg: BCQConfig, members: int = 1, device="cpu"):
        self.cfg, self.members, self.act_dim = cfg, members, act_dim
        self.device = torch.device(device)
        self.vae = EnsembleVAE(members, obs_dim, act_dim, 2 * act_dim, cfg.vae_hidden, cfg.latent_clip).to(self.device)
        self.actor = EnsemblePerturbation(members, obs_dim, act_dim, cfg.hidden, cfg.phi).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic = TwinCriticEnsemble(members, obs_dim, act_dim, cfg.hidden).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.vae_opt = make_adam(self.vae.parameters(), cfg.vae_lr)
        self.actor_opt = make_adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = make_adam(self.critic.parameters(), cfg.critic_lr)
        self.updates = 0

    def update(self, b: Batch) -> dict[str, torch.Tensor]:
        """One step for every agent; batch tensors are (E, B, ...), one minibatch per agent."""
        cfg = self.cfg
        self.updates += 1
        B = b.actions.shape[1]

        # L_G_i = E[(D_i(s, z) - a)^2] + 0.5 KL(N(mu, sigma) || N(0, 1)), each averaged over batch and dimensions
        recon, mean, std = self.vae(b.observations, b.actions)
        recon_loss = (recon - b.actions).pow(2).mean((1, 2))  # (E,)
        kl = -0.5 * (1 + std.pow(2).log() - mean.pow(2) - std.pow(2)).mean((1, 2))
        vae_loss = (recon_loss + cfg.kl_weight * kl).sum()
        self.vae_opt.zero_grad(set_to_none=True)
        vae_loss.backward()
        self.vae_opt.step()

        with torch.no_grad():
            # n perturbed VAE actions per next state: a'_k = xi'_i(s', D_i(s', z_k))
            next_obs = repeat_actions(b.next_observations, cfg.n_target)  # (E, n B, d), sample-major
            q_next = self.critic_target(next_obs, self.actor_target(next_obs, self.vae.decode(next_obs)))  # (E, 2, n B)
            # soft clipped double Q: lambda min_j + (1 - lambda) max_j; then the max over the n actions
            q_soft = cfg.lmbda * q_next.min(1).values + (1.0 - cfg.lmbda) * q_next.max(1).values
            target_v = q_soft.unflatten(-1, (cfg.n_target, B)).max(1).values  # (E, B)
            y = b.rewards + cfg.gamma * (1.0 - b.terminals) * target_v
        q = self.critic(b.observations, b.actions)  # (E, 2, B)
        bellman = (q - y.unsqueeze(1)).pow(2).mean(-1)  # (E, 2)
        critic_loss = bellman.sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        # L_xi_i = -E[Q_i1(s, xi_i(s, D_i(s, z)))], summed over agents
        with torch.no_grad():
            sampled = self.vae.decode(b.observations)
        with frozen(self.critic):
            q1_pi = self.critic(b.observations, self.actor(b.observations, sampled))[:, 0]  # (E, B)
        actor_loss = -q1_pi.mean(-1).sum()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        soft_update(self.critic_target, self.critic, cfg.tau)
        soft_update(self.actor_target, self.actor, cfg.tau)
        # detached device scalars: no host sync per update; the per-agent means in float64, as the logs always had them
        return {
            "critic_loss": bellman.detach().mean(),
            "actor_loss": actor_loss.detach().double() / self.members,
            "vae_loss": vae_loss.detach().double() / self.members,
            "q_mean": q.detach().mean(),
        }

    # ---- acting ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def candidates(self, obs: torch.Tensor, n: int, z: torch.Tensor | None = None) -> torch.Tensor:
        """Each member's n perturbed VAE actions per state: obs (N, d) or (E, N, d) -> (E, n, N, A).
        z (E, n N, 2|A|), sample-major, fixes the latent draws (otherwise the clipped prior)."""
        obs = repeat_actions(_per_member(obs, self.members), n)  # (E, n N, d)
        return self.actor(obs, self.vae.decode(obs, z)).unflatten(1, (n, -1))

    @torch.no_grad()
    def act_members(self, obs: torch.Tensor, deterministic: bool = False, z: torch.Tensor | None = None) -> torch.Tensor:
        """Each agent's own BCQ action, argmax_k Q_i1(s, a_k) over its n_act candidates: -> (E, N, A)."""
        cand = self.candidates(obs, self.cfg.n_act, z)  # (E, n, N, A)
        obs = _per_member(obs, self.members).unsqueeze(1).expand(-1, cand.shape[1], -1, -1)
        q1 = self.critic(obs.flatten(1, 2), cand.flatten(1, 2))[:, 0].unflatten(1, cand.shape[1:3])  # (E, n, N)
        best = q1.argmax(1)  # (E, N)
        return cand.gather(1, best[:, None, :, None].expand(-1, 1, -1, cand.shape[-1])).squeeze(1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False, z: torch.Tensor | None = None) -> torch.Tensor:
        """The ensemble's action: the members' E n_act candidates pooled, scored by mean_i Q_i1: (N, d) -> (N, A)."""
        cand = self.candidates(obs, self.cfg.n_act, z).flatten(0, 1)  # (E n, N, A)
        pool = cand.shape[0]
        obs_rep = obs.unsqueeze(0).expand(pool, -1, -1)
        q1 = self.critic(obs_rep.flatten(0, 1), cand.flatten(0, 1))[:, 0].mean(0).unflatten(0, (pool, -1))  # (E n, N)
        best = q1.argmax(0)  # (N,)
        return cand.gather(0, best[None, :, None].expand(1, -1, cand.shape[-1])).squeeze(0)

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor, member: int | None = None) -> torch.Tensor:
        """mean_i min_j Q_ij(s, a), or one member's min_j Q_ij: (N,)."""
        q = self.critic(obs, act).min(1).values
        return q.mean(0) if member is None else q[member]
