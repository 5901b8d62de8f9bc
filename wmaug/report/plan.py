"""What a run of the DAG will cost, before anything runs: its jobs per rule, the updates and environment steps they
make, and the hours those take at measured rates. For the whole config or for named claims only (the cells their
checks read, and what those cells need: samples, world models, datasets, behaviour policies, pre-trained blocks).

Rates: a `benchmarks/speed.py` JSON the user measured (`--rates FILE.json`), else the committed table
`config/rates.yaml`. Evaluation episodes count as environment steps (whole 1,000-step episodes: an upper bound; their
policy's forward passes are left out); report and analysis jobs are left out of the hours (they are minutes)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from wmaug.core import config as C
from wmaug.core.envs import unknown_name_message
from wmaug.core.errors import InputError
from wmaug.core.methods import FIG5_CRITICS, METHODS
from wmaug.core.papers import study_paper
from wmaug.report.claims import CRITIC_METRICS, Claim, check_tasks, load_claims

RATES_TABLE = Path(__file__).resolve().parents[2] / "config" / "rates.yaml"
RULE_ORDER = ("behaviour_run", "behaviour", "dataset", "subsample", "world_model", "world_model_converged", "pretrain",
              "cell", "world_model_error", "world_model_error_converged", "critic_trace", "likelihood_shift", "report",
              "claims")
# speed.py JSON rows -> the rates table's names
SPEED_ROWS = {"td3": "wmaug TD3+BC, 1 agent", "td3_batched": "wmaug TD3+BC, 8 agents batched",
              "cql_block": "wmaug CQL, 5 agents batched (a paper B block)",
              "ensemble_sac": "wmaug SAC on a 5-member Q-ensemble (paper B fine-tuning)",
              "sac": "wmaug SAC, 1 agent (behaviour policy)", "world_model": "wmaug world model, batch 4096, 1 model"}


@dataclass
class Job:
    rule: str
    updates: float = 0.0  # learner updates (a batched block's update counts once)
    rate: str | None = None  # which rate its updates run at
    env_steps: float = 0.0
    env: str | None = None
    eval_steps: float = 0.0  # environment steps of its evaluations (episodes counted whole: an upper bound)


def load_rates(device: str, path: str | Path | None = None) -> tuple[dict, str]:
    """The rates for `device` and a line saying where they come from."""
    table = yaml.safe_load(RATES_TABLE.read_text())
    if path is None:
        rates = table[device]
        return rates, f"committed table config/rates.yaml ({device}: {rates['measured']})"
    data = json.loads(Path(path).read_text())
    rows = {r["learner"]: r for r in data.get("rows", [])}
    rates = dict(table[device])
    # environment steps: the JSON's own (speed.py measures them since 2026-12-07), else the table's
    rates["env_steps_per_s"] = {**rates["env_steps_per_s"], **data.get("env_steps_per_s", {})}
    for name, row in SPEED_ROWS.items():
        if row in rows:
            key = "agent_updates_per_s" if name == "td3_batched" else "updates_per_s"
            rates[name] = rows[row][key]
    return rates, f"{path} (benchmarks/speed.py on {data.get('gpu') or data.get('processor', '?')}, device {data.get('device', '?')})"


def cells_needed(cfg: dict, claim: Claim) -> tuple[set[tuple], set[tuple]]:
    """What a claim's checks read, as the config's grid has it: cells (study, env, dataset, method), every seed of
    each, and Fig 5's critic traces (study, env, dataset) for the critic metrics. A task the grid lacks at this scale
    is left out (the check will say it had no runs)."""
    cells, traces = set(), set()
    for study, grid in cfg["studies"].items():
        if study_paper(cfg, study).pipeline != claim.pipeline:
            continue
        have = {(c["env"], c["dataset"], c["method"]) for c in C.grid_cells(cfg, study)}
        main = {k: grid[k] for k in ("envs", "datasets")}
        for check in claim.checks:
            for env, dataset in check_tasks(check, main):
                if check.metric in CRITIC_METRICS:
                    traces.add((study, env, dataset))
                    continue
                for side in (check.x, check.y):
                    if side is not None and (env, side.dataset or dataset, side.method) in have:
                        cells.add((study, env, side.dataset or dataset, side.method))
        for study_, env, dataset in [t for t in traces if t[0] == study]:
            for job in C.critic_trace_jobs(cfg, study):
                if (job["env"], job["dataset"]) == (env, dataset):
                    cells |= {(study, env, dataset, m) for m in {m for m, _, _ in FIG5_CRITICS}
                              if (env, dataset, m) in have}
    return cells, traces


def cells_of(cfg: dict, claim_ids: list[str] | None, claims_file: str | Path) -> tuple[list[dict], set[tuple]]:
    """The cells to run (every seed) and Fig 5 traces to make: the whole grid, or what the named claims read."""
    all_cells = [c for study in cfg["studies"] for c in C.grid_cells(cfg, study)]
    if not claim_ids:
        traces = {(study, j["env"], j["dataset"]) for study in cfg["studies"] for j in C.critic_trace_jobs(cfg, study)}
        return all_cells, traces
    claims = {c.id: c for c in load_claims(claims_file).claims}
    wanted, traces = set(), set()
    for cid in claim_ids:
        if cid not in claims:
            raise InputError(unknown_name_message("claim", cid, list(claims), str(claims_file)))
        cells, t = cells_needed(cfg, claims[cid])
        wanted |= cells
        traces |= t
    return [c for c in all_cells if (c["study"], c["env"], c["dataset"], c["method"]) in wanted], traces


def jobs_of(cfg: dict, cells: list[dict], traces: set[tuple], whole: bool) -> dict[tuple, Job]:
    """Every job the cells need, once each, keyed by what identifies it."""
    s, algos = C.scale_cfg(cfg), cfg["algorithms"]
    jobs: dict[tuple, Job] = {}

    def dataset(env: str, kind: str) -> None:
        if C.dataset_source(cfg, env, kind) or ("dataset", env, kind) in jobs:
            return  # a user's source needs no job
        rollout = kind in ("random", "medium", "expert")
        jobs[("dataset", env, kind)] = Job("dataset", env_steps=s["dataset_transitions"] if rollout else 0, env=env)
        if kind == "medium-expert":
            dataset(env, "medium")
            dataset(env, "expert")
        elif kind != "random":
            for seed in s["behaviour_seeds"]:  # one run per seed, then the selection (which costs nothing)
                jobs[("behaviour_run", env, seed)] = Job(
                    "behaviour_run", rate="sac", env=env, env_steps=s["behaviour_steps"],
                    updates=s["behaviour_steps"] - s["behaviour_start_steps"],
                    eval_steps=s["behaviour_steps"] // s["behaviour_eval_every"] * s["behaviour_eval_episodes"] * EPISODE_STEPS)
            jobs[("behaviour", env)] = Job("behaviour", env=env)

    def pretrain(algo: str, env: str, kind: str, block: int) -> None:
        key = ("pretrain", algo, env, kind, block)
        if key in jobs:
            return
        iterations = C.pretrain_iterations(s, algo)
        jobs[key] = Job("pretrain", updates=iterations, rate="cql_block", env=env)
        dataset(env, kind)
        if algo == "fqe":
            pretrain("cql", env, kind, block)

    for c in cells:
        r, env, kind, seed = METHODS[c["method"]], c["env"], c["dataset"], c["seed"]
        if study_paper(cfg, c["study"]).sized_samples:
            online = s["online_long_steps"] if r.long else s["online_steps"]
            offline = s["offline_iterations"] if r.offline else 0
            # evaluations at step 0 and every eval_every (and the last) of each phase, eval_episodes each
            evals = evaluations(online, s["eval_every"]) + (evaluations(offline, s["eval_every"]) if offline else 0)
            jobs[("cell", *c.values())] = Job("cell", updates=offline + max(0, online - s["online_start_steps"]),
                                              rate="td3", env_steps=online, env=env,
                                              eval_steps=evals * s["eval_episodes"] * EPISODE_STEPS)
            if r.offline:
                n = C.sample_size(s, r)
                jobs[("subsample", env, kind, n, seed)] = Job("subsample")
                dataset(env, kind)
                if r.augment:
                    wm = algos["world_model"]
                    jobs[("world_model", env, kind, n, seed)] = Job(
                        "world_model", updates=s["world_model_epochs"] * math.ceil(n / wm["batch_size"]),
                        rate="world_model")
                if r.next_state == "noise":  # its sd: the held-out error of the cell's world model (minutes)
                    jobs[("world_model_error", c["study"], env, kind, seed)] = Job("world_model_error")
                if r.converged:  # at most max_epochs (early stopping ends it sooner): an upper bound
                    stop = C.converged_world_model_spec(cfg)["early_stopping"]
                    train = n - round(stop["holdout_share"] * n)
                    jobs[("world_model_converged", env, kind, n, seed)] = Job(
                        "world_model_converged", updates=stop["max_epochs"] * math.ceil(train / wm["batch_size"]),
                        rate="world_model")
        else:
            steps = s["finetune_long_steps"] if r.long else s["finetune_steps"]
            ft = algos["finetune"]
            after, every = ft["first_updates_after"], ft["update_every"]
            first = ft["first_updates"] if r.burst else every  # the first block (wmaug/paper_b/finetune.py)
            updates = first + every * ((steps - after) // every) if steps >= after else 0
            jobs[("cell", *c.values())] = Job("cell", updates=updates, rate="ensemble_sac", env_steps=steps, env=env,
                                              eval_steps=evaluations(steps, s["finetune_eval_every"]) * s["eval_steps"])
            if r.sampling != "online_only":
                dataset(env, kind)
            if r.pretrain:
                pretrain(r.pretrain, env, kind, seed)
    for study, env, kind in traces:
        jobs[("critic_trace", study, env, kind)] = Job("critic_trace")
    if whole:
        for study in cfg["studies"]:
            paper = study_paper(cfg, study)
            for j in C.world_model_error_jobs(cfg, study) if paper.world_model_analyses else []:
                jobs[("world_model_error", study, *j.values())] = Job("world_model_error")
            for j in C.converged_world_model_jobs(cfg, study) if paper.world_model_analyses else []:
                jobs[("world_model_error_converged", study, j["env"], j["dataset"], j["seed"])] = Job(
                    "world_model_error_converged")
            if paper.likelihood_shift and "halfcheetah" in cfg["studies"][study]["envs"]:
                jobs[("likelihood_shift",)] = Job("likelihood_shift")
    studies = {c["study"] for c in cells}
    for study in studies:
        jobs[("report", study)] = Job("report")
    if studies:
        jobs[("claims",)] = Job("claims")
    return jobs


# The DAG's stages: a job waits for the stages before its own (behaviour runs -> datasets -> world models and CQL
# blocks -> FQE blocks on those -> cells). What the wall-clock estimate schedules.
STAGES = {"behaviour_run": 0, "behaviour": 1, "dataset": 2, "subsample": 3, "world_model": 3,
          "world_model_converged": 4, "pretrain": 3, "pretrain_fqe": 4, "cell": 5, "world_model_error": 6,
          "world_model_error_converged": 6, "critic_trace": 6, "likelihood_shift": 6, "report": 7, "claims": 8}
WALL_CORES = 8
EPISODE_STEPS = C.MAX_EPISODE_STEPS  # an evaluation episode counted whole


def job_seconds(job: Job, rates: dict) -> float:
    """One job's estimate: its updates at its learner's rate plus its environment steps at the task's."""
    seconds = job.updates / rates[job.rate] if job.updates else 0.0
    if job.env_steps or job.eval_steps:
        seconds += (job.env_steps + job.eval_steps) / rates["env_steps_per_s"][job.env]
    return seconds


