"""Paper B's Q-ensemble analysis (Lee et al. 2021, Fig 4b and appendix E): does Q tell seen actions from random ones?

Real pairs are online samples (s, a); the fake set replaces each action with `n_random` uniform random
actions, (s, a~), a~ ~ U[-1, 1]^|A| (the appendix samples several per real pair "to provide enough coverage
of the action space"; docs/protocol.md: 10, a choice of this harness). Q(s, a) is read as a classifier's
confidence that a pair is real, and the figure plots the AUROC of that classifier over fine-tuning. Higher AUROC = Q is more
discriminative (lower for unseen actions), which the paper credits for the ensemble's stability.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def auroc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """P(score_pos > score_neg) + 0.5 P(score_pos == score_neg), over all (pos, neg) pairs.

    Computed from the Mann-Whitney U statistic with tied values given their average rank, so it equals the
    pairwise definition exactly (ranks are half-integers: exact in float64) in O(n log n):

        U = sum_{i in pos} rank_i - n_pos (n_pos + 1) / 2,      AUROC = U / (n_pos n_neg)
    """
    pos = np.asarray(scores_pos, dtype=np.float64).ravel()
    neg = np.asarray(scores_neg, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"auroc: need scores in both classes, got {pos.size} positive and {neg.size} negative")
    if np.isnan(pos).any() or np.isnan(neg).any():
        raise ValueError("auroc: scores contain NaN (a diverged Q-function?); NaN has no rank")
    both = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    # a run of c tied values occupying ranks e - c + 1 .. e (1-based) gets their mean, e - (c - 1) / 2
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def q_discrimination(
    q_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    observations: torch.Tensor,
    actions: torch.Tensor,
    act_dim: int,
    n_random: int,
    generator: torch.Generator,
) -> float:
    """AUROC of q_fn(s, a) at telling the real pairs (observations[i], actions[i]) from fake pairs
    (observations[i], a~), a~ ~ U[-1, 1]^act_dim, n_random fakes per real pair (paper: 10).

    q_fn: (N, obs_dim), (N, act_dim) -> (N,) scores, higher = "more real". The caller picks the Q: the
    ensemble's mean_i min(Q1_i, Q2_i) (the value the ensemble's policy loss uses), or a single agent's
    min(Q1, Q2) for the single-Q curve. Actions are taken to live in [-1, 1] (D4RL MuJoCo's action box).
    Random actions come from `generator` (on its own device, then moved to the observations' device), so a
    fixed seed gives the same fake set for every Q compared at one point of fine-tuning.
    """
    if n_random < 1:
        raise ValueError(f"q_discrimination: n_random must be >= 1, got {n_random}")
    if observations.dim() != 2 or actions.dim() != 2 or observations.shape[0] != actions.shape[0]:
        raise ValueError(f"q_discrimination: need (N, obs_dim) and (N, act_dim), got "
                         f"{tuple(observations.shape)} and {tuple(actions.shape)}")
    if actions.shape[1] != act_dim:
        raise ValueError(f"q_discrimination: actions have {actions.shape[1]} dims, act_dim is {act_dim}")
    n = observations.shape[0]
    with torch.no_grad():
        fake_obs = observations.repeat(n_random, 1)  # row j*N + i is state i
        u = torch.rand((n_random * n, act_dim), generator=generator, device=generator.device)
        fake_act = (2.0 * u - 1.0).to(device=observations.device, dtype=actions.dtype)
        real = _scores(q_fn, observations, actions, n)
        fake = _scores(q_fn, fake_obs, fake_act, n_random * n)
    return auroc(real, fake)


def _scores(q_fn, obs: torch.Tensor, act: torch.Tensor, n: int) -> np.ndarray:
    q = q_fn(obs, act)
    if tuple(q.shape) != (n,):
        raise ValueError(f"q_discrimination: q_fn must return shape ({n},), got {tuple(q.shape)}")
    return q.detach().double().cpu().numpy()
