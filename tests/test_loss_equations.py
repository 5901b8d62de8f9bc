"""Each learner's update computes the loss its equation says, on a fixed batch that holds terminal rows.

The learners whose losses live inside `update` (AWAC, BCQ, the behaviour SAC, FQE) are checked twice per loss:

- the value: the loss recomputed here from the module docstring's equation, with the same random draws (the
  torch stream is replayed) and the networks as they were before the step, equals what `update` reports;
- the step: Adam's first step moves every weight by lr * g / (|g| + eps), i.e. by -lr sign(g) wherever the gradient
  g is not tiny, so the sign of every weight's change must be minus the sign of the gradient of the recomputed loss.
  A loss that reports the right number but steps another (a stray detach, a flipped sign inside) fails here.

CQL's and the ensemble SAC's losses are separate functions and are checked in tests/test_recipe_losses.py; TD3's and
TD3+BC's in tests/test_recipe_losses.py and tests/test_batched_td3.py.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from wmaug.data.buffer import Batch

OBS, ACT, B = 4, 2, 12
TERMINALS = torch.tensor([0.0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0])  # terminal rows: y = r there


def fixed_batch(members: int | None, seed: int = 1) -> Batch:
    """B transitions with actions inside (-0.9, 0.9) (log pi of dataset actions stays far from atanh(1)), per
    member (E, B, ...) or shared (B, ...)."""
    g = torch.Generator().manual_seed(seed)
    lead = (members,) if members else ()
    return Batch(torch.randn(*lead, B, OBS, generator=g), (torch.rand(*lead, B, ACT, generator=g) * 2 - 1) * 0.9,
                 torch.randn(*lead, B, generator=g), torch.randn(*lead, B, OBS, generator=g),
                 TERMINALS.expand(*lead, B).clone())


def update_replayed(agent, batch: Batch):
    """(metrics of one update, the agent before it, the torch stream as it was): the test then replays the draws."""
    before = copy.deepcopy(agent)
    state = torch.get_rng_state()
    metrics = agent.update(batch)
    torch.set_rng_state(state)
    return metrics, before


def assert_first_adam_step_descends(before: torch.nn.Module, after: torch.nn.Module, loss: torch.Tensor, lr: float,
                                    weight_decay: float = 0.0) -> None:
    """Every weight of `before` with a clear gradient of `loss` moved by -lr sign(g) in `after` (Adam's first step;
    with L2 weight decay the gradient is g + wd w)."""
    params = [p for p in before.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    checked = 0
    for (name, p), g, q in zip([(n, p) for n, p in before.named_parameters() if p.requires_grad], grads,
                               [q for q in after.parameters() if q.requires_grad]):
        g = torch.zeros_like(p) if g is None else g + weight_decay * p.detach()
        clear = g.abs() > 1e-5  # Adam's eps is 1e-8: lr g / (|g| + eps) is within 0.1% of lr sign(g) there
        step = (q.detach() - p.detach())[clear]
        torch.testing.assert_close(step, -lr * g[clear].sign(), rtol=2e-3, atol=lr * 2e-3, msg=lambda m: f"{name}: {m}")
        checked += int(clear.sum())
    total = sum(p.numel() for p in params)
    assert checked > 0.3 * total, f"only {checked} of {total} weights have a clear gradient to check"


def critics_only(agent) -> torch.nn.Module:
    return agent.critic


# ---- AWAC (Nair et al. 2020; rlkit's example settings) ------------------------------------------------------
def test_awac_losses_are_its_equations():
    """y_i = r + gamma (1 - d) min_j Q'_ij(s', a'); L_Q = sum_ij E[(Q_ij(s, a) - y_i)^2];
    A_i = min_j Q_ij(s, a) - min_j Q_ij(s, a_pi); w_i = B exp(A_i / beta) / sum_batch exp(A_i / beta);
    L_pi = sum_i E[-log pi_i(a|s) w_i], with log pi of the dataset action through u = atanh(a)."""
    from wmaug.algos.awac import AWAC, AWACConfig

    torch.manual_seed(0)
    cfg = AWACConfig(hidden=(16, 16), policy_hidden=(16, 16), gamma=0.9, beta=2.0)
    E = 2
    agent = AWAC(OBS, ACT, cfg, members=E)
    b = fixed_batch(E)
    metrics, before = update_replayed(agent, b)

    with torch.no_grad():
        u_next = (lambda m, s: m + s * torch.randn_like(m))(*before.actor.distribution_params(b.next_observations))
        next_action = torch.tanh(u_next)
        y = b.rewards + 0.9 * (1 - b.terminals) * before.critic_target(b.next_observations, next_action).min(1).values
    assert torch.equal(y[:, TERMINALS == 1], b.rewards[:, TERMINALS == 1])
    q = before.critic(b.observations, b.actions)  # (E, 2, B)
    critic_loss = ((q - y.unsqueeze(1)) ** 2).mean(-1).sum()
    torch.testing.assert_close(metrics["critic_loss"].double(), critic_loss.detach().double() / (2 * E))
    assert_first_adam_step_descends(before.critic, agent.critic, critic_loss, cfg.critic_lr)

    mean, std = before.actor.distribution_params(b.observations)
    with torch.no_grad():
        a_pi = torch.tanh(mean + std * torch.randn_like(mean))
        advantage = q.min(1).values - before.critic(b.observations, a_pi).min(1).values
        weights = B * torch.exp(advantage / 2.0) / torch.exp(advantage / 2.0).sum(-1, keepdim=True)
    u = torch.atanh(b.actions)
    log_pi = (torch.distributions.Normal(mean, std).log_prob(u) - torch.log(1 - b.actions ** 2)).sum(-1)
    actor_loss = (-log_pi * weights).mean(-1).sum()
    torch.testing.assert_close(metrics["actor_loss"].double(), actor_loss.detach().double() / E, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(metrics["advantage"], advantage.mean())
    assert_first_adam_step_descends(before.actor, agent.actor, actor_loss, cfg.actor_lr, cfg.policy_weight_decay)
    # the weights favour the dataset actions the critics rate above the policy's: not a constant
    assert weights.std() > 0.01


# ---- BCQ (Fujimoto et al. 2019; d4rl_evaluations' code) -----------------------------------------------------
def test_bcq_losses_are_its_equations():
    """L_G = E[(D(s, z) - a)^2] + 0.5 KL(N(mu, sigma) || N(0, 1)); a'_k = xi'(s', D(s', z_k)), z_k ~ N(0, 1)
    clipped to [-0.5, 0.5], D the VAE after its step (the code steps it first); y = r + gamma (1 - d) max_k [0.75 min_j Q'_j(s', a'_k) + 0.25 max_j Q'_j(s', a'_k)];
    L_Q = sum_j E[(Q_j(s, a) - y)^2]; L_xi = -E[Q_1(s, xi(s, D(s, z)))] with the critic after its step."""
    from wmaug.algos.bcq import BCQ, BCQConfig

    torch.manual_seed(0)
    cfg = BCQConfig(hidden=(16, 16), vae_hidden=(16, 16), gamma=0.9, n_target=4)
    E, L, n = 2, 2 * ACT, 4
    agent = BCQ(OBS, ACT, cfg, members=E)
    b = fixed_batch(E)
    metrics, before = update_replayed(agent, b)

    def decode(vae, obs, z):
        return torch.tanh(vae.decoder(torch.cat([obs, z], -1)))

    def perturb(actor, obs, act):
        return (act + 0.05 * torch.tanh(actor.net(torch.cat([obs, act], -1)))).clamp(-1, 1)

    mu, log_std = before.vae.encoder(torch.cat([b.observations, b.actions], -1)).chunk(2, -1)
    std = log_std.clamp(-4, 15).exp()
    recon = decode(before.vae, b.observations, mu + std * torch.randn_like(std))
    kl = (-0.5 * (1 + torch.log(std ** 2) - mu ** 2 - std ** 2)).mean((1, 2))
    vae_loss = ((recon - b.actions) ** 2).mean((1, 2)) + 0.5 * kl
    torch.testing.assert_close(metrics["vae_loss"].double(), vae_loss.sum().detach().double() / E)
    assert_first_adam_step_descends(before.vae, agent.vae, vae_loss.sum(), cfg.vae_lr)

    vae_after = agent.vae  # the VAE steps first: the target's and the actor's VAE actions come from it
    with torch.no_grad():
        s_next = b.next_observations.repeat(1, n, 1)  # row k B + i: state i's k-th candidate
        z = torch.randn(E, n * B, L).clamp(-0.5, 0.5)
        a_next = perturb(before.actor_target, s_next, decode(vae_after, s_next, z))
        q_next = before.critic_target(s_next, a_next)  # (E, 2, n B)
        soft = 0.75 * q_next.min(1).values + 0.25 * q_next.max(1).values
        y = b.rewards + 0.9 * (1 - b.terminals) * soft.reshape(E, n, B).max(1).values
    assert torch.equal(y[:, TERMINALS == 1], b.rewards[:, TERMINALS == 1])
    q = before.critic(b.observations, b.actions)
    critic_loss = ((q - y.unsqueeze(1)) ** 2).mean(-1).sum()
    torch.testing.assert_close(metrics["critic_loss"].double(), critic_loss.detach().double() / (2 * E))
    assert_first_adam_step_descends(before.critic, agent.critic, critic_loss, cfg.critic_lr)

    with torch.no_grad():
        sampled = decode(vae_after, b.observations, torch.randn(E, B, L).clamp(-0.5, 0.5))
    critic_after = copy.deepcopy(agent.critic).requires_grad_(False)
    actor_loss = -critic_after(b.observations, perturb(before.actor, b.observations, sampled))[:, 0].mean(-1).sum()
    torch.testing.assert_close(metrics["actor_loss"].double(), actor_loss.detach().double() / E)
    assert_first_adam_step_descends(before.actor, agent.actor, actor_loss, cfg.actor_lr)


# ---- the behaviour SAC (Haarnoja et al. 2018) -----------------------------------------------------------------
def test_behaviour_sac_losses_are_its_equations():
    """y = r + gamma (1 - d) (min_i Q'_i(s', a') - alpha log pi(a'|s')); L_Q = sum_i E[(Q_i(s, a) - y)^2];
    J_pi = E[alpha log pi(a|s) - min_i Q_i(s, a)] with the critics after their step;
    J_alpha = E[-log alpha (log pi(a|s) + target_entropy)], target entropy -|A|."""
    from wmaug.algos.sac import SAC, SACConfig

    torch.manual_seed(0)
    cfg = SACConfig(hidden=(16, 16), gamma=0.9, init_alpha=0.5)
    agent = SAC(OBS, ACT, cfg)
    b = fixed_batch(None)
    metrics, before = update_replayed(agent, b)

    alpha = 0.5
    with torch.no_grad():
        a_next, logp_next = before.actor(b.next_observations)
        y = b.rewards + 0.9 * (1 - b.terminals) * (before.critic_target(b.next_observations, a_next).min(0).values
                                                   - alpha * logp_next)
    assert torch.equal(y[TERMINALS == 1], b.rewards[TERMINALS == 1])
    q = before.critic(b.observations, b.actions)  # (2, B)
    critic_loss = ((q - y) ** 2).mean(-1).sum()
    torch.testing.assert_close(metrics["critic_loss"], critic_loss.detach())
    assert_first_adam_step_descends(before.critic, agent.critic, critic_loss, cfg.critic_lr)

    a, logp = before.actor(b.observations)
    critic_after = copy.deepcopy(agent.critic).requires_grad_(False)
    actor_loss = (alpha * logp - critic_after(b.observations, a).min(0).values).mean()
    torch.testing.assert_close(metrics["actor_loss"], actor_loss.detach())
    assert_first_adam_step_descends(before.actor, agent.actor, actor_loss, cfg.actor_lr)
    # the temperature: one Adam step on log alpha against the gradient of J_alpha
    grad = -(logp.detach() + agent.target_entropy).mean()
    assert (agent.log_alpha - before.log_alpha).item() == pytest.approx(-cfg.alpha_lr * math.copysign(1, grad), rel=1e-3)


# ---- FQE (Le et al. 2019): paper B's neutral Q ------------------------------------------------------------------
def test_fqe_loss_is_its_equation():
    """y_ij = r + gamma (1 - d) Q'_ij(s', a'), a' ~ pi_i(.|s'): each twin regresses on its own target (no min)."""
    from wmaug.algos.fqe import FQE, FQEConfig

    torch.manual_seed(0)
    cfg = FQEConfig(hidden=(16, 16), gamma=0.9)
    E = 2
    agent = FQE(OBS, ACT, cfg, members=E)
    with torch.no_grad():  # targets that differ from the critics, so that "no min over twins" shows
        for p in agent.critic_target.parameters():
            p.add_(0.3 * torch.randn_like(p))
    b = fixed_batch(E)
    metrics, before = update_replayed(agent, b)
    with torch.no_grad():
        a_next, _ = before.policy(b.next_observations)
        q_next = before.critic_target(b.next_observations, a_next)  # (E, 2, B)
        y = b.rewards.unsqueeze(1) + 0.9 * (1 - b.terminals.unsqueeze(1)) * q_next
    assert not torch.equal(q_next[:, 0], q_next[:, 1])
    assert torch.equal(y[..., TERMINALS == 1], b.rewards.unsqueeze(1).expand(-1, 2, -1)[..., TERMINALS == 1])
    q = before.critic(b.observations, b.actions)
    critic_loss = ((q - y) ** 2).mean(-1).sum()
    torch.testing.assert_close(metrics["critic_loss"], critic_loss.detach() / (2 * E))
    assert_first_adam_step_descends(before.critic, agent.critic, critic_loss, cfg.lr)
    for p, q_ in zip(before.policy.parameters(), agent.policy.parameters()):
        assert torch.equal(p, q_)  # the evaluated policy never trains
