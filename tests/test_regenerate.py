"""`wmaug regenerate`: the committed evidence is re-drawn from the finished cells in results_dir alone (no DAG, no
datasets), and only from finished cells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from wmaug import cli
from wmaug.core import config as C

from conftest import ROOT, make_cell

CONFIG = ROOT / "config" / "config.yaml"
CLAIMS = ROOT / "config" / "claims.yaml"


def place(tmp: Path, cfg: dict, env: str, dataset: str, method: str, seed: int, online) -> None:
    """A synthetic finished cell moved to where the DAG puts it (`config.cell_dir`)."""
    made = make_cell(tmp / "made", env, dataset, method, seed, online, scale="evidence")
    dest = tmp / C.cell_dir(cfg, "wmaug", env, dataset, method, seed)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(made, dest)


@pytest.mark.slow  # draws every figure of both studies
def test_regenerate_redraws_reports_and_claims_from_the_finished_cells_only(tmp_path, monkeypatch):
    cfg = C.load_config(CONFIG, "evidence")
    rng = np.random.default_rng(0)
    steps = 11  # evaluations of a 50K online run every 5K
    for dataset in ("medium-expert", "medium-replay"):
        for seed in range(3):  # augmentation 30 points above plain TD3+BC after the dip: A2's first check holds
            place(tmp_path, cfg, "hopper", dataset, "wm_td3bc_td3", seed, 60 + rng.normal(0, 1, steps))
            place(tmp_path, cfg, "hopper", dataset, "td3bc_td3", seed, 30 + rng.normal(0, 1, steps))
    unfinished = tmp_path / C.cell_dir(cfg, "wmaug", "hopper", "random", "td3", 0)
    unfinished.mkdir(parents=True)
    (unfinished / "curve.csv").write_text("not a finished cell's table\n")  # no summary.json: never read
    monkeypatch.chdir(tmp_path)
    cli.main(["regenerate", "--config", str(CONFIG), "--scale", "evidence", "--claims", str(CLAIMS)])

    s = C.scale_cfg(cfg)
    scores = (tmp_path / s["results_dir"] / "wmaug" / "scores.csv").read_text().splitlines()
    assert len(scores) == 1 + 2 * 2 * 3 * (3 + steps)  # 12 cells: 3 offline and 11 online rows each, nothing else
    figures = tmp_path / s["figures_dir"]
    assert (figures / "wmaug_fig3.png").stat().st_size > 0 and (figures / "balanced_replay_fig4c.pdf").is_file()
    verdicts = {c["id"]: c["verdict"] for c in json.loads((figures / "claims.json").read_text())["claims"]}
    assert verdicts["B3"] == "not run"  # no paper B cell finished
    assert verdicts["A2"] != "not run"
