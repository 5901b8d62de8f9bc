"""Parity suite: each learner of the harness beside the same algorithm from an independent implementation (d3rlpy
2.8.1), on the same MuJoCo task, data, hyperparameters, budget, evaluation protocol and score normalisation.

    python benchmarks/parity.py run --budget hopper            # every pair, 3 seeds a side (hours on 2 cores)
    python benchmarks/parity.py run --budget hopper --pairs td3 sac
    python benchmarks/parity.py report --budget hopper         # table, verdicts and figure from what finished

Results go to benchmarks/parity/<budget>/: one tidy CSV of evaluations and one JSON (wall time, provenance) per
(pair, side, seed), written when that run finishes, so a stopped suite keeps what it ran and `run` skips what is
there. The offline pairs' data is the harness's own: a behaviour SAC trained by the harness's D4RL-protocol code,
then its rollouts (built once per budget under resources/parity/). benchmarks/README.md: how to install d3rlpy,
the budgets, what could not be matched, and the results.

Pairs (harness side: the code path the harness runs; d3rlpy side: its learner, driven by the loop below with the
harness's buffer, environments and evaluation):
  sac    the behaviour SAC (wmaug.behaviour.train_behaviour)  vs d3rlpy SAC, online
  td3    a `td3` cell (wmaug.cell.run_cells, seeds as one group)      vs d3rlpy TD3, online
  td3bc  a `td3bc_td3` cell's offline phase on a 10K sample           vs d3rlpy TD3PlusBC
  cql    paper B's CQL (CQL(H) on SAC, weight 5, no Lagrange)          vs d3rlpy CQL, automatic alpha off
  awac   paper B's AWAC                                                 vs d3rlpy AWAC
  bcq    paper B's BCQ                                                  vs d3rlpy BCQ
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wmaug.core import config as C  # noqa: E402
from wmaug.data.buffer import ReplayBuffer  # noqa: E402
from wmaug.core.envs import get_spec, make_env, normalized_score  # noqa: E402
from wmaug.core.evaluation import evaluate  # noqa: E402
from wmaug.core.io import torch_load, torch_save, write_json, write_text  # noqa: E402
from parity_lockstep import LOCKSTEP_PAIRS, lockstep  # noqa: E402

log = logging.getLogger("parity")

D3RLPY_VERSION = "2.8.1"
INSTALL = ("pip install --no-deps d3rlpy==2.8.1 && pip install structlog colorama dataclasses-json click gym "
           "scikit-learn   (benchmarks/README.md: d3rlpy pins gymnasium 1.0.0, so it is installed without its "
           "dependencies)")
PAIRS = ("sac", "td3", "td3bc", "cql", "awac", "bcq")
PAIR_TITLES = {"sac": "SAC, online", "td3": "TD3, online", "td3bc": "TD3+BC, offline (10K medium-expert sample)",
               "cql": "CQL, offline (medium)", "awac": "AWAC, offline (medium)", "bcq": "BCQ, offline (medium)"}
SIDES = ("wmaug", "d3rlpy")
# Variants: the harness's side of a pair run with changed settings, compared with that pair's d3rlpy side (not run
# by default). sac_alpha_first: SAC with d3rlpy's temperature rule, the one rule where they differ (lockstep).
# awac_rlkit_std: AWAC's policy log-std kept in rlkit's and d3rlpy's [-6, 0].
VARIANTS = {"sac_alpha_first": ("sac", {"temperature_update": "alpha_before_actor"}),
            "awac_rlkit_std": ("awac", {"min_log_std": -6.0, "max_log_std": 0.0})}
PAIR_TITLES["sac_alpha_first"] = "SAC, online, harness with d3rlpy's temperature rule"
PAIR_TITLES["awac_rlkit_std"] = "AWAC, offline (medium), harness with log-std in [-6, 0]"

# Budgets. `hopper`: what fits about 45 minutes a pair on 2 cores; `toy`: the slow test's, minutes for the suite.
# online: environment steps (uniform-random start steps first, then one update per step); offline: updates.
BUDGETS = {
    "hopper": {
        "env": "hopper", "seeds": 3,
        "behaviour": {"steps": 150_000, "start_steps": 10_000, "eval_every": 10_000, "eval_episodes": 5},
        "dataset_transitions": 100_000,  # per policy: medium and expert; medium-expert is both
        "sample": 10_000,  # TD3+BC's offline sample (paper A's size)
        "online": {"steps": 30_000, "start_steps": 5_000, "eval_every": 2_500, "eval_episodes": 5},
        # cql/awac/bcq: far fewer updates than a paper's, so that 3 seeds a side fit in two hours on 2 cores
        # (d3rlpy's BCQ costs ~0.7 s an update there); enough for the curves to leave the random policy's score
        "offline": {"td3bc": 20_000, "cql": 5_000, "awac": 5_000, "bcq": 2_000},
        "offline_eval_every": {"td3bc": 2_000, "cql": 1_000, "awac": 1_000, "bcq": 500},
        "offline_eval_episodes": 5,
    },
    "toy": {
        "env": "hopper", "seeds": 3,
        "behaviour": {"steps": 1_500, "start_steps": 1_000, "eval_every": 500, "eval_episodes": 1},
        "dataset_transitions": 1_000,
        "sample": 500,
        "online": {"steps": 600, "start_steps": 400, "eval_every": 200, "eval_episodes": 1},
        "offline": {"td3bc": 40, "cql": 10, "awac": 20, "bcq": 10},
        "offline_eval_every": {"td3bc": 20, "cql": 5, "awac": 10, "bcq": 5},
        "offline_eval_episodes": 1,
    },
}


# `hopper_long`: what the 45-minute budgets left open. TD3 at 100K steps (at 30K its curve had not cleared the
# verdict's bar over the random policy), and the behaviour SAC at D4RL's 1M steps, resumable (SIGTERM saves;
# `behaviour-curve` writes its evaluations so far), to find the budget at which its policy is worth validating the
# offline pairs on. Offline pairs: as `hopper`.
BUDGETS["hopper_long"] = {
    **BUDGETS["hopper"],
    "behaviour": {"steps": 1_000_000, "start_steps": 10_000, "eval_every": 10_000, "eval_episodes": 5,
                  "checkpoint_every": 25_000},
    "online": {"steps": 100_000, "start_steps": 5_000, "eval_every": 5_000, "eval_episodes": 5},
}

# `hopper_strong`: the offline pairs on data worth validating on. Its behaviour policy is `hopper_long`'s SAC run
# stopped at 400K steps: `from` names the run, whose evaluations up to `steps` are taken as a finished run of that
# length (the D4RL protocol's expert is a run's last policy; from about 200K steps on this one evaluates clearly above
# the 756 of the 100K-step run). Every offline pair trains on medium-expert, so that the expert's data is there to
# learn from; budgets of updates as `hopper`.
BUDGETS["hopper_strong"] = {
    **BUDGETS["hopper"],
    "behaviour": {"from": "hopper_long", "steps": 400_000, "start_steps": 10_000, "eval_every": 10_000,
                  "eval_episodes": 5},
    "offline_dataset": "medium-expert",
}

# `halfcheetah`: a second environment, where SAC learns fast enough that a behaviour run fitting one session gives
# data far above the random policy (HalfCheetah has no termination: every episode is 1,000 steps). Online pairs at
# `hopper_long`'s 100K steps (at 25K TD3's seeds were still within a few points of the random policy), offline pairs
# with `hopper`'s updates on medium-expert.
BUDGETS["halfcheetah"] = {
    **BUDGETS["hopper_long"],
    "env": "halfcheetah",
    "behaviour": {"steps": 100_000, "start_steps": 10_000, "eval_every": 10_000, "eval_episodes": 5,
                  "checkpoint_every": 25_000},
    "offline_dataset": "medium-expert",
}


def pair_title(pair: str, budget: str) -> str:
    kind = BUDGETS[budget].get("offline_dataset", "medium")
    return PAIR_TITLES[pair].replace("offline (medium)", f"offline ({kind})")


def load_config() -> dict:
    """The harness's own settings: every hyperparameter of both sides comes from here. CQL's per-task network
    override (paper B's 3-layer halfcheetah-medium-expert) is left out: a pair compares two implementations of one
    rule at the same settings, 2x256 on both sides."""
    cfg = C.load_config(ROOT / "config" / "config.yaml", "quick")
    cfg["algorithms"]["cql"].pop("task_overrides", None)
    return cfg


# ---- data: the harness's D4RL-protocol code ------------------------------------------------------------------
def data_dir(budget: str) -> Path:
    return ROOT / "resources" / "parity" / budget / BUDGETS[budget]["env"]


def behaviour(budget: str, progress: bool) -> dict:
    """The behaviour SAC of the D4RL protocol at the budget's steps, trained once (resources/parity/...)."""
    from wmaug.behaviour import train_behaviour

    path = data_dir(budget) / "behaviour.pt"
    if not path.exists() and "from" in BUDGETS[budget]["behaviour"]:
        torch_save(behaviour_prefix(budget), path)
    if not path.exists():
        b = BUDGETS[budget]
        s = b["behaviour"]
        log.info("training the behaviour SAC on %s for %d steps", b["env"], s["steps"])
        resumable = {"checkpoint": behaviour_checkpoint(budget), "checkpoint_every": s["checkpoint_every"]} \
            if "checkpoint_every" in s else {}
        result = train_behaviour(b["env"], s["steps"], s["start_steps"], s["eval_every"], s["eval_episodes"], 0,
                                 load_config()["algorithms"]["sac"], progress=progress, **resumable)
        write_behaviour_curve(budget, result["checkpoints"], result["wall_time_s"], finished=True)
        result["episodes"] = []  # the replay episodes are not needed here (medium-replay is not built)
        torch_save(result, path)
    return torch_load(path, "behaviour policy file")



def behaviour_prefix(budget: str) -> dict:
    """The budget's behaviour run as the first `steps` of another budget's (finished, or stopped on its checkpoint):
    its evaluations up to `steps`, so that the protocol's expert is the policy at `steps`."""
    s = BUDGETS[budget]["behaviour"]
    source = s["from"]
    finished, saved = data_dir(source) / "behaviour.pt", behaviour_checkpoint(source)
    if finished.exists():
        run = torch_load(finished, "behaviour policy file")
    elif saved.exists():
        run = torch_load(saved, "behaviour checkpoint")
    else:
        raise SystemExit(f"budget {budget!r} takes its behaviour policy from budget {source!r}'s run, which has "
                         f"neither {finished} nor {saved} (run `python benchmarks/parity.py behaviour --budget "
                         f"{source}` to at least {s['steps']} steps)")
    ckpts = [c for c in run["checkpoints"] if c["step"] <= s["steps"]]
    if not ckpts or ckpts[-1]["step"] != s["steps"]:
        raise SystemExit(f"budget {budget!r}: budget {source!r}'s behaviour run has no evaluation at step "
                         f"{s['steps']} (its last: {run['checkpoints'][-1]['step'] if run['checkpoints'] else None})")
    log.info("behaviour of %s: budget %s's run up to step %d (return %.1f there)", budget, source, s["steps"],
             ckpts[-1]["return"])
    sac = load_config()["algorithms"]["sac"]
    if run.get("job", {}).get("sac", run.get("sac")) != sac:
        raise SystemExit(f"budget {budget!r}: budget {source!r}'s behaviour run used other SAC settings than "
                         f"config/config.yaml's now; rerun it")
    return {"env": BUDGETS[source]["env"], "seed": 0, "steps": s["steps"], "start_steps": s["start_steps"],
            "checkpoints": ckpts, "episodes": [], "wall_time_s": None, "sac": sac, "taken_from": source}


def behaviour_checkpoint(budget: str) -> Path:
    return data_dir(budget) / "behaviour.ckpt"


def write_behaviour_curve(budget: str, checkpoints: list[dict] | None = None, wall_s: float | None = None,
                          finished: bool = False) -> None:
    """The behaviour SAC's evaluations (step, return, normalised score) as a committed CSV with provenance; while it
    runs (or after SIGTERM), from its last checkpoint."""
    import pandas as pd

    from wmaug.core.provenance import provenance

    if checkpoints is None:
        path = behaviour_checkpoint(budget)
        if not path.exists():
            raise SystemExit(f"no behaviour run of budget {budget!r} to read: {path} does not exist "
                             f"(start one with `python benchmarks/parity.py behaviour --budget {budget}`)")
        state = torch_load(path, "behaviour checkpoint")
        checkpoints, wall_s = state["checkpoints"], state["wall_time_s"]
    b = BUDGETS[budget]
    out = results_dir(budget) / "behaviour"
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([{"step": c["step"], "return": round(c["return"], 1),
                           "normalized_score": round(normalized_score(b["env"], c["return"]), 2)} for c in checkpoints])
    write_text(out / "curve.csv", table.to_csv(index=False))
    write_json(out / "curve.json", {"budget_name": budget, "behaviour": b["behaviour"], "env": b["env"], "seed": 0,
                                    "steps_done": int(table.step.max()) if len(table) else 0, "finished": finished,
                                    "wall_s": round(float(wall_s or 0.0), 1), "sac": load_config()["algorithms"]["sac"],
                                    "provenance": with_machine(provenance(torch.device("cpu")))})
    log.info("behaviour curve of %s: %d evaluations, last %s", budget, len(table),
             table.tail(1).to_dict("records"))


def dataset(budget: str, kind: str, progress: bool = False):
    """`medium` (the first behaviour checkpoint reaching a third of the final return), `expert` (the final policy)
    or `medium-expert` (both), built by the harness's D4RL-protocol code as Minari datasets, and loaded through
    the harness's loader: (Transitions, provenance with the behaviour returns)."""
    from wmaug.behaviour import sac_policy
    from wmaug.data import d4rl_protocol as P
    from wmaug.data.minari_io import load_source, read_minari_episodes, write_minari_dataset

    b, root = BUDGETS[budget], data_dir(budget) / "minari"
    env, cfg = b["env"], load_config()
    dataset_id = f"wmaug-parity-{budget}/{env}/{kind}-v0"
    beh = behaviour(budget, progress)
    ckpts = beh["checkpoints"]
    medium = P.pick_medium(ckpts, beh["start_steps"])
    info = {"behaviour_steps": beh["steps"], "expert_return": ckpts[-1]["return"], "medium_step": medium["step"],
            "medium_return": medium["return"], "checkpoint_returns": {c["step"]: c["return"] for c in ckpts}}
    if not (root / dataset_id.replace("/", os.sep)).exists():
        if kind == "medium-expert":
            episodes = sum((read_minari_episodes(dataset(budget, k)[1]["dataset_id"], root)
                            for k in ("medium", "expert")), [])
        else:
            actor = ckpts[-1]["actor"] if kind == "expert" else medium["actor"]
            policy = sac_policy(actor, env, cfg["algorithms"]["sac"]["hidden"], deterministic=False, seed=0)
            episodes = P.rollout_episodes(env, policy, b["dataset_transitions"], 0, progress, f"{env} {kind}")
        write_minari_dataset(dataset_id, episodes, env, root, description=f"parity suite {kind} data",
                             algorithm_name="SAC (D4RL protocol)", metadata=info)
    data, prov = load_source(f"minari:{dataset_id}", env, root)
    return data, {**prov, **info, "dataset_id": dataset_id, "kind": kind}


def policy_returns(data) -> dict:
    """Mean and spread of the dataset's episode returns (complete episodes only)."""
    ends = np.flatnonzero(np.logical_or(data.terminals > 0, data.timeouts > 0))
    returns = [float(r.sum()) for r in np.split(data.rewards, ends + 1)[:-1]]
    return {"episodes": len(returns), "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns))}


# ---- d3rlpy ----------------------------------------------------------------------------------------------------
def import_d3rlpy():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import d3rlpy
    except ImportError as e:
        raise SystemExit(f"the parity suite needs d3rlpy {D3RLPY_VERSION}, which is not installed: {INSTALL}") from e
    if d3rlpy.__version__ != D3RLPY_VERSION:
        raise SystemExit(f"the parity suite is set up for d3rlpy {D3RLPY_VERSION}, found {d3rlpy.__version__}: "
                         f"{INSTALL}")
    return d3rlpy


def d3rlpy_learner(pair: str, obs_dim: int, act_dim: int, seed: int, settings: dict | None = None):
    """d3rlpy's learner of `pair` with the harness's settings (config/config.yaml's `algorithms`, or `settings`);
    the settings that differ are listed in benchmarks/parity/README.md."""
    d3rlpy = import_d3rlpy()
    from d3rlpy.models.encoders import VectorEncoderFactory
    from d3rlpy.optimizers import AdamFactory

    d3rlpy.seed(seed)
    a = settings or load_config()["algorithms"]
    net = lambda hidden: VectorEncoderFactory(list(hidden))  # noqa: E731
    if pair == "sac":
        s = a["sac"]
        cfg = d3rlpy.algos.SACConfig(batch_size=s["batch_size"], gamma=s["gamma"], tau=s["tau"],
                                     actor_learning_rate=s["actor_lr"], critic_learning_rate=s["critic_lr"],
                                     temp_learning_rate=s["alpha_lr"], initial_temperature=s["init_alpha"],
                                     actor_encoder_factory=net(s["hidden"]), critic_encoder_factory=net(s["hidden"]))
    elif pair in ("td3", "td3bc"):
        t = a["td3"]
        kw = dict(batch_size=t["batch_size"], gamma=t["gamma"], tau=t["tau"], actor_learning_rate=t["actor_lr"],
                  critic_learning_rate=t["critic_lr"], target_smoothing_sigma=t["policy_noise"],
                  target_smoothing_clip=t["noise_clip"], update_actor_interval=t["policy_delay"],
                  actor_encoder_factory=net(t["hidden"]), critic_encoder_factory=net(t["hidden"]))
        cfg = (d3rlpy.algos.TD3Config(**kw) if pair == "td3" else d3rlpy.algos.TD3PlusBCConfig(alpha=t["bc_alpha"], **kw))
    elif pair == "cql":
        from wmaug.algos.cql import CQLConfig

        c, d = a["cql"], CQLConfig()
        # alpha_learning_rate 0: no Lagrange, the conservative weight stays min_q_weight x initial_alpha (1);
        # soft_q_backup: the harness's target keeps SAC's entropy term, as Kumar et al.'s code with backup_entropy
        cfg = d3rlpy.algos.CQLConfig(batch_size=c["batch_size"], gamma=c["gamma"], tau=c["tau"],
                                     actor_learning_rate=c["actor_lr"], critic_learning_rate=c["critic_lr"],
                                     temp_learning_rate=d.alpha_lr, initial_temperature=d.init_alpha,
                                     alpha_learning_rate=0.0, initial_alpha=1.0, conservative_weight=c["min_q_weight"],
                                     n_action_samples=c["n_actions"], soft_q_backup=True,
                                     actor_encoder_factory=net(c["hidden"]), critic_encoder_factory=net(c["hidden"]))
    elif pair == "awac":
        from wmaug.algos.awac import AWACConfig

        w = AWACConfig(**{k: v for k, v in a["awac"].items() if k not in ("batch_size", "pretrain_batch_size")})
        cfg = d3rlpy.algos.AWACConfig(batch_size=a["awac"]["batch_size"], gamma=w.gamma, tau=w.tau, lam=w.beta,
                                      actor_learning_rate=w.actor_lr, critic_learning_rate=w.critic_lr,
                                      # d3rlpy sums the policy loss over the batch where rlkit and the harness
                                      # average it; Adam is blind to the loss's scale but not to its L2 term, so
                                      # the same decay relative to the loss needs the batch size times the rate
                                      actor_optim_factory=AdamFactory(
                                          weight_decay=w.policy_weight_decay * a["awac"]["batch_size"]),
                                      actor_encoder_factory=net(w.policy_hidden), critic_encoder_factory=net(w.hidden))
    elif pair == "bcq":
        from wmaug.algos.bcq import BCQConfig

        q = BCQConfig(**{k: v for k, v in a["bcq"].items() if k != "batch_size"})
        cfg = d3rlpy.algos.BCQConfig(batch_size=a["bcq"]["batch_size"], gamma=q.gamma, tau=q.tau, lam=q.lmbda,
                                     actor_learning_rate=q.actor_lr, critic_learning_rate=q.critic_lr,
                                     imitator_learning_rate=q.vae_lr, action_flexibility=q.phi, beta=q.kl_weight,
                                     n_action_samples=q.n_act, update_actor_interval=1, rl_start_step=0,
                                     actor_encoder_factory=net(q.hidden), critic_encoder_factory=net(q.hidden),
                                     imitator_encoder_factory=net(q.vae_hidden))
    else:
        raise ValueError(pair)
    algo = cfg.create(device="cpu:0")
    algo.create_impl((obs_dim,), act_dim)
    if pair == "awac":
        algo.impl.compute_target = types.MethodType(awac_target_without_entropy, algo.impl)
    return algo, cfg.batch_size


def awac_target_without_entropy(impl, batch):
    """AWAC's target, min_j Q'_j(s', a') with a' ~ pi(.|s'), for d3rlpy's AWACImpl. That class inherits SAC's
    compute_target, which subtracts exp(log_temp) log pi(a'|s') with log_temp a dummy 0: a soft target at
    temperature 1. AWAC has no entropy term (Nair et al. 2020; rlkit's example sets alpha = 0, as the harness does).
    The action is drawn as d3rlpy draws it (its policy's squashed sample), so only the entropy term goes."""
    from d3rlpy.models.torch import build_squashed_gaussian_distribution

    with torch.no_grad():
        dist = build_squashed_gaussian_distribution(impl._modules.policy(batch.next_observations))
        action, _ = dist.sample_with_log_prob()
        return impl._targ_q_func_forwarder.compute_target(batch.next_observations, action, reduction="min")


def d3rlpy_batch(b):
    """A harness minibatch as d3rlpy's TransitionMiniBatch (no copy of the sampling: the same buffer draws it)."""
    from d3rlpy.dataset import TransitionMiniBatch

    arr = lambda t: np.ascontiguousarray(t.numpy(), dtype=np.float32)  # noqa: E731
    n = len(b.rewards)
    return TransitionMiniBatch(observations=arr(b.observations), actions=arr(b.actions),
                               rewards=arr(b.rewards)[:, None], next_observations=arr(b.next_observations),
                               next_actions=np.zeros_like(arr(b.actions)), terminals=arr(b.terminals)[:, None],
                               intervals=np.ones((n, 1), np.float32), transitions=[])


# ---- one run of one side ---------------------------------------------------------------------------------------
def rows_of(steps, returns, env: str, phase: str) -> list[dict]:
    return [{"phase": phase, "step": int(t), "raw_return": float(r), "normalized_score": float(normalized_score(env, r))}
            for t, r in zip(steps, returns)]


def d3rlpy_online(pair: str, budget: str, seed: int, eval_seed: int, eval_at_zero: bool) -> list[dict]:
    """The harness's online protocol around d3rlpy's learner: `start_steps` uniform-random actions, then the
    policy (SAC: a sample; TD3: the actor plus N(0, exploration_noise)), one update per step after the start
    steps, `eval_episodes` deterministic episodes every `eval_every` steps with the harness's evaluation."""
    b = BUDGETS[budget]
    o, env_name = b["online"], b["env"]
    spec = get_spec(env_name)
    algo, batch_size = d3rlpy_learner(pair, spec.obs_dim, spec.act_dim, seed)
    rng = np.random.default_rng(seed)
    env, eval_env = make_env(env_name), make_env(env_name)
    buffer = ReplayBuffer(spec.obs_dim, spec.act_dim, o["steps"])
    noise = load_config()["algorithms"]["td3"]["exploration_noise"]
    greedy = lambda x: algo.predict(np.asarray(x, np.float32)[None])[0]  # noqa: E731
    rows = []

    def evaluation(t):
        rows.extend(rows_of([t], [evaluate(eval_env, greedy, o["eval_episodes"], eval_seed).mean()], env_name, "online"))

    if eval_at_zero:
        evaluation(0)
    obs, _ = env.reset(seed=seed)
    for t in range(1, o["steps"] + 1):
        if t <= o["start_steps"]:
            action = rng.uniform(-1.0, 1.0, spec.act_dim).astype(np.float32)
        elif pair == "sac":
            action = algo.sample_action(np.asarray(obs, np.float32)[None])[0]
        else:
            action = np.clip(greedy(obs) + rng.normal(0.0, noise, spec.act_dim), -1.0, 1.0).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated)
        obs = next_obs if not (terminated or truncated) else env.reset()[0]
        if t > o["start_steps"]:
            algo.update(d3rlpy_batch(buffer.sample(batch_size, rng)))
        if t % o["eval_every"] == 0 or t == o["steps"]:
            evaluation(t)
    return rows


def d3rlpy_offline(pair: str, budget: str, seed: int, data, normalizer, eval_seed: int) -> list[dict]:
    """d3rlpy's offline learner on the same transitions (states normalised as the harness's side normalises
    them, or not at all), minibatches drawn by the harness's buffer."""
    b = BUDGETS[budget]
    env_name = b["env"]
    algo, batch_size = d3rlpy_learner(pair, data.obs_dim, data.act_dim, seed)
    buffer = ReplayBuffer.of(data)
    rng = np.random.default_rng(seed)
    norm = normalizer or (lambda x: x)
    greedy = lambda x: algo.predict(np.asarray(norm(x), np.float32)[None])[0]  # noqa: E731
    eval_env = make_env(env_name)
    updates, every, episodes = b["offline"][pair], b["offline_eval_every"][pair], b["offline_eval_episodes"]
    rows = rows_of([0], [evaluate(eval_env, greedy, episodes, eval_seed).mean()], env_name, "offline")
    for it in range(1, updates + 1):
        batch = buffer.sample(batch_size, rng)
        algo.update(d3rlpy_batch(normalizer.batch(batch) if normalizer else batch))
        if it % every == 0 or it == updates:
            rows += rows_of([it], [evaluate(eval_env, greedy, episodes, eval_seed).mean()], env_name, "offline")
    return rows


def harness_offline(pair: str, budget: str, seeds: list[int], data, eval_seed: int) -> dict[int, list[dict]]:
    """Paper B's learner (`build_agent`, as its pre-training runs it) for all seeds as one batched block: agent i
    draws its own weights and minibatches (tests/test_offline_algos.py: a member equals the agent cut from it)."""
    from wmaug.algos import LOOP_KEYS, build_agent
    from wmaug.core.evaluation import evaluate_members

    b = BUDGETS[budget]
    env_name = b["env"]
    base = VARIANTS.get(pair, (pair,))[0]
    settings = settings_of(pair)
    torch.manual_seed(seeds[0])
    agent = build_agent(base, data.obs_dim, data.act_dim, {k: v for k, v in settings.items() if k not in LOOP_KEYS},
                        len(seeds), "cpu")
    buffer = ReplayBuffer.of(data)
    rng = np.random.default_rng(seeds[0])
    envs = [make_env(env_name) for _ in seeds]
    updates, every, episodes = b["offline"][base], b["offline_eval_every"][base], b["offline_eval_episodes"]

    def act(obs):
        x = torch.as_tensor(obs, dtype=torch.float32).unsqueeze(1)  # (E, 1, d): agent i acts in env i
        return agent.act_members(x, True).squeeze(1).numpy()

    def evaluation(it):
        returns = evaluate_members(envs, act, episodes, eval_seed).mean(1)
        for s, r in zip(seeds, returns):
            rows[s] += rows_of([it], [r], env_name, "offline")

    rows = {s: [] for s in seeds}
    evaluation(0)
    for it in range(1, updates + 1):
        agent.update(buffer.sample(settings.get("batch_size", 256), rng, members=len(seeds)))
        if it % every == 0 or it == updates:
            evaluation(it)
    return rows


def cell_specs(method: str, budget: str, seeds: list[int], work: Path, budget_changes: dict) -> list[dict]:
    """Specs of a paper A cell at the suite's budget, built by the harness's own config code."""
    cfg = load_config()
    task = next(c for c in C.grid_cells(cfg, "wmaug") if c["method"] == method)
    specs = []
    for seed in seeds:
        spec = C.cell_spec(cfg, "wmaug", task["env"], task["dataset"], method, seed).to_json()
        spec["cell"].update(env=BUDGETS[budget]["env"], dataset="parity")
        spec["budget"].update(checkpoint_every=10**9, **budget_changes)
        spec["paths"] = {"sample": str(work / f"sample_seed{seed}.npz") if spec["recipe"]["offline"] else None,
                         "world_model": None}
        spec["config_hash"] = C.config_hash(spec)
        specs.append(spec)
    return specs


def cell_curves(specs: list[dict], work: Path, phase: str) -> dict[int, list[dict]]:
    import pandas as pd

    from wmaug.cell import run_cells

    seeds = [s["cell"]["seed"] for s in specs]
    outs = [work / f"cell_seed{s}" for s in seeds]
    run_cells(specs, outs, device="cpu", progress=False)
    out = {}
    for seed, d in zip(seeds, outs):
        c = pd.read_csv(d / "curve.csv")
        c = c[c.phase == phase]
        out[seed] = rows_of(c.step, c.raw_return, specs[0]["cell"]["env"], phase)
    return out


def write_sample(data, n: int, seed: int, path: Path, source: str, source_checksum: str) -> None:
    """A cell's offline sample as `wmaug subsample` writes it: n uniform rows and their normalisation."""
    from wmaug.data.sample import ObsNormalizer, subsample_indices

    sample = data.take(subsample_indices(len(data), n, seed, where=source))
    norm = ObsNormalizer.fit(sample.observations)
    np.savez(path, **sample.as_dict(), obs_mean=norm.mean, obs_std=norm.std, checksum=sample.checksum(),
             source=source, source_checksum=source_checksum, seed=seed)


def run_pair(pair: str, side: str, budget: str, seeds: list[int], progress: bool) -> tuple[dict[int, list[dict]], dict]:
    """{seed: evaluation rows} of one side of one pair, and what the result should record of its data."""
    import tempfile

    b = BUDGETS[budget]
    env = b["env"]
    o = b["online"]
    info: dict = {}
    with tempfile.TemporaryDirectory(prefix=f"parity_{pair}_") as tmp:
        work = Path(tmp)
        if VARIANTS.get(pair, (pair,))[0] == "sac":
            eval_seed = lambda s: 10_000 + s  # noqa: E731  (train_behaviour's evaluation seeds)
            if side == "wmaug":
                from wmaug.behaviour import train_behaviour

                out = {}
                for s in seeds:
                    r = train_behaviour(env, o["steps"], o["start_steps"], o["eval_every"], o["eval_episodes"], s,
                                        settings_of(pair), progress=progress)
                    out[s] = rows_of([c["step"] for c in r["checkpoints"]], [c["return"] for c in r["checkpoints"]],
                                     env, "online")
                return out, info
            return {s: d3rlpy_online("sac", budget, s, eval_seed(s), eval_at_zero=False) for s in seeds}, info
        if pair == "td3":
            if side == "wmaug":
                specs = cell_specs("td3", budget, seeds, work, {
                    "online_steps": o["steps"], "online_start_steps": o["start_steps"], "eval_every": o["eval_every"],
                    "eval_episodes": o["eval_episodes"]})
                return cell_curves(specs, work, "online"), info
            return {s: d3rlpy_online("td3", budget, s, 1_000_000 + 1000 * s, eval_at_zero=True) for s in seeds}, info
        if pair == "td3bc":
            from wmaug.data.sample import load_sample

            data, prov = dataset(budget, "medium-expert", progress)
            info["data"] = {**{k: v for k, v in prov.items() if k != "checkpoint_returns"}, **policy_returns(data),
                            "sample": b["sample"]}
            for s in seeds:
                write_sample(data, b["sample"], s, work / f"sample_seed{s}.npz", prov["source"], prov["checksum"])
            if side == "wmaug":
                # the cell's offline phase; one online step without updates closes the cell
                specs = cell_specs("td3bc_td3", budget, seeds, work, {
                    "offline_iterations": b["offline"]["td3bc"], "eval_every": b["offline_eval_every"]["td3bc"],
                    "eval_episodes": b["offline_eval_episodes"], "online_steps": 1, "online_start_steps": 1,
                    "offline_samples": b["sample"]})
                return cell_curves(specs, work, "offline"), info
            out = {}
            for s in seeds:
                sample, normalizer, _ = load_sample(work / f"sample_seed{s}.npz")
                out[s] = d3rlpy_offline("td3bc", budget, s, sample, normalizer, 1_000_000 + 1000 * s)
            return out, info
        # paper B's offline learners on the full medium dataset (the budget's `offline_dataset`), unnormalised states
        # as paper B trains them
        data, prov = dataset(budget, b.get("offline_dataset", "medium"), progress)
        info["data"] = {**{k: v for k, v in prov.items() if k != "checkpoint_returns"}, **policy_returns(data)}
        if side == "wmaug":
            return harness_offline(pair, budget, seeds, data, 2_000_000), info
        return {s: d3rlpy_offline(pair, budget, s, data, None, 2_000_000) for s in seeds}, info


RESULTS = ROOT / "benchmarks" / "parity"  # --out moves it (the slow test writes its toy suite elsewhere)


def results_dir(budget: str) -> Path:
    return RESULTS / budget


def claimed_elsewhere(marker: Path) -> bool:
    """Whether another live suite process is running this side (two processes can share the pairs)."""
    if marker.exists():
        try:
            os.kill(int(marker.read_text()), 0)
            return True
        except (ValueError, ProcessLookupError):
            pass
    marker.write_text(str(os.getpid()))
    return False


def part_name(side: str, seeds: list[int], default: list[int]) -> str:
    """The file stem of one run of a side: `<side>` for the budget's own seeds, `<side>_seeds<a>-<b>` for seeds added
    later (`run --seeds`), so that more seeds extend a committed result instead of replacing it."""
    if seeds == default:
        return side
    if len(set(seeds)) != len(seeds) or set(seeds) & set(default):
        raise SystemExit(f"--seeds {seeds}: extra seeds must be distinct and outside the budget's own {default}")
    return f"{side}_seeds{min(seeds)}-{max(seeds)}"  # no dot: stems take suffixes


def side_parts(pair_dir: Path, side: str) -> list[Path]:
    """Every finished part of a side (its budget's seeds first, then parts added with `run --seeds`), as stems."""
    stems = [pair_dir / side] + sorted(pair_dir.glob(f"{side}_seeds*.json"))
    return [p.with_suffix("") if p.suffix == ".json" else p for p in stems
            if p.with_suffix(".json").exists() and p.with_suffix(".csv").exists()]


def run(budget: str, pairs: list[str], progress: bool, sides: tuple[str, ...] = SIDES,
        extra_seeds: list[int] | None = None) -> None:
    import pandas as pd

    from wmaug.core.provenance import provenance

    b = BUDGETS[budget]
    default = list(range(b["seeds"]))
    seeds = extra_seeds or default
    name = {side: part_name(side, seeds, default) for side in sides}  # checks --seeds before any compute
    if "d3rlpy" in sides:
        import_d3rlpy()  # fail before any compute when it is missing
    out = results_dir(budget)
    out.mkdir(parents=True, exist_ok=True)
    for pair in pairs:
        for side in sides:
            if pair in VARIANTS and side != "wmaug":
                log.info("%s: its d3rlpy side is %s's", pair, VARIANTS[pair][0])
                continue
            stem = out / pair / name[side]
            if (stem.with_suffix(".json")).exists():
                log.info("%s %s: done already (%s)", pair, side, stem.with_suffix(".json"))
                continue
            stem.parent.mkdir(parents=True, exist_ok=True)
            marker = stem.with_suffix(".running")
            if claimed_elsewhere(marker):
                log.info("%s %s: another process runs it (%s)", pair, side, marker)
                continue
            log.info("%s %s: seeds %s", pair, side, seeds)
            t0 = time.time()
            curves, info = run_pair(pair, side, budget, seeds, progress)
            wall = time.time() - t0
            table = pd.DataFrame([{"pair": pair, "side": side, "seed": s, **row} for s in seeds for row in curves[s]])
            write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
            write_json(stem.with_suffix(".json"), {
                "pair": pair, "side": side, "seeds": seeds, "budget_name": budget, "budget": budget_of(budget, pair),
                "wall_s": round(wall, 1), "d3rlpy": D3RLPY_VERSION if side == "d3rlpy" else None,
                "settings": settings_of(pair), **info,
                "provenance": with_machine(provenance(torch.device("cpu")))})
            last = table[table.step == table.step.max()]
            marker.unlink()
            log.info("%s %s: %.0f s, final normalised scores %s", pair, side, wall,
                     ", ".join(f"{v:.1f}" for v in last.normalized_score))


def budget_of(budget: str, pair: str) -> dict:
    b = BUDGETS[budget]
    if VARIANTS.get(pair, (pair,))[0] in ("sac", "td3"):
        return {"env": b["env"], **b["online"]}
    pair = VARIANTS.get(pair, (pair,))[0]
    return {"env": b["env"], "updates": b["offline"][pair], "eval_every": b["offline_eval_every"][pair],
            "eval_episodes": b["offline_eval_episodes"]}


def settings_of(pair: str) -> dict:
    a = load_config()["algorithms"]
    base, changes = VARIANTS.get(pair, (pair, {}))
    return {"sac": a["sac"], "td3": a["td3"], "td3bc": a["td3"], "cql": a["cql"], "awac": a["awac"],
            "bcq": a["bcq"]}[base] | changes


def with_machine(prov: dict) -> dict:
    """The harness's provenance (code version, packages, machine) with the CPU model and thread count added."""
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?") \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    machine = prov.get("machine")
    machine = machine if isinstance(machine, dict) else {"platform": machine}
    return {**prov, "machine": {**machine, "cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads()}}


# ---- paper A's world model: held-out one-step error against copying the state ---------------------------------
def world_model_study(budget: str, seeds: list[int], epochs: int, every: int, latent_target: str | None = None) -> None:
    """Paper A's world model at the protocol's settings (config/config.yaml: lr 1e-4, batch 4096, 300 epochs on a
    10K sample, about 900 Adam steps), trained on the medium-expert sample of each seed, its deterministic one-step
    error measured every `every` epochs on the sample and on 10K held-out rows of the same dataset, beside the
    copy-the-state baseline MSE(s, s'). States z-scored with the sample's statistics (each dimension weighs the
    same; `one_step_error`'s *_normalized keys). `latent_target` (stop_gradient or end_to_end) sets the latent
    loss's target against the config's choice; results then go to `world_model_<latent_target>/`, so that the two
    can be compared on the same samples (docs/protocol.md, the world model's latent loss)."""
    import pandas as pd

    from wmaug.data.sample import subsample_indices
    from wmaug.paper_a.world_model import WorldModelConfig, one_step_error, train_world_model
    from wmaug.core.provenance import provenance

    cfg = load_config()
    wm = cfg["algorithms"]["world_model"]
    base = WorldModelConfig.authors_code() if wm["variant"] == "authors_code" else WorldModelConfig()
    if latent_target is not None:
        wm = {**wm, "latent_target": latent_target}
    data, prov = dataset(budget, "medium-expert")
    n = BUDGETS[budget]["sample"]
    rows = []
    for seed in seeds:
        train_rows = subsample_indices(len(data), n, seed)
        rest = np.setdiff1d(np.arange(len(data)), train_rows)
        held_rows = rest[np.sort(np.random.default_rng(10_000 + seed).permutation(len(rest))[:n])]
        train, held = data.take(train_rows), data.take(held_rows)
        wm_cfg = WorldModelConfig(**{**base.__dict__, **{k: v for k, v in wm.items() if k in base.__dict__},
                                     "epochs": epochs})
        t0 = time.time()

        def measure(epoch, model):
            if epoch % every and epoch != 1:
                return
            tr, ho = one_step_error(model, train), one_step_error(model, held)
            rows.append({"seed": seed, "epoch": epoch, "adam_steps": epoch * model.train_info["batches_per_epoch"],
                         "train_mse": tr["model_mse_normalized"], "heldout_mse": ho["model_mse_normalized"],
                         "train_copy_mse": tr["copy_mse_normalized"], "heldout_copy_mse": ho["copy_mse_normalized"],
                         "heldout_ratio": ho["ratio_normalized"], "train_mse_raw": tr["model_mse"],
                         "heldout_mse_raw": ho["model_mse"], "heldout_copy_mse_raw": ho["copy_mse"],
                         "wall_s": round(time.time() - t0, 1)})
            log.info("world model seed %d epoch %d: held-out MSE %.4f (copy %.4f), train %.4f", seed, epoch,
                     ho["model_mse_normalized"], ho["copy_mse_normalized"], tr["model_mse_normalized"])

        train_world_model(train, wm_cfg, seed, after_epoch=measure)
        out = results_dir(budget) / ("world_model" if latent_target is None else f"world_model_{latent_target}")
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "error_by_epoch.csv", pd.DataFrame(rows).to_csv(index=False, float_format="%.5f"))
        write_json(out / "provenance.json", {"data": {k: v for k, v in prov.items() if k != "checkpoint_returns"},
                                             "world_model": {**wm, "epochs": epochs}, "sample": n, "seeds": seeds,
                                             "provenance": with_machine(provenance(torch.device("cpu")))})

# ---- report ----------------------------------------------------------------------------------------------------
FINAL_EVALS = 3  # a run's final score: the mean of its last 3 evaluations (5 episodes each are noisy on Hopper)
RANDOM_MARGIN = 5.0  # "clearly beats a random policy": the lower end of its interval 5 normalised points above
REPS = 2000


def lockstep_report(budget: str, pairs: list[str], updates: int) -> None:
    """The lockstep check of each pair (benchmarks/parity_lockstep.py): the largest weight difference between the
    two sides after 1, 10, ..., `updates` updates, written to <results>/lockstep.csv."""
    import pandas as pd

    rows = []
    variants = {"": {}, " (temperature fixed)": {"fixed_temperature": True},
                " (d3rlpy's temperature rule)": {"temperature_update": "alpha_before_actor"}}
    runs = [(pair, "", {}) for pair in pairs if pair != "sac"]
    runs = [("sac", label, kw) for label, kw in variants.items()] * ("sac" in pairs) + runs
    for pair, label, kw in runs:
        diffs = lockstep(pair, updates, load_config()["algorithms"], d3rlpy_learner, d3rlpy_batch, **kw)
        name = pair + label
        for n in sorted({1, 10, 50, updates} & set(range(1, updates + 1))):
            rows.append({"pair": name, "updates": n, "max_weight_difference": diffs[n - 1]})
            log.info("lockstep %s after %d updates: largest weight difference %.2e", name, n, diffs[n - 1])
    table = pd.DataFrame(rows)
    write_text(results_dir(budget) / "lockstep.csv", table.to_csv(index=False))
    print(table.to_string(index=False))


def random_policy_score(env: str, episodes: int = 20) -> float:
    rng = np.random.default_rng(0)
    spec = get_spec(env)
    returns = evaluate(make_env(env), lambda o: rng.uniform(-1, 1, spec.act_dim).astype(np.float32), episodes, 3_000_000)
    return float(normalized_score(env, returns.mean()))


def final_scores(table) -> dict[int, float]:
    out = {}
    for seed, runs in table.groupby("seed"):
        out[int(seed)] = float(runs.sort_values("step").normalized_score.iloc[-FINAL_EVALS:].mean())
    return out


def compare(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    """IQM of each side with rliable's 95% stratified-bootstrap interval, and the interval of the difference
    IQM(x) - IQM(y), the two sides resampled independently (rliable's StratifiedIndependentBootstrap)."""
    from rliable import library as rly

    from wmaug.report.aggregate import iqm

    out = {}
    for name, v in (("wmaug", x), ("d3rlpy", y)):
        point, ci = rly.get_interval_estimates({name: v[:, None]}, lambda s: np.array([iqm(s)]), reps=REPS,
                                               random_state=np.random.RandomState(seed))
        out[name] = (float(point[name][0]), float(ci[name][0, 0]), float(ci[name][1, 0]))
    boot = rly.StratifiedIndependentBootstrap(x[:, None], y[:, None], random_state=np.random.RandomState(seed))
    low, high = boot.conf_int(lambda a, b: np.array([iqm(a) - iqm(b)]), reps=REPS, size=0.95, method="percentile")[:, 0]
    out["difference"] = (float(iqm(x) - iqm(y)), float(low), float(high))
    return out


def verdict(c: dict, random_score: float) -> str:
    above = [c[s][1] > random_score + RANDOM_MARGIN for s in SIDES]
    _, low, high = c["difference"]
    if high < 0:
        return "harness worse"
    if not all(above):
        return "inconclusive: " + " and ".join(s for s, a in zip(SIDES, above) if not a) + " not clearly above random"
    return "parity (harness better)" if low > 0 else "parity"


def report(budget: str) -> None:
    import pandas as pd

    out = results_dir(budget)
    env = BUDGETS[budget]["env"]
    random_score = random_policy_score(env)
    rows, curves = [], {}
    for pair in PAIRS + tuple(VARIANTS):
        parts = {"wmaug": side_parts(out / pair, "wmaug"),
                 "d3rlpy": side_parts(out / VARIANTS.get(pair, (pair,))[0], "d3rlpy")}
        if not all(parts.values()):
            continue
        tables = {side: pd.concat([pd.read_csv(p.with_suffix(".csv")) for p in ps], ignore_index=True)
                  for side, ps in parts.items()}
        # wall time of a side: summed over its parts (each part ran its seeds in one process)
        meta = {side: {"wall_s": sum(json.loads(p.with_suffix(".json").read_text())["wall_s"] for p in ps)}
                for side, ps in parts.items()}
        scores = {side: final_scores(t) for side, t in tables.items()}
        c = compare(np.array(list(scores["wmaug"].values())), np.array(list(scores["d3rlpy"].values())))
        rows.append({"pair": pair, **{f"{s}_iqm": c[s][0] for s in SIDES}, **{f"{s}_ci": f"[{c[s][1]:.1f}, {c[s][2]:.1f}]"
                                                                           for s in SIDES},
                     "difference": c["difference"][0], "difference_ci": f"[{c['difference'][1]:.1f}, {c['difference'][2]:.1f}]",
                     "seeds": f"{len(scores['wmaug'])} / {len(scores['d3rlpy'])}",
                     "wmaug_finals": " ".join(f"{v:.1f}" for v in scores["wmaug"].values()),
                     "d3rlpy_finals": " ".join(f"{v:.1f}" for v in scores["d3rlpy"].values()),
                     "wall_min": f"{meta['wmaug']['wall_s'] / 60:.0f} / {meta['d3rlpy']['wall_s'] / 60:.0f}",
                     "verdict": verdict(c, random_score)})
        curves[pair] = tables
    if not rows:
        raise SystemExit(f"no finished pair under {out}: run `python benchmarks/parity.py run --budget {budget}` first")
    summary = pd.DataFrame(rows)
    write_text(out / "summary.csv", summary.to_csv(index=False, float_format="%.2f"))
    lines = [f"Final normalised score (mean of the last {FINAL_EVALS} evaluations of a run), IQM over seeds with "
             f"rliable's 95% stratified-bootstrap interval; difference = IQM(wmaug) - IQM(d3rlpy). Random policy: "
             f"{random_score:.1f}.", "",
             "| pair | wmaug IQM [95% CI] | d3rlpy IQM [95% CI] | difference [95% CI] | seeds | wall min (wmaug / d3rlpy) | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['pair']} | {r['wmaug_iqm']:.1f} {r['wmaug_ci']} | {r['d3rlpy_iqm']:.1f} {r['d3rlpy_ci']} | "
                     f"{r['difference']:.1f} {r['difference_ci']} | {r['seeds']} | {r['wall_min']} | {r['verdict']} |")
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(curves, out / "curves.png", random_score, budget)


def plot(curves: dict, path: Path, random_score: float, budget: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(curves))
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.flat[len(curves):]:
        ax.set_visible(False)
    for ax, (pair, tables) in zip(axes.flat, curves.items()):
        for side, colour in zip(SIDES, ("tab:blue", "tab:orange")):
            t = tables[side].pivot_table(index="step", columns="seed", values="normalized_score")
            ax.plot(t.index, t.mean(1), color=colour, label=f"{side} (mean of {t.shape[1]} seeds)")
            ax.fill_between(t.index, t.min(1), t.max(1), color=colour, alpha=0.2, lw=0)
        ax.axhline(random_score, color="grey", ls=":", lw=1, label="random policy")
        phase = tables["wmaug"].phase.iloc[0]
        ax.set_title(pair_title(pair, budget), fontsize=9)
        ax.set_xlabel("environment steps" if phase == "online" else "updates")
        ax.set_ylabel("normalised score")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Harness vs d3rlpy: mean over seeds, band = min..max", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "report", "behaviour", "behaviour-curve", "world-model", "lockstep"):
        p = sub.add_parser(name)
        p.add_argument("--budget", default="hopper", choices=sorted(BUDGETS))
        p.add_argument("--out", default=None, help="results root instead of benchmarks/parity")
        if name == "run":
            p.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=PAIRS + tuple(VARIANTS))
            p.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
            p.add_argument("--no-progress", action="store_true")
            p.add_argument("--seeds", nargs="+", type=int, default=None,
                           help="extra seeds beyond the budget's own, written beside them as <side>_seeds<a>-<b>")
        if name == "lockstep":
            p.add_argument("--pairs", nargs="+", default=list(LOCKSTEP_PAIRS), choices=LOCKSTEP_PAIRS)
            p.add_argument("--updates", type=int, default=100)
        if name == "world-model":
            p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
            p.add_argument("--epochs", type=int, default=300, help="300: the protocol's")
            p.add_argument("--every", type=int, default=25, help="measure every this many epochs")
            p.add_argument("--latent-target", default=None, choices=["stop_gradient", "end_to_end"],
                           help="the latent loss's target (default: the config's); results in world_model_<it>/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)  # one core a process: pairs can run side by side
    if args.out:
        global RESULTS
        RESULTS = Path(args.out)
    if args.command == "run":
        run(args.budget, args.pairs, progress=not args.no_progress, sides=tuple(args.sides), extra_seeds=args.seeds)
    elif args.command == "behaviour":
        from wmaug.core.errors import Preempted

        try:
            behaviour(args.budget, progress=True)
        except Preempted as exc:  # SIGTERM: the checkpoint is saved; keep what the run has shown so far
            log.warning("%s", exc)
            write_behaviour_curve(args.budget)
            raise SystemExit(143)
    elif args.command == "behaviour-curve":
        write_behaviour_curve(args.budget)
    elif args.command == "lockstep":
        lockstep_report(args.budget, args.pairs, args.updates)
    elif args.command == "world-model":
        world_model_study(args.budget, args.seeds, args.epochs, args.every, args.latent_target)
    else:
        report(args.budget)


if __name__ == "__main__":
    main()
