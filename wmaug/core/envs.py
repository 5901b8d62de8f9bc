"""Environment specs: Gymnasium ids, shapes and D4RL's reference scores; the D4RL dataset kinds."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

# D4RL dataset kinds the protocol builds (docs/protocol.md, common ground).
DATASET_KINDS = ["random", "medium", "expert", "medium-replay", "medium-expert"]


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
    # Std of Gaussian noise added to every action inside the environment (0: the deterministic task).
    # The stochastic-dynamics variant tests paper A's claim that the world model's stochasticity helps.
    action_noise: float = 0.0


ENV_SPECS: dict[str, EnvSpec] = {
    spec.name: spec
    for spec in [
        EnvSpec("halfcheetah", "HalfCheetah-v5", 17, 6, -280.178953, 12135.0),
        EnvSpec("hopper", "Hopper-v5", 11, 3, -20.272305, 3234.3),
        EnvSpec("walker2d", "Walker2d-v5", 17, 6, 1.629008, 4592.3),
        EnvSpec("ant", "Ant-v5", 105, 8, -325.6, 3879.7),
        # Hopper with N(0, 0.2^2) action noise applied by the environment: the same task and reference
        # scores, stochastic transitions (an open question of the reviewer's summary of paper A).
        EnvSpec("hopper_noisy", "Hopper-v5", 11, 3, -20.272305, 3234.3, action_noise=0.2),
    ]
}


class ActionNoise(gym.ActionWrapper):
    """Adds N(0, std^2) to each action before the simulator sees it (clipped to the action box). The noise
    comes from the environment's own generator, so `reset(seed=...)` and checkpoints of
    `env.unwrapped.np_random` make it reproducible."""

    def __init__(self, env: gym.Env, std: float):
        super().__init__(env)
        self.std = std

    def action(self, action):
        noise = self.env.unwrapped.np_random.normal(0.0, self.std, size=np.shape(action))
        return np.clip(action + noise, self.action_space.low, self.action_space.high).astype(np.float32)


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
    spec = get_spec(name)
    env = gym.make(spec.gym_id)
    if spec.action_noise > 0:
        env = ActionNoise(env, spec.action_noise)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def normalized_score(name: str, raw_return: float | np.ndarray) -> float | np.ndarray:
    spec = get_spec(name)
    return 100.0 * (raw_return - spec.ref_min) / (spec.ref_max - spec.ref_min)


def terminal_fn(name: str):
    """The task's termination rule as a function of (batched) observations -> bool tensor, for states a
    world model imagines. Gymnasium v5's default healthy ranges, read from its `is_healthy` (observations
    exclude the x (and y) position, so obs[0] is the torso height z and obs[1] its angle); the same idea
    as MBPO's static termination functions (Janner et al. 2019)."""
    import torch

    base = get_spec(name).gym_id

    def hopper(obs):
        z, angle = obs[..., 0], obs[..., 1]
        healthy = (z > 0.7) & (angle > -0.2) & (angle < 0.2) & ((obs[..., 1:] > -100) & (obs[..., 1:] < 100)).all(-1)
        return ~healthy

    def walker2d(obs):
        z, angle = obs[..., 0], obs[..., 1]
        return ~((z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0))

    def ant(obs):
        z = obs[..., 0]
        return ~(torch.isfinite(obs).all(-1) & (z >= 0.2) & (z <= 1.0))

    def never(obs):
        return torch.zeros(obs.shape[:-1], dtype=torch.bool, device=obs.device)

    return {"Hopper-v5": hopper, "Walker2d-v5": walker2d, "Ant-v5": ant}.get(base, never)
