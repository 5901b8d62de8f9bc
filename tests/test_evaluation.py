"""Evaluation episodes run side by side give the returns of running them one after another."""

from __future__ import annotations

import numpy as np

from wmaug.core.envs import make_env
from wmaug.core.evaluation import evaluate, evaluate_groups, evaluate_parallel


def test_parallel_episodes_return_what_sequential_ones_do():
    """Hopper with a fixed deterministic linear policy: 5 episodes (seeds 7..11) sequentially, then side by side in
    2 and in 5 environments (so also a last, partial round). Each episode resets with the same seed whichever env
    runs it, so the returns agree to float rounding of the batched matmul (relative 1e-6)."""
    w = np.random.default_rng(0).normal(0, 0.3, (11, 3))
    calls = []

    def policy(obs):
        calls.append(len(obs) if obs.ndim == 2 else 1)
        return np.tanh(obs @ w)

    sequential = evaluate(make_env("hopper"), policy, 5, seed=7)
    calls.clear()
    for n_envs in (2, 5):
        together = evaluate_parallel([make_env("hopper") for _ in range(n_envs)], policy, 5, seed=7)
        np.testing.assert_allclose(together, sequential, rtol=1e-6)
    assert max(calls) == 5  # one forward pass served five episodes
    assert len(set(np.round(sequential, 3))) == 5  # the episodes differ: each got its own seed


def test_agents_evaluated_side_by_side_get_their_own_returns():
    """Two agents (two linear policies, two evaluation seeds), 4 episodes each, all 8 at once through one policy call
    per step on (K, N, obs_dim): each agent's returns are its own sequential ones (relative 1e-6), and once one
    agent's episodes end the calls shrink to the slots still running."""
    ws = np.random.default_rng(1).normal(0, 0.3, (2, 11, 3))
    shapes = []

    def policies(obs):
        shapes.append(obs.shape[:2])
        return np.tanh(np.einsum("knd,kda->kna", obs, ws))

    together = evaluate_groups([[make_env("hopper") for _ in range(4)] for _ in range(2)], policies, 4, [7, 70])
    for k, seed in enumerate((7, 70)):
        alone = evaluate(make_env("hopper"), lambda o, k=k: np.tanh(o @ ws[k]), 4, seed=seed)
        np.testing.assert_allclose(together[k], alone, rtol=1e-6)
    assert shapes[0] == (2, 4) and min(n for _, n in shapes) < 4
    assert not np.allclose(together[0], together[1])
