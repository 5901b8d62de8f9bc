"""Replay storage shared by every algorithm: a fixed-capacity ring of raw transitions on one device."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from wmaug.data.transitions import Transitions


@dataclass
class Batch:
    observations: torch.Tensor  # (B, obs_dim)
    actions: torch.Tensor  # (B, act_dim)
    rewards: torch.Tensor  # (B,)
    next_observations: torch.Tensor  # (B, obs_dim)
    terminals: torch.Tensor  # (B,)
    # Per-row discount of the bootstrapped value, None: the learner's gamma. Set by k-step augmentation,
    # whose rows bootstrap k steps ahead (gamma^k).
    discounts: torch.Tensor | None = None

    def replace(self, **changes) -> "Batch":
        return replace(self, **changes)

    def for_members(self, members: int) -> "Batch":
        """The same batch seen by every member of a batched ensemble: (B, ...) -> (E, B, ...), no copy."""
        return Batch(*(None if getattr(self, f.name) is None else
                       getattr(self, f.name).unsqueeze(0).expand(members, *getattr(self, f.name).shape)
                       for f in fields(self)))


class ReplayBuffer:
    """Uniform replay. Sampling draws indices from a caller-owned numpy Generator so a checkpoint of
    that generator makes the batch sequence resumable."""

    _FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device="cpu"):
        if capacity <= 0:
            raise ValueError(f"ReplayBuffer capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.device = torch.device(device)
        shapes = {
            "observations": (obs_dim,),
            "actions": (act_dim,),
            "rewards": (),
            "next_observations": (obs_dim,),
            "terminals": (),
        }
        self.storage = {k: torch.zeros((capacity, *s), dtype=torch.float32, device=self.device) for k, s in shapes.items()}
        self.size = 0
        self.pos = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward: float, next_obs, terminal: bool) -> None:
        values = (obs, action, reward, next_obs, float(terminal))
        for key, value in zip(self._FIELDS, values):
            self.storage[key][self.pos] = torch.as_tensor(value, dtype=torch.float32)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add_transitions(self, data: Transitions) -> None:
        n = len(data)
        if n > self.capacity - self.size:
            raise ValueError(f"{n} transitions do not fit: buffer holds {self.size} of {self.capacity}")
        for key in self._FIELDS:
            self.storage[key][self.size : self.size + n] = torch.as_tensor(getattr(data, key), device=self.device)
        self.size += n
        self.pos = self.size % self.capacity

    def sample(self, batch_size: int, rng: np.random.Generator, members: int | None = None) -> Batch:
        """A uniform minibatch (B, ...), or with `members` one independent minibatch per member (E, B, ...)."""
        shape = batch_size if members is None else (members, batch_size)
        return self.gather(rng.integers(0, self.size, size=shape))

    def gather(self, idx: np.ndarray) -> Batch:
        idx = torch.from_numpy(idx).to(self.device)
        return Batch(**{key: self.storage[key][idx] for key in self._FIELDS})

    @classmethod
    def of(cls, data: Transitions, device="cpu", extra_capacity: int = 0) -> "ReplayBuffer":
        buffer = cls(data.obs_dim, data.act_dim, len(data) + extra_capacity, device)
        buffer.add_transitions(data)
        return buffer

    def state_dict(self) -> dict:
        return {"size": self.size, "pos": self.pos, **{k: v[: self.size].clone() for k, v in self.storage.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.pos = state["size"], state["pos"]
        for key in self._FIELDS:
            self.storage[key][: self.size] = state[key].to(self.device)


def concat_batches(parts: list[Batch]) -> Batch:
    return Batch(*(torch.cat([getattr(p, k) for p in parts]) for k in ReplayBuffer._FIELDS))


def stack_batches(parts: list[Batch]) -> Batch:
    """One minibatch per member, (B, ...) each, as a batched ensemble's (E, B, ...) batch."""
    def stacked(name):
        values = [getattr(p, name) for p in parts]
        if all(v is None for v in values):
            return None
        if any(v is None for v in values):  # k-step rows in some members' batches only: the rest use gamma
            raise ValueError(f"members' batches disagree on whether they carry {name}")
        return torch.stack(values)
    return Batch(*(stacked(f.name) for f in fields(Batch)))


class UnionReplay:
    """Uniform sampling over a fixed offline buffer and a growing online one, as if they were one buffer
    (paper B's "Uniform" scheme); only the online part changes, so only it goes into checkpoints."""

    def __init__(self, offline: ReplayBuffer, online: ReplayBuffer):
        self.offline, self.online = offline, online

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[Batch, np.ndarray]:
        """A minibatch and, per row, whether it came from the offline data."""
        m = len(self.offline)
        idx = rng.integers(0, m + len(self.online), size=batch_size)
        is_offline = idx < m
        parts = [self.offline.gather(idx[is_offline]), self.online.gather(idx[~is_offline] - m)]
        return concat_batches(parts), np.concatenate([np.ones(is_offline.sum(), bool), np.zeros((~is_offline).sum(), bool)])


assert tuple(f.name for f in fields(Batch))[:-1] == ReplayBuffer._FIELDS
