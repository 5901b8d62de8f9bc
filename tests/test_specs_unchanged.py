"""The resolved spec of every existing cell and pre-training job is a Snakemake param: if one changes, the running
experiment's finished jobs re-run. Hashes recorded from commit 6930548 (main, before issue 35's dataset work) with
config/config.yaml as it was then; a change to config.yaml's grid or budgets must update them on purpose. (A new
config key only renames the effective config file the rules pass as CFG_ARG: Snakemake's code trigger compares a
rule's shell command before formatting, `persistence._code` in 9.27, so no finished job re-runs for that.)"""

from __future__ import annotations

import hashlib
import json

import pytest

from wmaug.core import config as C
from conftest import ROOT

# scale -> (number of cells, sha256 over each cell's spec JSON in grid order)
CELL_SPECS = {
    "smoke": (109, "b1c958f4f57f863393936ef20b05fdd35b837044fbbbca11a9c916f6b6a0d220"),
    "evidence": (78, "59df52d94901c85a2b0c12ea4ce9a3f0f060f6fd4a6cfc26003dc767045870e3"),
}
# scale -> sha256 over the cql, fqe and awac block-0 spec of each balanced_replay task
PRETRAIN_SPECS = {
    "smoke": "a1a36476e045e931838d7a75d3969eded58b5183668be39ea99a37c47c2fd750",
    "evidence": "c1ff58f96226abba11f31833efc1cb85a2a43917a15728f264d4cc8140c3101c",
}


@pytest.mark.parametrize("scale", sorted(CELL_SPECS))
def test_cell_specs_unchanged(scale):
    cfg = C.load_config(ROOT / "config/config.yaml", scale)
    digest, n = hashlib.sha256(), 0
    for study in cfg["studies"]:
        for c in C.grid_cells(cfg, study):
            spec = C.cell_spec(cfg, study, c["env"], c["dataset"], c["method"], c["seed"]).to_json()
            digest.update(json.dumps(spec, sort_keys=True).encode())
            n += 1
    assert (n, digest.hexdigest()) == CELL_SPECS[scale]


@pytest.mark.parametrize("scale", sorted(PRETRAIN_SPECS))
def test_pretrain_specs_unchanged(scale):
    cfg = C.load_config(ROOT / "config/config.yaml", scale)
    grid, digest = cfg["studies"]["balanced_replay"], hashlib.sha256()
    for env in grid["envs"]:
        for kind in grid["datasets"]:
            for algo in ("cql", "fqe", "awac"):
                digest.update(json.dumps(C.pretrain_spec(cfg, algo, env, kind, 0).to_json(), sort_keys=True).encode())
    assert digest.hexdigest() == PRETRAIN_SPECS[scale]
