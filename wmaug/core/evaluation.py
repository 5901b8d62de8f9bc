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


def evaluate_parallel(envs: list[gym.Env], policy: Callable[[np.ndarray], np.ndarray], episodes: int,
                      seed: int) -> np.ndarray:
    """The returns of :func:`evaluate` (episode k resets with seed + k), with up to len(envs) episodes run side by
    side so that one batched forward pass serves them all: policy maps (N, obs_dim) -> (N, act_dim). The same
    episodes as :func:`evaluate` up to float rounding of a batched vs single forward pass."""
    parts = []
    for start in range(0, episodes, len(envs)):
        n = min(len(envs), episodes - start)
        parts.append(evaluate_groups([envs[:n]], lambda obs: policy(obs[0])[None], n, [seed + start])[0])
    return np.concatenate(parts)


def evaluate_groups(env_groups: list[list[gym.Env]], policy: Callable[[np.ndarray], np.ndarray], episodes: int,
                    seeds: list[int]) -> np.ndarray:
    """Returns (K, episodes) of K agents trained side by side (the seeds of a cell): agent k runs its episodes in
    env_groups[k], one env per episode, episode j reset with seeds[k] + j, so each agent's returns are those of
    :func:`evaluate` up to float rounding. All K x episodes episodes run at once and one batched forward pass serves
    them: policy maps (K, N, obs_dim) -> (K, N, act_dim), N the episode slots still running for some agent (with one
    agent, exactly the running episodes, as in :func:`evaluate_parallel`)."""
    short = [k for k, group in enumerate(env_groups) if len(group) < episodes]
    if short:
        raise ValueError(f"agents {short} have fewer than {episodes} evaluation environments")
    obs = np.stack([np.stack([env.reset(seed=seed + j)[0] for j, env in enumerate(group[:episodes])])
                    for group, seed in zip(env_groups, seeds)])
    returns = np.zeros(obs.shape[:2])
    running = np.ones(obs.shape[:2], bool)
    while running.any():
        slots = np.flatnonzero(running.any(0))
        actions = policy(obs[:, slots])
        for k, i in zip(*np.nonzero(running[:, slots])):
            j = slots[i]
            obs[k, j], reward, terminated, truncated, _ = env_groups[k][j].step(actions[k, i])
            returns[k, j] += reward
            running[k, j] = not (terminated or truncated)
    return returns


def evaluate_steps(env: gym.Env, policy: Callable[[np.ndarray], np.ndarray], steps: int, seed: int) -> np.ndarray:
    """Paper B's protocol: `steps` deterministic environment steps, returns of the episodes that finished
    within them (an episode cut by the step budget is dropped); episode k resets with seed + k."""
    returns, k, used = [], 0, 0
    while used < steps:
        obs, _ = env.reset(seed=seed + k)
        total, done = 0.0, False
        while not done and used < steps:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += reward
            used += 1
            done = terminated or truncated
        if done:
            returns.append(total)
        k += 1
    if not returns:
        raise ValueError(f"no episode finished within {steps} evaluation steps")
    return np.asarray(returns)


def evaluate_members(envs: list[gym.Env], act: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int) -> np.ndarray:
    """Returns (E, episodes) of E batched agents, agent i acting in envs[i]; all agents step in lockstep so
    one batched forward pass serves every agent. act: (E, obs_dim) -> (E, act_dim)."""
    E = len(envs)
    returns = np.zeros((E, episodes))
    for k in range(episodes):
        obs = np.stack([env.reset(seed=seed + k)[0] for env in envs])
        running = np.ones(E, bool)
        while running.any():
            actions = act(obs)
            for i in np.flatnonzero(running):
                obs[i], reward, terminated, truncated, _ = envs[i].step(actions[i])
                returns[i, k] += reward
                running[i] = not (terminated or truncated)
    return returns
