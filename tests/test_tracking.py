"""Watching a run while it runs: curve.partial.csv as rows happen (and after a resume), the optional logging backends
(TensorBoard, W&B offline) read back from their own files, `wmaug export`, the backend's config checks, and that
none of it changes any cell's spec (which would re-run every finished cell)."""

from __future__ import annotations

import copy
import hashlib
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from wmaug.cell import run_cell
from wmaug.core import config as C
from wmaug.core.errors import InputError, Preempted
from wmaug.core.tracking import (PARTIAL_CURVE, TRACKING_DIR_ENV, TRACKING_ENV, Tracking, curve_csv, export,
                                 global_steps, pick_tracking, run_name)

from conftest import ROOT, tiny_spec, write_sample

# sha256 of every cell's spec JSON (json.dumps(cell_spec(...).to_json(), sort_keys=True), one per line, in
# grid_cells order) of config/config.yaml, computed on main before tracking existed (commit 0a469e0). The spec is
# each cell rule's Snakemake params: a different hash re-runs every finished cell. Update it only with a change that
# means to change cells' numbers.
SPEC_DIGESTS = {
    "smoke": (109, "dd707905052b7d76d1164e71420c0765922c8c53e21a38878e3c6d3577712fb6"),
    "evidence": (78, "28e4160c06f13492de418840cf49f8e7b17f7003612fb18d42436e533887edc3"),
    "paper": (1295, "49d70cacd385c519485c6b9620b28b4c382afeec314f7cc5c8ab7352db71c276"),
}


def _spec_digest(cfg: dict) -> tuple[int, str]:
    specs = [json.dumps(C.cell_spec(cfg, **cell).to_json(), sort_keys=True)
             for study in cfg["studies"] for cell in C.grid_cells(cfg, study)]
    return len(specs), hashlib.sha256("\n".join(specs).encode()).hexdigest()


@pytest.mark.parametrize("scale", sorted(SPEC_DIGESTS))
def test_tracking_changes_no_cell_spec(base_config, scale):
    cfg = copy.deepcopy(base_config)
    cfg["scale"] = scale
    assert _spec_digest(C.validate(cfg, check_sources=False)) == SPEC_DIGESTS[scale]
    cfg["tracking"] = {"backend": "wandb", "dir": "elsewhere"}  # the choice travels outside the spec
    assert _spec_digest(C.validate(cfg, check_sources=False)) == SPEC_DIGESTS[scale]


# ---- the backend choice -----------------------------------------------------------------------------------------

def test_a_bad_backend_in_the_config_is_named(base_config):
    cfg = copy.deepcopy(base_config)
    cfg["tracking"] = {"backend": "tensorbord"}
    with pytest.raises(C.ConfigError, match=r"'tracking.backend' = 'tensorbord'.*is not one of \['none', 'tensorboard'"):
        C.validate(cfg, check_sources=False)
    cfg["tracking"] = {"backend": "none", "folder": "x"}
    with pytest.raises(C.ConfigError, match=r"'tracking'.*'folder' was unexpected"):
        C.validate(cfg, check_sources=False)


def test_the_backend_comes_from_flag_then_environment_then_config(monkeypatch):
    monkeypatch.delenv(TRACKING_ENV, raising=False)
    monkeypatch.delenv(TRACKING_DIR_ENV, raising=False)
    cfg = {"tracking": {"backend": "none", "dir": "cfgdir"}}
    assert pick_tracking(config=cfg) == Tracking("none", "cfgdir")
    assert pick_tracking() == Tracking("none", "logs/tracking")
    monkeypatch.setenv(TRACKING_ENV, "wandbb")
    with pytest.raises(InputError, match=r"environment variable WMAUG_TRACKING: unknown tracking backend 'wandbb'.*"
                                         r"Did you mean 'wandb'"):
        pick_tracking(config=cfg)
    assert pick_tracking("none", "flagdir", cfg) == Tracking("none", "flagdir")  # the flag wins
    with pytest.raises(InputError, match="--tracking: unknown tracking backend 'csv'"):
        pick_tracking("csv")


