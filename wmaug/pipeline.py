"""Paper A's pipeline for one cell: TD3+BC offline (optionally world-model augmented) -> hand-off -> online TD3.

The run is resumable: a checkpoint holds networks, optimisers, the online buffer, every random stream and
the progress, so a killed run restarted on the same machine continues where it stopped. Online checkpoints
are taken only at episode ends, where the environment's whole state is its random generator.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wmaug.algos.td3 import TD3, TD3Config
from wmaug.augment import WorldModelAugmenter
from wmaug.data.buffer import ReplayBuffer
from wmaug.data.sample import ObsNormalizer
from wmaug.data.transitions import Transitions
from wmaug.envs import get_spec, make_env, normalized_score, terminal_fn
from wmaug.errors import NonFiniteLoss
from wmaug.evaluation import evaluate_parallel
from wmaug.io import torch_load, torch_save
from wmaug.preemption import SigtermFlag

log = logging.getLogger("wmaug.cell")

CHECKPOINT_VERSION = 1


@dataclass
class Progress:
    phase: str = "offline"  # offline -> online -> done
    step: int = 0  # last completed offline iteration / online env step of `phase`
    curve: list[dict] = field(default_factory=list)
    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    episode_return: float = 0.0
    train_time: dict = field(default_factory=lambda: {"offline": 0.0, "online": 0.0, "eval": 0.0, "io": 0.0})


def mean_of(values: list) -> float:
    """Mean of logged losses (floats, or one-element tensors from a learner that avoids host syncs); NaN if none."""
    if not values:
        return float("nan")
    if isinstance(values[0], torch.Tensor):
        return float(torch.stack([v.reshape(()) for v in values]).mean())
    return float(np.mean(values))


def load_sample(path: str | Path) -> tuple[Transitions, ObsNormalizer, dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"offline sample not found: {path} (built by the `subsample` rule / `wmaug subsample`)")
    with np.load(path) as f:
        data = Transitions.from_mapping(f, str(path))
        normalizer = ObsNormalizer(f["obs_mean"], f["obs_std"])
        meta = {"sample_checksum": str(f["checksum"]), "source": str(f["source"]), "source_checksum": str(f["source_checksum"])}
    return data, normalizer, meta


class Run:
    """What every training job shares: its random streams, environments, evaluation rows, loss
    bookkeeping, checkpoints and progress bar. Subclasses say how to act and what else a checkpoint holds."""

    metric_columns = ("critic_loss", "actor_loss", "q_mean")

    def __init__(self, spec: dict, out_dir: str | Path, device: torch.device, progress: bool = True):
        self.spec = spec
        self.out_dir = Path(out_dir)
        self.ckpt_path = self.out_dir / "checkpoint.pt"
        self.device = device
        self.show_progress = progress
        self.cell = spec["cell"]
        self.env_name, self.seed = self.cell["env"], int(self.cell["seed"])
        env_spec = get_spec(self.env_name, where="cell spec")
        self.obs_dim, self.act_dim = env_spec.obs_dim, env_spec.act_dim
        torch.manual_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)  # batch indices, exploration noise, random start actions
        self.env = make_env(self.env_name)
        self.eval_env = make_env(self.env_name)
        self.eval_envs = [self.eval_env]  # evaluation episodes run side by side, one env each (made when needed)
        # The same evaluation start states at every evaluation of a cell; different per seed.
        self.eval_seed = 1_000_000 + 1000 * self.seed
        self.p = Progress()
        # SIGTERM asks the run to stop at its next checkpointable point (now offline, the next episode end online).
        self.sigterm = SigtermFlag("iteration offline, episode end online")
        self.loss_sums: dict[str, list[float]] = {}
        self.data_meta: dict = {}
        self.obs: np.ndarray | None = None

    # ---- acting and evaluation --------------------------------------------------------------------
    def policy(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic evaluation policy."""
        raise NotImplementedError

    def policy_batch(self, obs: np.ndarray) -> np.ndarray:
        """The same policy on a batch of states, (N, obs_dim) -> (N, act_dim)."""
        return np.stack([self.policy(o) for o in obs])

    def eval_returns(self) -> np.ndarray:
        n = self.budget["eval_episodes"]
        self.eval_envs += [make_env(self.env_name) for _ in range(n - len(self.eval_envs))]
        return evaluate_parallel(self.eval_envs, self.policy_batch, n, self.eval_seed)

    def evaluate(self, phase: str, step: int, extra: dict | None = None) -> None:
        t0 = time.perf_counter()
        returns = self.eval_returns()
        self.p.train_time["eval"] += time.perf_counter() - t0
        row = {
            "phase": phase,
            "step": step,
            "normalized_score": float(normalized_score(self.env_name, returns.mean())),
            "raw_return": float(returns.mean()),
            "raw_return_std": float(returns.std()),
            "env_steps": self.p.env_steps,
            "updates": self.p.updates,
        }
        row.update(self.check_losses(phase, step))
        row.update(extra or {})
        self.loss_sums = {}
        self.p.curve.append(row)
        log.info("%s step %d: score %.1f (return %.1f), critic loss %.3g, Q %.3g",
                 phase, step, row["normalized_score"], row["raw_return"], row["critic_loss"], row["q_mean"])

    def record(self, metrics: dict[str, float | torch.Tensor]) -> None:
        # Tensors stay on the device until the next evaluation: no host sync per update.
        for key, value in metrics.items():
            self.loss_sums.setdefault(key, []).append(value)
        self.p.updates += 1

    # ---- checkpoints ------------------------------------------------------------------------------
    def check_losses(self, phase: str, step: int) -> dict[str, float]:
        """The mean of each logged loss since the last evaluation; NonFiniteLoss (naming the loss and the step,
        keeping the last checkpoint, which was saved from finite losses) if one is NaN or infinite."""
        means = {}
        for name in self.metric_columns:
            values = self.loss_sums.get(name, [])
            means[name] = mean_of(values)
            if values and not math.isfinite(means[name]):
                kept = (f"the last good checkpoint {self.ckpt_path} is kept" if self.ckpt_path.exists()
                        else "no checkpoint had been saved")
                raise NonFiniteLoss(f"{name} became {means[name]} before {phase} step {step} "
                                    f"(mean since the previous evaluation); {kept}")
        return means

    @property
    def stop_requested(self) -> bool:
        return self.sigterm.requested

    def stop_if_requested(self) -> None:
        self.sigterm.stop_if_requested(f"{self.p.phase} step {self.p.step}", self.ckpt_path)

    def extra_state(self) -> dict:
        """The subclass's part of a checkpoint: networks, optimisers, buffers."""
        raise NotImplementedError

    def load_extra_state(self, state: dict) -> None:
        raise NotImplementedError

    def save_checkpoint(self) -> None:
        self.check_losses(self.p.phase, self.p.step)  # a checkpoint only of finite losses: the last one stays good
        t0 = time.perf_counter()
        state = {
            "version": CHECKPOINT_VERSION,
            "config_hash": self.spec["config_hash"],
            **self.extra_state(),
            "progress": self.p.__dict__,
            "loss_sums": self.loss_sums,
            "rng": self.rng.bit_generator.state,
            "env_rng": self.env.unwrapped.np_random.bit_generator.state if self.p.phase == "online" else None,
            "torch_rng": torch.get_rng_state(),
        }
        torch_save(state, self.ckpt_path)
        self.p.train_time["io"] = self.p.train_time.get("io", 0.0) + time.perf_counter() - t0

    def try_resume(self) -> bool:
        if not self.ckpt_path.exists():
            return False
        state = torch_load(self.ckpt_path, "checkpoint")
        if state.get("config_hash") != self.spec["config_hash"]:
            log.warning("checkpoint %s is from another configuration: starting over", self.ckpt_path)
            return False
        self.load_extra_state(state)
        self.p = Progress(**state["progress"])
        self.loss_sums = state["loss_sums"]
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        if state["env_rng"] is not None:
            self.env.reset(seed=self.seed)  # creates the generator, then its state is overwritten
            self.env.unwrapped.np_random.bit_generator.state = state["env_rng"]
        log.info("resumed from %s at %s step %d", self.ckpt_path, self.p.phase, self.p.step)
        return True

    def progress_bar(self, total: int, done: int) -> tqdm:
        c = self.cell
        return tqdm(total=total, initial=done, desc=f"{self.env_name}/{c['dataset']}/{c['method']}/s{self.seed}",
                    disable=not self.show_progress, file=sys.stderr, mininterval=1.0 if sys.stderr.isatty() else 30.0,
                    unit="step", dynamic_ncols=True)


