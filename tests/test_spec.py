"""Typed job specs (`wmaug.core.spec`): what the config resolves for a cell or a pre-training block, and the JSON it
travels as. Snakemake's parameters are that JSON, so it must not change with the types (checked against the dict
specs of 88960ff for all 2,132 cells and blocks of the paper, smoke and quick grids when the types came in)."""

from __future__ import annotations

import json

import pytest

from wmaug.core import config as C
from wmaug.core.errors import InputError
from wmaug.core.methods import PRETRAINERS
from wmaug.core.spec import (CellSpec, FinetuneCellSpec, PaperACellSpec, PretrainSpec, cell_spec_from_json,
                             config_hash)

from conftest import ROOT


@pytest.mark.parametrize("scale", ["paper", "smoke"])
def test_every_cell_spec_goes_to_json_and_back_unchanged(scale):
    cfg = C.load_config(ROOT / "config" / "config.yaml", scale)
    kinds = set()
    for study in cfg["studies"]:
        for c in C.grid_cells(cfg, study):
            spec = C.cell_spec(cfg, study, c["env"], c["dataset"], c["method"], 0)
            text = json.dumps(spec.to_json(), sort_keys=True)
            again = cell_spec_from_json(json.loads(text), "test")
            assert again == spec and json.dumps(again.to_json(), sort_keys=True) == text
            assert spec.config_hash == config_hash(spec.to_json())  # the hash is of the JSON
            assert list(spec.to_json()) == ["cell", "scale", "budget", "recipe", *spec.settings_keys, "paths",
                                            "config_hash"]
            kinds.add(type(spec))
    assert kinds == {PaperACellSpec, FinetuneCellSpec}


def test_a_pretraining_spec_goes_to_json_and_back_unchanged():
    cfg = C.load_config(ROOT / "config" / "config.yaml", "paper")
    for algo in PRETRAINERS:
        spec = C.pretrain_spec(cfg, algo, "hopper", "medium", 2)
        assert PretrainSpec.from_json(json.loads(json.dumps(spec.to_json())), "test") == spec
        assert spec.to_json()["job"]["agent_seeds"] == [10, 11, 12, 13, 14]


def test_specs_are_frozen_and_a_changed_budget_is_rehashed():
    cfg = C.load_config(ROOT / "config" / "config.yaml", "smoke")
    spec = C.cell_spec(cfg, "wmaug", "hopper", "random", "td3", 0)
    with pytest.raises(AttributeError):
        spec.budget.online_steps = 1
    from dataclasses import replace

    longer = replace(spec, budget=replace(spec.budget, online_steps=spec.budget.online_steps + 1)).rehashed()
    assert longer.config_hash != spec.config_hash and isinstance(longer, CellSpec)


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s["budget"].pop("eval_every"), r"'budget': lacks \['eval_every'\]"),
    (lambda s: s["budget"].update(eval_evry=1), r"'budget': has unknown keys \['eval_evry'\]"),
    (lambda s: s.update(extra=1), r"unknown keys \['extra'\]"),
    (lambda s: s["recipe"].update(rate=2.0), r"'recipe': not a valid Recipe"),
    (lambda s: s["cell"].update(seed=-1), r"seed -1 must be a whole number"),
    (lambda s: s.update(td3=[1]), r"'td3' must be a JSON object"),
])
def test_a_spec_that_cannot_be_run_is_named_before_any_compute(edit, expected):
    cfg = C.load_config(ROOT / "config" / "config.yaml", "smoke")
    spec = C.cell_spec(cfg, "wmaug", "hopper", "random", "wm_td3bc_td3", 0).to_json()
    edit(spec)
    with pytest.raises(InputError, match=expected):
        cell_spec_from_json(spec, "--spec-json")
