"""What every training loop of the harness shares, whichever paper it serves: its progress bar, the logged losses
(kept on the device, checked finite), and a checkpoint file that a re-run resumes from, written at the loop's
checkpointable points and at once after SIGTERM (SLURM's warning before a kill), after which the job exits 143.

The loops that use it: paper A's cells (`wmaug.paper_a.pipeline`), paper B's fine-tuning (`wmaug.paper_b.finetune`) through
:class:`Run`; paper B's pre-training blocks (`wmaug.paper_b.pretrain`) and the behaviour SAC of the D4RL protocol
(`wmaug.behaviour`) through :class:`JobCheckpoint`, :func:`loss_means` and :func:`progress_bar`. All five loop
bodies (paper A's offline and online phases too) run in one skeleton, :func:`run_loop`.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from wmaug.core.envs import get_spec, make_env
from wmaug.core.errors import InputError, NonFiniteLoss
from wmaug.core.evaluation import evaluate_parallel
from wmaug.core.io import torch_load, torch_save
from wmaug.core.preemption import SigtermFlag
from wmaug.core.references import d4rl_reference, reference_score
from wmaug.core.spec import CellSpec
from wmaug.core.tracking import LiveCurve

log = logging.getLogger("wmaug.cell")

CHECKPOINT_VERSION = 2  # 2: online checkpoints inside episodes (the episode's start and length)


def progress_bar(total: int, initial: int, desc: str, enabled: bool, unit: str = "step") -> tqdm:
    """A job's bar on stderr: refreshed every second on a terminal, every 30 s in a log file (a cluster job's)."""
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, file=sys.stderr,
                mininterval=1.0 if sys.stderr.isatty() else 30.0, unit=unit, dynamic_ncols=True)


def mean_of(values: list) -> float:
    """Mean of logged losses: floats, or one-element tensors from a learner that avoids host syncs, or both (a
    checkpoint's floats, then a resumed run's tensors); NaN if none. The same values give the same mean however they
    were split between a checkpoint and the run that resumed from it."""
    return float(np.mean(as_floats(values))) if values else float("nan")


def as_floats(values: list) -> np.ndarray:
    """Logged losses as float64, in order: tensors all on one device with one host copy, a mix one by one."""
    if values and all(isinstance(v, torch.Tensor) for v in values) and len({v.device for v in values}) == 1:
        return torch.stack([v.reshape(()) for v in values]).double().cpu().numpy()
    return np.array([float(v) for v in values], dtype=np.float64)


def loss_means(sums: dict[str, list], names, where: str, checkpoint: Path | None) -> dict[str, float]:
    """The mean of each named loss logged since the last row (NaN where none was). NonFiniteLoss, naming the loss and
    the point, if one is NaN or infinite: the checkpoint on disk, saved from finite losses, is kept."""
    means = {}
    for name in names:
        values = sums.get(name, [])
        means[name] = mean_of(values)
        if values and not math.isfinite(means[name]):
            kept = (f"the last good checkpoint {checkpoint} is kept" if checkpoint is not None and checkpoint.exists()
                    else "no checkpoint had been saved")
            raise NonFiniteLoss(f"{name} became {means[name]} before {where} (mean since the previous log row); {kept}")
    return means


def run_loop(start: int, total: int, step: Callable[[int], None], *, bar: tqdm, checkpoint_every: int,
             stop_requested: Callable[[], bool], save: Callable[[int], None], stop: Callable[[int], None],
             eval_every: int | None = None, evaluate: Callable[[int], None] | None = None,
             checkpointable: Callable[[int], bool] | None = None, finish_step: Callable[[int], None] | None = None
             ) -> None:
    """The skeleton every training loop of the harness runs, for steps (or iterations) start+1 .. total:

        step(t)                            the loop's own work: acting, environment steps, updates
        evaluate(t)                        every `eval_every` steps and at the last (an evaluation, or a log row)
        checkpointable(t)                  whether t may be checkpointed (e.g. only at an episode end)
        save(t), then stop(t)              at the first checkpointable t at or past each `checkpoint_every`, or at
                                           once after SIGTERM (`stop_requested`): stop(t) leaves with Preempted then
        finish_step(t)                     what follows a checkpoint's point (e.g. the next episode's reset)

    The last step is never checkpointed: the job writes its result instead."""
    next_checkpoint = (start // checkpoint_every + 1) * checkpoint_every
    for t in range(start + 1, total + 1):
        step(t)
        bar.update(1)
        if eval_every and (t % eval_every == 0 or t == total):
            evaluate(t)
        if (checkpointable is None or checkpointable(t)) and (t >= next_checkpoint or stop_requested()) and t < total:
            save(t)
            stop(t)
            next_checkpoint = (t // checkpoint_every + 1) * checkpoint_every
        if finish_step is not None:
            finish_step(t)


class TrainingClock:
    """A loop's training time per phase, with its hooks (evaluation, checkpoints) kept out of it: the owner keeps
    `t0` (when training last resumed) and says where time goes (`add_time`)."""

    t0: float = 0.0

    def add_time(self, phase: str, seconds: float) -> None:
        raise NotImplementedError

    def timed(self, phase: str, fn: Callable[[int], None]) -> Callable[[int], None]:
        """fn as a loop hook, its time kept out of the phase's training time."""
        def call(t: int) -> None:
            self.add_time(phase, time.perf_counter() - self.t0)
            fn(t)
            self.t0 = time.perf_counter()
        return call


