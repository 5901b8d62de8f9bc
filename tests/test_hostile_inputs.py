"""Bad arguments and hostile storage: one clear line, a nonzero exit, nothing half-made left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

from wmaug import cli
from wmaug.core import io
from wmaug.core import config as C
from wmaug.data import minari_io as mio
from wmaug.core.errors import StorageError

from conftest import ROOT
from test_minari_io import d4rl_arrays, rollout, write_h5

CELL = ["cell", "--scale", "smoke", "--study", "wmaug", "--env", "hopper", "--dataset", "random", "--method", "td3",
        "--no-progress"]


def _fails(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("seeds, expected", [(["-1"], "--seed -1"), (["99"], "--seed 99"), (["0", "0"], "seed twice")])
def test_cell_seeds_outside_the_grid_or_repeated_are_refused_before_any_folder(tmp_path, capsys, seeds, expected):
    outs = [str(tmp_path / f"seed{i}") for i in range(len(seeds))]
    err = _fails([*CELL, "--seed", *seeds, "--out", *outs], capsys)
    assert expected in err, err
    assert not list(tmp_path.iterdir())  # no empty seed folder left behind


@pytest.mark.parametrize("spec, expected", [
    ("{not json", "--spec-json is not valid JSON"),
    ("{}", "lacks ['cell', 'scale', 'budget', 'recipe', 'paths', 'config_hash']"),
    ("[1]", "must be a JSON object"),
    ('{"cell": {}, "scale": "smoke", "budget": {}, "recipe": {"pipeline": "paper_c"}, "paths": {}, "config_hash": ""}',
     "recipe names pipeline 'paper_c'"),
])
def test_a_bad_spec_json_is_named(tmp_path, capsys, spec, expected):
    err = _fails(["cell", "--spec-json", spec, "--out", str(tmp_path / "x")], capsys)
    assert expected in err, err
    assert not list(tmp_path.iterdir())


def test_a_bad_pretraining_spec_json_is_named(tmp_path, capsys):
    assert "--spec-json is not valid JSON" in _fails(["pretrain", "--spec-json", "{x", "--out", str(tmp_path / "b.pt")], capsys)
    assert "lacks ['job', 'scale', 'iterations', 'eval_episodes', 'algorithm', 'cql', 'paths']" in _fails(
        ["pretrain", "--spec-json", "{}", "--out", str(tmp_path / "b.pt")], capsys)
    assert not list(tmp_path.iterdir())


def test_a_result_folder_that_cannot_be_made_stops_the_cell_before_training(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the result folder should go")
    err = _fails([*CELL, "--seed", "0", "--out", str(blocker / "seed0")], capsys)
    assert f"cannot write {blocker / 'seed0'}" in err, err
    assert "wmaug cell: error:" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_existing_folder_that_takes_no_files_stops_the_cell_before_training(capsys):
    """/proc/self exists and refuses new files even to root: the probe write fails before any training."""
    err = _fails([*CELL, "--seed", "0", "--out", "/proc/self"], capsys)
    assert "cannot write /proc/self/result files" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_result_folder_stops_the_cell_before_training(tmp_path, capsys):
    folder = tmp_path / "seed0"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        err = _fails([*CELL, "--seed", "0", "--out", str(folder)], capsys)
    finally:
        folder.chmod(0o755)
    assert "no permission to write" in err and str(folder) in err, err


def test_a_full_disk_names_the_cause_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """torch.save on a full device raises "[enforce fail at inline_container.cc:672] ... unexpected pos" (seen on a
    real full disk); the failure is injected here, after some bytes were written, as it happens there."""
    path = tmp_path / "ckpt.pt"
    io.torch_save({"step": 1}, path)

    def full_disk_save(obj, f):
        Path(f).write_bytes(b"x" * 4096)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4096 vs 0")

    monkeypatch.setattr(io.torch, "save", full_disk_save)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 0))
    with pytest.raises(StorageError) as exc:
        io.torch_save({"step": 2}, path)
    message = str(exc.value)
    assert f"cannot write {path}: no space left on the device holding {tmp_path}" in message, message
    assert "4,096 bytes written" in message and "previous file" in message
    monkeypatch.undo()
    assert io.torch_load(path) == {"step": 1}  # the last good checkpoint
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no half-written temporary left


def test_other_runtime_errors_of_a_save_are_not_called_storage_errors(tmp_path, monkeypatch):
    def broken(obj, f):
        raise RuntimeError("cannot pickle this object")

    monkeypatch.setattr(io.torch, "save", broken)
    with pytest.raises(RuntimeError, match="cannot pickle"):
        io.torch_save({"step": 2}, tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


def _sample_file(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, source=source)


def test_a_sample_drawn_from_a_source_no_longer_configured_is_refused(tmp_path, monkeypatch, capsys):
    """dataset_sources switched hopper/random to another file after its sample was drawn: planning the DAG and
    running the cell by hand both stop, naming the sample, both sources and what to delete."""
    monkeypatch.chdir(tmp_path)
    config = ROOT / "config" / "config.yaml"
    cfg = C.load_config(config, "smoke")
    spec = C.cell_spec(cfg, "wmaug", "hopper", "random", "td3bc_td3", 0)
    sample = Path(spec.paths.sample)
    _sample_file(sample, C.full_dataset_source(cfg, "hopper", "random"))
    C.check_samples_current(cfg)  # drawn from the configured source: fine

    _sample_file(sample, "d4rl:/data/old/hopper_random-v2.hdf5")
    with pytest.raises(C.ConfigError) as exc:
        C.check_samples_current(cfg)
    message = str(exc.value)
    assert str(sample) in message and "d4rl:/data/old/hopper_random-v2.hdf5" in message
    assert C.full_dataset_source(cfg, "hopper", "random") in message and "delete resources/smoke/samples/hopper/random" in message

    err = _fails(["cell", "--config", str(config), "--scale", "smoke", "--study", "wmaug", "--env", "hopper",
                  "--dataset", "random", "--method", "td3bc_td3", "--seed", "0", "--out", str(tmp_path / "cell")], capsys)
    assert "was drawn from 'd4rl:/data/old/hopper_random-v2.hdf5'" in err, err
    assert not (tmp_path / "cell").exists()


def _config_with_sources(tmp_path: Path, sources: dict) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["dataset_sources"] = sources
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow  # starts a subprocess
def test_a_minari_id_the_user_names_is_looked_up_under_MINARI_DATASETS_PATH(tmp_path):
    root = tmp_path / "my_minari"
    env = gym.make("Hopper-v5")
    mio.write_minari_dataset("mujoco/hopper/medium-v0", [rollout(env, 0), rollout(env, 1)], "hopper", root,
                             description="test data", algorithm_name="random")
    config = _config_with_sources(tmp_path, {"hopper": {"medium-replay": "minari:mujoco/hopper/medium-v0"}})
    command = [sys.executable, "-m", "wmaug.cli", "validate", "--config", str(config), "--scale", "smoke"]
    base = {k: v for k, v in os.environ.items() if k != "MINARI_DATASETS_PATH"}
    found = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**base, "MINARI_DATASETS_PATH": str(root)})
    assert found.returncode == 0 and "config OK" in found.stdout, found.stderr[-2000:]
    # unset: Minari's own default under $HOME, named in the message
    home = tmp_path / "home"
    missing = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**base, "HOME": str(home)})
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert f"not installed under root {home / '.minari' / 'datasets'}" in missing.stderr, missing.stderr[-2000:]


def test_data_of_another_environment_with_the_same_dimensions_is_refused(tmp_path):
    """HalfCheetah and Walker2d both have 17-dim states and 6-dim actions: the recorded environment decides."""
    env = gym.make("HalfCheetah-v5")
    mio.write_minari_dataset("mine/halfcheetah/random-v0", [rollout(env, 0, max_steps=50)], "halfcheetah", tmp_path,
                             description="test data", algorithm_name="random")
    mio.check_source("minari:mine/halfcheetah/random-v0", "halfcheetah", tmp_path)
    for call in (mio.check_source, mio.load_source):
        with pytest.raises(mio.DatasetError, match="collected in HalfCheetah-v5, but it is configured as walker2d's"):
            call("minari:mine/halfcheetah/random-v0", "walker2d", tmp_path)


def test_nan_in_a_source_stops_validation_and_a_clean_file_is_scanned_once(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "CHECKED_SOURCES_DIR", str(tmp_path / "checked"))
    arrays = d4rl_arrays(n=200_000)
    path = write_h5(tmp_path / "hopper_random-v2.hdf5", arrays)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["dataset_sources"] = {"hopper": {"random": f"d4rl:{path}"}}
    C.validate(cfg)
    assert len(list((tmp_path / "checked").iterdir())) == 1  # remembered for this file's version

    arrays["rewards"][150_000] = np.nan
    write_h5(path, arrays)
    with pytest.raises(C.ConfigError) as exc:
        C.validate(cfg)
    message = str(exc.value)
    assert "dataset_sources.hopper.random" in message and "rewards contains NaN or inf (rows from 131072)" in message, message