class CellRun(Run):
    """Paper A: TD3+BC offline (optionally augmented) -> hand-off -> online TD3."""

    def __init__(self, spec: dict, out_dir: str | Path, device: torch.device, progress: bool = True):
        super().__init__(spec, out_dir, device, progress)
        budget, recipe, td3 = spec["budget"], spec["recipe"], spec["td3"]
        self.budget, self.recipe = budget, recipe
        self.batch_size = td3["batch_size"]
        self.exploration_noise = td3["exploration_noise"]
        self.online_steps = budget["online_long_steps"] if recipe.get("long") else budget["online_steps"]
        self.offline_model: dict | None = None  # the networks at the hand-off (Fig 5 reads their critic)
        self.agent = TD3(
            self.obs_dim, self.act_dim,
            TD3Config(**{k: td3[k] for k in TD3Config.__dataclass_fields__ if k in td3} | {"hidden": tuple(td3["hidden"])}),
            device=device,
        )
        self.offline_buffer = None
        self.augmenter = None
        if recipe["offline"]:
            data, self.normalizer, self.data_meta = load_sample(spec["paths"]["sample"])
            if data.obs_dim != self.obs_dim or data.act_dim != self.act_dim:
                raise ValueError(
                    f"{spec['paths']['sample']}: states/actions of dim {data.obs_dim}/{data.act_dim}, "
                    f"{self.env_name} needs {self.obs_dim}/{self.act_dim}")
            self.offline_buffer = ReplayBuffer(self.obs_dim, self.act_dim, len(data), device)
            self.offline_buffer.add_transitions(data)
            if recipe["augment"]:
                from wmaug.models.world_model import load_world_model

                with torch.random.fork_rng(devices=[]):  # building it must not move the learner's stream
                    wm, _ = load_world_model(spec["paths"]["world_model"], device=device)
                rate = spec["augmentation"]["rate"] if recipe.get("rate") is None else recipe["rate"]
                self.augmenter = WorldModelAugmenter(
                    wm, rate, steps=recipe.get("rollout_steps", 1), stochastic=recipe.get("stochastic_model", True),
                    gamma=td3["gamma"], terminal=terminal_fn(self.env_name),
                    # later rollout steps act like the TD3 target does: the target actor on normalised states
                    policy=lambda obs: self.agent.act(self.normalizer(obs), target=True))
        else:
            # From scratch there is no dataset to take statistics from.
            self.normalizer = ObsNormalizer.identity(self.obs_dim)
        self.online_buffer = ReplayBuffer(self.obs_dim, self.act_dim, self.online_steps, device)
        self.p = Progress(phase="offline" if recipe["offline"] else "online")

    def policy(self, obs: np.ndarray) -> np.ndarray:
        return self.policy_batch(obs[None])[0]

    def policy_batch(self, obs: np.ndarray) -> np.ndarray:
        return self.agent.act(torch.as_tensor(self.normalizer(obs), device=self.device)).cpu().numpy()

    def update(self, batch) -> None:
        self.record(self.agent.update(batch))

    def extra_state(self) -> dict:
        return {"agent": self.agent.state_dict(), "online_buffer": self.online_buffer.state_dict(),
                "offline_model": self.offline_model}

    def load_extra_state(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        self.online_buffer.load_state_dict(state["online_buffer"])
        self.offline_model = state.get("offline_model")

    # ---- phases -----------------------------------------------------------------------------------
    def run(self) -> dict:
        resumed = self.try_resume()
        total = (self.budget["offline_iterations"] if self.recipe["offline"] else 0) + self.online_steps
        done = self.p.step + (self.budget["offline_iterations"] if self.p.phase == "online" and self.recipe["offline"] else 0)
        self.bar = self.progress_bar(total, done)
        if self.p.phase == "offline":
            self.offline_phase()
            self.hand_off()
        if self.p.phase == "online":
            self.online_phase(resumed_mid_online=resumed and self.p.step > 0)
        self.bar.close()
        return {"resumed": resumed}

    def offline_phase(self) -> None:
        b = self.budget
        if self.p.step == 0:
            self.evaluate("offline", 0)
        t0 = time.perf_counter()
        for it in range(self.p.step + 1, b["offline_iterations"] + 1):
            batch = self.offline_buffer.sample(self.batch_size, self.rng)
            if self.augmenter is not None:
                batch = self.augmenter(batch)  # raw-scale states in, raw-scale next states out
            self.update(self.normalizer.batch(batch))
            self.p.step = it
            self.bar.update(1)
            if it % b["eval_every"] == 0 or it == b["offline_iterations"]:
                self.p.train_time["offline"] += time.perf_counter() - t0
                self.evaluate("offline", it)
                t0 = time.perf_counter()
            if (it % b["checkpoint_every"] == 0 and it < b["offline_iterations"]) or self.stop_requested:
                self.save_checkpoint()
                self.stop_if_requested()
        self.p.train_time["offline"] += time.perf_counter() - t0

    def hand_off(self) -> None:
        """Actor, critics, targets and optimiser states carry over; the BC term is dropped; the offline
        normalisation stays and applies to every online state; the online buffer starts empty."""
        # cloned: state dicts share storage with the parameters that online training goes on to change
        self.offline_model = {k: {n: t.detach().clone() for n, t in part.items()} for k, part in self.networks().items()}
        self.agent.bc_alpha = None
        if not self.recipe["keep_actor"] or not self.recipe["keep_critic"]:
            fresh = TD3(self.obs_dim, self.act_dim, self.agent.cfg, device=self.device)
            keep = {"actor": self.recipe["keep_actor"], "critic": self.recipe["keep_critic"]}
            state = self.agent.state_dict()
            for part in ("actor", "critic"):
                if not keep[part]:
                    for k in (part, f"{part}_target", f"{part}_opt"):
                        state[k] = fresh.state_dict()[k]
            self.agent.load_state_dict(state)
            self.agent.bc_alpha = None
        self.p.phase, self.p.step = "online", 0

    def online_phase(self, resumed_mid_online: bool) -> None:
        b = self.budget
        # A pre-trained run collects its start steps with its actor plus noise, also when that actor is a fresh
        # one (critic-only hand-off: paper A's Fig 4b blames its dip on exactly this buffer).
        pretrained = self.recipe["offline"]
        if not resumed_mid_online:
            last = self.p.curve[-1] if self.p.curve else None
            if last is not None and last["phase"] == "offline" and self.recipe["keep_actor"]:
                # The same policy on the same evaluation seeds: the final offline evaluation is online step 0.
                self.p.curve.append({**last, "phase": "online", "step": 0})
            else:
                self.evaluate("online", 0)
            self.obs, _ = self.env.reset(seed=self.seed)
        else:
            self.obs, _ = self.env.reset()  # the checkpoint was taken at an episode end, before this reset
        next_checkpoint = (self.p.step // b["checkpoint_every"] + 1) * b["checkpoint_every"]
        t0 = time.perf_counter()
        for t in range(self.p.step + 1, self.online_steps + 1):
            if t <= b["online_start_steps"] and not pretrained:
                action = self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
            else:
                # Start steps of a pre-trained run use its actor plus noise (and no updates, below).
                noise = self.rng.normal(0.0, self.exploration_noise, self.act_dim)
                action = np.clip(self.policy(self.obs) + noise, -1.0, 1.0).astype(np.float32)
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            self.online_buffer.add(self.obs, action, reward, next_obs, terminated)
            self.obs = next_obs
            self.p.env_steps += 1
            self.p.episode_return += reward
            if t > b["online_start_steps"]:
                self.update(self.normalizer.batch(self.online_buffer.sample(self.batch_size, self.rng)))
            self.p.step = t
            self.bar.update(1)
            if t % b["eval_every"] == 0 or t == self.online_steps:
                self.p.train_time["online"] += time.perf_counter() - t0
                self.evaluate("online", t)
                t0 = time.perf_counter()
            if terminated or truncated:
                self.p.episodes += 1
                self.p.episode_return = 0.0
                if (t >= next_checkpoint or self.stop_requested) and t < self.online_steps:
                    self.p.train_time["online"] += time.perf_counter() - t0
                    self.save_checkpoint()
                    self.stop_if_requested()
                    t0 = time.perf_counter()
                    next_checkpoint = (t // b["checkpoint_every"] + 1) * b["checkpoint_every"]
                self.obs, _ = self.env.reset()
        self.p.train_time["online"] += time.perf_counter() - t0
        self.p.phase = "done"

    def networks(self) -> dict:
        state = self.agent.state_dict()
        return {"actor": state["actor"], "critic": state["critic"], "normalizer": self.normalizer.state_dict()}

    def final_model(self) -> dict:
        """What later analysis needs (critic traces, hand-offs): networks and the state normalisation, final
        and, for pre-trained runs, at the hand-off ("offline")."""
        model = self.networks()
        if self.offline_model is not None:
            model["offline"] = self.offline_model
        return model
