"""`wmaug`: the entrypoints the Snakemake rules call, usable by hand with the same config.

    wmaug validate  [--config config/config.yaml] [--scale smoke]
    wmaug behaviour --env hopper --seed 0 --out resources/smoke/behaviour/hopper/seed0.pt
    wmaug behaviour-select --env hopper --candidates ...seed0.pt ...seed1.pt --out ...behaviour.json
    wmaug dataset   --env hopper --kind medium --out resources/smoke/datasets/hopper/medium.json
    wmaug subsample --env hopper --dataset medium --seed 0 --out ...npz
    wmaug world-model --env hopper --dataset medium --seed 0 --out ...pt
    wmaug cell      --study wmaug --env hopper --dataset medium-replay --method td3bc_td3 --seed 0 [--out DIR]
                    [--tracking none|tensorboard|wandb]
    wmaug export    --backend tensorboard|wandb results/smoke      (finished cells into TensorBoard / offline W&B)
    wmaug pretrain  --algo cql --env hopper --dataset medium --block 0 --out ...pt   (paper B's offline stage)
    wmaug likelihood-shift --env halfcheetah --dataset random --out ...csv            (paper B's Fig 1a)
    wmaug world-model-error --env hopper --dataset random --seed 0 --world-model P --sample P --out-dir D
    wmaug critic-trace --env ant --cells DIR [DIR ...] --out ...csv                   (paper A's Fig 5)
    wmaug report    --study wmaug --cells DIR [DIR ...]
    wmaug claims    [--claims config/claims.yaml] [--out-dir paper_figures/smoke]      (verdicts of every claim)
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
import logging
import os
import sys
from pathlib import Path

import numpy as np

from wmaug.core import config as C
from wmaug.core.allocator import keep_freed_memory
from wmaug.core.errors import InputError, NonFiniteLoss, Preempted, ReportInputError, StorageError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="config/config.yaml", help="YAML (or JSON) config file")
    p.add_argument("--scale", default=None, help="override the config's scale (smoke, quick, paper)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _compile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", default=None, choices=["on", "off"],
                   help="run the learner's losses as compiled graphs (CUDA graphs on a GPU); "
                        "default: $WMAUG_COMPILE, else off")


def _load(args) -> dict:
    return C.load_config(args.config, args.scale)


def cmd_validate(args) -> None:
    cfg = _load(args)
    for study in cfg["studies"]:
        print(f"{study}: {len(C.grid_cells(cfg, study))} cells at scale '{cfg['scale']}'")
    print("config OK")


def cmd_behaviour(args) -> None:
    from wmaug.behaviour import episodes_as_tensors, train_behaviour
    from wmaug.core.io import torch_save

    cfg = _load(args)
    s = C.scale_cfg(cfg)
    out = Path(args.out)
    result = train_behaviour(args.env, s["behaviour_steps"], s["behaviour_start_steps"], s["behaviour_eval_every"],
                             s["behaviour_eval_episodes"], args.seed, cfg["algorithms"]["sac"],
                             progress=not args.no_progress, checkpoint=out.with_suffix(".checkpoint.pt"),
                             checkpoint_every=s["checkpoint_every"])
    result["episodes"] = episodes_as_tensors(result["episodes"])  # weights-only loading admits tensors
    torch_save(result, out)


def cmd_behaviour_select(args) -> None:
    from wmaug.core.io import torch_load, write_json
    from wmaug.data.d4rl_protocol import SELECTION_RULE, select_behaviour

    candidates = []
    for path in args.candidates:
        run = torch_load(path, "behaviour candidate file")
        if run["env"] != args.env:
            raise InputError(f"{path}: a behaviour run of {run['env']!r}, not of --env {args.env!r}")
        candidates.append({"seed": run["seed"], "path": path, "checkpoints": run["checkpoints"]})
    chosen = select_behaviour(candidates)
    record = {"env": args.env, "rule": SELECTION_RULE, "selected_seed": chosen["seed"], "selected_path": chosen["path"],
              "candidates": [{"seed": c["seed"], "path": c["path"], "final_step": c["checkpoints"][-1]["step"],
                              "final_return": c["checkpoints"][-1]["return"]} for c in candidates]}
    logging.getLogger("wmaug").info("behaviour %s: seed %d selected, final returns %s", args.env, chosen["seed"],
                                    {c["seed"]: round(c["final_return"], 1) for c in record["candidates"]})
    write_json(args.out, record)


def _load_behaviour(path: str) -> tuple[dict, dict]:
    """The selected behaviour run of a selection record, and the record."""
    from wmaug.core.io import read_json, torch_load

    from wmaug.behaviour import episodes_as_arrays

    record = read_json(path, "behaviour selection record")
    b = torch_load(record["selected_path"], f"behaviour run selected by {path}")
    b["episodes"] = episodes_as_arrays(b["episodes"])
    return b, record


def cmd_dataset(args) -> None:
    from wmaug.behaviour import sac_policy
    from wmaug.data import d4rl_protocol as P
    from wmaug.data.minari_io import dataset_checksum, write_minari_dataset
    from wmaug.core.io import write_json
    from wmaug.core.provenance import code_version, package_versions

    cfg = _load(args)
    s = C.scale_cfg(cfg)
    env, kind, scale = args.env, args.kind, cfg["scale"]
    n = s["dataset_transitions"]
    progress = not args.no_progress
    info: dict = {"env": env, "kind": kind, "scale": scale}
    sac_hidden = cfg["algorithms"]["sac"]["hidden"]
    reference = None  # the normalised score's pair: D4RL's, unless the dataset is built from sources with their own
    if kind == "random":
        episodes = P.rollout_episodes(env, P.uniform_policy(env, args.seed), n, args.seed, progress, f"{env} random")
    elif kind in ("expert", "medium", "medium-replay"):
        behaviour, selection = _load_behaviour(C.behaviour_path(cfg, env))
        ckpts = behaviour["checkpoints"]
        medium = P.pick_medium(ckpts, behaviour["start_steps"])
        info["behaviour"] = {"path": selection["selected_path"], "seed": behaviour["seed"],
                             "candidates_final_return": {c["seed"]: c["final_return"] for c in selection["candidates"]},
                             "expert_step": ckpts[-1]["step"],
                             "expert_return": ckpts[-1]["return"], "medium_step": medium["step"],
                             "medium_return": medium["return"], "medium_threshold": medium["threshold"],
                             "checkpoint_returns": {c["step"]: c["return"] for c in ckpts}}
        if kind == "medium-replay":
            episodes = P.replay_episodes_until(behaviour, medium["step"])
        else:
            actor = ckpts[-1]["actor"] if kind == "expert" else medium["actor"]
            policy = sac_policy(actor, env, sac_hidden, deterministic=False, seed=args.seed)
            episodes = P.rollout_episodes(env, policy, n, args.seed, progress, f"{env} {kind}")
    elif kind == "medium-expert":
        episodes, info["parts"], reference = P.concatenated_parts(
            {part: C.full_dataset_source(cfg, env, part) for part in ("medium", "expert")}, env, C.minari_root_of)
    else:
        raise ValueError(f"unknown dataset kind {kind!r}")
    info["returns"] = P.dataset_returns(env, kind, episodes, reference)
    warning = P.strength_warning(env, kind, scale, info["returns"])
    if warning:
        logging.getLogger("wmaug").warning(warning)
        info["warning"] = warning
    dataset_id = C.built_minari_id(scale, env, kind)
    path = write_minari_dataset(dataset_id, episodes, env, C.MINARI_ROOT, reference=info["returns"]["reference"],
                                description=f"{kind} data for {env} built by wmaug with the D4RL protocol (scale {scale})",
                                algorithm_name="SAC (D4RL protocol)" if kind != "random" else "uniform random",
                                metadata={k: v for k, v in info.items() if k not in ("behaviour", "returns", "warning")})
    info.update({"dataset_id": dataset_id, "minari_root": C.MINARI_ROOT, "path": str(path),
                 "checksum": dataset_checksum(path), "n_episodes": len(episodes),
                 "n_transitions": int(sum(len(e["actions"]) for e in episodes))})
    # which simulator and library versions made the data (mujoco's physics changes between majors)
    info["provenance"] = {"packages": package_versions(), "code": code_version()}
    write_json(args.out, info)


source_for = C.full_dataset_source  # the user's source for (env, kind), else the built dataset


def cmd_subsample(args) -> None:
    from wmaug.data.minari_io import load_source
    from wmaug.data.sample import ObsNormalizer, subsample_indices
    from wmaug.core.io import atomic_path

    cfg = _load(args)
    source = source_for(cfg, args.env, args.dataset)
    data, prov = load_source(source, args.env, C.minari_root_of(source))
    n = args.n or C.scale_cfg(cfg)["offline_samples"]
    indices = subsample_indices(len(data), n, args.seed, where=source)
    sample = data.take(indices)
    norm = ObsNormalizer.fit(sample.observations)
    with atomic_path(args.out) as tmp:
        with open(tmp, "wb") as f:
            # `indices` (rows of the source) let the world-model error analysis hold out the other rows.
            np.savez(f, **sample.as_dict(), obs_mean=norm.mean, obs_std=norm.std, checksum=sample.checksum(),
                     source=source, source_checksum=prov["checksum"], seed=args.seed, indices=indices,
                     reference=json.dumps(prov["reference"]))
    logging.getLogger("wmaug").info("sample of %d from %s (%d transitions), checksum %s", len(sample), source,
                                    len(data), sample.checksum()[:12])


def cmd_world_model(args) -> None:
    from wmaug.paper_a.world_model import (WorldModelConfig, one_step_error, save_world_model, train_reward_model,
                                         train_world_model)
    from wmaug.data.sample import load_sample

    cfg = _load(args)
    wm = C.world_model_spec(cfg)
    base = WorldModelConfig.authors_code() if wm["variant"] == "authors_code" else WorldModelConfig()
    wm_cfg = WorldModelConfig(**{**base.__dict__, **{k: v for k, v in wm.items() if k in base.__dict__}})
    data, _, meta = load_sample(args.sample or C.sample_path(cfg, args.env, args.dataset, args.seed, args.n))
    extra = {}
    if args.converged:  # the control: early stopping on a held-out split of the sample
        from wmaug.paper_a.world_model import train_converged_world_model

        stopping = C.converged_world_model_spec(cfg)["early_stopping"]
        model, history, record = train_converged_world_model(data, wm_cfg, args.seed, progress=not args.no_progress,
                                                             **stopping)
        wm_cfg = model.cfg = replace(wm_cfg, epochs=record["epochs"])
        extra["early_stopping"] = record
        logging.getLogger("wmaug").info(
            "converged world model: %d epochs (best %d, stopped: %s); held-out MSE %.4g vs copying the state %.4g "
            "(ratio %.3f, z-scored)", record["epochs"], record["best_epoch"], record["stopped"],
            record["heldout_mse_normalized"], record["copy_mse_normalized"], record["ratio_normalized"])
    else:
        model, history = train_world_model(data, wm_cfg, args.seed, progress=not args.no_progress)
    error = one_step_error(model, data)
    # The reward model serves only the k-step rollouts; it is fitted after, and apart from, the VAE.
    reward_model, reward_mse = train_reward_model(data, model, args.seed, epochs=wm_cfg.epochs)
    logging.getLogger("wmaug").info("world model: train one-step MSE %.4g vs copy-the-state %.4g; reward MSE %.4g "
                                    "(reward variance %.4g)", error["model_mse"], error["copy_mse"], reward_mse,
                                    float(data.rewards.var()))
    save_world_model(model, args.out, extra={"history": history, "train_error": error, "sample": meta,
                                             "variant": wm["variant"], "reward_mse": reward_mse, **extra},
                     reward_model=reward_model)


def _spec_json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--spec-json is not valid JSON ({exc}): {text[:80]!r}") from None


def cmd_cell(args) -> None:
    from wmaug.cell import pick_compile, run_cells
    from wmaug.core.spec import cell_spec_from_json
    from wmaug.core.tracking import pick_tracking

    cfg = None
    if args.spec_json:
        specs = _spec_json(args.spec_json)
        specs = [cell_spec_from_json(spec, "--spec-json") for spec in (specs if isinstance(specs, list) else [specs])]
    else:
        cfg = _load(args)
        seeds = range(C.study_seeds(cfg, args.study)) if args.study in cfg["studies"] else None
        for seed in args.seed if seeds is not None else []:
            if seed not in seeds:
                # a folder the grid never aggregates; negative seeds are no seeds at all
                raise InputError(f"--seed {seed}: study '{args.study}' at scale '{cfg['scale']}' runs seeds "
                                 f"{seeds.start}..{seeds.stop - 1} (scales.{cfg['scale']}: seeds / study_seeds)")
        specs = [C.cell_spec(cfg, args.study, args.env, args.dataset, args.method, seed) for seed in args.seed]
        for spec in specs:
            sample = getattr(spec.paths, "sample", None)
            if sample and Path(sample).exists():
                C.check_sample_source(cfg, args.env, args.dataset, sample)
    outs = args.out or [C.cell_dir(_load(args), **spec.to_json()["cell"]) for spec in specs]
    if len(outs) != len(specs):
        raise InputError(f"--out names {len(outs)} folders for {len(specs)} seeds: give one per seed, in order")
    tracking = pick_tracking(args.tracking, args.tracking_dir, cfg)  # an unknown or missing backend fails here
    run_cells(specs, outs, device=args.device, progress=not args.no_progress, compile=pick_compile(args.compile),
              tracking=tracking)


def cmd_export(args) -> None:
    from wmaug.core.tracking import Tracking, check_backend, export

    tracking = Tracking(check_backend(args.backend, "--backend"), args.tracking_dir)
    cells = export(args.results_dir, tracking)
    print(f"exported {len(cells)} finished cell(s) from {args.results_dir} to {args.backend} runs under "
          f"{args.tracking_dir}")


def cmd_pretrain(args) -> None:
    from wmaug.cell import pick_compile, pick_device
    from wmaug.paper_b.pretrain import run_pretrain

    from wmaug.core.spec import PretrainSpec

    spec = PretrainSpec.from_json(_spec_json(args.spec_json), "--spec-json") if args.spec_json else \
        C.pretrain_spec(_load(args), args.algo, args.env, args.dataset, args.block)
    if spec.job.algo == "fqe" and not Path(spec.paths.cql).exists():
        raise FileNotFoundError(f"FQE needs the CQL agents it evaluates: {spec.paths.cql} not found")
    compile = pick_compile(args.compile)  # checked before the dataset is read
    run_pretrain(spec, args.out, pick_device(args.device), progress=not args.no_progress, compile=compile)


def cmd_likelihood_shift(args) -> None:
    from wmaug.paper_b.likelihood_shift import likelihood_shift
    from wmaug.cell import pick_device

    cfg = _load(args)
    likelihood_shift(cfg, args.env, args.dataset, args.agents, args.out, pick_device(args.device), seed=args.seed)


def cmd_world_model_error(args) -> None:
    from wmaug.paper_a.world_model_error import world_model_error
    from wmaug.data.minari_io import load_source
    from wmaug.core.io import write_text
    from wmaug.paper_a.world_model import load_world_model

    cfg = _load(args)
    model, extra = load_world_model(args.world_model)
    with np.load(args.sample) as f:
        if "indices" not in f:
            raise InputError(f"{args.sample}: no `indices` (rows of the source): written by an older `wmaug subsample`;"
                             " delete it and re-run the subsample rule")
        indices = f["indices"]
    source = source_for(cfg, args.env, args.dataset)
    data, _ = load_source(source, args.env, C.minari_root_of(source))
    tables = world_model_error(model, data, indices, C.scale_cfg(cfg)["holdout_samples"], seed=args.seed)
    if "early_stopping" in extra:  # a converged-model control: how long it trained, beside its error
        stop = extra["early_stopping"]
        tables["summary"] = tables["summary"].assign(epochs=stop["epochs"], best_epoch=stop["best_epoch"],
                                                     stopped=stop["stopped"])
    out = Path(args.out_dir)
    for name, table in tables.items():
        write_text(out / f"{name}.csv", table.assign(env=args.env, dataset=args.dataset, seed=args.seed)
                   .to_csv(index=False))
    s = tables["summary"].iloc[0]
    logging.getLogger("wmaug").info("held-out one-step error: %s", s.to_dict())


def cmd_critic_trace(args) -> None:
    from wmaug.paper_a.critic_trace import critic_trace, load_cell_critic, pick_episode, trace_summary
    from wmaug.data.minari_io import load_source
    from wmaug.core.io import write_text
    from wmaug.core.methods import FIG5_CRITICS

    cfg = _load(args)
    part = {method: which for method, which, _ in FIG5_CRITICS}
    critics = []
    for d in args.cells:
        method = json.loads((Path(d) / "summary.json").read_text())["cell"]["method"]
        if method not in part:
            raise InputError(f"{d}: method {method!r} is not one of Fig 5's critics ({', '.join(part)})")
        critics.append(load_cell_critic(d, method, part[method]))
    source = source_for(cfg, args.env, "expert")
    data, _ = load_source(source, args.env, C.minari_root_of(source))
    index, episode = pick_episode(data.episodes(), args.episode, args.episode_seed)
    table = critic_trace(critics, episode, cfg["algorithms"]["td3"]["gamma"])
    drawn = "" if args.episode is not None else args.episode_seed  # which draw chose it (empty: picked by index)
    write_text(args.out, table.assign(env=args.env, episode=index, episode_seed=drawn,
                                      episode_source=source).to_csv(index=False))
    log = logging.getLogger("wmaug")
    log.info("critic traces of %d cells along episode %d (%d steps) of %s", len(critics), index,
             len(episode["rewards"]), source)
    log.info("summary:\n%s", trace_summary(table).to_string(index=False))


def cmd_report(args) -> None:
    from wmaug.report.build import build_study_report

    cfg = _load(args)
    build_study_report(cfg, args.study, [Path(c) for c in args.cells], Path(args.results_out), Path(args.figures_out))


def cmd_claims(args) -> None:
    from wmaug.report.claims import build_claims

    cfg = _load(args)
    out = Path(args.out_dir or C.scale_cfg(cfg)["figures_dir"])
    from wmaug.report.plan import claim_hours

    results = build_claims(cfg, args.claims, out, claim_hours=claim_hours(cfg, args.claims))
    for r in results:
        print(f"{r['id']:>4}  {r['verdict']:<13} {r['says'][:90]}")
    print(f"written: {out / 'claims.md'}, {out / 'claims.json'}, {out / 'claims.rst'}")


def cmd_regenerate(args) -> None:
    """Every study's tables and figures, then the claims' verdicts, from the finished cells already in the scale's
    results_dir (their curve.csv and summary.json, and the analyses' CSVs): what the report and claims rules do,
    without the DAG and its datasets. How the committed evidence run is re-drawn on a fresh clone."""
    from wmaug.report.build import build_study_report
    from wmaug.report.claims import build_claims
    from wmaug.report.plan import claim_hours

    cfg = _load(args)
    s = C.scale_cfg(cfg)
    for study in cfg["studies"]:
        cells = [C.cell_dir(cfg, study, c["env"], c["dataset"], c["method"], c["seed"]) for c in C.grid_cells(cfg, study)]
        done = [Path(d) for d in cells if (Path(d) / "summary.json").is_file()]
        print(f"{study}: {len(done)} of {len(cells)} cells finished in {s['results_dir']}/{study}")
        build_study_report(cfg, study, done, Path(s["results_dir"]) / study, Path(s["figures_dir"]))
    out = Path(s["figures_dir"])
    for r in build_claims(cfg, args.claims, out, claim_hours=claim_hours(cfg, args.claims)):
        print(f"{r['id']:>4}  {r['verdict']:<13} {r['says'][:90]}")
    print(f"written: {out}")


def cmd_claim(args) -> None:
    from wmaug.report.claim_targets import audit_claim

    cfg = _load(args)
    out = Path(args.out_dir or Path(C.scale_cfg(cfg)["figures_dir"]) / "claims" / args.claim)
    r = audit_claim(cfg, args.claims, args.claim, out)
    print(f"{r['id']:>4}  {r['verdict']:<13} {r['says'][:90]}")
    print(f"written: {out / 'claims.md'}, {out / 'claims.json'}, {out / 'claims.rst'}")


def cmd_plan(args) -> None:
    from wmaug.report.plan import plan, plan_text

    cfg = _load(args)
    p = plan(cfg, args.claim or cfg.get("claims"), args.device, args.rates, args.claims, cores=args.cores)
    print(plan_text(p))
    if args.json:
        from wmaug.core.io import write_json

        write_json(args.json, p)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wmaug", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check the config and print the grid size")
    _common(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("behaviour", help="train the behaviour SAC of the D4RL protocol")
    _common(p)
    p.add_argument("--env", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_behaviour)

    p = sub.add_parser("behaviour-select", help="pick the behaviour run an env's datasets come from (docs/datasets.md)")
    _common(p)
    p.add_argument("--env", required=True)
    p.add_argument("--candidates", nargs="+", required=True, help="behaviour runs of the env, one per seed")
    p.add_argument("--out", required=True, help="the selection record (JSON)")
    p.set_defaults(func=cmd_behaviour_select)

    p = sub.add_parser("dataset", help="build one D4RL-protocol dataset as a Minari dataset")
    _common(p)
    p.add_argument("--env", required=True)
    p.add_argument("--kind", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="marker JSON written once the dataset is complete")
    p.set_defaults(func=cmd_dataset)

    p = sub.add_parser("subsample", help="a cell's seeded offline sample and its normalisation statistics")
    _common(p)
    p.add_argument("--env", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--n", type=int, default=None, help="transitions (default: the scale's offline_samples)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_subsample)

    p = sub.add_parser("world-model", help="train paper A's world model on a cell's sample")
    _common(p)
    p.add_argument("--env", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--n", type=int, default=None, help="the sample's size (default: the scale's offline_samples)")
    p.add_argument("--sample", default=None, help="sample .npz (default: the config's path)")
    p.add_argument("--converged", action="store_true", help="the converged-model control: train until the held-out "
                   "error stops falling (algorithms.world_model_converged) instead of the scale's epochs")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_world_model)

    p = sub.add_parser("cell", help="run one (study, env, dataset, method, seed) cell, or several seeds of it as one job")
    _common(p)
    for key in ("study", "env", "dataset", "method"):
        p.add_argument(f"--{key}")
    p.add_argument("--seed", type=int, nargs="+",
                   help="one seed, or several: paper A trains them side by side as one batched computation")
    p.add_argument("--spec-json", default=None,
                   help="a resolved cell spec, or a JSON list of one cell's specs for several seeds (what Snakemake passes)")
    p.add_argument("--out", default=None, nargs="+", help="result folder per seed, in order (default: the config's)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    _compile_arg(p)
    p.add_argument("--tracking", default=None, metavar="BACKEND",
                   help="also log each evaluation row to none, tensorboard or wandb (offline); default: "
                        "$WMAUG_TRACKING, else the config's tracking.backend when no --spec-json, else none")
    p.add_argument("--tracking-dir", default=None,
                   help="where the backend's runs go; default: $WMAUG_TRACKING_DIR, else the config's tracking.dir, "
                        "else logs/tracking")
    p.set_defaults(func=cmd_cell)

    p = sub.add_parser("export", help="replay finished cells (curve.csv, summary.json) into TensorBoard or W&B (offline)")
    p.add_argument("--backend", required=True, help="tensorboard or wandb")
    p.add_argument("--tracking-dir", default="logs/tracking", help="where the runs go (default: logs/tracking, as for "
                                                                   "a running cell's)")
    p.add_argument("results_dir", help="a folder of finished cells, e.g. results/evidence or one study's folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("pretrain", help="paper B's offline stage: one block of batched agents (or FQE critics)")
    _common(p)
    p.add_argument("--algo")
    p.add_argument("--env")
    p.add_argument("--dataset")
    p.add_argument("--block", type=int)
    p.add_argument("--spec-json", default=None, help="a resolved pre-training spec (what the Snakemake rule passes)")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    _compile_arg(p)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("likelihood-shift", help="Fig 1a: VAE log-likelihood of offline vs a CQL agent's online (s, a)")
    _common(p)
    p.add_argument("--env", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--agents", required=True, help="the pre-trained CQL block whose first agent collects online samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.set_defaults(func=cmd_likelihood_shift)

    p = sub.add_parser("world-model-error", help="held-out one-step error of a world model (paper A analysis)")
    _common(p)
    p.add_argument("--env", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--world-model", required=True)
    p.add_argument("--sample", required=True, help="the sample .npz the model was trained on (its `indices`)")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_world_model_error)

    p = sub.add_parser("critic-trace", help="paper A's Fig 5: critics' Q along one expert episode")
    _common(p)
    p.add_argument("--env", required=True)
    p.add_argument("--cells", nargs="+", required=True, help="finished cells of Fig 5's methods")
    p.add_argument("--episode", type=int, default=None,
                   help="episode index (default: a full-length one drawn at random with --episode-seed)")
    p.add_argument("--episode-seed", type=int, default=0, help="the draw's seed, recorded in the table (default 0)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_critic_trace)

    p = sub.add_parser("report", help="aggregate finished cells with rliable and draw the study's figures")
    _common(p)
    p.add_argument("--study", required=True)
    p.add_argument("--cells", nargs="+", required=True)
    p.add_argument("--results-out", required=True)
    p.add_argument("--figures-out", required=True)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("claims", help="check every claim of the claims file against the aggregated results")
    _common(p)
    p.add_argument("--claims", default="config/claims.yaml", help="the claims file (YAML)")
    p.add_argument("--out-dir", default=None, help="where claims.md/.json/.rst go (default: the scale's figures_dir)")
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("regenerate", help="every study's tables and figures and the claims' verdicts from the finished "
                                          "cells in the scale's results_dir (no DAG, no datasets): docs/evidence.md")
    _common(p)
    p.add_argument("--claims", default="config/claims.yaml", help="the claims file (YAML)")
    p.set_defaults(func=cmd_regenerate)

    p = sub.add_parser("claim", help="one claim on its own: a report of only the cells it reads, then its verdict")
    _common(p)
    p.add_argument("--claim", required=True, metavar="ID")
    p.add_argument("--claims", default="config/claims.yaml", help="the claims file (YAML)")
    p.add_argument("--out-dir", default=None, help="default: <figures_dir>/claims/<ID>")
    p.set_defaults(func=cmd_claim)

    p = sub.add_parser("plan", help="jobs, updates, environment steps and hours of the DAG (or of named claims), "
                                    "without running anything")
    _common(p)
    p.add_argument("--claim", nargs="+", default=None, metavar="ID", help="only what these claims' checks read")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="whose measured rates: core-hours or GPU-hours")
    p.add_argument("--rates", default=None, help="a benchmarks/speed.py JSON (default: config/rates.yaml)")
    p.add_argument("--claims", default="config/claims.yaml", help="the claims file (YAML)")
    p.add_argument("--cores", type=int, default=8, help="job slots the wall-clock estimate schedules on (default 8)")
    p.add_argument("--json", default=None, help="also write the plan as JSON here")
    p.set_defaults(func=cmd_plan)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s", datefmt="%H:%M:%S")
    keep_freed_memory()  # training allocates the same large activations every update (wmaug/core/allocator.py)
    if getattr(args, "threads", None):  # `export` trains nothing
        import torch

        torch.set_num_threads(args.threads)
    os.environ.setdefault("MINARI_DATASETS_PATH", os.path.abspath(C.MINARI_ROOT))
    if args.command == "pretrain" and not args.spec_json:
        missing = [k for k in ("algo", "env", "dataset", "block") if getattr(args, k) is None]
        if missing:
            parser.error(f"pretrain: give --spec-json or all of --algo --env --dataset --block (missing {missing})")
    if args.command == "cell" and not args.spec_json:
        missing = [k for k in ("study", "env", "dataset", "method", "seed") if getattr(args, k) is None]
        if missing:
            parser.error(f"cell: give --spec-json or all of --study --env --dataset --method --seed (missing {missing})")
    try:
        args.func(args)
    except Preempted as exc:
        print(f"wmaug {args.command}: {exc}", file=sys.stderr)
        sys.exit(143)  # 128 + SIGTERM, as if the signal had ended it: the job failed and a re-run resumes
    except (NonFiniteLoss, StorageError, ReportInputError) as exc:
        print(f"wmaug {args.command}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (InputError, FileNotFoundError) as exc:
        # Bad input: a message, not a traceback.
        print(f"wmaug {args.command}: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
