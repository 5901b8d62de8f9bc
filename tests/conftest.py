"""Shared fixtures: small real datasets (real MuJoCo rollouts) and tiny cell specs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from wmaug.core import config as C
from wmaug.data.d4rl_protocol import rollout_episodes, uniform_policy
from wmaug.data.sample import ObsNormalizer, subsample
from wmaug.data.transitions import Transitions

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Session scope: runs before module fixtures too, so every learner is single-threaded and repeatable.
    torch.set_num_threads(1)


def drawn_moment(name: str):
    """A seeded stream for a test that draws when to interrupt a run: the property must hold wherever the moment
    falls, and a failure must reproduce. $WMAUG_TEST_SEED moves the draw (default 0); the test prints the seed."""
    import os
    import random

    seed = int(os.environ.get("WMAUG_TEST_SEED", "0"))
    print(f"{name}: drawn with WMAUG_TEST_SEED={seed}")
    return random.Random(seed)


# ---- Pendulum learning tasks shared by test_learning.py and test_offline_algos.py -------------------------
# Pendulum-v1 with actions rescaled to [-1, 1] (the agents' action range). A uniform-random policy scores about
# -1200 per 200-step episode; a solved pendulum scores about -150. Small networks (64-64) and a higher learning
# rate keep each learner to seconds; the update rules are the same code the harness runs at 256-256.
HIDDEN = (64, 64)
TRAIN_STEPS = 6000
RANDOM_START = 1000


def pendulum(seed: int) -> gym.Env:
    env = gym.wrappers.RescaleAction(gym.make("Pendulum-v1"), -1.0, 1.0)
    env.action_space.seed(seed)
    return env


def greedy(agent, normalizer=None):
    def act(obs):
        x = normalizer(obs) if normalizer is not None else obs
        with torch.no_grad():
            return agent.act(torch.as_tensor(x, dtype=torch.float32).unsqueeze(0), True).squeeze(0).numpy()

    return act


def train_online(agent, steps: int, seed: int, exploration_noise: float | None) -> None:
    """The harness's online recipe on a small task: random start steps, then one update per step."""
    from wmaug.data.buffer import ReplayBuffer

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = pendulum(seed)
    buffer = ReplayBuffer(3, 1, steps)
    obs, _ = env.reset(seed=seed)
    for t in range(1, steps + 1):
        if t <= RANDOM_START:
            action = rng.uniform(-1, 1, 1).astype(np.float32)
        elif exploration_noise is not None:  # TD3: deterministic actor plus Gaussian noise
            action = np.clip(greedy(agent)(obs) + rng.normal(0, exploration_noise, 1), -1, 1).astype(np.float32)
        else:  # SAC: samples its own policy
            action = agent.act(torch.as_tensor(obs).unsqueeze(0), False).squeeze(0).numpy()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)
        obs = next_obs if not (terminated or truncated) else env.reset()[0]
        if t > RANDOM_START:
            agent.update(buffer.sample(128, rng))


@pytest.fixture(scope="session")
def trained_td3():
    """TD3 trained online on Pendulum: test_learning checks it learned; the offline tests use it as data policy.
    Session scope: trained once per test run however many files use it."""
    from wmaug.algos.td3 import TD3, TD3Config

    torch.manual_seed(0)  # before construction: the initial weights are part of the seeded run
    agent = TD3(3, 1, TD3Config(hidden=HIDDEN, actor_lr=1e-3, critic_lr=1e-3))
    train_online(agent, TRAIN_STEPS, seed=0, exploration_noise=0.1)
    return agent


@pytest.fixture(scope="session")
def noisy_expert(trained_td3):
    """10K transitions of the trained TD3 plus N(0, 0.1) action noise (as test_td3bc_offline...), and that noisy
    policy's own return over 10 episodes."""
    from wmaug.data.d4rl_protocol import rollout_on_env
    from wmaug.core.evaluation import evaluate

    policy = greedy(trained_td3)
    rng = np.random.default_rng(1)
    behaviour = lambda obs: np.clip(policy(obs) + rng.normal(0, 0.1, 1), -1, 1).astype(np.float32)  # noqa: E731
    data = episodes_to_transitions(rollout_on_env(pendulum(1), behaviour, 10_000, seed=1))
    return data, float(evaluate(pendulum(200), behaviour, episodes=10, seed=200).mean())


def episodes_to_transitions(episodes: list[dict]) -> Transitions:
    return Transitions(
        observations=np.concatenate([e["observations"][:-1] for e in episodes]),
        actions=np.concatenate([e["actions"] for e in episodes]),
        rewards=np.concatenate([e["rewards"] for e in episodes]).astype(np.float32),
        next_observations=np.concatenate([e["observations"][1:] for e in episodes]),
        terminals=np.concatenate([e["terminations"] for e in episodes]).astype(np.float32),
        timeouts=np.concatenate([e["truncations"] for e in episodes]).astype(np.float32),
    )


@pytest.fixture(scope="session")
def hopper_random() -> Transitions:
    return episodes_to_transitions(rollout_episodes("hopper", uniform_policy("hopper", 0), 3000, seed=0))


