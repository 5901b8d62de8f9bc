"""Speed of the harness's learners, measured in one run on the machine it is on.

    python benchmarks/speed.py [--seconds 3] [--threads 1] [--members 8] [--device cpu|cuda] [--cell smoke]
                               [--seed-group 8] [--compile] [--out benchmarks/results/speed.json]

Updates per second of TD3+BC, CQL, SAC and the world model, for one agent and for K agents batched (K = --members
seeds as one computation; CQL: paper B's block of 5), beside the plain single-agent eager loops of
benchmarks/reference.py (written the way CleanRL / CORL write them) and beside d3rlpy's implementation of the same
algorithm when d3rlpy is installed (see benchmarks/README.md). Same data (10K random transitions, 17-dim states,
6-dim actions), batch 256, 256-256 networks, every learner sampling its own batches from a buffer on the device.
"agent-updates/s" counts every agent of a batched step. `--compile` adds the compiled path's rows (`wmaug cell
--compile on`: each loss one torch.compile graph, captured as a CUDA graph on a GPU) and their compilation times.
Each group's plain loop is measured first and last; the ratios divide by the mean of the two. `--cell smoke|quick`
also runs one real cell (TD3 from scratch on hopper at that scale) and splits its wall time into training, evaluation
and I/O; with `--seed-group K` it also runs that cell for K seeds as one job (`wmaug cell --seed 0 1 ...`) and as K
jobs, and prints the ratio.

Absolute rates depend on the machine and its load; compare the ratios, which come from one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from wmaug.algos.cql import CQL, CQLConfig
from wmaug.algos.ensemble_sac import EnsembleSAC, EnsembleSACConfig
from wmaug.algos.sac import SAC, SACConfig
from wmaug.algos.td3 import TD3, TD3Config
from wmaug.core.allocator import keep_freed_memory
from wmaug.core.envs import ENV_SPECS
from wmaug.data.buffer import ReplayBuffer
from wmaug.data.transitions import Transitions
from wmaug.paper_a.world_model import WorldModel, WorldModelConfig
from wmaug.core.nets import make_adam
from wmaug.core.provenance import package_versions

from env_speed import steps_per_second  # benchmarks/ is the script's own folder, first on sys.path
from reference import PlainCQL, PlainTD3BC
from timing import rate, sync

OBS, ACT, BATCH, N = 17, 6, 256, 10_000
TARGETS = {  # issue: speed (CPU, one agent) and GPU (K = 8 batched seeds)
    "td3bc_vs_d3rlpy": 1.8,
    "cql_vs_d3rlpy": 3.0,
    "cql_bf16_vs_d3rlpy": 3.0,
    "cql_compiled_vs_d3rlpy": 3.0,
    "cql_bf16_compiled_vs_d3rlpy": 3.0,
    "td3bc_batched_vs_plain_gpu": 20.0,
    "td3bc_batched_compiled_vs_plain_gpu": 20.0,
}


FINETUNE_ROW = "wmaug SAC on a 5-member Q-ensemble (paper B fine-tuning)"


def compiled(agent, step) -> tuple[object, float]:
    """`agent` with its losses compiled (`--compile`), and the seconds its first updates took (the compilation: one
    graph per loss, a second for TD3's delayed actor step, so two updates)."""
    agent.compile()
    t0 = time.perf_counter()
    for _ in range(2):
        step(agent)
    sync()
    return agent, time.perf_counter() - t0


def random_data(seed: int = 0) -> Transitions:
    rng = np.random.default_rng(seed)
    terminals = np.zeros(N, "f4")
    terminals[999::1000] = 1.0
    return Transitions(rng.normal(size=(N, OBS)).astype("f4"), rng.uniform(-1, 1, (N, ACT)).astype("f4"),
                       rng.normal(size=N).astype("f4"), rng.normal(size=(N, OBS)).astype("f4"), terminals,
                       np.zeros(N, "f4"))


def d3rlpy_learners(data: Transitions, device: torch.device) -> dict:
    """d3rlpy's TD3PlusBC, CQL (no Lagrange, 10 sampled actions, weight 5) and SAC at the papers' settings, each with
    a step that samples its own batch; {} when d3rlpy is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import d3rlpy
    except ImportError:
        return {}
    ds = d3rlpy.dataset.MDPDataset(data.observations, data.actions, data.rewards, data.terminals)
    dev = "cuda:0" if device.type == "cuda" else "cpu:0"
    configs = {
        "td3bc": d3rlpy.algos.TD3PlusBCConfig(batch_size=BATCH, actor_learning_rate=3e-4, critic_learning_rate=3e-4,
                                              alpha=2.5),
        "cql": d3rlpy.algos.CQLConfig(batch_size=BATCH, actor_learning_rate=1e-4, critic_learning_rate=3e-4,
                                      temp_learning_rate=1e-4, alpha_learning_rate=0.0, conservative_weight=5.0,
                                      n_action_samples=10),
        "sac": d3rlpy.algos.SACConfig(batch_size=BATCH, actor_learning_rate=3e-4, critic_learning_rate=3e-4),
    }
    out = {}
    for name, config in configs.items():
        algo = config.create(device=dev)
        algo.build_with_dataset(ds)
        out[name] = (lambda a=algo: a.update(ds.sample_transition_batch(BATCH)), d3rlpy.__version__)
    return out


def print_rows(rows: list[dict]) -> None:
    """Each group's rows as soon as they are measured: a run stopped at a time limit keeps what it measured."""
    for r in rows:
        ratio = "" if r["ratio_to_plain"] is None else f"{r['ratio_to_plain']:8.2f}"
        print(f"{r['group']:<12} {r['learner']:<66} {r['updates_per_s']:10.1f} {r['agent_updates_per_s']:12.1f} "
              f"{ratio:>8}", flush=True)


def measure_group(title: str, plain, rows: list, seconds: float,
                  plain_name: str = "plain eager loop, 1 agent (reference)") -> list[dict]:
    """Rates of `rows` [(name, agents, step)] between two measurements of the group's plain loop `plain`; printed."""
    before = rate(plain, seconds)
    measured = [(name, agents, rate(step, seconds)) for name, agents, step in rows]
    after = rate(plain, seconds)
    ref = (before + after) / 2
    out = [{"group": title, "learner": plain_name, "agents": 1, "updates_per_s": ref,
            "agent_updates_per_s": ref, "ratio_to_plain": 1.0, "plain_first_last": [before, after]}]
    for name, agents, r in measured:
        out.append({"group": title, "learner": name, "agents": agents, "updates_per_s": r,
                    "agent_updates_per_s": r * agents, "ratio_to_plain": r * agents / ref})
    print_rows(out)
    return out


def replay_group_rows(data: Transitions, device: torch.device, K: int) -> tuple[list, dict]:
    """One online step's data path for K seeds of a cell: each seed adds its transition and draws a normalised
    minibatch, stacked for the batched agent. The reference is one buffer per seed (a cell's seed group before
    `ReplayGroup`: K adds, K draws of five fields, K normalisations); the row is the seed group's one tensor. The
    steps (reference first) for `measure_group`, and aten calls per step (torch profiler, 20 steps)."""
    from torch.profiler import profile

    from wmaug.data.buffer import ReplayGroup, stack_batches
    from wmaug.data.sample import ObsNormalizer

    capacity = 2 * len(data)
    normalizers = [ObsNormalizer.fit(data.observations[k::K]) for k in range(K)]
    stacked = ObsNormalizer.stacked(normalizers)
    streams = [np.random.default_rng(k) for k in range(K)]
    alone = [ReplayBuffer.of(data, device, extra_capacity=len(data)) for _ in range(K)]
    group = ReplayGroup(K, OBS, ACT, capacity, device)
    for buffer in group.buffers:
        buffer.add_transitions(data)
    transitions = [(data.observations[i], data.actions[i], float(data.rewards[i]), data.next_observations[i], False)
                   for i in range(K)]

    def one_buffer_per_seed():
        for buffer, t in zip(alone, transitions):  # once full, the rings wrap, as online
            buffer.add(*t)
        return stack_batches([n.batch(b.sample(BATCH, rng)) for n, b, rng in zip(normalizers, alone, streams)])

    def one_group_tensor():
        group.add(transitions)
        return stacked.batch(group.sample(BATCH, streams))

    ops = {}
    for name, step in (("one buffer per seed", one_buffer_per_seed), ("one group tensor", one_group_tensor)):
        with profile() as prof:
            for _ in range(20):
                step()
        ops[name] = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::")) / 20
    return [one_buffer_per_seed, (f"wmaug ReplayGroup, one tensor for {K} seeds (a step: all {K})", 1,
                                  one_group_tensor)], ops


def grid_updates() -> dict:
    """Gradient updates in both papers' full grids at paper scale (config/config.yaml): paper A's TD3 steps (offline
    iterations + online steps per cell), paper B's pre-training blocks (5 agents each) and fine-tuning steps."""
    from wmaug.core import config as C
    from wmaug.core.methods import METHODS

    cfg = C.load_config(Path(__file__).resolve().parent.parent / "config" / "config.yaml", "paper")
    s = C.scale_cfg(cfg)
    out = {"paper_a_td3_updates": 0, "paper_b_pretrain_block_updates": 0, "paper_b_finetune_updates": 0}
    blocks = set()
    for study, grid in cfg["studies"].items():
        for cell in C.grid_cells(cfg, study):
            r = METHODS[cell["method"]]
            if grid["pipeline"] == "wmaug":
                online = s["online_long_steps"] if r.long else s["online_steps"]
                out["paper_a_td3_updates"] += (s["offline_iterations"] if r.offline else 0) + online
            else:
                out["paper_b_finetune_updates"] += s["finetune_long_steps"] if r.long else s["finetune_steps"]
                if r.pretrain:
                    blocks.add((r.pretrain, cell["env"], cell["dataset"], cell["seed"]))
    for algo, *_ in blocks:
        out["paper_b_pretrain_block_updates"] += C.pretrain_iterations(s, algo)
    out["paper_b_pretrain_blocks"] = len(blocks)
    return out


def grid_hours(updates: dict, by: dict, members: int, cql_row: str, suffix: str = "") -> dict:
    """Hours for one process on this device at the measured rates: paper A at the K-batched TD3+BC's agent-updates/s
    (seeds batched K at a time), paper B's blocks at CQL x5's block updates/s (`cql_row`; AWAC and BCQ blocks are
    cheaper: an upper bound), its fine-tuning at the ensemble SAC's updates/s; `suffix` picks the compiled TD3 and
    SAC rows. Evaluation episodes are left out."""
    a = updates["paper_a_td3_updates"] / by[f"wmaug TD3+BC, {members} agents batched{suffix}"]["agent_updates_per_s"]
    b_pre = updates["paper_b_pretrain_block_updates"] / by[cql_row]["updates_per_s"]
    b_ft = updates["paper_b_finetune_updates"] / by[f"{FINETUNE_ROW}{suffix}"]["updates_per_s"]
    return {"paper_a": a / 3600, "paper_b_pretrain": b_pre / 3600, "paper_b_finetune": b_ft / 3600,
            "total": (a + b_pre + b_ft) / 3600}


def run_cell(scale: str, device: torch.device, compile: bool = False) -> dict:
    """One real cell (TD3 from scratch on hopper: no dataset needed) at `scale`; its wall time split (with `compile`,
    the compilation is part of training)."""
    from wmaug.core import config as C
    from wmaug.cell import run_cell as run

    cfg = C.load_config(Path(__file__).resolve().parent.parent / "config" / "config.yaml", scale)
    spec = C.cell_spec(cfg, "wmaug", "hopper", "random", "td3", 0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = run(spec, tmp, device=device.type, progress=False, compile=compile)
        wall = time.perf_counter() - t0
    t = summary["time_s"]
    training = t["offline"] + t["online"]
    return {"scale": scale, "cell": "wmaug/hopper/td3/seed0", "compiled": compile, "online_steps": spec.budget.online_steps,
            "wall_s": wall, "training_s": training, "evaluation_s": t["eval"], "io_s": t.get("io", 0.0),
            "other_s": wall - training - t["eval"] - t.get("io", 0.0)}


def run_seed_group(scale: str, device: torch.device, seeds: int, compile: bool = False) -> dict:
    """The same cell for `seeds` seeds, as one job (one batched TD3) and as one job per seed, timed in this run."""
    from wmaug.core import config as C
    from wmaug.cell import run_cells

    cfg = C.load_config(Path(__file__).resolve().parent.parent / "config" / "config.yaml", scale)
    specs = [C.cell_spec(cfg, "wmaug", "hopper", "random", "td3", seed) for seed in range(seeds)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for spec in specs:
            run_cells([spec], [f"{tmp}/alone{spec.cell.seed}"], device=device.type, progress=False,
                      compile=compile)
        alone = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_cells(specs, [f"{tmp}/group{spec.cell.seed}" for spec in specs], device=device.type, progress=False,
                  compile=compile)
        together = time.perf_counter() - t0
    return {"scale": scale, "cell": "wmaug/hopper/td3", "compiled": compile, "seeds": seeds, "one_job_per_seed_s": alone,
            "one_job_s": together, "speedup": alone / together}


def world_model_step(data: Transitions, buffer: ReplayBuffer, rng, device: torch.device):
    """One update of paper A's world model on a fixed batch of 4096 (what its rate times)."""
    wm = WorldModel(OBS, ACT, WorldModelConfig(), data.observations.mean(0), data.observations.std(0)).to(device)
    opt = make_adam(wm.parameters(), 1e-4)
    batch = buffer.sample(4096, rng)

    def step():
        loss, _ = wm.loss(batch.observations, batch.actions, batch.next_observations, kl_weight=1 / 3)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def rates_table(args, data: Transitions, buffer: ReplayBuffer, sample, device: torch.device) -> None:
    """The planner's rates (config/rates.yaml's names), each learner timed alone, and the environments' steps."""
    from wmaug.report.plan import SPEED_ROWS

    K = args.members
    td3_1 = TD3(OBS, ACT, TD3Config(bc_alpha=2.5), device=device)
    td3_k = TD3(OBS, ACT, TD3Config(bc_alpha=2.5), device=device, members=K)
    cql_5 = CQL(OBS, ACT, CQLConfig(), members=5, device=device)
    ens = EnsembleSAC(OBS, ACT, EnsembleSACConfig(), members=5, device=device)
    sac = SAC(OBS, ACT, SACConfig(), device=device)
    wm_step = world_model_step(data, buffer, np.random.default_rng(1), device)
    steps = {"td3": (lambda: td3_1.update(sample()), 1), "td3_batched": (lambda: td3_k.update(sample(K)), K),
             "cql_block": (lambda: cql_5.update(sample(5)), 5), "ensemble_sac": (lambda: ens.update(sample()), 1),
             "sac": (lambda: sac.update(sample()), 1), "world_model": (wm_step, 1)}
    rows, table = [], {}
    for name, (step, agents) in steps.items():
        r = rate(step, args.seconds, warmup=3)
        table[name] = round(r * (agents if name == "td3_batched" else 1), 1)
        rows.append({"group": "rates", "learner": SPEED_ROWS[name], "agents": agents, "updates_per_s": r,
                     "agent_updates_per_s": r * agents, "ratio_to_plain": None})
        print(f"{name:<14} {table[name]:>10,.1f} {'agent-updates/s' if name == 'td3_batched' else 'updates/s'}",
              flush=True)
    env_steps = {name: round(steps_per_second(name, args.seconds)[0]) for name in ENV_SPECS}
    for name, r in env_steps.items():
        print(f"{name:<14} {r:>10,} env steps/s", flush=True)
    print("config/rates.yaml (cpu):")
    print("\n".join(f"  {k}: {v}" for k, v in table.items()))
    print("  env_steps_per_s: {" + ", ".join(f"{k}: {v}" for k, v in env_steps.items()) + "}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "rows": rows, "env_steps_per_s": env_steps, "rates": table, "members": K, "threads": args.threads,
        "device": str(device), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "seconds_per_row": args.seconds, "machine": platform.platform(), "processor": platform.processor(),
        "python": sys.version.split()[0], "packages": package_versions()}, indent=2))
    print(f"written: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per row, after a warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--members", type=int, default=8, help="K: agents batched into one step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cell", choices=["none", "smoke", "quick"], default="none")
    parser.add_argument("--seed-group", type=int, default=0, metavar="K",
                        help="also time the --cell cell for K seeds as one job vs one job per seed")
    parser.add_argument("--compile", action="store_true",
                        help="also the compiled path's rows (wmaug's --compile on: torch.compile, CUDA graphs on a GPU); "
                             "the --cell runs compiled")
    parser.add_argument("--rates-only", action="store_true",
                        help="only the learners config/rates.yaml holds (fp32; no references, bf16 or d3rlpy rows) and "
                             "the environments' steps: the planner's table in minutes; prints its YAML")
    parser.add_argument("--out", default="benchmarks/results/speed.json")
    args = parser.parse_args()
    # What `wmaug` commands do at start; applied before any row, so every learner (d3rlpy's too) runs with it.
    allocator_tuned = keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    data = random_data()
    buffer = ReplayBuffer.of(data, device=device)
    K = args.members
    d3 = d3rlpy_learners(data, device)

    def sample(members=None):
        return buffer.sample(BATCH, rng, members=members)

    if args.rates_only:
        return rates_table(args, data, buffer, sample, device)

    rows = []
    print(f"{'group':<12} {'learner':<66} {'updates/s':>10} {'agent-upd/s':>12} {'x plain':>8}", flush=True)
    td3bc_1 = TD3(OBS, ACT, TD3Config(bc_alpha=2.5), device=device)
    td3bc_k = TD3(OBS, ACT, TD3Config(bc_alpha=2.5), device=device, members=K)
    plain = PlainTD3BC(OBS, ACT, device=device)
    group = [("wmaug TD3+BC, 1 agent", 1, lambda: td3bc_1.update(sample())),
             (f"wmaug TD3+BC, {K} agents batched", K, lambda: td3bc_k.update(sample(K)))]
    compile_s = {}
    if args.compile:
        td3bc_1c, compile_s["TD3+BC 1"] = compiled(TD3(OBS, ACT, TD3Config(bc_alpha=2.5), device=device),
                                                   lambda a: a.update(sample()))
        td3bc_kc, compile_s[f"TD3+BC {K}"] = compiled(TD3(OBS, ACT, TD3Config(bc_alpha=2.5), device=device, members=K),
                                                      lambda a: a.update(sample(K)))
        group += [("wmaug TD3+BC, 1 agent, compiled", 1, lambda: td3bc_1c.update(sample())),
                  (f"wmaug TD3+BC, {K} agents batched, compiled", K, lambda: td3bc_kc.update(sample(K)))]
    if "td3bc" in d3:
        group.append((f"d3rlpy {d3['td3bc'][1]} TD3PlusBC, 1 agent", 1, d3["td3bc"][0]))
    rows += measure_group("TD3+BC", lambda: plain.update(sample()), group, args.seconds)

    plain_cql = PlainCQL(OBS, ACT, device=device)
    cql_1 = CQL(OBS, ACT, CQLConfig(), members=1, device=device)
    cql_5 = CQL(OBS, ACT, CQLConfig(), members=5, device=device)
    cql_1_bf16 = CQL(OBS, ACT, CQLConfig(precision="bf16"), members=1, device=device)
    cql_5_bf16 = CQL(OBS, ACT, CQLConfig(precision="bf16"), members=5, device=device)
    group = [("wmaug CQL, 1 agent", 1, lambda: cql_1.update(sample(1))),
             ("wmaug CQL, 5 agents batched (a paper B block)", 5, lambda: cql_5.update(sample(5))),
             ("wmaug CQL, 1 agent, precision bf16 (opt-in)", 1, lambda: cql_1_bf16.update(sample(1))),
             ("wmaug CQL, 5 agents batched, precision bf16 (opt-in)", 5, lambda: cql_5_bf16.update(sample(5)))]
    if args.compile:
        for precision in ("fp32", "bf16"):
            for members in (1, 5) if device.type == "cpu" else (5,):  # one agent: the CPU's d3rlpy target only
                name = f"wmaug CQL, {members} agent{'s batched' if members > 1 else ''}, {precision}, compiled"
                agent, compile_s[f"CQL {members} {precision}"] = compiled(
                    CQL(OBS, ACT, CQLConfig(precision=precision), members=members, device=device),
                    lambda a, m=members: a.update(sample(m)))
                group.append((name, members, lambda a=agent, m=members: a.update(sample(m))))
    if "cql" in d3:
        group.append((f"d3rlpy {d3['cql'][1]} CQL, 1 agent", 1, d3["cql"][0]))
    rows += measure_group("CQL", lambda: plain_cql.update(sample()), group, args.seconds)

    plain_sac = PlainCQL(OBS, ACT, conservative=False, device=device)
    sac = SAC(OBS, ACT, SACConfig(), device=device)
    ens = EnsembleSAC(OBS, ACT, EnsembleSACConfig(), members=5, device=device)
    group = [("wmaug SAC, 1 agent (behaviour policy)", 1, lambda: sac.update(sample())),
             (FINETUNE_ROW, 1, lambda: ens.update(sample()))]
    if args.compile:
        ens_c, compile_s["ensemble SAC 5"] = compiled(
            EnsembleSAC(OBS, ACT, EnsembleSACConfig(), members=5, device=device), lambda a: a.update(sample()))
        group.append((f"{FINETUNE_ROW}, compiled", 1, lambda: ens_c.update(sample())))
    if "sac" in d3:
        group.append((f"d3rlpy {d3['sac'][1]} SAC, 1 agent", 1, d3["sac"][0]))
    rows += measure_group("SAC", lambda: plain_sac.update(sample()), group, args.seconds)

    wm_step = world_model_step(data, buffer, rng, device)
    wm_rate = rate(wm_step, args.seconds, warmup=3)
    rows.append({"group": "world model", "learner": "wmaug world model, batch 4096, 1 model", "agents": 1,
                 "updates_per_s": wm_rate, "agent_updates_per_s": wm_rate, "ratio_to_plain": None})
    print_rows(rows[-1:])
    replay_steps, replay_ops = replay_group_rows(data, device, K)
    rows += measure_group(f"replay x{K}", replay_steps[0], replay_steps[1:], args.seconds,
                          f"one ReplayBuffer per seed, {K} seeds (reference; a step: all {K})")
    print(f"replay x{K}: aten calls per step: {replay_ops}")

    by = {r["learner"]: r for r in rows}
    ratios = {}
    d3_td3 = next((r for r in rows if r["learner"].startswith("d3rlpy") and r["group"] == "TD3+BC"), None)
    d3_cql = next((r for r in rows if r["learner"].startswith("d3rlpy") and r["group"] == "CQL"), None)
    if d3_td3:
        ratios["td3bc_vs_d3rlpy"] = by["wmaug TD3+BC, 1 agent"]["updates_per_s"] / d3_td3["updates_per_s"]
    if d3_cql:
        ratios["cql_vs_d3rlpy"] = by["wmaug CQL, 1 agent"]["updates_per_s"] / d3_cql["updates_per_s"]
        ratios["cql_bf16_vs_d3rlpy"] = (by["wmaug CQL, 1 agent, precision bf16 (opt-in)"]["updates_per_s"]
                                        / d3_cql["updates_per_s"])
    ratios[f"td3bc_batched_vs_plain_{device.type}"] = by[f"wmaug TD3+BC, {K} agents batched"]["ratio_to_plain"]
    if args.compile:
        if d3_cql and device.type == "cpu":
            ratios["cql_compiled_vs_d3rlpy"] = (by["wmaug CQL, 1 agent, fp32, compiled"]["updates_per_s"]
                                                / d3_cql["updates_per_s"])
            ratios["cql_bf16_compiled_vs_d3rlpy"] = (by["wmaug CQL, 1 agent, bf16, compiled"]["updates_per_s"]
                                                     / d3_cql["updates_per_s"])
        ratios[f"td3bc_batched_compiled_vs_plain_{device.type}"] = by[
            f"wmaug TD3+BC, {K} agents batched, compiled"]["ratio_to_plain"]

    if not d3:
        print("d3rlpy is not installed: no d3rlpy rows (benchmarks/README.md says how to add it)")
    for key, value in ratios.items():
        target = TARGETS.get(key if key in TARGETS else key.replace("_cpu", "").replace("_cuda", "_gpu"))
        note = f" (target >= {target:g})" if target and (device.type == "cuda" or "gpu" not in key) else ""
        print(f"{key}: {value:.2f}{note}")
    updates = grid_updates()
    hours = grid_hours(updates, by, K, "wmaug CQL, 5 agents batched (a paper B block)")
    hours_bf16 = grid_hours(updates, by, K, "wmaug CQL, 5 agents batched, precision bf16 (opt-in)")
    hours_compiled = grid_hours(updates, by, K, "wmaug CQL, 5 agents batched, fp32, compiled",
                                ", compiled") if args.compile else None
    print(f"both papers' grids at paper scale: {updates['paper_a_td3_updates'] / 1e6:.0f}M TD3 updates (paper A), "
          f"{updates['paper_b_pretrain_blocks']} pre-training blocks of 5 agents "
          f"({updates['paper_b_pretrain_block_updates'] / 1e6:.0f}M block updates), "
          f"{updates['paper_b_finetune_updates'] / 1e6:.0f}M fine-tuning updates (paper B)")
    print("estimated hours for one process on this device at these rates: " + ", ".join(
        f"{k} {v:,.0f}" for k, v in hours.items()))
    print("the same with CQL pre-training in bf16: " + ", ".join(f"{k} {v:,.0f}" for k, v in hours_bf16.items()))
    if hours_compiled:
        print("the same compiled: " + ", ".join(f"{k} {v:,.1f}" for k, v in hours_compiled.items()))
        print("compilation, seconds per learner: " + ", ".join(f"{k} {v:.0f}" for k, v in compile_s.items()))
    cells = [run_cell(args.cell, device, args.compile)] if args.cell != "none" else []
    for c in cells:
        print(f"cell {c['cell']} at scale {c['scale']} ({c['online_steps']} steps): wall {c['wall_s']:.1f} s = "
              f"training {c['training_s']:.1f} + evaluation {c['evaluation_s']:.1f} + I/O {c['io_s']:.2f} + "
              f"other {c['other_s']:.1f}")
    groups = ([run_seed_group(args.cell, device, args.seed_group, args.compile)]
              if args.cell != "none" and args.seed_group > 1 else [])
    for g in groups:
        print(f"cell {g['cell']} at scale {g['scale']}, {g['seeds']} seeds: one job per seed "
              f"{g['one_job_per_seed_s']:.1f} s, one job for all {g['one_job_s']:.1f} s ({g['speedup']:.2f}x)")
    # MuJoCo's own rate per task (the CPU's on either device): with these the JSON is a whole `wmaug plan --rates`
    env_steps = {name: steps_per_second(name, args.seconds)[0] for name in ENV_SPECS}
    print("env steps/s: " + ", ".join(f"{k} {v:,.0f}" for k, v in env_steps.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "rows": rows, "env_steps_per_s": env_steps, "ratios": ratios, "targets": TARGETS, "cells": cells, "seed_groups": groups,
        "grid_updates": updates, "allocator_kept_freed_memory": allocator_tuned, "grid_hours_one_process": hours,
        "grid_hours_one_process_cql_bf16": hours_bf16, "grid_hours_one_process_compiled": hours_compiled,
        "compile_s": compile_s, "replay_aten_calls_per_step": replay_ops, "members": K, "threads": args.threads,
        "device": str(device), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "batch": BATCH, "obs_dim": OBS, "act_dim": ACT, "seconds_per_row": args.seconds,
        "machine": platform.platform(), "processor": platform.processor(), "python": sys.version.split()[0],
        "packages": package_versions(),
    }, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
