"""Advantage-Weighted Actor-Critic, AWAC (Nair et al. 2020), for E independent agents trained as one batch.

Paper B runs AWAC "from the publicly available implementation from the authors (rlkit examples/awac) without
any modification to hyperparameters and architectures" (Lee et al. 2021, appendix), offline and then online on
offline + online samples. The defaults below are that example's (rlkit `examples/awac/mujoco/awac1.py` and
`AWACTrainer`, rail-berkeley/rlkit):

    y_i    = r + gamma (1 - d) min_j Q'_ij(s', a'),                          a' ~ pi_i(.|s')
    L_Q    = sum_i sum_j E[(Q_ij(s, a) - y_i)^2]
    A_i    = min_j Q_ij(s, a) - min_j Q_ij(s, a_pi),                          a_pi ~ pi_i(.|s), (s, a) ~ D
    w_i    = B softmax_batch(A_i / beta)            (exp(A / beta), normalised over the minibatch as rlkit does)
    L_pi   = sum_i E[-log pi_i(a|s) w_i]

No entropy term anywhere: the example sets `alpha=0, use_automatic_entropy_tuning=False`, so rlkit's
`- alpha log pi(a'|s')` in the target and `alpha log pi` in the policy loss vanish.

The policy differs from rlkit's in one documented way: rlkit's AWAC example uses a `GaussianPolicy` (tanh on the
mean only, state-independent log-std in [-6, 0], samples not squashed, the environment clips); here each member
is a squashed Gaussian (EnsembleTanhGaussianActor: state-dependent log-std clamped to [-20, 2], a = tanh(u)), so
actions stay in [-1, 1] and the ensemble can act as paper B's moment-matched mixture of the members' pre-tanh
Gaussians. Dataset actions enter log pi through u = atanh(a), with a clipped to (-1 + 1e-6, 1 - 1e-6).
rlkit's log-std range [-6, 0] is an option (`min_log_std`, `max_log_std`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from wmaug.algos.common import StatefulAgent
from wmaug.data.buffer import Batch
from wmaug.core.nets import EnsembleTanhGaussianActor, TwinCriticEnsemble, make_adam, moment_matched, soft_update

ACTION_CLIP = 1.0 - 1e-6  # atanh(+-1) is infinite: dataset actions are clipped to (-1 + 1e-6, 1 - 1e-6)


@dataclass
class AWACConfig:
    # Sources: rail-berkeley/rlkit examples/awac/mujoco/awac1.py (variant, search_space) and
    # rlkit/torch/sac/awac_trainer.py (AWACTrainer defaults the example does not override).
    hidden: tuple[int, ...] = (256, 256)  # critics: qf_kwargs hidden_sizes=[256, 256]
    policy_hidden: tuple[int, ...] = (256, 256, 256, 256)  # policy_kwargs hidden_sizes=[256] * 4
    actor_lr: float = 3e-4  # policy_lr=3E-4
    critic_lr: float = 3e-4  # qf_lr=3E-4
    policy_weight_decay: float = 1e-4  # policy_weight_decay=1e-4 (Adam's L2 term, as rlkit's optim.Adam)
    beta: float = 2.0  # the temperature lambda of exp(A / lambda): search_space 'trainer_kwargs.beta': [2]
    gamma: float = 0.99  # discount=0.99
    tau: float = 5e-3  # soft_target_tau=5e-3, target_update_period=1
    # Bounds of the pre-tanh log-std, applied in the log-likelihood of dataset actions and in acting. Default: the
    # actor's own clamp [-20, 2] (a no-op). rlkit's GaussianPolicy keeps log-std in [-6, 0] (min_log_std=-6,
    # max_log_std=0, through a sigmoid); set these to -6 and 0 for its range (a hard clamp here).
    min_log_std: float = -20.0
    max_log_std: float = 2.0
    # Training-loop settings of the example (not read here; the config's `batch_size` sets them):
    # batch_size=1024 online; offline pre-training (q_num_pretrain2_steps=50000) samples bc_batch_size=128.


def tanh_gaussian_log_prob(mean: torch.Tensor, std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) of a squashed Gaussian a = tanh(u), u ~ N(mean, std), at given actions: (.., A) -> (..)."""
    u = torch.atanh(action.clamp(-ACTION_CLIP, ACTION_CLIP))
    log_prob = torch.distributions.Normal(mean, std).log_prob(u).sum(-1)
    # minus log|d tanh(u)/du| = 2 (log 2 - u - softplus(-2u)), as in nets.tanh_gaussian_sample
    return log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


