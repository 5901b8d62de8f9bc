"""Paper B's offline stage as its own job: one block of BLOCK_AGENTS independent agents (CQL, AWAC or BCQ)
trained on the full dataset as one batched learner, or FQE critics for a CQL block's policies.

Fine-tuning seed s loads block s: `ours` takes its five agents, `sac_ft` the first, the N=2 ablation the
first two, so every method of one seed starts from the same agents and no agent is trained twice.
Agent i of a block draws its own initial weights and its own minibatches: the agents are as independent
as separate runs. The job checkpoints and resumes like a cell.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from wmaug.algos import LOOP_KEYS, build_agent, compile_agent
from wmaug.core.config import minari_root_of
from wmaug.data.buffer import ReplayBuffer
from wmaug.core.envs import get_spec, make_env
from wmaug.core.references import reference_score
from wmaug.core.evaluation import evaluate_members
from wmaug.core.io import torch_load, torch_save
from wmaug.core.preemption import sigterm_handler_restored
from wmaug.core.provenance import provenance
from wmaug.core.runner import JobCheckpoint, as_floats, loss_means, progress_bar, run_loop
from wmaug.core.spec import PretrainSpec

log = logging.getLogger("wmaug.paper_b.pretrain")

BLOCK_SEED_OFFSET = 7_000_000  # pre-training streams never coincide with a cell's (seeded by the cell seed)


def load_full_dataset(source: str, env: str):
    from wmaug.data.minari_io import load_source

    return load_source(source, env, minari_root_of(source))


def load_block(path: str | Path, members: int | None = None) -> dict:
    """A pre-trained block, cut to its first `members` agents when asked."""
    from wmaug.core.nets import select_members

    block = torch_load(path, "pre-trained agents")
    if members is not None:
        if members > block["members"]:
            raise ValueError(f"{path} holds {block['members']} agents, {members} asked for")
        block["state"] = select_members(block["state"], block["members"], list(range(members)))
        block["members"] = members
    return block


def _fqe_agent(spec: PretrainSpec, obs_dim: int, act_dim: int, members: int, device):
    from wmaug.algos.fqe import FQEConfig

    cql_block = load_block(spec.paths.cql)
    hidden = tuple(spec.cql["hidden"])
    settings = {k: v for k, v in spec.algorithm.items() if k not in LOOP_KEYS}
    cfg = FQEConfig(hidden=hidden, gamma=spec.cql["gamma"], tau=spec.cql["tau"], **settings)
    agent = build_agent("fqe", obs_dim, act_dim, cfg, members, device)
    agent.policy.load_state_dict(cql_block["state"]["actor"])
    return agent, cql_block


@sigterm_handler_restored()  # the block's SIGTERM flag ends with it
def run_pretrain(spec: PretrainSpec | dict, out: str | Path, device: torch.device, progress: bool = True,
                 compile: bool = False) -> dict:
    spec = PretrainSpec.from_json(spec, "pre-training spec")
    job = spec.job
    algo, env, block = job.algo, job.env, job.block
    out = Path(out)
    env_spec = get_spec(env, where="pretrain spec")
    members = len(job.agent_seeds)
    started = time.time()

    data, data_meta = load_full_dataset(spec.paths.dataset, env)
    buffer = ReplayBuffer.of(data, device)
    torch.manual_seed(BLOCK_SEED_OFFSET + block)
    rng = np.random.default_rng(BLOCK_SEED_OFFSET + block)
    if algo == "fqe":
        agent, cql_block = _fqe_agent(spec, env_spec.obs_dim, env_spec.act_dim, members, device)
        batch_size = spec.algorithm["batch_size"]
    else:
        settings = spec.algorithm
        agent = build_agent(algo, env_spec.obs_dim, env_spec.act_dim, settings, members, device)
        batch_size = settings.get("pretrain_batch_size", settings.get("batch_size", 256))  # AWAC: its offline batch

    compiled = compile_agent(agent, compile)
    start, history, sums = 0, [], {}
    checkpoint = JobCheckpoint(out.with_suffix(".checkpoint.pt"), "spec", spec.to_json(), "iteration")
    state = checkpoint.load("pre-training checkpoint")
    if state is not None:
        agent.load_state_dict(state["agent"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        start, history, sums = state["iteration"], state["history"], state.get("sums", {})
        log.info("resumed %s at iteration %d", checkpoint.path, start)

    iterations = spec.iterations
    log_every = max(1, min(1000, iterations // 20))
    checkpoint_every = max(log_every, min(50_000, iterations // 4))
    bar = progress_bar(iterations, start, f"{algo} {env}/{job.dataset} block {block}", progress, unit="upd")

    def step(it: int) -> None:
        for k, v in agent.update(buffer.sample(batch_size, rng, members=members)).items():
            sums.setdefault(k, []).append(v)

    def log_row(it: int) -> None:
        history.append({"iteration": it, **loss_means(sums, list(sums), f"iteration {it}", checkpoint.path)})
        sums.clear()

    def save(it: int) -> None:
        loss_means(sums, list(sums), f"iteration {it}", checkpoint.path)  # only finite losses are kept
        checkpoint.save({"agent": agent.state_dict(), "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                         "iteration": it, "history": history, "sums": {k: as_floats(v).tolist() for k, v in sums.items()}})

    t0 = time.perf_counter()
    run_loop(start, iterations, step, bar=bar, eval_every=log_every, evaluate=log_row, checkpoint_every=checkpoint_every,
             stop_requested=lambda: checkpoint.stop_requested, save=save,
             stop=lambda it: checkpoint.stop_if_requested(f"iteration {it}"))
    bar.close()
    train_time = time.perf_counter() - t0

    # Each agent's own (deterministic) policy, all agents in lockstep.
    t0 = time.perf_counter()
    envs = [make_env(env) for _ in range(members)]

    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(1)  # (E, 1, d): agent i sees env i
        return agent.act_members(x, True).squeeze(1).cpu().numpy()

    returns = evaluate_members(envs, act, spec.eval_episodes, seed=2_000_000 + 1000 * block).mean(1)
    eval_time = time.perf_counter() - t0
    scores = [float(reference_score(data_meta["reference"], r)) for r in returns]  # the dataset's pair
    log.info("%s %s/%s block %d: agents' normalised scores %s", algo, env, job.dataset, block,
             ", ".join(f"{s:.1f}" for s in scores))

    state = agent.state_dict()
    if algo == "fqe":  # the CQL policies with their FQE critics: what a SAC fine-tune loads
        state = {"actor": cql_block["state"]["actor"], "critic": state["critic"], "critic_target": state["critic_target"],
                 "fqe": state}
    result = {
        "algo": algo, "members": members, "agent_seeds": list(job.agent_seeds), "spec": spec.to_json(), "state": state,
        "history": history, "agent_scores": scores, "agent_returns": [float(r) for r in returns],
        "dataset": data_meta, "time_s": {"train": round(train_time, 2), "eval": round(eval_time, 2),
                                        "wall": round(time.time() - started, 2)},
        "updates_per_s": round((iterations - start) / max(train_time, 1e-9), 2),
        "provenance": provenance(device, compiled),
    }
    torch_save(result, out)
    checkpoint.discard()
    return result
