"""Paper B's cell: pre-trained agents (or none) -> online fine-tuning with a chosen sampler.

Schedule (docs/protocol.md, paper B App. D.1): the first `first_updates_after` online steps only collect, with the
pre-trained policy; then a first block of updates, `first_updates` (5,000) for paper B's own method and its ablations
and the usual `update_every` (1,000) for the baselines; then `update_every` updates every `update_every` steps
("1000 training steps every time 1000 additional samples were collected"; `update_every: 1` gives one update per
environment step). Every
`finetune_eval_every` steps: `eval_steps` deterministic evaluation steps, the share of offline samples in
the replay batches since the last evaluation, and the AUROC of Q at telling recent online actions from
uniform-random ones (ensemble and its first member, Fig 4b).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from wmaug.algos import build_agent
from wmaug.core.config import cql_for_task, minari_root_of
from wmaug.core.errors import InputError
from wmaug.algos.ensemble_sac import EnsembleSACConfig
from wmaug.core.evaluation import evaluate_steps
from wmaug.core.runner import Progress, Run, run_loop
from wmaug.core.spec import FinetuneCellSpec
from wmaug.data.minari_io import source_reference
from wmaug.paper_b.pretrain import load_block, load_full_dataset
from wmaug.paper_b.samplers import make_sampler

log = logging.getLogger("wmaug.cell")


class FinetuneRun(Run):
    metric_columns = ("critic_loss", "actor_loss", "q_mean", "alpha", "offline_share", "density_loss", "w_online",
                      "w_offline")

    def __init__(self, spec: FinetuneCellSpec, out_dir: str | Path, device: torch.device, progress: bool = True):
        super().__init__(spec, out_dir, device, progress)
        self.budget, self.recipe, algos = spec.budget, spec.recipe, spec.algorithms
        r, ft = self.recipe, algos["finetune"]
        self.steps = self.budget.finetune_long_steps if r.long else self.budget.finetune_steps
        self.first_updates_after, self.update_every = ft["first_updates_after"], ft["update_every"]
        self.first_updates = ft["first_updates"] if r.burst else self.update_every
        if self.first_updates_after >= self.steps:
            raise ValueError(f"finetune.first_updates_after = {self.first_updates_after} leaves no update in "
                             f"{self.steps} fine-tuning steps")
        self.members = r.members
        self.analysis = algos["analysis"]

        offline = None
        if r.sampling != "online_only":
            offline, self.data_meta = load_full_dataset(spec.paths.dataset, self.env_name)
        else:  # scored against its task's dataset's reference returns, like the task's other cells
            self.data_meta = {"reference": source_reference(spec.paths.dataset, self.env_name,
                                                            minari_root_of(spec.paths.dataset))}
        capacity = min(ft["online_buffer"], self.steps)
        self.sampler = make_sampler(r.sampling, offline, self.obs_dim, self.act_dim, capacity,
                                    algos["balanced_replay"], device)

        block = load_block(spec.paths.pretrained, self.members) if r.pretrain else None
        if block is not None:
            self.data_meta["pretrained"] = {"path": spec.paths.pretrained, "agent_seeds":
                                            block["agent_seeds"][: self.members], "agent_scores": block["agent_scores"][: self.members]}
        if r.online == "ensemble_sac":
            cql = cql_for_task(algos["cql"], self.env_name, spec.cell.dataset)  # the task's networks (3 layers on one)
            cfg = EnsembleSACConfig(hidden=tuple(cql["hidden"]), actor_lr=ft["actor_lr"], critic_lr=ft["critic_lr"],
                                    alpha_lr=ft["actor_lr"], init_alpha=ft["init_alpha"], gamma=cql["gamma"], tau=cql["tau"],
                                    cql_weight=cql["min_q_weight"] if r.keep_cql else 0.0, n_actions=cql["n_actions"])
            self.agent = build_agent("ensemble_sac", self.obs_dim, self.act_dim, cfg, self.members, device)
            if block is not None:
                self.agent.load_pretrained(block["state"])
            self.batch_size, self.shared_batch = ft["batch_size"], True
        else:  # AWAC and BCQ keep their own rule, optimisers included
            settings = algos[r.online]
            self.agent = build_agent(r.online, self.obs_dim, self.act_dim, settings, self.members, device)
            self.agent.load_state_dict(block["state"])
            self.batch_size = settings.get("batch_size", ft["batch_size"])
            self.shared_batch = False
        self.p = Progress(phase="online")
        self.q_generator = torch.Generator(device=device)

    # ---- acting and evaluation --------------------------------------------------------------------
    def _act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        return self.agent.act(x, deterministic).squeeze(0).cpu().numpy()

    def policy(self, obs: np.ndarray) -> np.ndarray:
        return self._act(obs, True)

    def eval_returns(self) -> np.ndarray:
        return evaluate_steps(self.eval_env, self.policy, self.budget.eval_steps, self.eval_seed)

    def q_analysis(self, step: int) -> dict:
        """Fig 4b: AUROC of the ensemble's Q and of its first member's at real vs uniform-random actions."""
        from wmaug.paper_b.q_auroc import q_discrimination

        if self.p.env_steps == 0:
            return {"auroc_ensemble": float("nan"), "auroc_single": float("nan")}
        real = self.sampler.recent_online(self.analysis["auroc_states"])
        self.q_generator.manual_seed(self.seed * 1_000_003 + step)  # the same fake actions for both critics
        out = {}
        for name, member in (("auroc_ensemble", None), ("auroc_single", 0)):
            state = self.q_generator.get_state()
            out[name] = q_discrimination(lambda s, a: self.agent.q_value(s, a, member), real.observations, real.actions,
                                         self.act_dim, self.analysis["auroc_random_actions"], self.q_generator)
            self.q_generator.set_state(state)
        return out

    def evaluate_online(self, step: int) -> None:
        self.evaluate("online", step, extra=self.q_analysis(step))

    # ---- updates ----------------------------------------------------------------------------------
    def update(self) -> None:
        batch, is_offline = self.sampler.sample(self.batch_size, self.rng)
        metrics = self.sampler.after_sample(self.rng)
        metrics["offline_share"] = float(is_offline.mean())
        metrics.update(self.agent.update(batch if self.shared_batch else batch.for_members(self.members)))
        self.record(metrics)

    # ---- checkpoints ------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"agent": self.agent.state_dict(), "sampler": self.sampler.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        self.sampler.load_state_dict(state["sampler"])

    # ---- the online phase -------------------------------------------------------------------------
    def updates_after_step(self, t: int) -> int:
        """How many updates follow environment step t: none before `first_updates_after`, the first block there,
        then `update_every` at every `update_every`-th step after it (depends on t alone: a resumed run keeps it)."""
        if t < self.first_updates_after:
            return 0
        if t == self.first_updates_after:
            return self.first_updates
        return self.update_every if (t - self.first_updates_after) % self.update_every == 0 else 0

    def online_step(self, t: int) -> None:
        """One environment step, then the schedule's updates (:meth:`updates_after_step`)."""
        action = self._act(self.obs, deterministic=False)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        self.sampler.add(self.obs, action, reward, next_obs, terminated)
        self.obs, self.episode_over = next_obs, terminated or truncated
        self.p.env_steps += 1
        self.p.episode_return += reward
        for _ in range(self.updates_after_step(t)):
            self.update()
        self.p.step = t

    def episode_ended(self, t: int) -> bool:
        """Checkpoints fall at episode ends, before the next reset (a resume makes that reset)."""
        if self.episode_over:
            self.p.episodes += 1
            self.p.episode_return = 0.0
        return self.episode_over

    def next_episode(self, t: int) -> None:
        if self.episode_over:
            self.obs, _ = self.env.reset()

    def run(self) -> dict:
        resumed = self.try_resume()
        self.bar = self.progress_bar(self.steps, self.p.step)
        if self.p.step == 0 and not self.p.curve:
            self.evaluate_online(0)
            self.obs, _ = self.env.reset(seed=self.seed)
        else:
            self.obs, _ = self.env.reset()  # the checkpoint was taken at an episode end, before this reset
        self.t0 = time.perf_counter()
        run_loop(self.p.step, self.steps, self.online_step, bar=self.bar, eval_every=self.budget.finetune_eval_every,
                 evaluate=self.timed("online", self.evaluate_online), checkpointable=self.episode_ended,
                 checkpoint_every=self.budget.checkpoint_every, stop_requested=lambda: self.stop_requested,
                 save=self.timed("online", lambda t: self.save_checkpoint()), stop=lambda t: self.stop_if_requested(),
                 finish_step=self.next_episode)
        self.add_time("online", time.perf_counter() - self.t0)
        self.p.phase = "done"
        self.bar.close()
        return {"resumed": resumed}

    def final_model(self) -> dict:
        state = self.agent.state_dict()
        return {"actor": state["actor"], "critic": state["critic"], "members": self.members}


def make_run(specs: list[FinetuneCellSpec], out_dirs: list, device: torch.device, progress: bool) -> tuple[FinetuneRun, list[FinetuneRun]]:
    """Paper B's entry in the paper registry: one seed per job (its five agents are one batched ensemble already)."""
    if len(specs) > 1:
        raise InputError(f"cell {specs[0].to_json()['cell']}: paper B's fine-tuning cells run one seed per job")
    run = FinetuneRun(specs[0], out_dirs[0], device, progress=progress)
    return run, [run]
