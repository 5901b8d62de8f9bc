"""Evaluation episodes run side by side give the returns of running them one after another."""

from __future__ import annotations

import numpy as np

from wmaug.envs import make_env
from wmaug.evaluation import evaluate, evaluate_parallel


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
