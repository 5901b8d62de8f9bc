"""Paper A's Fig 5: the critic's value Q(s, a) along one real expert episode, beside the episode's true
discounted return-to-go.

A critic trained offline on few transitions can leave the reward scale (its values grow far beyond
any return the task can give); claim A5 says world-model augmentation keeps the offline critic close
to what an online critic learns. The measurement here: take one recorded episode (s_t, a_t, r_t),
evaluate each critic's twin Q-values on its (s_t, a_t) and compare them with

    G_t = sum_{k >= 0} gamma^k r_{t+k}    (up to the last recorded step; G after it is 0).

The value compared is min(Q1, Q2), the one TD3's targets use. Each critic sees the states z-scored
with its own model's normalizer (the statistics it was trained with).

Near the end of a time-limit (truncated) episode G_t drops to 0 while a critic, which bootstraps
past the time limit, does not: the untracked tail weighs gamma^(T - t) V(s_T), under 1% for the
steps more than 460 before the end at gamma = 0.99. :func:`trace_summary`'s ``tail`` drops those
last steps from its numbers when asked.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from wmaug.data.sample import ObsNormalizer
from wmaug.core.errors import InputError
from wmaug.core.nets import QEnsemble

__all__ = [
    "CriticTraceError",
    "PARTS",
    "TRACE_COLUMNS",
    "SUMMARY_COLUMNS",
    "discounted_return_to_go",
    "pick_episode",
    "critic_values",
    "critic_trace",
    "trace_summary",
    "load_cell_critic",
]

#: which networks of a cell's model.pt: "offline" = at the offline -> online hand-off, "final" = after
#: online training (the top-level entries)
PARTS = ("offline", "final")
TRACE_COLUMNS = ["label", "seed", "t", "q_min", "q1", "q2", "reward", "return_to_go"]
SUMMARY_COLUMNS = ["label", "n_seeds", "n_steps", "q_min_mean", "return_to_go_mean", "mean_abs_error",
                   "scale_ratio", "q_abs_max"]
_MODEL_KEYS = ("critic", "normalizer")


class CriticTraceError(InputError):
    """A critic that cannot be traced: a missing part (e.g. no "offline" networks), missing keys, a shape
    or architecture mismatch (a ValueError; the CLI prints it as one message)."""


def discounted_return_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = r_t + gamma G_{t+1} with G after the last recorded step = 0, in float64 (shape of ``rewards``)."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"discounted_return_to_go: rewards must be 1-D, got shape {r.shape}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"discounted_return_to_go: gamma must lie in [0, 1], got {gamma}")
    out = np.empty_like(r)
    g = 0.0
    for t in range(len(r) - 1, -1, -1):
        g = r[t] + gamma * g
        out[t] = g
    return out


def _ran_to_time_limit(ep: dict) -> bool:
    trunc, term = np.asarray(ep["truncations"]), np.asarray(ep["terminations"])
    return len(trunc) > 0 and bool(trunc[-1]) and not bool(term.any())


EPISODE_SEED = 0  # Fig 5's episode: a seeded random draw (the paper: "the same episode sampled randomly")


def pick_episode(episodes: list[dict], index: int | None = None, seed: int = EPISODE_SEED) -> tuple[int, dict]:
    """(index, episode): ``episodes[index]``, or by default one drawn at random with ``seed`` among the episodes
    that ran to their time limit (truncated at the last step, never terminated): paper A's Fig 5 shows "the same
    episode sampled randomly from the expert D4RL dataset"; a full-length one keeps the check's `tail` cut
    meaningful. With none, the longest (the first of equal length)."""
    n = len(episodes)
    if n == 0:
        raise ValueError("pick_episode: no episodes to pick from (0 episodes given)")
    if index is not None:
        if not -n <= index < n:
            raise IndexError(f"pick_episode: episode index {index} is out of range: there are {n} episodes "
                             f"(0..{n - 1})")
        index = index % n
        return index, episodes[index]
    full = [i for i, ep in enumerate(episodes) if _ran_to_time_limit(ep)]
    if full:
        i = full[int(np.random.default_rng(seed).integers(len(full)))]
        return i, episodes[i]
    i = int(np.argmax([len(ep["rewards"]) for ep in episodes]))
    return i, episodes[i]


def critic_values(model: dict, part: str, obs: np.ndarray, act: np.ndarray, hidden) -> np.ndarray:
    """Both twin critics' Q(s_t, a_t), shape (2, T) float64, of ``model[part]`` (part "offline") or of the
    top-level networks (part "final"). ``obs`` (T, obs_dim) are raw states (one per action: drop an
    episode's last observation); they are z-scored with that part's own normalizer. ``hidden`` is the
    critic's hidden sizes (a cell's ``summary["spec"]["td3"]["hidden"]``)."""
    if part not in PARTS:
        raise CriticTraceError(f"critic_values: part must be one of {list(PARTS)}, got {part!r}")
    if part == "offline":
        if "offline" not in model or model["offline"] is None:
            raise CriticTraceError("critic_values: the model has no 'offline' part (the networks at the offline -> "
                           "online hand-off); only methods with an offline phase store it, e.g. a from-scratch "
                           f"TD3 cell has none. Its keys: {sorted(model)}")
        nets = model["offline"]
    else:
        nets = model
    missing = [k for k in _MODEL_KEYS if k not in nets]
    if missing:
        raise CriticTraceError(f"critic_values: the model's {part!r} networks lack {missing} (keys: {sorted(nets)})")
    obs = np.asarray(obs, dtype=np.float32)
    act = np.asarray(act, dtype=np.float32)
    if obs.ndim != 2 or act.ndim != 2 or len(obs) != len(act):
        raise CriticTraceError(f"critic_values: need observations (T, obs_dim) and actions (T, act_dim) of equal T, "
                         f"got {obs.shape} and {act.shape} (an episode has T + 1 observations: pass "
                         "observations[:-1])")
    norm = ObsNormalizer.from_state_dict({k: v.detach().cpu() for k, v in nets["normalizer"].items()})
    if norm.mean.shape != (obs.shape[1],):
        raise CriticTraceError(f"critic_values: the {part!r} normalizer is for {norm.mean.shape[0]}-dim states, "
                         f"the observations have {obs.shape[1]}")
    critic = QEnsemble(obs.shape[1], act.shape[1], list(hidden), members=2)
    try:
        critic.load_state_dict(nets["critic"])
    except RuntimeError as exc:
        raise CriticTraceError(f"critic_values: the {part!r} critic does not fit QEnsemble({obs.shape[1]}, "
                         f"{act.shape[1]}, hidden={list(hidden)}, members=2): {exc}") from None
    critic.eval()
    with torch.no_grad():
        q = critic(torch.from_numpy(norm(obs)), torch.from_numpy(act))
    return q.double().numpy()


def critic_trace(critics: Sequence[dict], episode: dict, gamma: float) -> pd.DataFrame:
    """Long table (columns :data:`TRACE_COLUMNS`), one row per (critic, step t) of ``episode``.

    Each critic is {"label": str, "seed": int, "model": model.pt dict, "part": "offline" | "final",
    "hidden": list}. q_min = min(q1, q2); reward and return_to_go (float64, see
    :func:`discounted_return_to_go`) are the episode's and repeat for every critic.
    """
    obs = np.asarray(episode["observations"])
    act = np.asarray(episode["actions"])
    rew = np.asarray(episode["rewards"], dtype=np.float64)
    if len(obs) != len(act) + 1 or len(rew) != len(act):
        raise CriticTraceError(f"critic_trace: an episode has T + 1 observations and T actions and rewards, got "
                         f"{len(obs)}, {len(act)} and {len(rew)}")
    g = discounted_return_to_go(rew, gamma)
    t = np.arange(len(act))
    parts = []
    seen: set[tuple[str, int]] = set()
    for c in critics:
        missing = [k for k in ("label", "seed", "model", "part", "hidden") if k not in c]
        if missing:
            raise CriticTraceError(f"critic_trace: a critic entry lacks {missing}")
        key = (str(c["label"]), int(c["seed"]))
        if key in seen:
            raise CriticTraceError(f"critic_trace: two critics with label {key[0]!r} and seed {key[1]}")
        seen.add(key)
        try:
            q = critic_values(c["model"], c["part"], obs[:-1], act, c["hidden"])
        except CriticTraceError as exc:
            raise CriticTraceError(f"critic {key[0]!r} seed {key[1]}: {exc}") from None
        parts.append(pd.DataFrame({"label": key[0], "seed": key[1], "t": t, "q_min": q.min(0),
                                   "q1": q[0], "q2": q[1], "reward": rew, "return_to_go": g}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in TRACE_COLUMNS})
    return pd.concat(parts, ignore_index=True)[TRACE_COLUMNS]


def trace_summary(table: pd.DataFrame, *, tail: int = 0) -> pd.DataFrame:
    """Per label (in order of appearance; columns :data:`SUMMARY_COLUMNS`), over all its seeds and steps:
    q_min_mean, return_to_go_mean, mean_abs_error = mean |q_min - G|, scale_ratio = q_min_mean /
    return_to_go_mean, q_abs_max = max |q_min|, n_seeds, n_steps (steps per seed used).

    ``tail`` > 0 leaves out each seed's last ``tail`` steps of the episode, where the true return-to-go
    of a time-limit episode is cut short (see the module docstring).
    """
    if tail < 0:
        raise ValueError(f"trace_summary: tail must be >= 0, got {tail}")
    rows = []
    for label, g in table.groupby("label", sort=False):
        if tail:
            last = g.groupby("seed")["t"].transform("max")
            g = g[g["t"] <= last - tail]
        q = g["q_min"].to_numpy(dtype=np.float64)
        ret = g["return_to_go"].to_numpy(dtype=np.float64)
        q_mean = float(q.mean()) if len(q) else np.nan
        g_mean = float(ret.mean()) if len(ret) else np.nan
        rows.append({
            "label": label,
            "n_seeds": int(g["seed"].nunique()),
            "n_steps": int(g.groupby("seed").size().max()) if len(g) else 0,
            "q_min_mean": q_mean,
            "return_to_go_mean": g_mean,
            "mean_abs_error": float(np.abs(q - ret).mean()) if len(q) else np.nan,
            "scale_ratio": q_mean / g_mean if len(q) and g_mean != 0 else np.nan,
            "q_abs_max": float(np.abs(q).max()) if len(q) else np.nan,
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def load_cell_critic(cell_dir, label: str, part: str) -> dict:
    """A :func:`critic_trace` entry from a finished paper-A cell folder: its model.pt, the seed from
    summary.json's cell and the hidden sizes from its spec (``spec.td3.hidden``)."""
    import json
    from pathlib import Path

    from wmaug.core.io import torch_load

    cell_dir = Path(cell_dir)
    summary_path = cell_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"load_cell_critic: {summary_path} not found (an unfinished cell?)")
    summary = json.loads(summary_path.read_text())
    try:
        hidden = list(summary["spec"]["td3"]["hidden"])
        seed = int(summary["cell"]["seed"])
    except (KeyError, TypeError) as exc:
        raise CriticTraceError(f"load_cell_critic: {summary_path} lacks {exc} (need spec.td3.hidden and cell.seed)") \
            from None
    model = torch_load(cell_dir / "model.pt", "cell model")
    if part == "offline" and "offline" not in model:
        raise CriticTraceError(f"load_cell_critic: {cell_dir / 'model.pt'} has no 'offline' part (no offline phase, "
                       f"method {summary['cell'].get('method')!r})")
    return {"label": label, "seed": seed, "model": model, "part": part, "hidden": hidden}
