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

    def replace(self, **changes) -> "Batch":
        return replace(self, **changes)


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

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        idx = torch.from_numpy(rng.integers(0, self.size, size=batch_size)).to(self.device)
        return Batch(**{key: self.storage[key][idx] for key in self._FIELDS})

    def state_dict(self) -> dict:
        return {"size": self.size, "pos": self.pos, **{k: v[: self.size].clone() for k, v in self.storage.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.pos = state["size"], state["pos"]
        for key in self._FIELDS:
            self.storage[key][: self.size] = state[key].to(self.device)


assert tuple(f.name for f in fields(Batch)) == ReplayBuffer._FIELDS
