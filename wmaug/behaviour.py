"""The behaviour SAC of the D4RL protocol (docs/protocol.md): trained online with an evaluation checkpoint every
`eval_every` steps, recording every episode it collects. Its final policy rolls out `expert`, its first checkpoint
past a third of the expert's return rolls out `medium`, and what it collected until then is `medium-replay`
(`wmaug.data.d4rl_protocol` builds those from this job's result).

At paper scale it is a 1M-step job of hours, so it resumes like every other loop (`wmaug.core.runner`): a checkpoint at
the first episode end past every `checkpoint_every` steps, or at the next episode end after SIGTERM (then exit 143).
A resumed run continues exactly: networks, optimisers, replay buffer, recorded episodes, every random stream, and
the environment's generator as it was before the reset that started the next episode.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from wmaug.algos import build_agent
from wmaug.algos.sac import SACConfig
from wmaug.data.buffer import ReplayBuffer
from wmaug.data.d4rl_protocol import EpisodeRecorder
from wmaug.core.envs import get_spec, make_env
from wmaug.core.evaluation import evaluate
from wmaug.core.preemption import sigterm_handler_restored
from wmaug.core.runner import JobCheckpoint, progress_bar, run_loop, set_env_rng

log = logging.getLogger("wmaug.datasets")


def as_batch(obs: np.ndarray) -> torch.Tensor:
    """One float32 row: MuJoCo observations come as float64."""
    return torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)


def sac_policy(actor_state: dict, env_name: str, hidden, deterministic: bool, seed: int) -> Callable:
    """A behaviour checkpoint's actor as a policy on one state, stochastic as D4RL's rollouts are."""
    spec = get_spec(env_name)
    sac = build_agent("sac", spec.obs_dim, spec.act_dim, SACConfig(hidden=tuple(hidden)))
    sac.actor.load_state_dict(actor_state)
    gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        mean, std = sac.actor.distribution_params(as_batch(obs))
        u = mean if deterministic else mean + std * torch.randn(mean.shape, generator=gen)
        return torch.tanh(u).squeeze(0).numpy()

    return act


def episodes_as_tensors(episodes: list[dict]) -> list[dict]:
    """Recorded episodes in a form torch's weights-only loading admits (tensors, not numpy arrays)."""
    return [{k: torch.from_numpy(v) for k, v in ep.items()} for ep in episodes]


def episodes_as_arrays(episodes: list[dict]) -> list[dict]:
    return [{k: v.numpy() for k, v in ep.items()} for ep in episodes]


@sigterm_handler_restored()  # the job's SIGTERM flag ends with it
def train_behaviour(env_name: str, steps: int, start_steps: int, eval_every: int, eval_episodes: int, seed: int,
                    sac: dict, progress: bool = True, checkpoint: str | Path | None = None,
                    checkpoint_every: int = 50_000) -> dict:
    """SAC with an evaluation checkpoint every `eval_every` steps; also records every episode it collects. With
    `checkpoint` (a file path) the run saves there and resumes from there."""
    spec = get_spec(env_name)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    agent = build_agent("sac", spec.obs_dim, spec.act_dim, sac)
    buffer = ReplayBuffer(spec.obs_dim, spec.act_dim, steps)
    env, eval_env = make_env(env_name), make_env(env_name)
    rec = EpisodeRecorder()
    job = {"env": env_name, "steps": steps, "start_steps": start_steps, "eval_every": eval_every,
           "eval_episodes": eval_episodes, "seed": seed, "sac": sac}
    saved = JobCheckpoint(checkpoint, "job", job, "episode end") if checkpoint is not None else None
    state = saved.load("behaviour checkpoint") if saved is not None else None
    checkpoints, start, wall_before = [], 0, 0.0
    if state is None:
        obs, _ = env.reset(seed=seed)
    else:
        agent.load_state_dict(state["agent"])
        buffer.load_state_dict(state["buffer"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        checkpoints, start, wall_before = state["checkpoints"], state["step"], state["wall_time_s"]
        rec.episodes = episodes_as_arrays(state["episodes"])
        set_env_rng(env, seed, state["env_rng"])
        obs, _ = env.reset()
        log.info("resumed %s at step %d", saved.path, start)
    rec.start(obs)
    at = {"obs": obs, "episode_end": False, "env_rng": None}  # the loop's state between its steps
    t0 = time.perf_counter()
    bar = progress_bar(steps, start, f"behaviour SAC {env_name}", progress)

    def step(t: int) -> None:
        obs = at["obs"]
        if t <= start_steps:
            action = rng.uniform(-1.0, 1.0, spec.act_dim).astype(np.float32)
        else:
            action = agent.act(as_batch(obs)).squeeze(0).numpy()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)
        rec.step(action, reward, next_obs, terminated, truncated)
        at["obs"], at["episode_end"] = next_obs, terminated or truncated
        if at["episode_end"]:
            at["env_rng"] = env.unwrapped.np_random.bit_generator.state  # before the reset: a resume repeats it
            at["obs"], _ = env.reset()
            rec.start(at["obs"])
        if t > start_steps:
            agent.update(buffer.sample(int(sac["batch_size"]), rng))

    def evaluation(t: int) -> None:  # the last one is the final (expert) policy
        returns = evaluate(eval_env, lambda o: agent.act(as_batch(o), True).squeeze(0).numpy(), eval_episodes,
                           seed=10_000 + seed)
        checkpoints.append({"step": t, "return": float(returns.mean()),
                            "actor": {k: v.clone() for k, v in agent.actor.state_dict().items()}})
        log.info("behaviour %s step %d: return %.1f", env_name, t, returns.mean())
        bar.set_postfix(ret=f"{returns.mean():.0f}")

    def save(t: int) -> None:
        saved.save({"agent": agent.state_dict(), "buffer": buffer.state_dict(), "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "env_rng": at["env_rng"], "step": t, "checkpoints": checkpoints,
                    "episodes": episodes_as_tensors(rec.episodes), "wall_time_s": wall_before + time.perf_counter() - t0})

    run_loop(start, steps, step, bar=bar, eval_every=eval_every, evaluate=evaluation,
             checkpoint_every=checkpoint_every, checkpointable=lambda t: saved is not None and at["episode_end"],
             stop_requested=lambda: saved.stop_requested, save=save, stop=lambda t: saved.stop_if_requested(f"step {t}"))
    bar.close()
    rec.close(cut=True)  # the episode in flight at the end was in the replay buffer too
    if saved is not None:
        saved.discard()
    return {
        "env": env_name,
        "seed": seed,
        "steps": steps,
        "start_steps": start_steps,
        "checkpoints": checkpoints,
        "episodes": rec.episodes,
        "wall_time_s": wall_before + time.perf_counter() - t0,
        "sac": sac,
    }
