"""Paper A's augmentation: in every sampled batch a fresh random share of the next states is replaced by
world-model samples for (s, a). Rewards and terminals stay from the data; nothing augmented is stored.

k-step augmentation (an open question of the reviewer's summary) rolls the latent state k steps: the data's
action first, then the target actor's actions on the decoded states. A replaced row becomes the k-step target
of model-based value expansion (Feinberg et al. 2018):

    y = r_t + sum_{i=1}^{k-1} gamma^i r_hat_i + gamma^k Q'(s_hat_{t+k}, pi'(s_hat_{t+k})),

with r_t and the first terminal flag from the data, r_hat from the world model file's reward model and the
imagined terminals from the task's own rule (envs.terminal_fn); rows stop accumulating once they end.
With k = 1 this is exactly the one-step augmentation.

The harness's controls (docs/methods.md, "Controls") replace the same rows, drawn the same way, with what a
model that knows nothing would give: s' + eps with eps ~ N(0, diag(sd^2)) at the world model's own held-out
per-dimension error sd (`next_state="noise"`), or s itself (`"copy"`). Rewards and terminals stay the data's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from wmaug.data.buffer import FIELDS, Batch


@dataclass
class Rollout:
    next_observations: torch.Tensor  # s_hat_{t+k}, raw scale
    rewards: torch.Tensor  # r_t + sum_i gamma^i r_hat_i over the steps before the row ended
    terminals: torch.Tensor  # 1 where the row ended before step k (no bootstrap)
    discounts: torch.Tensor  # gamma^k


@torch.no_grad()
def latent_rollout(world_model, batch: Batch, steps: int, gamma: float, stochastic: bool = True,
                   policy: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   terminal: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   generator: torch.Generator | None = None) -> Rollout:
    """k latent steps from the batch's (s, a); `policy` (raw states -> actions) picks the actions after the
    first; latent samples come from `generator` (torch's default one if None). stochastic: z ~ q(z | s) as the
    paper samples; otherwise z = mu (the mean prediction)."""
    if steps < 1:
        raise ValueError(f"latent rollout: steps must be >= 1, got {steps}")
    if steps > 1 and (policy is None or terminal is None or getattr(world_model, "reward_model", None) is None):
        raise ValueError("k-step augmentation needs a policy, the task's terminal rule and a world model file "
                         "with a reward model (written by `wmaug world-model` since k-step rollouts exist)")
    wm = world_model
    mu, logvar = wm.encode(wm.normalize(batch.observations))
    z = wm.reparameterize(mu, logvar, generator) if stochastic else mu
    z = wm.step_latent(z, batch.actions)
    next_obs = wm.denormalize(wm.decode(z))
    rewards, alive = batch.rewards.clone(), 1.0 - batch.terminals
    discount = torch.full_like(rewards, gamma)
    for _ in range(steps - 1):
        obs = next_obs
        act = policy(obs)
        z = wm.step_latent(z, act)
        next_obs = wm.denormalize(wm.decode(z))
        r_hat = wm.reward_model(wm.normalize(obs), act, wm.normalize(next_obs))
        rewards = rewards + discount * alive * r_hat
        alive = alive * (1.0 - terminal(next_obs).float())
        discount = discount * gamma
    return Rollout(next_obs, rewards, 1.0 - alive, discount)


class WorldModelAugmenter:
    """One world model on (B, .) batches; or a WorldModelGroup on the (K, B, .) batches of K seeds trained as one
    batched agent, with `generator` a list of the K seeds' streams: each seed's rows and latent samples are drawn
    from its own stream, as its augmenter alone draws them."""

    def __init__(self, world_model, rate: float, steps: int = 1, stochastic: bool = True, gamma: float = 0.99,
                 policy: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 terminal: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 next_state: str = "model", noise_sd: torch.Tensor | None = None):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"augmentation rate must lie in [0, 1], got {rate}")
        if next_state not in ("model", "noise", "copy") or (next_state != "model" and steps != 1):
            raise ValueError(f"next_state must be model, noise or copy (noise and copy one step only), got "
                             f"{next_state!r} with {steps} steps")
        if (next_state == "noise") != (noise_sd is not None):
            raise ValueError("the noise control needs noise_sd (per state dimension), and only it takes one")
        self.world_model, self.rate, self.steps, self.stochastic = world_model, rate, steps, stochastic
        self.gamma, self.policy, self.terminal = gamma, policy, terminal
        self.generator = generator  # the run's own stream for which rows to replace and the latent samples
        self.next_state = next_state
        self.noise_sd = noise_sd  # (obs_dim,) or a seed group's (K, obs_dim), raw units

    def __call__(self, batch: Batch) -> Batch:
        size, device = batch.observations.shape[-2], batch.observations.device
        n = round(self.rate * size)
        if n == 0:
            # Draw nothing from the random stream, so rate 0 is exactly the un-augmented run.
            return batch
        if batch.observations.dim() == 2:  # one model: its batch as a group of one
            return self(batch.for_members(1)).member(0)
        generators = self.generator if isinstance(self.generator, list) else [self.generator]
        if len(generators) != len(batch.observations):
            raise ValueError(f"augmenting {len(batch.observations)} members' batches needs a generator per member, "
                             f"got {len(generators)}")
        idx = torch.stack([torch.randperm(size, generator=g, device=device)[:n] for g in generators])  # (K, n)
        rows = torch.arange(len(generators), device=device)[:, None]
        part = Batch(*(getattr(batch, k)[rows, idx] for k in FIELDS))
        next_obs = batch.next_observations.clone()
        if self.next_state == "copy":
            next_obs[rows, idx] = part.observations  # s' := s
            return batch.replace(next_observations=next_obs)
        if self.next_state == "noise":
            sd = self.noise_sd.to(device).reshape(-1, 1, self.noise_sd.shape[-1])  # (1 or K, 1, obs_dim)
            eps = torch.stack([torch.randn(part.next_observations.shape[1:], generator=g, device=device)
                               for g in generators])  # each seed's from its own stream
            next_obs[rows, idx] = part.next_observations + eps * sd  # s' := s' + eps
            return batch.replace(next_observations=next_obs)
        out = latent_rollout(self.world_model, part, self.steps, self.gamma, self.stochastic, self.policy,
                             self.terminal, self.generator)
        next_obs[rows, idx] = out.next_observations
        if self.steps == 1:
            return batch.replace(next_observations=next_obs)  # reward, terminal and gamma stay the data's
        rewards, terminals = batch.rewards.clone(), batch.terminals.clone()
        discounts = torch.full_like(rewards, self.gamma)
        rewards[rows, idx], terminals[rows, idx], discounts[rows, idx] = out.rewards, out.terminals, out.discounts
        return batch.replace(next_observations=next_obs, rewards=rewards, terminals=terminals, discounts=discounts)
