"""Shared fixtures: small real datasets (real MuJoCo rollouts) and tiny cell specs."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from wmaug import config as C
from wmaug.data.d4rl_protocol import rollout_episodes, uniform_policy
from wmaug.data.sample import ObsNormalizer, subsample
from wmaug.data.transitions import Transitions

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Session scope: runs before module fixtures too, so every learner is single-threaded and repeatable.
    torch.set_num_threads(1)


def episodes_to_transitions(episodes: list[dict]) -> Transitions:
    return Transitions(
        observations=np.concatenate([e["observations"][:-1] for e in episodes]),
        actions=np.concatenate([e["actions"] for e in episodes]),
        rewards=np.concatenate([e["rewards"] for e in episodes]).astype(np.float32),
        next_observations=np.concatenate([e["observations"][1:] for e in episodes]),
        terminals=np.concatenate([e["terminations"] for e in episodes]).astype(np.float32),
        timeouts=np.concatenate([e["truncations"] for e in episodes]).astype(np.float32),
    )


@pytest.fixture(scope="session")
def hopper_random() -> Transitions:
    return episodes_to_transitions(rollout_episodes("hopper", uniform_policy("hopper", 0), 3000, seed=0))


def write_sample(path: Path, data: Transitions, n: int, seed: int) -> Path:
    sample = subsample(data, n, seed)
    norm = ObsNormalizer.fit(sample.observations)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **sample.as_dict(), obs_mean=norm.mean, obs_std=norm.std, checksum=sample.checksum(),
             source="test", source_checksum="test", seed=seed)
    return path


@pytest.fixture
def base_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def tiny_spec(config: dict, tmp: Path, method: str, seed: int = 0, **budget) -> dict:
    """A smoke-sized hopper/random cell spec whose inputs live under tmp."""
    cfg = copy.deepcopy(config)
    cfg["scale"] = "smoke"
    cfg = C.validate(cfg)
    spec = C.cell_spec(cfg, "wmaug", "hopper", "random", method, seed)
    spec["budget"].update({"offline_iterations": 60, "online_steps": 400, "online_start_steps": 100,
                           "eval_every": 50, "eval_episodes": 1, "checkpoint_every": 30, **budget})
    spec["td3"] = {**spec["td3"], "hidden": [32, 32], "batch_size": 32}
    spec["paths"] = {"sample": str(tmp / "sample.npz"),
                     "world_model": str(tmp / "wm.pt") if spec["recipe"]["augment"] else None}
    spec["config_hash"] = C.config_hash(spec)
    return spec
