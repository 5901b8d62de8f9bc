"""A flat set of transitions, the unit every offline consumer (subsample, world model, TD3+BC) works on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np


@dataclass
class Transitions:
    observations: np.ndarray  # (N, obs_dim) float32
    actions: np.ndarray  # (N, act_dim) float32
    rewards: np.ndarray  # (N,) float32
    next_observations: np.ndarray  # (N, obs_dim) float32
    terminals: np.ndarray  # (N,) float32, 1 where the MDP ended (no bootstrap)
    timeouts: np.ndarray  # (N,) float32, 1 where the episode was cut by its time limit

    def __post_init__(self) -> None:
        n = len(self.observations)
        for f in fields(self):
            arr = getattr(self, f.name)
            if len(arr) != n:
                raise ValueError(f"Transitions.{f.name} has {len(arr)} rows, observations has {n}")

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    def take(self, idx: np.ndarray) -> "Transitions":
        return Transitions(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concatenate(parts: list["Transitions"]) -> "Transitions":
        return Transitions(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Transitions)}
        )

    def episodes(self) -> list[dict[str, np.ndarray]]:
        """Split at terminal / time-out rows into episodes in Minari's layout (observations T+1 rows,
        terminations, truncations). Rows after the last end form a final, cut episode."""
        ends = np.flatnonzero((self.terminals > 0.5) | (self.timeouts > 0.5))
        if len(ends) == 0 or ends[-1] != len(self) - 1:
            ends = np.append(ends, len(self) - 1)
        out, start = [], 0
        for end in ends:
            rows = slice(start, end + 1)
            out.append({
                "observations": np.concatenate([self.observations[rows], self.next_observations[end:end + 1]]),
                "actions": self.actions[rows], "rewards": self.rewards[rows],
                "terminations": self.terminals[rows] > 0.5, "truncations": self.timeouts[rows] > 0.5,
            })
            start = end + 1
        return out

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def checksum(self) -> str:
        h = hashlib.sha256()
        for f in fields(self):
            h.update(np.ascontiguousarray(getattr(self, f.name)).tobytes())
        return h.hexdigest()

    def save_npz(self, path: str | Path, **extra: np.ndarray) -> None:
        np.savez(path, **self.as_dict(), **extra)

    @staticmethod
    def from_mapping(data, where: str) -> "Transitions":
        missing = [f.name for f in fields(Transitions) if f.name not in data]
        if missing:
            raise ValueError(f"{where}: missing arrays {missing}")
        return Transitions(
            **{
                f.name: np.asarray(data[f.name], dtype=np.float32)
                for f in fields(Transitions)
            }
        )
