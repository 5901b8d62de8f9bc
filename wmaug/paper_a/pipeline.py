"""Paper A's pipeline for one cell: TD3+BC offline (optionally world-model augmented) -> hand-off -> online TD3.

The run is resumable: a checkpoint holds networks, optimisers, the online buffer, every random stream and
the progress, so a killed run restarted on the same machine continues where it stopped. An online checkpoint may
fall inside an episode: it keeps how the episode began, and the resumed run replays the episode's actions.

Several seeds of one cell can run as one job (`CellRun` over a list of specs): one batched TD3, one result folder
and one checkpoint per seed.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from wmaug.core.errors import InputError
from wmaug.algos import build_agent
from wmaug.algos.td3 import TD3, TD3Config
from wmaug.paper_a.augment import WorldModelAugmenter
from wmaug.data.buffer import Batch, ReplayGroup
from wmaug.data.sample import ObsNormalizer, load_sample
from wmaug.core.envs import make_env, terminal_fn
from wmaug.core.evaluation import evaluate_groups
from wmaug.core.io import torch_save
from wmaug.core.nets import join_members, select_members
from wmaug.core.preemption import SigtermFlag
from wmaug.core.runner import Progress, Run, TrainingClock, check_seed_group, run_loop
from wmaug.core.spec import PaperACellSpec

log = logging.getLogger("wmaug.cell")


def td3_config(td3: dict) -> TD3Config:
    return TD3Config(**{k: td3[k] for k in TD3Config.__dataclass_fields__ if k in td3} | {"hidden": tuple(td3["hidden"])})


def noise_sd(path: str, obs_dim: int) -> torch.Tensor:
    """The noise control's sd per state dimension: the square root of its world model's held-out squared error
    (raw units; the world_model_error job's by_dimension.csv, column heldout_mse_raw)."""
    import pandas as pd

    if not path:
        raise InputError("the noise control's spec names no paths.noise_sd (its world model's by_dimension.csv, "
                         "written by the world_model_error rule; `wmaug cell --study ...` resolves it)")
    table = pd.read_csv(path).sort_values("dim")
    if list(table["dim"]) != list(range(obs_dim)) or not np.isfinite(table["heldout_mse_raw"]).all():
        raise ValueError(f"{path}: expected a finite heldout_mse_raw for each of the {obs_dim} state dimensions "
                         f"(dims {list(table['dim'])})")
    return torch.tensor(np.sqrt(table["heldout_mse_raw"].to_numpy()), dtype=torch.float32)


class SeedRun(Run):
    """One seed of a paper A cell: its environments, random streams, offline sample, normalisation, world model,
    buffers, curve and result folder. Its agent is member `member` of the batched TD3 of the `CellRun` that runs it
    (alone, or beside the cell's other seeds)."""

    def __init__(self, spec: PaperACellSpec, out_dir: str | Path, device: torch.device, progress: bool = True):
        super().__init__(spec, out_dir, device, progress)
        budget, recipe = spec.budget, spec.recipe
        self.budget, self.recipe = budget, recipe
        self.online_steps = budget.online_long_steps if recipe.long else budget.online_steps
        self.offline_model: dict | None = None  # the networks at the hand-off (Fig 5 reads their critic)
        # This seed's own initial networks, drawn from its own torch stream (seeded by Run), so a seed starts from
        # the same weights whether it trains alone or beside others.
        self.initial_agent = build_agent("td3", self.obs_dim, self.act_dim, td3_config(spec.td3), device=device).state_dict()
        # The seed's own torch streams, continuing where its initialisation left the stream it was seeded into: its
        # draws (target noise, augmentation; fresh networks at a partial hand-off) are the same alone or in a group.
        # On a CPU one stream serves both, as torch's default one did; on a GPU the draws come from a device stream
        # seeded like torch's default CUDA one.
        self.init_stream = torch.Generator()
        self.init_stream.set_state(torch.get_rng_state())
        self.draw_stream = self.init_stream if device.type == "cpu" else torch.Generator(device).manual_seed(self.seed)
        self.cell_run: CellRun | None = None  # set by the CellRun that trains this seed
        self.member = 0
        self.offline_data = None
        self.world_model = None  # the CellRun's augmenter rolls it, beside its other seeds' models
        if recipe.offline:
            data, self.normalizer, self.data_meta = load_sample(spec.paths.sample)
            if data.obs_dim != self.obs_dim or data.act_dim != self.act_dim:
                raise ValueError(
                    f"{spec.paths.sample}: states/actions of dim {data.obs_dim}/{data.act_dim}, "
                    f"{self.env_name} needs {self.obs_dim}/{self.act_dim}")
            self.offline_data = data  # the CellRun puts it in its buffers
            if recipe.augment:
                from wmaug.paper_a.world_model import load_world_model

                with torch.random.fork_rng(devices=[]):  # building it must not move the learner's stream
                    self.world_model, _ = load_world_model(spec.paths.world_model, device=device)
            self.noise_sd = noise_sd(spec.paths.noise_sd, self.obs_dim) if recipe.next_state == "noise" else None
        else:
            # From scratch there is no dataset to take statistics from.
            self.normalizer = ObsNormalizer.identity(self.obs_dim)
        self.online_buffer = None  # this seed's part of its CellRun's online buffers
        self.p = Progress(phase="offline" if recipe.offline else "online")
        # How the current online episode began (a reset seed or the env generator's state before the reset) and
        # its length so far: a checkpoint at any step restores the episode by replaying its actions.
        self.episode_start: dict | None = None
        self.episode_length = 0

    # ---- acting -----------------------------------------------------------------------------------
    @property
    def agent(self) -> TD3:
        return self.cell_run.agent

    def fresh_agent(self) -> dict:
        """New networks for a partial hand-off, drawn from this seed's own stream."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.init_stream.get_state())
            state = build_agent("td3", self.obs_dim, self.act_dim, self.agent.cfg, device=self.device).state_dict()
            self.init_stream.set_state(torch.get_rng_state())
        return state

    # ---- the online episode -----------------------------------------------------------------------
    def start_episode(self, seed: int | None = None) -> None:
        self.episode_start = {"seed": seed, "env_rng": None if seed is not None else
                              self.env.unwrapped.np_random.bit_generator.state}
        self.episode_length = 0
        self.obs, _ = self.env.reset(seed=seed)

    def env_step(self, action: np.ndarray) -> tuple[tuple, bool]:
        """One environment step: its transition (for the online buffer) and whether the episode ended."""
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        transition = (self.obs, action, reward, next_obs, terminated)
        self.obs = next_obs
        self.episode_length += 1
        self.p.env_steps += 1
        self.p.episode_return += float(reward)  # a Python float: checkpoints hold no numpy scalars
        return transition, terminated or truncated

    def replay_episode(self) -> None:
        """After a resume: the episode's reset again, then its actions (the buffer's last rows) step by step.
        MuJoCo is deterministic, so this rebuilds the exact state; every replayed state is checked."""
        start, n = self.episode_start, self.episode_length
        if start["seed"] is not None:
            self.obs, _ = self.env.reset(seed=start["seed"])
        else:
            self.set_env_rng(start["env_rng"])
            self.obs, _ = self.env.reset()
        rows = {k: v[self.online_buffer.size - n: self.online_buffer.size].cpu().numpy()
                for k, v in self.online_buffer.storage.items()}
        for i in range(n):
            self.check_replayed(i, rows["observations"][i])
            self.obs, *_ = self.env.step(rows["actions"][i])
        if n:
            self.check_replayed(n, rows["next_observations"][n - 1])

    def check_replayed(self, step: int, stored: np.ndarray) -> None:
        if not np.array_equal(np.float32(self.obs), stored):
            raise RuntimeError(f"{self.ckpt_path}: replaying the episode of the checkpoint gave another state at its "
                               f"step {step} (not the same machine or MuJoCo version?); delete it to start over")

    def checkpoint_state(self) -> dict:
        return {**super().checkpoint_state(), "env_rng": None,
                "episode": {"start": self.episode_start, "length": self.episode_length},
                "streams": {"init": self.init_stream.get_state(), "draw": self.draw_stream.get_state()}}

    def restore(self, state: dict) -> None:
        super().restore(state)
        # version 1 drew from torch's default CPU stream, whose state it saved (and not the CUDA one)
        streams = state.get("streams") or {"init": state["torch_rng"], "draw": None}
        self.init_stream.set_state(streams["init"])
        if self.draw_stream is not self.init_stream and streams["draw"] is not None:
            self.draw_stream.set_state(streams["draw"])
        # a version-1 checkpoint was taken at an episode end, before the next reset: an episode of length 0
        episode = state.get("episode") or {"start": {"seed": None, "env_rng": state["env_rng"]}, "length": 0}
        self.episode_start, self.episode_length = episode["start"], episode["length"]

    # ---- results ----------------------------------------------------------------------------------
    def member_state(self, state: dict) -> dict:
        """This member's part of a batched state dict, as a one-agent state dict."""
        return select_members(state, self.agent.members, [self.member])

    def extra_state(self) -> dict:
        return {"agent": self.member_state(self.agent.state_dict()), "online_buffer": self.online_buffer.state_dict(),
                "offline_model": self.offline_model}

    def load_extra_state(self, state: dict) -> None:
        # the agent is the CellRun's: it joins its seeds' parts
        self.online_buffer.load_state_dict(state["online_buffer"])
        self.offline_model = state.get("offline_model")

    def networks(self) -> dict:
        return {"actor": self.member_state(self.agent.actor.state_dict()),
                "critic": self.member_state(self.agent.critic.state_dict()),
                "normalizer": self.normalizer.state_dict()}

    def final_model(self) -> dict:
        """What later analysis needs (critic traces, hand-offs): networks and the state normalisation, final
        and, for pre-trained runs, at the hand-off ("offline")."""
        model = self.networks()
        if self.offline_model is not None:
            model["offline"] = self.offline_model
        return model


