"""One (study, env, dataset, method, seed) cell: checks its inputs, runs the pipeline, writes its results.

Outputs in the cell folder: curve.csv (one row per evaluation), model.pt (final networks) and summary.json,
written last: a folder without summary.json is unfinished, whatever else it holds. While it runs, the folder's
curve.partial.csv shows the rows so far (deleted once summary.json is written; `wmaug.core.tracking`).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from wmaug.algos import compile_agent
from wmaug.core.errors import InputError
from wmaug.core.io import storage_error, torch_save, write_json, write_text
from wmaug.core.papers import paper
from wmaug.core.runner import check_seed_group
from wmaug.core.spec import CellSpec, cell_spec_from_json
from wmaug.core.preemption import sigterm_handler_restored
from wmaug.core.provenance import provenance
from wmaug.core.tracking import Tracking, curve_csv, open_tracker

log = logging.getLogger("wmaug.cell")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


COMPILE_ENV = "WMAUG_COMPILE"


def pick_compile(choice: str | None = None) -> bool:
    """Whether learners run their losses as compiled graphs (`wmaug.core.nets.compile_loss`): the `--compile` flag, else
    the environment variable WMAUG_COMPILE (so a Snakemake run or a cluster profile switches it without changing any
    rule), else off. Compiling costs 5-30 s per learner at start; on a CPU it pays only for CQL (benchmarks/)."""
    source = "--compile"
    if choice is None:
        choice, source = os.environ.get(COMPILE_ENV, "off"), f"environment variable {COMPILE_ENV}"
    if choice not in ("on", "off"):
        raise InputError(f"{source} must be on or off, got {choice!r}")
    return choice == "on"


def check_writable(out_dir: Path) -> None:
    """Make the result folder and write a probe in it: a folder the job cannot write to fails here, not at the
    first checkpoint after minutes of training."""
    probe = out_dir / ".write-probe"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise storage_error(out_dir / "result files", exc) from exc


def check_inputs(spec: CellSpec) -> None:
    """Fail before any compute when an input file is missing."""
    recipe, paths = spec.recipe, spec.paths
    needed = []
    if getattr(recipe, "offline", False):
        needed.append(("offline sample", paths.sample))
    if getattr(recipe, "augment", False):
        needed.append(("world model", paths.world_model))
    if getattr(recipe, "pretrain", None):
        needed.append(("pre-trained agents", paths.pretrained))
    for what, path in needed:
        if not Path(path).exists():
            raise FileNotFoundError(f"{what} for cell {spec.to_json()['cell']} not found: {path}")


def run_cell(spec: CellSpec | dict, out_dir: str | Path, device: str = "auto", progress: bool = True,
             compile: bool = False, tracking: Tracking | None = None) -> dict:
    """One seed of one cell; see :func:`run_cells`."""
    return run_cells([spec], [out_dir], device, progress, compile, tracking)[0]


def run_cells(specs: list[CellSpec | dict], out_dirs: list[str | Path], device: str = "auto", progress: bool = True,
              compile: bool = False, tracking: Tracking | None = None) -> list[dict]:
    """Seeds of one cell as one job (paper A: trained side by side as one batched TD3), each into its own folder.
    A spec may come as its JSON (checked here). `compile`: the learner's losses as compiled graphs (same draws, same
    update rule; float rounding aside). `tracking`: a backend that receives each seed's rows as they happen, besides
    its folder's curve.partial.csv (none by default; it changes no result)."""
    if len(specs) != len(out_dirs):
        raise ValueError(f"{len(specs)} cell specs but {len(out_dirs)} result folders")
    specs = [cell_spec_from_json(spec, f"cell {spec.get('cell') if isinstance(spec, dict) else spec!r}")
             for spec in specs]
    for spec in specs:
        check_inputs(spec)
    if len(specs) > 1:
        check_seed_group(specs)  # before any folder is made
    dev = pick_device(device)
    out_dirs = [Path(d) for d in out_dirs]
    for out_dir in out_dirs:
        check_writable(out_dir)
        (out_dir / "summary.json").unlink(missing_ok=True)  # a re-run invalidates the old result before anything else
    started = time.time()
    with sigterm_handler_restored():
        run, seed_runs = paper(specs[0].pipeline).load("make_run")(specs, out_dirs, dev, progress)
        for r in seed_runs:
            r.live.tracker = open_tracker(tracking or Tracking(), r.out_dir, r.spec.to_json())
        try:
            compiled = compile_agent(run.agent, compile)
            info = run.run()
        finally:  # a preempted or failed run's tracker keeps the rows it showed
            for r in seed_runs:
                r.live.close()
    seeds = [r.seed for r in seed_runs]
    summaries = [write_result(r, info, started, dev, seeds, compiled) for r in seed_runs]
    for r in seed_runs:
        r.ckpt_path.unlink(missing_ok=True)  # every result is complete; the (large) checkpoints are not needed
        r.live.finish()  # and curve.csv holds what curve.partial.csv showed
    return summaries


def write_result(run, info: dict, started: float, dev: torch.device, seed_group: list[int],
                 compiled: bool = False) -> dict:
    """curve.csv, model.pt, then summary.json (last: its presence marks the folder finished)."""
    spec, p, out_dir = run.spec, run.p, run.out_dir
    t0 = time.perf_counter()
    write_text(out_dir / "curve.csv", curve_csv(p.curve))
    torch_save(run.final_model(), out_dir / "model.pt")
    p.train_time["io"] = p.train_time.get("io", 0.0) + time.perf_counter() - t0  # checkpoints and results
    offline_iterations = spec.budget.offline_iterations if getattr(spec.recipe, "offline", False) else 0
    online_updates = max(p.updates - offline_iterations, 0)
    as_json = spec.to_json()
    summary = {
        "cell": as_json["cell"],
        "scale": spec.scale,
        "config_hash": spec.config_hash,
        "spec": as_json,
        "dataset": run.data_meta,
        "final": {k: p.curve[-1][k] for k in ("phase", "step", "normalized_score", "raw_return")},
        "counts": {"env_steps": p.env_steps, "updates": p.updates, "episodes": p.episodes},
        # With several seeds in one job the times are the job's, shared by its seeds.
        "seed_group": seed_group,
        "time_s": {
            **{k: round(v, 3) for k, v in p.train_time.items()},
            "wall_this_run": round(time.time() - started, 3),
        },
        "throughput": {
            "offline_updates_per_s": round(offline_iterations / p.train_time["offline"], 1)
            if offline_iterations and p.train_time["offline"] > 0 else None,
            "online_steps_per_s": round(p.curve[-1]["env_steps"] / p.train_time["online"], 1)
            if p.train_time["online"] > 0 else None,
            "online_updates": online_updates,
        },
        "resumed": info["resumed"],
        "provenance": provenance(dev, compiled),
        "finished": True,
    }
    write_json(out_dir / "summary.json", summary)
    log.info("%s done: final score %.1f in %.0f s", out_dir, summary["final"]["normalized_score"],
             summary["time_s"]["wall_this_run"])
    return summary
