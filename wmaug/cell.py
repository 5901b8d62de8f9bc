"""One (study, env, dataset, method, seed) cell: checks its inputs, runs the pipeline, writes its results.

Outputs in the cell folder: curve.csv (one row per evaluation), model.pt (final networks) and summary.json,
written last: a folder without summary.json is unfinished, whatever else it holds.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

import torch

from wmaug.io import torch_save, write_json, write_text
from wmaug.pipeline import CellRun
from wmaug.provenance import provenance

log = logging.getLogger("wmaug.cell")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def check_inputs(spec: dict) -> None:
    """Fail before any compute when an input file is missing."""
    paths, recipe = spec["paths"], spec["recipe"]
    needed = []
    if recipe.get("offline"):
        needed.append(("offline sample", paths["sample"]))
    if recipe.get("augment"):
        needed.append(("world model", paths["world_model"]))
    if recipe.get("pretrain"):
        needed.append(("pre-trained agents", paths["pretrained"]))
    for what, path in needed:
        if not Path(path).exists():
            raise FileNotFoundError(f"{what} for cell {spec['cell']} not found: {path}")


def curve_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def run_cell(spec: dict, out_dir: str | Path, device: str = "auto", progress: bool = True) -> dict:
    out_dir = Path(out_dir)
    check_inputs(spec)
    dev = pick_device(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / "summary.json"
    if summary_path.exists():
        summary_path.unlink()  # a re-run invalidates the old result before anything else
    started = time.time()
    if spec["recipe"]["pipeline"] == "balanced_replay":
        from wmaug.finetune import FinetuneRun

        run = FinetuneRun(spec, out_dir, dev, progress=progress)
    else:
        run = CellRun(spec, out_dir, dev, progress=progress)
    info = run.run()
    p = run.p
    t0 = time.perf_counter()
    write_text(out_dir / "curve.csv", curve_csv(p.curve))
    torch_save(run.final_model(), out_dir / "model.pt")
    p.train_time["io"] = p.train_time.get("io", 0.0) + time.perf_counter() - t0  # checkpoints and results
    offline_iterations = spec["budget"]["offline_iterations"] if spec["recipe"].get("offline") else 0
    online_updates = max(p.updates - offline_iterations, 0)
    summary = {
        "cell": spec["cell"],
        "scale": spec["scale"],
        "config_hash": spec["config_hash"],
        "spec": spec,
        "dataset": run.data_meta,
        "final": {k: p.curve[-1][k] for k in ("phase", "step", "normalized_score", "raw_return")},
        "counts": {"env_steps": p.env_steps, "updates": p.updates, "episodes": p.episodes},
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
        "provenance": provenance(dev),
        "finished": True,
    }
    write_json(summary_path, summary)
    run.ckpt_path.unlink(missing_ok=True)  # the result is complete; the (large) checkpoint is not needed
    log.info("cell done: final score %.1f in %.0f s", summary["final"]["normalized_score"], summary["time_s"]["wall_this_run"])
    return summary