def write_sample(path: Path, data: Transitions, n: int, seed: int) -> Path:
    sample = subsample(data, n, seed)
    norm = ObsNormalizer.fit(sample.observations)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **sample.as_dict(), obs_mean=norm.mean, obs_std=norm.std, checksum=sample.checksum(),
             source="test", source_checksum="test", seed=seed)
    return path


@pytest.fixture
def base_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def tiny_spec(config: dict, tmp: Path, method: str, seed: int = 0, **budget) -> dict:
    """A smoke-sized hopper cell spec of `method` whose inputs live under tmp (the method's resolved spec from
    the first task of the grid that runs it, moved to hopper: the tests' data is hopper's)."""
    cfg = copy.deepcopy(config)
    cfg["scale"] = "smoke"
    cfg = C.validate(cfg)
    task = next(c for c in C.grid_cells(cfg, "wmaug") if c["method"] == method)
    spec = C.cell_spec(cfg, "wmaug", task["env"], task["dataset"], method, seed).to_json()  # as Snakemake passes it
    spec["cell"]["env"] = "hopper"
    spec["budget"].update({"offline_iterations": 60, "online_steps": 400, "online_start_steps": 100,
                           "eval_every": 50, "eval_episodes": 1, "checkpoint_every": 30, **budget})
    spec["td3"] = {**spec["td3"], "hidden": [32, 32], "batch_size": 32}
    spec["paths"] = {"sample": str(tmp / "sample.npz"),
                     "world_model": str(tmp / "wm.pt") if spec["recipe"]["augment"] else None}
    spec["config_hash"] = C.config_hash(spec)
    return spec


def make_cell(root: Path, env: str, dataset: str, method: str, seed: int,
              online: np.ndarray, steps: np.ndarray | None = None, *, offline: bool = True,
              scale: str = "smoke", config_hash: str = "cfg0", finished=True,
              study: str = "wmaug", raw_return: np.ndarray | None = None,
              extra: dict | None = None) -> Path:
    """Write one synthetic finished cell directory with the given online normalised scores.

    Online rows get raw_return = ``raw_return`` (default 10 x score), critic_loss 0.5 and the
    ``extra`` columns (name -> per-row values or a scalar; paper B's analysis columns).
    With ``offline`` (and a method other than td3) three paper-A offline rows come first.
    Imported by the report tests (``from conftest import make_cell``).
    """
    online = np.asarray(online, dtype=float)
    steps = np.arange(len(online)) * 5000 if steps is None else np.asarray(steps)
    d = root / f"{study}_{env}_{dataset}_{method}_s{seed}_{scale}_{config_hash}"
    d.mkdir(parents=True)
    summary = {"cell": {"study": study, "env": env, "dataset": dataset, "method": method,
                        "seed": seed}, "scale": scale, "config_hash": config_hash}
    if finished is not None:
        summary["finished"] = finished
    (d / "summary.json").write_text(json.dumps(summary))
    raw = online * 10.0 if raw_return is None else np.asarray(raw_return, dtype=float)
    rows = [pd.DataFrame({"phase": "online", "step": steps, "normalized_score": online,
                          "raw_return": raw, "critic_loss": 0.5, **(extra or {})})]
    if offline and method != "td3":
        rows.insert(0, pd.DataFrame({"phase": "offline", "step": [0, 5000, 10000],
                                     "normalized_score": [1.0, 2.0, 3.0],
                                     "raw_return": [10.0, 20.0, 30.0], "critic_loss": 0.5}))
    pd.concat(rows).to_csv(d / "curve.csv", index=False)
    return d


def build_report_noting(cfg: dict, study: str, cells, results: Path, figures: Path) -> dict[str, str]:
    """Build a study's report; returns {figure file prefix: note} of the figures drawn as notes."""
    from wmaug.report import study as study_module
    from wmaug.report.build import build_study_report

    notes = {}
    real_note = study_module.plot_note

    def spy(out_prefix, **kw):
        notes[Path(out_prefix).name] = kw["note"]
        return real_note(out_prefix, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(study_module, "plot_note", spy)
        build_study_report(cfg, study, cells, results, figures)
    return notes


def assert_report_files(figures: Path, results: Path, study: str) -> None:
    """Every figure of the study as png, pdf and csv, and the four tables, each non-empty."""
    from wmaug.core.papers import PAPERS

    for name in PAPERS[study].figures:
        for ext in ("png", "pdf", "csv"):
            path = figures / f"{study}_{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 0, path
    for table in ("scores", "curve_intervals", "aggregate_metrics", "probability_of_improvement"):
        assert (results / f"{table}.csv").stat().st_size > 0


def critic_loss_turns_nan(learner_cls, from_update: int, monkeypatch) -> None:
    """Patch a learner so that its logged critic loss is NaN from its `from_update`-th update on (a real divergence
    takes unpredictably long to appear)."""
    real = learner_cls.update

    def diverging(self, batch):
        out = real(self, batch)
        if self.updates >= from_update:
            out["critic_loss"] = out["critic_loss"] * float("nan")
        return out

    monkeypatch.setattr(learner_cls, "update", diverging)