class JobCheckpoint:
    """One job's checkpoint file. It is read back only by the same job: `key` (the job's spec, or its config hash)
    is stored under `key_field` and compared, and a checkpoint of another job is ignored with a warning. SIGTERM
    sets a flag that the loop reads at its checkpointable points: save, then :meth:`stop_if_requested` raises
    Preempted (the CLI exits 143) and the same command resumes."""

    def __init__(self, path: str | Path, key_field: str, key: Any, stops_at: str):
        self.path, self.key_field, self.key = Path(path), key_field, key
        self.sigterm = SigtermFlag(stops_at)

    @property
    def stop_requested(self) -> bool:
        return self.sigterm.requested

    def load(self, what: str) -> dict | None:
        if not self.path.exists():
            return None
        state = torch_load(self.path, what)
        if state.get(self.key_field) != self.key:
            log.warning("checkpoint %s is from another configuration: starting over", self.path)
            return None
        return state

    def save(self, state: dict) -> None:
        torch_save({self.key_field: self.key, **state}, self.path)

    def stop_if_requested(self, where: str) -> None:
        self.sigterm.stop_if_requested(where, self.path)

    def discard(self) -> None:
        """The job's result is written: its checkpoint has served."""
        self.path.unlink(missing_ok=True)


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


class Run(TrainingClock):
    """What every cell (paper A's seeds, paper B's fine-tuning) shares: its random streams, environments, evaluation
    rows, loss bookkeeping, checkpoints and progress bar. Subclasses say how to act and what else a checkpoint holds."""

    metric_columns = ("critic_loss", "actor_loss", "q_mean")

    def __init__(self, spec: CellSpec, out_dir: str | Path, device: torch.device, progress: bool = True):
        self.spec = spec
        self.out_dir = Path(out_dir)
        self.device = device
        self.show_progress = progress
        self.cell = spec.cell
        self.env_name, self.seed = self.cell.env, int(self.cell.seed)
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
        self.checkpoint = JobCheckpoint(self.out_dir / "checkpoint.pt", "config_hash", spec.config_hash,
                                        "iteration offline, episode end online")
        self.ckpt_path = self.checkpoint.path
        self.loss_sums: dict[str, list[float]] = {}
        self.data_meta: dict = {}
        self.obs: np.ndarray | None = None
        self.log_prefix = ""  # "seed k: " when several seeds share a log
        self.live = LiveCurve(self.out_dir)  # each row as it happens (curve.partial.csv; a tracker if one is chosen)

    # ---- acting and evaluation --------------------------------------------------------------------
    def policy(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic evaluation policy."""
        raise NotImplementedError

    def policy_batch(self, obs: np.ndarray) -> np.ndarray:
        """The same policy on a batch of states, (N, obs_dim) -> (N, act_dim)."""
        return np.stack([self.policy(o) for o in obs])

    def eval_returns(self) -> np.ndarray:
        n = self.budget.eval_episodes
        self.eval_envs += [make_env(self.env_name) for _ in range(n - len(self.eval_envs))]
        return evaluate_parallel(self.eval_envs, self.policy_batch, n, self.eval_seed)

    def evaluate(self, phase: str, step: int, extra: dict | None = None) -> None:
        t0 = time.perf_counter()
        returns = self.eval_returns()
        self.p.train_time["eval"] += time.perf_counter() - t0
        self.log_evaluation(phase, step, returns, extra)

    def log_evaluation(self, phase: str, step: int, returns: np.ndarray, extra: dict | None = None) -> None:
        """One curve row: the evaluation's returns and the mean of each loss logged since the previous row."""
        row = {
            "phase": phase,
            "step": step,
            "normalized_score": float(reference_score(self.reference(), returns.mean())),
            "raw_return": float(returns.mean()),
            "raw_return_std": float(returns.std()),
            "env_steps": self.p.env_steps,
            "updates": self.p.updates,
        }
        row.update(self.check_losses(phase, step))
        row.update(extra or {})
        self.loss_sums = {}
        self.add_row(row)
        log.info("%s%s step %d: score %.1f (return %.1f), critic loss %.3g, Q %.3g", self.log_prefix,
                 phase, step, row["normalized_score"], row["raw_return"], row["critic_loss"], row["q_mean"])

    def add_row(self, row: dict) -> None:
        """A row of the curve, shown at once in curve.partial.csv (and the tracker)."""
        self.p.curve.append(row)
        self.live.append(self.p.curve)

    def reference(self) -> dict:
        """The reference returns of this cell's normalised score: those its dataset's loader recorded (a Minari
        dataset's own), else D4RL's (a cell that reads no dataset; a sample drawn before they were recorded). Kept
        in `data_meta`, so each result's summary.json records the pair it was scored with."""
        return self.data_meta.setdefault("reference", d4rl_reference(self.env_name))

    def record(self, metrics: dict[str, float | torch.Tensor]) -> None:
        # Tensors stay on the device until the next evaluation: no host sync per update.
        for key, value in metrics.items():
            self.loss_sums.setdefault(key, []).append(value)
        self.p.updates += 1

    def add_time(self, phase: str, seconds: float) -> None:
        self.p.train_time[phase] += seconds

    # ---- checkpoints ------------------------------------------------------------------------------
    def check_losses(self, phase: str, step: int) -> dict[str, float]:
        """The mean of each logged loss since the last evaluation; NonFiniteLoss (naming the loss and the step,
        keeping the last checkpoint, which was saved from finite losses) if one is NaN or infinite."""
        return loss_means(self.loss_sums, self.metric_columns, f"{phase} step {step}", self.ckpt_path)

    @property
    def stop_requested(self) -> bool:
        return self.checkpoint.stop_requested

    def stop_if_requested(self) -> None:
        self.checkpoint.stop_if_requested(f"{self.p.phase} step {self.p.step}")

    def extra_state(self) -> dict:
        """The subclass's part of a checkpoint: networks, optimisers, buffers."""
        raise NotImplementedError

    def load_extra_state(self, state: dict) -> None:
        raise NotImplementedError

    def checkpoint_state(self) -> dict:
        return {
            "version": CHECKPOINT_VERSION,
            "config_hash": self.spec.config_hash,
            **self.extra_state(),
            "progress": self.p.__dict__,
            # floats: thousands of one-value device tensors would each be a host copy and a pickled tensor
            "loss_sums": {key: as_floats(values).tolist() for key, values in self.loss_sums.items()},
            "rng": self.rng.bit_generator.state,
            "env_rng": self.env.unwrapped.np_random.bit_generator.state if self.p.phase == "online" else None,
            "torch_rng": torch.get_rng_state(),
            # on a GPU, target noise and augmentation draw from the CUDA generator
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
        }

    def save_checkpoint(self) -> None:
        self.check_losses(self.p.phase, self.p.step)  # a checkpoint only of finite losses: the last one stays good
        t0 = time.perf_counter()
        self.checkpoint.save(self.checkpoint_state())
        self.p.train_time["io"] = self.p.train_time.get("io", 0.0) + time.perf_counter() - t0

    def read_checkpoint(self) -> dict | None:
        """This run's checkpoint, or None if there is none or it is from another configuration."""
        return self.checkpoint.load("checkpoint")

    def restore(self, state: dict) -> None:
        self.load_extra_state(state)
        self.p = Progress(**state["progress"])
        self.loss_sums = state["loss_sums"]
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if state["env_rng"] is not None:
            self.set_env_rng(state["env_rng"])
        self.live.rewrite(self.p.curve)  # rows a killed run showed after this checkpoint are shown again as they come

    def set_env_rng(self, state: dict) -> None:
        set_env_rng(self.env, self.seed, state)

    def try_resume(self) -> bool:
        state = self.read_checkpoint()
        if state is None:
            return False
        self.restore(state)
        log.info("resumed from %s at %s step %d", self.ckpt_path, self.p.phase, self.p.step)
        return True

    def progress_bar(self, total: int, done: int, seeds: str | None = None) -> tqdm:
        c = self.cell
        return progress_bar(total, done, f"{self.env_name}/{c.dataset}/{c.method}/s{seeds or self.seed}",
                            self.show_progress)


def set_env_rng(env, seed: int, state: dict) -> None:
    """Put an environment's generator back to a checkpoint's state, so that its next reset() starts the episode the
    uninterrupted run started there."""
    env.reset(seed=seed)  # creates the generator, then its state is overwritten
    env.unwrapped.np_random.bit_generator.state = state


def check_seed_group(specs: list[CellSpec]) -> None:
    """Seeds trained together must be one cell: the same spec up to the seed and the seed's input files."""
    seeds = [spec.cell.seed for spec in specs]
    if len(set(seeds)) != len(seeds):
        raise InputError(f"a seed group lists a seed twice: {seeds}")
    first = specs[0].without_seed()
    for spec in specs[1:]:
        other = spec.without_seed()
        if other != first:
            keys = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
            raise InputError(f"seeds {seeds[0]} and {spec.cell.seed} of a seed group are not one cell: "
                             f"their specs differ in {keys}")
