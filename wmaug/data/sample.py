"""Per-cell offline data: a seeded uniform subsample of a dataset and its state-normalisation statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wmaug.data.buffer import Batch
from wmaug.data.transitions import Transitions
from wmaug.core.errors import InputError


def subsample_indices(n_total: int, n: int, seed: int, where: str = "dataset") -> np.ndarray:
    """n rows drawn uniformly without replacement, sorted. The first n of one seeded permutation, so the
    samples of one seed are nested: the 10K sample lies inside the 50K one (the dataset-size sweep
    compares more data, not other data)."""
    if n > n_total:
        raise InputError(f"{where}: asked for {n} transitions but the dataset holds only {n_total} (a method's "
                         f"sample is its data_scale x the scale's offline_samples: lower offline_samples, or leave "
                         f"that method out of this dataset's grid)")
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


def subsample(data: Transitions, n: int, seed: int, where: str = "dataset") -> Transitions:
    """n transitions drawn uniformly without replacement; the same (data, n, seed) gives the same sample."""
    return data.take(subsample_indices(len(data), n, seed, where))


@dataclass
class ObsNormalizer:
    """z-scores states with dataset statistics; TD3+BC adds 1e-3 to the std (docs/protocol.md)."""

    mean: np.ndarray
    std: np.ndarray
    _tensors: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # device -> (mean, std)

    @staticmethod
    def fit(observations: np.ndarray, eps: float = 1e-3) -> "ObsNormalizer":
        return ObsNormalizer(observations.mean(0).astype(np.float32), (observations.std(0) + eps).astype(np.float32))

    @staticmethod
    def identity(obs_dim: int) -> "ObsNormalizer":
        return ObsNormalizer(np.zeros(obs_dim, np.float32), np.ones(obs_dim, np.float32))

    @staticmethod
    def stacked(normalizers: list["ObsNormalizer"]) -> "ObsNormalizer":
        """K agents' normalisers as one for their (K, N, obs_dim) states."""
        return ObsNormalizer(np.stack([n.mean for n in normalizers])[:, None],
                             np.stack([n.std for n in normalizers])[:, None])

    def __call__(self, obs):
        if isinstance(obs, torch.Tensor):
            if obs.device not in self._tensors:  # copied to a device once, not at every batch
                self._tensors[obs.device] = (torch.as_tensor(self.mean, device=obs.device),
                                             torch.as_tensor(self.std, device=obs.device))
            mean, std = self._tensors[obs.device]
            return (obs - mean) / std
        return ((obs - self.mean) / self.std).astype(np.float32)

    def batch(self, b: Batch) -> Batch:
        return b.replace(observations=self(b.observations), next_observations=self(b.next_observations))

    def state_dict(self) -> dict:
        return {"mean": torch.from_numpy(self.mean), "std": torch.from_numpy(self.std)}

    @staticmethod
    def from_state_dict(state: dict) -> "ObsNormalizer":
        return ObsNormalizer(state["mean"].numpy(), state["std"].numpy())


def load_sample(path: str | Path) -> tuple[Transitions, ObsNormalizer, dict]:
    """A cell's offline sample (`wmaug subsample`): its transitions, state normalisation and provenance."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"offline sample not found: {path} (built by the `subsample` rule / `wmaug subsample`)")
    with np.load(path) as f:
        data = Transitions.from_mapping(f, str(path))
        normalizer = ObsNormalizer(f["obs_mean"], f["obs_std"])
        meta = {"sample_checksum": str(f["checksum"]), "source": str(f["source"]), "source_checksum": str(f["source_checksum"])}
        if "reference" in f:  # the source's reference returns (samples drawn before they were recorded lack them)
            meta["reference"] = json.loads(str(f["reference"]))
    return data, normalizer, meta
