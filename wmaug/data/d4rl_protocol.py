"""D4RL's dataset protocol (Fu et al. 2020) rebuilt on Gymnasium MuJoCo v5 (docs/protocol.md, common ground).

A behaviour SAC is trained with periodic evaluation checkpoints. `expert` rolls out the final policy,
`medium` the first checkpoint whose return reaches a third of the expert's, `medium-replay` is every
transition the SAC replay buffer held up to that checkpoint, `random` takes uniform random actions and
`medium-expert` concatenates medium and expert. Policies act stochastically, as in D4RL.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from wmaug.algos.sac import SAC, SACConfig
from wmaug.data.buffer import ReplayBuffer
from wmaug.envs import get_spec, make_env
from wmaug.evaluation import evaluate

log = logging.getLogger("wmaug.datasets")


class EpisodeRecorder:
    """Collects transitions into D4RL/Minari-style episodes (T+1 observations, T of everything else)."""

    def __init__(self):
        self.episodes: list[dict] = []
        self._reset_current()

    def _reset_current(self) -> None:
        self.obs, self.actions, self.rewards, self.terms, self.truncs = [], [], [], [], []

    def start(self, obs: np.ndarray) -> None:
        self._reset_current()
        self.obs.append(obs)

    def step(self, action, reward, next_obs, terminated: bool, truncated: bool) -> None:
        self.actions.append(action)
        self.rewards.append(reward)
        self.obs.append(next_obs)
        self.terms.append(terminated)
        self.truncs.append(truncated)
        if terminated or truncated:
            self.close()

    def close(self, cut: bool = False) -> None:
        """Ends the current episode; `cut` marks a budget cut as a truncation."""
        if not self.actions:
            return
        if cut:
            self.truncs[-1] = True
        self.episodes.append({
            "observations": np.asarray(self.obs, np.float32),
            "actions": np.asarray(self.actions, np.float32),
            "rewards": np.asarray(self.rewards, np.float32),
            "terminations": np.asarray(self.terms, bool),
            "truncations": np.asarray(self.truncs, bool),
        })
        self._reset_current()


def rollout_episodes(env_name: str, policy: Callable[[np.ndarray], np.ndarray], n_transitions: int, seed: int,
                     progress: bool = False, desc: str = "rollout") -> list[dict]:
    """Exactly n_transitions steps of `policy` on a named environment."""
    return rollout_on_env(make_env(env_name, seed), policy, n_transitions, seed, progress, desc)


def rollout_on_env(env, policy: Callable[[np.ndarray], np.ndarray], n_transitions: int, seed: int,
                   progress: bool = False, desc: str = "rollout") -> list[dict]:
    """Exactly n_transitions steps of `policy`; the last episode is cut (truncated) at the budget."""
    rec = EpisodeRecorder()
    obs, _ = env.reset(seed=seed)
    rec.start(obs)
    for _ in tqdm(range(n_transitions), disable=not progress, desc=desc, file=sys.stderr, mininterval=5.0):
        action = policy(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rec.step(action, reward, next_obs, terminated, truncated)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
            rec.start(obs)
    rec.close(cut=True)
    return rec.episodes


def as_batch(obs: np.ndarray) -> torch.Tensor:
    """One float32 row: MuJoCo observations come as float64."""
    return torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)


def sac_policy(actor_state: dict, env_name: str, hidden, deterministic: bool, seed: int) -> Callable:
    spec = get_spec(env_name)
    sac = SAC(spec.obs_dim, spec.act_dim, SACConfig(hidden=tuple(hidden)))
    sac.actor.load_state_dict(actor_state)
    gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        mean, std = sac.actor.distribution_params(as_batch(obs))
        u = mean if deterministic else mean + std * torch.randn(mean.shape, generator=gen)
        return torch.tanh(u).squeeze(0).numpy()

    return act


def uniform_policy(env_name: str, seed: int) -> Callable:
    rng = np.random.default_rng(seed)
    act_dim = get_spec(env_name).act_dim
    return lambda obs: rng.uniform(-1.0, 1.0, act_dim).astype(np.float32)


def train_behaviour(env_name: str, steps: int, start_steps: int, eval_every: int, eval_episodes: int, seed: int,
                    sac: dict, progress: bool = True) -> dict:
    """SAC with an evaluation checkpoint every `eval_every` steps; also records every episode it collects."""
    spec = get_spec(env_name)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = SACConfig(**{k: v for k, v in sac.items() if k in SACConfig.__dataclass_fields__} | {"hidden": tuple(sac["hidden"])})
    agent = SAC(spec.obs_dim, spec.act_dim, cfg)
    buffer = ReplayBuffer(spec.obs_dim, spec.act_dim, steps)
    env, eval_env = make_env(env_name), make_env(env_name)
    rec = EpisodeRecorder()
    obs, _ = env.reset(seed=seed)
    rec.start(obs)
    checkpoints = []
    t0 = time.perf_counter()
    bar = tqdm(range(1, steps + 1), disable=not progress, desc=f"behaviour SAC {env_name}", file=sys.stderr,
               mininterval=1.0 if sys.stderr.isatty() else 30.0)
    for t in bar:
        if t <= start_steps:
            action = rng.uniform(-1.0, 1.0, spec.act_dim).astype(np.float32)
        else:
            action = agent.act(as_batch(obs)).squeeze(0).numpy()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)
        rec.step(action, reward, next_obs, terminated, truncated)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
            rec.start(obs)
        if t > start_steps:
            agent.update(buffer.sample(int(sac["batch_size"]), rng))
        if t % eval_every == 0 or t == steps:  # the last checkpoint is the final (expert) policy
            returns = evaluate(eval_env, lambda o: agent.act(as_batch(o), True).squeeze(0).numpy(),
                               eval_episodes, seed=10_000 + seed)
            checkpoints.append({"step": t, "return": float(returns.mean()),
                                "actor": {k: v.clone() for k, v in agent.actor.state_dict().items()}})
            log.info("behaviour %s step %d: return %.1f", env_name, t, returns.mean())
            bar.set_postfix(ret=f"{returns.mean():.0f}")
    rec.close(cut=True)  # the episode in flight at the end was in the replay buffer too
    return {
        "env": env_name,
        "seed": seed,
        "steps": steps,
        "start_steps": start_steps,
        "checkpoints": checkpoints,
        "episodes": rec.episodes,
        "wall_time_s": time.perf_counter() - t0,
        "sac": sac,
    }


def pick_medium(checkpoints: list[dict], learning_starts: int, fraction: float = 1.0 / 3.0) -> dict:
    """The first checkpoint of a trained policy (taken after `learning_starts`) whose return reaches
    `fraction` of the expert's (the final checkpoint's). Returns are measured from min(0, first return)
    so that environments with negative returns behave."""
    trained = [c for c in checkpoints if c["step"] > learning_starts]
    if not trained:
        raise ValueError(f"no behaviour checkpoint after the {learning_starts} random start steps: "
                         f"raise behaviour_steps or lower behaviour_eval_every")
    expert = trained[-1]["return"]
    base = min(0.0, checkpoints[0]["return"])
    threshold = base + fraction * (expert - base)
    for ckpt in trained:
        if ckpt["return"] >= threshold:
            return {**ckpt, "threshold": threshold}
    return {**trained[-1], "threshold": threshold}


def replay_episodes_until(behaviour: dict, step: int) -> list[dict]:
    """Every transition the behaviour SAC collected in its first `step` environment steps, as episodes."""
    out, total = [], 0
    for ep in behaviour["episodes"]:
        n = len(ep["actions"])
        if total + n <= step:
            out.append(ep)
            total += n
        else:
            keep = step - total
            if keep > 0:
                cut = {k: v[: keep + 1] if k == "observations" else v[:keep] for k, v in ep.items()}
                cut["truncations"] = cut["truncations"].copy()
                cut["truncations"][-1] = not cut["terminations"][-1]
                out.append(cut)
            break
    return out