def evaluations(steps: int, every: int) -> int:
    """Evaluations of a loop of `steps` (wmaug/core/runner.py: run_loop): at step 0, every `every` and at the last."""
    return 1 + -(-steps // every)


def wall_hours(jobs: list[tuple[str, float]], cores: int) -> float:
    """Hours on `cores` one-core job slots: each stage's jobs (stage, hours) longest first onto the least loaded
    slot, a stage starting when the one before has ended. Snakemake overlaps stages, so this is an upper estimate;
    it is never below total / cores nor below the longest chain."""
    total = 0.0
    for stage in sorted({st for st, _ in jobs}):
        slots = [0.0] * cores
        for hours in sorted((h for st, h in jobs if st == stage), reverse=True):
            slots[slots.index(min(slots))] += hours
        total += max(slots)
    return total


def plan(cfg: dict, claim_ids: list[str] | None = None, device: str = "cpu", rates_file: str | Path | None = None,
         claims_file: str | Path = "config/claims.yaml", cores: int = WALL_CORES) -> dict:
    rates, source = load_rates(device, rates_file)
    cells, traces = cells_of(cfg, claim_ids, claims_file)
    jobs = jobs_of(cfg, cells, traces, whole=not claim_ids)
    by_rule = defaultdict(lambda: {"jobs": 0, "updates": 0.0, "env_steps": 0.0, "eval_steps": 0.0, "hours": 0.0})
    staged = []
    for key, job in jobs.items():
        row = by_rule[job.rule]
        row["jobs"] += 1
        row["updates"] += job.updates
        row["env_steps"] += job.env_steps
        row["eval_steps"] += job.eval_steps
        seconds = job_seconds(job, rates)
        row["hours"] += seconds / 3600
        staged.append((STAGES["pretrain_fqe" if key[:2] == ("pretrain", "fqe") else job.rule], seconds / 3600))
    rows = {rule: by_rule[rule] for rule in RULE_ORDER if rule in by_rule}
    total = {k: sum(r[k] for r in rows.values()) for k in ("jobs", "updates", "env_steps", "eval_steps", "hours")}
    return {"scale": cfg["scale"], "claims": claim_ids or "all", "device": device, "rates": source,
            "cells": len(cells), "rules": rows, "total": total, "cores": cores, "wall_hours": wall_hours(staged, cores)}


def plan_text(p: dict) -> str:
    unit = "GPU-hours" if p["device"] == "cuda" else "core-hours"
    what = "the whole grid" if p["claims"] == "all" else "claim(s) " + ", ".join(p["claims"])
    lines = [f"plan for {what} at scale {p['scale']}: {p['cells']} cells (nothing is run)",
             f"rates: {p['rates']}", "",
             f"{'rule':<28} {'jobs':>6} {'updates':>14} {'env steps':>14} {'eval steps':>14} {unit:>12}"]
    for rule, r in [*p["rules"].items(), ("total", p["total"])]:
        lines.append(f"{rule:<28} {r['jobs']:>6} {r['updates']:>14,.0f} {r['env_steps']:>14,.0f} "
                     f"{r['eval_steps']:>14,.0f} {r['hours']:>12,.1f}")
    slots = f"{p['cores']} GPUs, one job each" if p["device"] == "cuda" else f"{p['cores']} cores, one job each"
    lines += ["", f"wall clock on {slots}: about {p['wall_hours']:,.1f} hours "
                  f"({p['wall_hours'] / 24:,.1f} days; stage by stage, longest jobs first: an upper estimate)"]
    lines += ["", "One process per job at the measured rates; evaluation episodes counted whole (1,000 steps each: an"
              " upper bound) at the environment's rate, their forward passes and the minutes of report, analysis and"
              " sample jobs left out. Learner jobs (cells, pre-training, world models, behaviour) on the device"
              f" named; environment steps at the CPU's rate. {'GPU-hours assume one job per GPU.' if p['device'] == 'cuda' else ''}"]
    return "\n".join(lines).rstrip()


def claim_hours(cfg: dict, claims_file: str | Path):
    """claim id -> the core-hours its cells take at this scale (CPU rates): what the claims pages price seeds with."""
    return lambda claim_id: plan(cfg, [claim_id], "cpu", claims_file=claims_file)["total"]["hours"]