class CellRun(TrainingClock):
    """Paper A: TD3+BC offline (optionally augmented) -> hand-off -> online TD3, for one or more seeds of a cell.

    The seeds run in lockstep around one batched TD3 (member k = seed k): every iteration each seed samples its own
    minibatch with its own generator, and one update steps every member. Each seed keeps everything else of its own
    (`SeedRun`) and writes its own result folder. One seed is the plain single run."""

    def __init__(self, specs: list[PaperACellSpec], out_dirs: list[str | Path], device: torch.device,
                 progress: bool = True):
        check_seed_group(specs)
        self.seeds = [SeedRun(spec, out, device, progress) for spec, out in zip(specs, out_dirs)]
        first = self.seeds[0]
        self.device, self.show_progress = device, progress
        self.budget, self.recipe = first.budget, first.recipe
        self.batch_size = specs[0].td3["batch_size"]
        self.exploration_noise = specs[0].td3["exploration_noise"]
        self.online_steps = first.online_steps
        self.obs_dim, self.act_dim = first.obs_dim, first.act_dim
        K = len(self.seeds)
        self.agent = build_agent("td3", self.obs_dim, self.act_dim, td3_config(specs[0].td3), K, device)
        self.agent.load_state_dict(join_members([s.initial_agent for s in self.seeds]))
        self.set_phase_loss(first.p.phase)
        self.agent.noise_generators = [s.draw_stream for s in self.seeds]
        for k, s in enumerate(self.seeds):
            s.cell_run, s.member, s.initial_agent = self, k, None
            s.log_prefix = f"seed {s.seed}: " if K > 1 else ""
        # The seeds' buffers as one tensor each (one copy adds every seed's transition, one gather draws every
        # seed's batch); each seed keeps a view of its own, which it checkpoints.
        self.online_replay = ReplayGroup(K, self.obs_dim, self.act_dim, self.online_steps, device)
        for s, buffer in zip(self.seeds, self.online_replay.buffers):
            s.online_buffer = buffer
        self.offline_replay = None
        if self.recipe.offline:
            size = max(len(s.offline_data) for s in self.seeds)
            self.offline_replay = ReplayGroup(K, self.obs_dim, self.act_dim, size, device)
            for s, buffer in zip(self.seeds, self.offline_replay.buffers):
                buffer.add_transitions(s.offline_data)
                s.offline_data = None  # now in the buffer
        self.normalizer = ObsNormalizer.stacked([s.normalizer for s in self.seeds])
        self.augmenter = None
        if self.recipe.augment:  # the seeds' world models as one batched model, each seed drawing from its stream
            from wmaug.paper_a.world_model import WorldModelGroup

            spec, recipe = specs[0], self.recipe
            models = WorldModelGroup([s.world_model for s in self.seeds],
                                     [s.spec.paths.world_model for s in self.seeds])
            self.augmenter = WorldModelAugmenter(
                models,
                spec.augmentation["rate"] if recipe.rate is None else recipe.rate,
                steps=recipe.rollout_steps, stochastic=recipe.stochastic_model,
                gamma=spec.td3["gamma"], terminal=terminal_fn(first.env_name),
                # later rollout steps act like the TD3 target does: the target actor on normalised states
                policy=self.target_policy, generator=[s.draw_stream for s in self.seeds],
                next_state=recipe.next_state,
                noise_sd=torch.stack([s.noise_sd for s in self.seeds]) if recipe.next_state == "noise" else None)
        self.sigterm = SigtermFlag("iteration offline, step online")  # the group's; the seeds' handlers are replaced
        self.loss_sums: dict[str, list[torch.Tensor]] = {}

    @property
    def p(self) -> Progress:
        return self.seeds[0].p  # the seeds' progress moves together

    # ---- one step of every seed -------------------------------------------------------------------
    def offline_batch(self) -> Batch:
        """Every seed's minibatch from its own data and stream, (K, B, ...)."""
        batch = self.offline_replay.sample(self.batch_size, [s.rng for s in self.seeds])
        if self.augmenter is not None:
            batch = self.augmenter(batch)  # raw-scale states in, raw-scale next states out
        return self.normalizer.batch(batch)

    def target_policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Every member's target actor on its raw-scale states (K, N, d) -> (K, N, A)."""
        return self.agent.actor_target(self.normalizer(obs))

    def online_batch(self) -> Batch:
        return self.normalizer.batch(self.online_replay.sample(self.batch_size, [s.rng for s in self.seeds]))

    def update(self, batch: Batch) -> None:
        metrics = self.agent.update(batch)
        for key, value in metrics.items():  # (K,) device tensors: no host sync per update
            self.loss_sums.setdefault(key, []).append(value)
        for s in self.seeds:
            s.p.updates += 1

    def flush_losses(self) -> None:
        """Hand each seed its column of the losses logged since the last flush (one host sync)."""
        for key, values in self.loss_sums.items():
            table = torch.stack(values).cpu()  # (updates, K)
            for k, s in enumerate(self.seeds):
                s.loss_sums.setdefault(key, []).extend(table[:, k].tolist())
        self.loss_sums = {}

    def evaluate(self, phase: str, step: int) -> None:
        self.flush_losses()
        t0 = time.perf_counter()
        n = self.budget.eval_episodes
        for s in self.seeds:
            s.eval_envs += [make_env(s.env_name) for _ in range(n - len(s.eval_envs))]
        returns = evaluate_groups([s.eval_envs for s in self.seeds], self.policy, n, [s.eval_seed for s in self.seeds])
        elapsed = time.perf_counter() - t0
        for s, seed_returns in zip(self.seeds, returns):
            s.p.train_time["eval"] += elapsed
            s.log_evaluation(phase, step, seed_returns)

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Every member's deterministic action on its own (raw-scale) states: (K, N, d) -> (K, N, A)."""
        normalised = self.normalizer(obs)
        return self.agent.act_members(torch.as_tensor(normalised, dtype=torch.float32, device=self.device)).cpu().numpy()

    def add_time(self, key: str, seconds: float) -> None:
        for s in self.seeds:
            s.p.train_time[key] += seconds

    # ---- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        self.flush_losses()
        for s in self.seeds:  # every seed's losses first: no seed's checkpoint moves on if one is not finite
            s.check_losses(s.p.phase, s.p.step)
        # All written first, then renamed: a kill while writing leaves every seed at its previous checkpoint.
        t0 = time.perf_counter()
        pending = [s.ckpt_path.with_name(s.ckpt_path.name + ".next") for s in self.seeds]
        for s, path in zip(self.seeds, pending):
            torch_save(s.checkpoint_state(), path)
        for s, path in zip(self.seeds, pending):
            os.replace(path, s.ckpt_path)
        self.add_time("io", time.perf_counter() - t0)

    def stop_if_requested(self) -> None:
        where = ", ".join(str(s.ckpt_path) for s in self.seeds)
        self.sigterm.stop_if_requested(f"{self.p.phase} step {self.p.step}", where)

    def try_resume(self) -> bool:
        states = [s.read_checkpoint() for s in self.seeds]
        if all(state is None for state in states):
            return False
        at = {(st["progress"]["phase"], st["progress"]["step"]) if st else None for st in states}
        if len(at) > 1:
            log.warning("the seeds' checkpoints are from different points (%s): starting over", sorted(map(str, at)))
            return False
        self.agent.load_state_dict(join_members([st["agent"] for st in states]))
        for s, state in zip(self.seeds, states):
            s.restore(state)
        phase, step = at.pop()
        log.info("resumed from %s at %s step %d", ", ".join(str(s.ckpt_path) for s in self.seeds), phase, step)
        return True

    # ---- phases -----------------------------------------------------------------------------------
    def set_phase_loss(self, phase: str) -> None:
        """The actor loss a phase runs: TD3+BC's (alpha from the config) offline, plain TD3's online. Set from the
        phase itself at every start, fresh, resumed or handed off: the config's alpha sits in every TD3's config, and
        a cell without an offline phase (`td3`, `td3_long`) must not keep it."""
        self.agent.bc_alpha = self.agent.cfg.bc_alpha if phase == "offline" else None

    def run(self) -> dict:
        resumed = self.try_resume()
        offline = self.budget.offline_iterations if self.recipe.offline else 0
        done = self.p.step + (offline if self.p.phase == "online" else 0)
        seeds = ",".join(str(s.seed) for s in self.seeds)  # one bar for the job
        self.bar = self.seeds[0].progress_bar(offline + self.online_steps, done, seeds)
        if self.p.phase == "offline":
            self.set_phase_loss("offline")
            self.offline_phase()
            self.hand_off()
        if self.p.phase == "online":
            self.set_phase_loss("online")
            self.online_phase(resumed_mid_online=resumed and self.p.step > 0)
        self.bar.close()
        return {"resumed": resumed}

    def offline_phase(self) -> None:
        b = self.budget
        if self.p.step == 0:
            self.evaluate("offline", 0)
        self.t0 = time.perf_counter()
        run_loop(self.p.step, b.offline_iterations, self.offline_step, bar=self.bar, eval_every=b.eval_every,
                 evaluate=self.timed("offline", lambda it: self.evaluate("offline", it)),
                 checkpoint_every=b.checkpoint_every, stop_requested=lambda: self.sigterm.requested,
                 save=lambda it: self.save_checkpoint(), stop=lambda it: self.stop_if_requested())
        self.add_time("offline", time.perf_counter() - self.t0)

    def offline_step(self, it: int) -> None:
        self.update(self.offline_batch())
        for s in self.seeds:
            s.p.step = it

    def hand_off(self) -> None:
        """Actor, critics, targets and optimiser states carry over (the BC term goes with the phase); the offline
        normalisation stays and applies to every online state; the online buffer starts empty."""
        for s in self.seeds:
            s.offline_model = s.networks()  # copies (select_members gathers), so online training leaves them be
        if not self.recipe.keep_actor or not self.recipe.keep_critic:
            fresh = join_members([s.fresh_agent() for s in self.seeds])
            keep = {"actor": self.recipe.keep_actor, "critic": self.recipe.keep_critic}
            state = self.agent.state_dict()
            for part in ("actor", "critic"):
                if not keep[part]:
                    for k in (part, f"{part}_target", f"{part}_opt"):
                        state[k] = fresh[k]
            self.agent.load_state_dict(state)
        for s in self.seeds:
            s.p.phase, s.p.step = "online", 0  # run() then sets the online phase's loss

    def online_step(self, t: int) -> None:
        """Every seed acts and steps its environment; then one update once the start steps are over. A pre-trained
        run collects its start steps with its actor plus noise, also when that actor is a fresh one (critic-only
        hand-off: paper A's Fig 4b blames its dip on exactly this buffer); from scratch they are uniform."""
        if t <= self.budget.online_start_steps and not self.recipe.offline:
            actions = [s.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32) for s in self.seeds]
        else:
            greedy = self.policy(np.stack([s.obs for s in self.seeds])[:, None])[:, 0]
            actions = [np.clip(g + s.rng.normal(0.0, self.exploration_noise, self.act_dim), -1.0, 1.0)
                       .astype(np.float32) for g, s in zip(greedy, self.seeds)]
        transitions, self.ended = zip(*(s.env_step(a) for s, a in zip(self.seeds, actions)))
        self.online_replay.add(transitions)
        if t > self.budget.online_start_steps:
            self.update(self.online_batch())
        for s in self.seeds:
            s.p.step = t

    def start_next_episodes(self, t: int) -> bool:
        """Seeds whose episode ended start the next; a checkpoint may fall at any step (it replays the episode)."""
        for s, end in zip(self.seeds, self.ended):
            if end:
                s.p.episodes += 1
                s.p.episode_return = 0.0
                s.start_episode()
        return True

    def online_phase(self, resumed_mid_online: bool) -> None:
        b = self.budget
        if not resumed_mid_online:
            last = self.p.curve[-1] if self.p.curve else None
            if last is not None and last["phase"] == "offline" and self.recipe.keep_actor:
                # The same policy on the same evaluation seeds: the final offline evaluation is online step 0.
                for s in self.seeds:
                    s.add_row({**s.p.curve[-1], "phase": "online", "step": 0})
            else:
                self.evaluate("online", 0)
            for s in self.seeds:
                s.start_episode(seed=s.seed)
        else:
            for s in self.seeds:
                s.replay_episode()  # the checkpoint may fall inside an episode
        self.t0 = time.perf_counter()
        run_loop(self.p.step, self.online_steps, self.online_step, bar=self.bar, eval_every=b.eval_every,
                 evaluate=self.timed("online", lambda t: self.evaluate("online", t)),
                 checkpointable=self.start_next_episodes, checkpoint_every=b.checkpoint_every,
                 stop_requested=lambda: self.sigterm.requested,
                 save=self.timed("online", lambda t: self.save_checkpoint()), stop=lambda t: self.stop_if_requested())
        self.add_time("online", time.perf_counter() - self.t0)
        for s in self.seeds:
            s.p.phase = "done"


def make_run(specs: list[PaperACellSpec], out_dirs: list, device: torch.device, progress: bool) -> tuple[CellRun, list[SeedRun]]:
    """Paper A's entry in the paper registry: the seeds of one cell as one batched run."""
    run = CellRun(specs, out_dirs, device, progress=progress)
    return run, run.seeds
