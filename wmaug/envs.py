"""Environment specs: Gymnasium ids, shapes and D4RL's reference scores."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class EnvSpec:
    name: str  # short name used in configs and paths
    gym_id: str
    obs_dim: int
    act_dim: int
    # D4RL's reference returns (d4rl/infos.py, identical for every dataset type of an env);
    # normalised score = 100 * (R - ref_min) / (ref_max - ref_min).
    ref_min: float
    ref_max: float


ENV_SPECS: dict[str, EnvSpec] = {
    spec.name: spec
    for spec in [
        EnvSpec("halfcheetah", "HalfCheetah-v5", 17, 6, -280.178953, 12135.0),
        EnvSpec("hopper", "Hopper-v5", 11, 3, -20.272305, 3234.3),
        EnvSpec("walker2d", "Walker2d-v5", 17, 6, 1.629008, 4592.3),
        EnvSpec("ant", "Ant-v5", 105, 8, -325.6, 3879.7),
    ]
}


def unknown_name_message(kind: str, value: object, valid: list[str], where: str) -> str:
    """Message for an unknown name, with the closest valid one suggested."""
    close = difflib.get_close_matches(str(value), valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{where}: unknown {kind} '{value}'. Valid: {', '.join(valid)}.{hint}"


def get_spec(name: str, where: str = "environment") -> EnvSpec:
    if name not in ENV_SPECS:
        raise KeyError(unknown_name_message("environment", name, list(ENV_SPECS), where))
    return ENV_SPECS[name]


def make_env(name: str, seed: int | None = None) -> gym.Env:
    """A Gymnasium MuJoCo env (1000-step episodes) with its action space seeded."""
    env = gym.make(get_spec(name).gym_id)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def normalized_score(name: str, raw_return: float | np.ndarray) -> float | np.ndarray:
    spec = get_spec(name)
    return 100.0 * (raw_return - spec.ref_min) / (spec.ref_max - spec.ref_min)
