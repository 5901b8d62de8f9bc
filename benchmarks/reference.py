"""Plain single-agent learners written the way CleanRL and CORL write them (separate critic MLPs, a per-tensor Adam
loop, Polyak averaging parameter by parameter): the benchmarks' reference loops, and the tests' oracle for the
batched TD3's losses (tests/test_batched_td3.py loads the same weights into both)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F


def _mlp(i: int, hidden: tuple[int, ...], o: int) -> nn.Sequential:
    dims, layers = [i, *hidden], []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(dims[-1], o))


class PlainTD3BC:
    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), lr=3e-4, alpha=2.5, gamma=0.99, tau=0.005,
                 policy_noise=0.2, noise_clip=0.5, policy_delay=2, device="cpu"):
        self.actor = _mlp(obs_dim, hidden, act_dim).to(device)
        self.q1 = _mlp(obs_dim + act_dim, hidden, 1).to(device)
        self.q2 = _mlp(obs_dim + act_dim, hidden, 1).to(device)
        self.actor_t, self.q1_t, self.q2_t = copy.deepcopy(self.actor), copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.a_opt = torch.optim.Adam(self.actor.parameters(), lr=lr)
        self.q_opt = torch.optim.Adam(list(self.q1.parameters()) + list(self.q2.parameters()), lr=lr)
        self.alpha, self.gamma, self.tau = alpha, gamma, tau
        self.policy_noise, self.noise_clip, self.policy_delay = policy_noise, noise_clip, policy_delay
        self.it = 0

    def pi(self, obs, target=False):
        return torch.tanh((self.actor_t if target else self.actor)(obs))

    def update(self, b) -> dict[str, float]:
        self.it += 1
        with torch.no_grad():
            noise = (torch.randn_like(b.actions) * self.policy_noise).clamp(-self.noise_clip, self.noise_clip)
            a2 = (self.pi(b.next_observations, target=True) + noise).clamp(-1, 1)
            x2 = torch.cat([b.next_observations, a2], 1)
            q_next = torch.min(self.q1_t(x2), self.q2_t(x2)).squeeze(1)
            y = b.rewards + self.gamma * (1 - b.terminals) * q_next
        x = torch.cat([b.observations, b.actions], 1)
        q1 = self.q1(x).squeeze(1)
        loss = F.mse_loss(q1, y) + F.mse_loss(self.q2(x).squeeze(1), y)
        self.q_opt.zero_grad()
        loss.backward()
        self.q_opt.step()
        out = {"critic_loss": loss.item(), "q_mean": q1.mean().item()}
        if self.it % self.policy_delay == 0:
            pi = self.pi(b.observations)
            q = self.q1(torch.cat([b.observations, pi], 1))
            a_loss = -self.alpha / q.abs().mean().detach() * q.mean() + F.mse_loss(pi, b.actions)
            self.a_opt.zero_grad()
            a_loss.backward()
            self.a_opt.step()
            with torch.no_grad():
                for net, tgt in ((self.actor, self.actor_t), (self.q1, self.q1_t), (self.q2, self.q2_t)):
                    for p, pt in zip(net.parameters(), tgt.parameters()):
                        pt.mul_(1 - self.tau).add_(self.tau * p)
            out["actor_loss"] = a_loss.item()
        return out

    def load_member(self, td3, member: int) -> None:
        """Copy member `member` of a batched wmaug TD3 (networks and targets) into this agent."""
        def copy_into(seq: nn.Sequential, ens, m: int) -> None:
            linears = [layer for layer in seq if isinstance(layer, nn.Linear)]
            with torch.no_grad():
                for lin, layer in zip(linears, ens.layers):
                    lin.weight.copy_(layer.weight[m].T)
                    lin.bias.copy_(layer.bias[m, 0])

        copy_into(self.actor, td3.actor.net, member)
        copy_into(self.actor_t, td3.actor_target.net, member)
        for twin, (net, tgt) in enumerate(((self.q1, self.q1_t), (self.q2, self.q2_t))):
            copy_into(net, td3.critic.net, 2 * member + twin)
            copy_into(tgt, td3.critic_target.net, 2 * member + twin)


class PlainCQL:
    """CQL(H) on SAC as CORL writes it (one actor, two separate critic MLPs, a loop over the critics); with
    `conservative=False` it is plain SAC. Sizes and rates are paper B's (docs/protocol.md)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), n_actions: int = 10, min_q_weight: float = 5.0,
                 conservative: bool = True, device="cpu"):
        self.act_dim, self.n_actions, self.min_q_weight, self.conservative = act_dim, n_actions, min_q_weight, conservative
        self.actor = _mlp(obs_dim, hidden, 2 * act_dim).to(device)
        self.q1 = _mlp(obs_dim + act_dim, hidden, 1).to(device)
        self.q2 = _mlp(obs_dim + act_dim, hidden, 1).to(device)
        self.q1_t, self.q2_t = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.log_alpha = torch.zeros((), requires_grad=True, device=device)
        self.a_opt = torch.optim.Adam(self.actor.parameters(), lr=1e-4)
        self.q_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=3e-4)
        self.al_opt = torch.optim.Adam([self.log_alpha], lr=1e-4)

    def pi(self, obs):
        mean, log_std = self.actor(obs).chunk(2, -1)
        std = log_std.clamp(-20, 2).exp()
        u = mean + std * torch.randn_like(mean)
        logp = torch.distributions.Normal(mean, std).log_prob(u).sum(-1) - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), logp

    def update(self, b: Batch):
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = self.pi(b.next_observations)
            x2 = torch.cat([b.next_observations, a2], -1)
            y = b.rewards + 0.99 * (1 - b.terminals) * (torch.min(self.q1_t(x2), self.q2_t(x2)).squeeze(-1) - alpha * logp2)
        x = torch.cat([b.observations, b.actions], -1)
        loss = 0.0
        n = self.n_actions
        obs_rep = b.observations.repeat(n, 1)
        next_rep = b.next_observations.repeat(n, 1)
        if self.conservative:
            with torch.no_grad():
                a_cur, lp_cur = self.pi(obs_rep)
                a_next, lp_next = self.pi(next_rep)
            a_rand = torch.empty_like(a_cur).uniform_(-1, 1)
        for q in (self.q1, self.q2):
            q_data = q(x).squeeze(-1)
            loss = loss + F.mse_loss(q_data, y)
            if self.conservative:
                cat = torch.cat([
                    (q(torch.cat([obs_rep, a_rand], -1)).squeeze(-1) - self.act_dim * math.log(0.5)).view(n, -1),
                    (q(torch.cat([obs_rep, a_next], -1)).squeeze(-1) - lp_next).view(n, -1),
                    (q(torch.cat([obs_rep, a_cur], -1)).squeeze(-1) - lp_cur).view(n, -1),
                ], 0)
                loss = loss + self.min_q_weight * (torch.logsumexp(cat, 0).mean() - q_data.mean())
        self.q_opt.zero_grad()
        loss.backward()
        self.q_opt.step()
        a, logp = self.pi(b.observations)
        xa = torch.cat([b.observations, a], -1)
        actor_loss = (alpha * logp - torch.min(self.q1(xa), self.q2(xa)).squeeze(-1)).mean()
        self.a_opt.zero_grad()
        actor_loss.backward()
        self.a_opt.step()
        alpha_loss = -(self.log_alpha * (logp.detach() - self.act_dim)).mean()
        self.al_opt.zero_grad()
        alpha_loss.backward()
        self.al_opt.step()
        with torch.no_grad():
            for t, s in ((self.q1_t, self.q1), (self.q2_t, self.q2)):
                for pt, ps in zip(t.parameters(), s.parameters()):
                    pt.lerp_(ps, 5e-3)
