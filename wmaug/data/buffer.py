"""Replay storage shared by every algorithm: a fixed-capacity ring of raw transitions on one device.

A transition is one row of a float32 matrix, [state | action | reward | next state | terminal], and the fields are
column views of it: adding a transition is one copy to the device and a minibatch is one gather, where a tensor per
field took five of each (on a GPU each is a launch, the copy also a synchronisation). The seeds of a cell trained as
one batched agent keep their buffers in one (K, capacity, width) tensor (`ReplayGroup`), so one copy and one gather
serve all K.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from wmaug.data.transitions import Transitions

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")


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

    def member(self, k: int) -> "Batch":
        """Member k's minibatch (B, ...) of a batched ensemble's (E, B, ...) one, as views."""
        return Batch(*(None if getattr(self, f.name) is None else getattr(self, f.name)[k] for f in fields(self)))


class RowLayout:
    """Where each field sits in a transition row: [state | action | reward | next state | terminal]."""

    def __init__(self, obs_dim: int, act_dim: int):
        o, a = obs_dim, act_dim
        self.columns = {"observations": slice(0, o), "actions": slice(o, o + a), "rewards": o + a,
                        "next_observations": slice(o + a + 1, 2 * o + a + 1), "terminals": 2 * o + a + 1}
        self.width = 2 * o + a + 2

    def pack(self, obs, action, reward: float, next_obs, terminal: bool) -> np.ndarray:
        row = np.empty(self.width, np.float32)  # each value rounded to float32 as torch.as_tensor would
        for key, value in zip(FIELDS, (obs, action, reward, next_obs, float(terminal))):
            row[self.columns[key]] = value
        return row

    def views(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The fields of rows (..., width) as views (..., dim) or (...,) for reward and terminal."""
        return {key: rows[..., column] for key, column in self.columns.items()}

    def batch(self, rows: torch.Tensor) -> Batch:
        return Batch(**self.views(rows))


class ReplayBuffer:
    """Uniform replay. Sampling draws indices from a caller-owned numpy Generator so a checkpoint of
    that generator makes the batch sequence resumable. `rows`: storage to use, (capacity, width), e.g. one member's
    slice of a `ReplayGroup`."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device="cpu", rows: torch.Tensor | None = None):
        if capacity <= 0:
            raise ValueError(f"ReplayBuffer capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.device = torch.device(device)
        self.layout = RowLayout(obs_dim, act_dim)
        if rows is None:
            rows = torch.zeros((capacity, self.layout.width), dtype=torch.float32, device=self.device)
        elif rows.shape != (capacity, self.layout.width):
            raise ValueError(f"ReplayBuffer rows of shape {tuple(rows.shape)}, need ({capacity}, {self.layout.width})")
        self.rows = rows
        self.storage = self.layout.views(rows)
        self.size = 0
        self.pos = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward: float, next_obs, terminal: bool) -> None:
        self.rows[self.pos] = torch.from_numpy(self.layout.pack(obs, action, reward, next_obs, terminal))
        self.advance()

    def advance(self) -> None:
        """One row written at pos."""
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add_transitions(self, data: Transitions) -> None:
        n = len(data)
        if n > self.capacity - self.size:
            raise ValueError(f"{n} transitions do not fit: buffer holds {self.size} of {self.capacity}")
        for key in FIELDS:
            self.storage[key][self.size : self.size + n] = torch.as_tensor(getattr(data, key), device=self.device)
        self.size += n
        self.pos = self.size % self.capacity

    def sample(self, batch_size: int, rng: np.random.Generator, members: int | None = None) -> Batch:
        """A uniform minibatch (B, ...), or with `members` one independent minibatch per member (E, B, ...)."""
        shape = batch_size if members is None else (members, batch_size)
        return self.gather(rng.integers(0, self.size, size=shape))

    def gather(self, idx: np.ndarray) -> Batch:
        return self.layout.batch(self.rows[torch.from_numpy(idx).to(self.device)])

    @classmethod
    def of(cls, data: Transitions, device="cpu", extra_capacity: int = 0) -> "ReplayBuffer":
        buffer = cls(data.obs_dim, data.act_dim, len(data) + extra_capacity, device)
        buffer.add_transitions(data)
        return buffer

    def state_dict(self) -> dict:
        return {"size": self.size, "pos": self.pos, **{k: v[: self.size].clone() for k, v in self.storage.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.pos = state["size"], state["pos"]
        for key in FIELDS:
            self.storage[key][: self.size] = state[key].to(self.device)


class ReplayGroup:
    """The buffers of K agents trained as one batched agent (the seeds of a cell), in one (K, capacity, width)
    tensor: one copy adds a transition to every buffer and one gather draws every member's minibatch. Member k is
    `buffers[k]`, a ReplayBuffer over its slice, so each seed still checkpoints and restores its own buffer."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, capacity: int, device="cpu"):
        self.device = torch.device(device)
        self.layout = RowLayout(obs_dim, act_dim)
        self.rows = torch.zeros((members, capacity, self.layout.width), dtype=torch.float32, device=self.device)
        self.buffers = [ReplayBuffer(obs_dim, act_dim, capacity, device, rows=self.rows[k]) for k in range(members)]

    def add(self, transitions: list[tuple]) -> None:
        """Member k's transition (obs, action, reward, next_obs, terminal) = transitions[k], all at once."""
        positions = {b.pos for b in self.buffers}
        if len(positions) != 1 or len(transitions) != len(self.buffers):
            raise ValueError(f"ReplayGroup.add: {len(transitions)} transitions for {len(self.buffers)} buffers at "
                             f"positions {sorted(positions)}: the members must add in step")
        packed = np.stack([self.layout.pack(*t) for t in transitions])
        self.rows[:, positions.pop()] = torch.from_numpy(packed).to(self.device)
        for b in self.buffers:
            b.advance()

    def sample(self, batch_size: int, rngs: list[np.random.Generator]) -> Batch:
        """(K, B, ...): member k's minibatch drawn from rngs[k] as `ReplayBuffer.sample` draws it alone."""
        K, capacity = self.rows.shape[:2]
        idx = np.stack([rng.integers(0, b.size, size=batch_size) for b, rng in zip(self.buffers, rngs)])
        flat = idx + np.arange(K)[:, None] * capacity  # member k's rows start at row k * capacity
        rows = self.rows.view(K * capacity, -1)[torch.from_numpy(flat).to(self.device)]
        return self.layout.batch(rows)


def concat_batches(parts: list[Batch]) -> Batch:
    return Batch(*(torch.cat([getattr(p, k) for p in parts]) for k in FIELDS))


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


assert tuple(f.name for f in fields(Batch))[:-1] == FIELDS
