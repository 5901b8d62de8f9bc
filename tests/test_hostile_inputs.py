"""Bad arguments and hostile storage: one clear line, a nonzero exit, nothing half-made left behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from wmaug import cli, io
from wmaug.errors import StorageError

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
])
def test_a_bad_spec_json_is_named(tmp_path, capsys, spec, expected):
    err = _fails(["cell", "--spec-json", spec, "--out", str(tmp_path / "x")], capsys)
    assert expected in err, err
    assert not list(tmp_path.iterdir())


def test_a_result_folder_that_cannot_be_made_stops_the_cell_before_training(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the result folder should go")
    err = _fails([*CELL, "--seed", "0", "--out", str(blocker / "seed0")], capsys)
    assert f"cannot write {blocker / 'seed0'}" in err, err
    assert "wmaug cell: error:" in err and len(err.strip().splitlines()) == 1, err


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