class AWAC(StatefulAgent):
    state_parts = ("actor", "critic", "critic_target", "actor_opt", "critic_opt")

    def __init__(self, obs_dim: int, act_dim: int, cfg: AWACConfig, members: int = 1, device="cpu"):
        self.cfg, self.members, self.act_dim = cfg, members, act_dim
        self.device = torch.device(device)
        self.actor = EnsembleTanhGaussianActor(members, obs_dim, act_dim, cfg.policy_hidden).to(self.device)
        self.critic = TwinCriticEnsemble(members, obs_dim, act_dim, cfg.hidden).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = make_adam(self.actor.parameters(), cfg.actor_lr, weight_decay=cfg.policy_weight_decay)
        self.critic_opt = make_adam(self.critic.parameters(), cfg.critic_lr)
        self.updates = 0

    def _policy_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self.actor.distribution_params(obs)
        return mean, std.clamp(math.exp(self.cfg.min_log_std), math.exp(self.cfg.max_log_std))

    def update(self, b: Batch) -> dict[str, torch.Tensor]:
        """One step for every agent; batch tensors are (E, B, ...), one minibatch per agent."""
        cfg = self.cfg
        self.updates += 1
        with torch.no_grad():
            next_action, _ = self.actor(b.next_observations)
            # y_i = r + gamma (1 - d) min_j Q'_ij(s', a'), a' ~ pi_i(.|s')   (alpha = 0: no entropy term)
            y = b.rewards + cfg.gamma * (1.0 - b.terminals) * self.critic_target(b.next_observations, next_action).min(1).values
        q = self.critic(b.observations, b.actions)  # (E, 2, B)
        mean, std = self._policy_params(b.observations)  # pi_i(.|s), kept for the policy loss below

        with torch.no_grad():
            # A_i(s, a) = min_j Q_ij(s, a) - min_j Q_ij(s, a_pi), a_pi ~ pi_i(.|s): one sample (rlkit vf_K=1), the
            # critics before this step's update (rlkit computes every loss first, then steps)
            a_pi = torch.tanh(mean + std * torch.randn_like(mean))
            advantage = q.min(1).values - self.critic(b.observations, a_pi).min(1).values  # (E, B)
            # w = exp(A / beta) normalised over the batch: B softmax(A / beta) (rlkit normalize_over_batch=True)
            weights = advantage.shape[-1] * F.softmax(advantage / cfg.beta, dim=-1)

        bellman = (q - y.unsqueeze(1)).pow(2).mean(-1)  # (E, 2)
        critic_loss = bellman.sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        # L_pi_i = E_(s,a)~D[-log pi_i(a|s) w_i(s, a)], summed over agents (each gets its own gradient)
        log_prob = tanh_gaussian_log_prob(mean, std, b.actions)  # (E, B)
        actor_loss = (-log_prob * weights).mean(-1).sum()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        soft_update(self.critic_target, self.critic, cfg.tau)
        # detached device scalars: no host sync per update; the per-agent mean in float64, as the logs always had it
        return {
            "critic_loss": bellman.detach().mean(),
            "actor_loss": actor_loss.detach().double() / self.members,
            "q_mean": q.detach().mean(),
            "advantage": advantage.mean(),
            "weight_max": weights.max(),
        }

    @torch.no_grad()
    def act_members(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Each agent's own action: obs (N, d) shared or (E, N, d) -> (E, N, A); deterministic = tanh(mean)."""
        mean, std = self._policy_params(obs)
        u = mean if deterministic else mean + std * torch.randn_like(mean)
        return torch.tanh(u)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """The agents as one ensemble policy, paper B's moment-matched mixture of their pre-tanh Gaussians
        (as actor.mixture, with the configured std bounds): (N, d) -> (N, A)."""
        mean, std = moment_matched(*self._policy_params(obs))
        u = mean if deterministic else mean + std * torch.randn_like(mean)
        return torch.tanh(u)

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor, member: int | None = None) -> torch.Tensor:
        """mean_i min_j Q_ij(s, a), or one member's min_j Q_ij: (N,)."""
        q = self.critic(obs, act).min(1).values
        return q.mean(0) if member is None else q[member]
