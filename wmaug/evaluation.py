"""Deterministic evaluation episodes, seeded per episode so a result does not depend on what ran before."""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np


def evaluate(env: gym.Env, policy: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int) -> np.ndarray:
    """Undiscounted returns of `episodes` full episodes; episode k resets with seed + k."""
    returns = np.zeros(episodes)
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            returns[k] += reward
            done = terminated or truncated
    return returns