@pytest.mark.parametrize("backend", ["tensorboard", "wandb"])
def test_a_backend_chosen_but_not_installed_fails_before_any_compute(tmp_path, monkeypatch, capsys, backend):
    monkeypatch.setitem(sys.modules, backend, None)  # what an environment without the package looks like to import
    with pytest.raises(InputError, match=rf"'{backend}' needs the {backend} package, which is not installed: "
                                         r"pip install -e '.\[tracking\]'"):
        pick_tracking(backend)
    from wmaug import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["cell", "--config", str(ROOT / "config" / "config.yaml"), "--scale", "smoke", "--study", "wmaug",
                  "--env", "hopper", "--dataset", "random", "--method", "td3", "--seed", "0", "--tracking", backend,
                  "--out", str(tmp_path / "cell")])
    assert exit_.value.code == 2 and not (tmp_path / "cell").exists()
    assert f"--tracking: tracking backend '{backend}' needs the {backend} package" in capsys.readouterr().err


# ---- curve.partial.csv --------------------------------------------------------------------------------------------

def test_global_steps_put_online_steps_after_the_offline_iterations():
    rows = [{"phase": "offline", "step": 0}, {"phase": "offline", "step": 60}, {"phase": "online", "step": 0},
            {"phase": "online", "step": 50}]
    assert global_steps(rows) == [0, 60, 60, 110]
    assert global_steps(rows[2:]) == [0, 50]  # a cell without an offline phase


def _partial_rows(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / PARTIAL_CURVE)


def _checkpoint_curve(out: Path) -> list[dict]:
    return torch.load(out / "checkpoint.pt", weights_only=True)["progress"]["curve"]


def test_a_resumed_cell_rewrites_its_partial_curve_from_the_checkpoint(tmp_path, hopper_random, base_config,
                                                                       monkeypatch):
    """Stopped (SIGTERM's flag) after its 2nd online episode, the cell's partial file holds exactly its checkpoint's
    rows. A killed run would have shown rows after its checkpoint: one is added by hand. The resumed run rewrites the
    file from the checkpoint (no row twice), stops again after episode 4, then finishes: curve.csv equals an
    uninterrupted run's byte for byte and the partial file is gone. With TensorBoard installed, its run is checked
    the same way."""
    from wmaug.paper_a.pipeline import SeedRun

    tensorboard = _installed("tensorboard")
    tracking = Tracking("tensorboard" if tensorboard else "none", str(tmp_path / "tracking"))
    spec = tiny_spec(base_config, tmp_path, "td3bc_td3", seed=1, online_steps=300)
    write_sample(tmp_path / "sample.npz", hopper_random, 500, 1)
    run_cell(spec, tmp_path / "reference", device="cpu", progress=False)
    reference = (tmp_path / "reference" / "curve.csv").read_text()
    assert not (tmp_path / "reference" / PARTIAL_CURVE).exists()
    real_start = SeedRun.start_episode
    stop_at = {"episodes": 2}

    def stop_after_episode(self, seed=None):
        real_start(self, seed)
        if self.p.episodes == stop_at["episodes"]:
            self.cell_run.sigterm.requested = True

    monkeypatch.setattr(SeedRun, "start_episode", stop_after_episode)
    out = tmp_path / "cell"
    with pytest.raises(Preempted):
        run_cell(spec, out, device="cpu", progress=False, tracking=tracking)
    first = _checkpoint_curve(out)
    assert (out / PARTIAL_CURVE).read_text() == curve_csv(first)
    with open(out / PARTIAL_CURVE, "a") as f:  # a row the killed run showed after its checkpoint
        f.write(curve_csv(first[-1:], header=False))
    stop_at["episodes"] = 4
    with pytest.raises(Preempted):
        run_cell(spec, out, device="cpu", progress=False, tracking=tracking)
    second = _checkpoint_curve(out)
    assert len(second) > len(first) and curve_csv(second).startswith(curve_csv(first))  # NaN != NaN: as text
    partial = _partial_rows(out)
    assert (out / PARTIAL_CURVE).read_text() == curve_csv(second)
    assert not partial.duplicated(["phase", "step"]).any()
    if tensorboard:
        assert _tensorboard_scalars(tmp_path / "tracking", "normalized_score")[1] == global_steps(second)
    monkeypatch.setattr(SeedRun, "start_episode", real_start)
    summary = run_cell(spec, out, device="cpu", progress=False, tracking=tracking)
    assert summary["resumed"] is True
    assert (out / "curve.csv").read_text() == reference
    assert not (out / PARTIAL_CURVE).exists()
    if tensorboard:
        final = pd.read_csv(out / "curve.csv").to_dict("records")
        assert _tensorboard_scalars(tmp_path / "tracking", "normalized_score")[1] == global_steps(final)


@pytest.mark.slow  # starts a subprocess and trains a cell for seconds, watching its folder
def test_a_running_cells_rows_appear_before_it_finishes(tmp_path, base_config):
    spec = tiny_spec(base_config, tmp_path, "td3", seed=0, online_steps=2000, online_start_steps=100,
                     eval_every=100, checkpoint_every=500)
    out = tmp_path / "cell"
    cmd = [sys.executable, "-m", "wmaug.cli", "cell", "--spec-json", json.dumps(spec), "--out", str(out),
           "--device", "cpu", "--threads", "1", "--no-progress", "--tracking", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []  # the partial file's texts while the cell ran, before it wrote summary.json
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        try:
            text = (out / PARTIAL_CURVE).read_text()
        except FileNotFoundError:
            text = None
        if text and not (out / "summary.json").exists() and (not seen or text != seen[-1]):
            seen.append(text)
        time.sleep(0.02)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    final = (out / "curve.csv").read_text()
    rows_seen = sorted({t.count("\n") - 1 for t in seen})
    assert len(rows_seen) >= 3 and rows_seen[0] < final.count("\n") - 1, \
        f"row counts seen while running: {rows_seen} of {final.count(chr(10)) - 1}"
    for text in seen:  # whole lines, in curve.csv's columns and order, each a prefix of the finished curve
        assert text.endswith("\n") and final.startswith(text)
    assert not (out / PARTIAL_CURVE).exists()  # the finished folder holds its results only


# ---- the backends, read back from their own files -------------------------------------------------------------

def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def _tensorboard_scalars(root: Path, tag: str) -> tuple[list[float], list[int]]:
    """One run's scalars of `tag` (values, steps) as TensorBoard reads them, from the only run folder under root."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folders = {p.parent for p in root.rglob("events.out.tfevents.*")}
    assert len(folders) == 1, folders
    events = EventAccumulator(str(folders.pop()))
    events.Reload()
    scalars = events.Scalars(tag)
    return [s.value for s in scalars], [s.step for s in scalars]


def _wandb_records(path: Path):
    """The records of an offline W&B run file (run-<id>.wandb: a LevelDB-style log of wandb's protobuf records,
    7-byte header ':W&B' + magic + version, 32 KiB blocks of chunks each with a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block, pos, pending = path.read_bytes(), 32768, 7, b""
    assert data[:4] == b":W&B", data[:8]
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + length > len(data):  # a chunk still being written
            return
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:  # padding
            continue
        pending += chunk
        if kind in (1, 4):  # a whole record, or a record's last chunk
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _wandb_run(root: Path) -> dict:
    """The only offline W&B run under root: its name, group, project, config and history rows. Read once its exit
    record is written: wandb's service may still be writing the file when `finish()` returns (seen under load)."""
    files = list(root.rglob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    deadline = time.time() + 60
    while not any(r.WhichOneof("record_type") == "exit" for r in _wandb_records(files[0])):
        assert time.time() < deadline, f"{files[0]}: no exit record after 60 s"
        time.sleep(0.2)
    run = {"history": []}
    for record in _wandb_records(files[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(name=record.run.display_name, group=record.run.run_group, project=record.run.project,
                       config={i.key or "/".join(i.nested_key): json.loads(i.value_json)
                               for i in record.run.config.update})
        elif kind == "history":
            run["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.history.item})
    return run


def _backend_rows(backend: str, root: Path) -> tuple[list[float], list[int]]:
    """The normalised scores and x positions a backend received."""
    if backend == "tensorboard":
        return _tensorboard_scalars(root, "normalized_score")
    history = _wandb_run(root)["history"]
    return [h["normalized_score"] for h in history], [h["_step"] for h in history]


@pytest.fixture
def wandb_home(tmp_path, monkeypatch):
    """W&B's own settings and caches in the test's folder, never the user's; no network."""
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_MODE", "offline")


@pytest.mark.parametrize("backend", ["tensorboard", "wandb"])
def test_a_backend_receives_the_rows_and_export_replays_them(tmp_path, hopper_random, base_config, backend,
                                                             wandb_home, monkeypatch):
    """A cell with an offline and an online phase logs each row to the backend as it happens (the x axis: offline
    iterations, then online steps after them); `wmaug export` of the finished folder gives the same run."""
    pytest.importorskip(backend)
    monkeypatch.chdir(tmp_path)  # run names are cell paths from the working directory
    spec = tiny_spec(base_config, tmp_path, "td3bc_td3", seed=2)
    write_sample(tmp_path / "sample.npz", hopper_random, 500, 2)
    group = "wmaug/hopper/{dataset}/td3bc_td3".format(**spec["cell"])
    out = Path(f"results/smoke/{group}/seed2")
    run_cell(spec, out, device="cpu", progress=False, tracking=Tracking(backend, "live"))
    curve = pd.read_csv(out / "curve.csv", float_precision="round_trip")
    rows = curve.to_dict("records")
    expected = (curve["normalized_score"].tolist(), global_steps(rows))
    assert expected[1][-1] == 60 + 400 and len(rows) == 3 + 9  # offline 0, 50, 60; online 0, 50, ..., 400
    scores, steps = _backend_rows(backend, tmp_path / "live")
    if backend == "tensorboard":  # TensorBoard keeps float32; the online step-0 row shares the last offline x
        np.testing.assert_array_equal(scores, np.float32(expected[0]))
        assert steps == expected[1]
    else:  # W&B merges rows logged at one x: the online step-0 row (the hand-off policy's score) is kept
        kept = [i for i in range(len(rows)) if i + 1 == len(rows) or expected[1][i + 1] != expected[1][i]]
        assert scores == [expected[0][i] for i in kept] and steps == [expected[1][i] for i in kept]
        run = _wandb_run(tmp_path / "live")
        assert run["name"] == out.as_posix() and run["group"] == group
        assert run["project"] == "wmaug"
        config = {k: v for k, v in run["config"].items() if k != "_wandb"}
        assert config == json.loads((out / "summary.json").read_text())["spec"]
    assert not (out / PARTIAL_CURVE).exists()
    assert run_name(out) == out.as_posix() and (tmp_path / "live" / out).is_dir()  # <dir>/<cell folder>

    unfinished = Path("results/smoke/wmaug/hopper/random/td3/seed0")
    unfinished.mkdir(parents=True)
    (unfinished / PARTIAL_CURVE).write_text(curve_csv(rows[:2]))  # a running cell: not exported
    exported = export("results", Tracking(backend, "replayed"))
    assert exported == [out]
    replayed = _backend_rows(backend, tmp_path / "replayed")
    assert replayed == (scores, steps)
    if backend == "wandb":
        assert _wandb_run(tmp_path / "replayed")["config"] == run["config"]


def test_export_names_an_empty_results_folder_and_a_bad_backend(tmp_path):
    from wmaug import cli

    (tmp_path / "cell").mkdir()
    (tmp_path / "cell" / PARTIAL_CURVE).write_text("phase,step\nonline,0\n")
    with pytest.raises(InputError, match="no finished cell"):
        export(tmp_path, Tracking("tensorboard", str(tmp_path / "runs")))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", "--backend", "tensorflow", str(tmp_path)])
    assert exit_.value.code == 2


def test_a_tracking_dir_that_is_the_results_root_is_refused(tmp_path, monkeypatch):
    """Runs go to <dir>/<cell folder>, and a restart empties that folder: with dir '.' it would be the cell's own."""
    monkeypatch.chdir(tmp_path)
    cell = Path("results/smoke/wmaug/hopper/random/td3/seed0")
    cell.mkdir(parents=True)
    (cell / "curve.csv").write_text("phase,step,normalized_score\nonline,0,1.0\n")
    (cell / "summary.json").write_text(json.dumps({"finished": True, "cell": {
        "study": "wmaug", "env": "hopper", "dataset": "random", "method": "td3", "seed": 0}}))
    with pytest.raises(InputError, match="at the cell folder itself"):
        export("results", Tracking("tensorboard", "."))
    assert (cell / "curve.csv").exists() and (cell / "summary.json").exists()
