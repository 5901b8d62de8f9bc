"""The harness's controls for paper A (docs/methods.md, "Controls"): the noise and copy controls replace exactly the
rows world-model augmentation replaces, with what they say; the converged model stops when its held-out error stops
falling and records it; the controls run as cells; every other cell's spec is what it was before they existed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from wmaug.cell import run_cell
from wmaug.core import config as C
from wmaug.core.errors import InputError
from wmaug.core.methods import METHODS
from wmaug.data.buffer import Batch
from wmaug.data.sample import subsample
from wmaug.paper_a.augment import WorldModelAugmenter
from wmaug.paper_a.pipeline import noise_sd
from wmaug.paper_a.world_model import WorldModelConfig, one_step_error, train_converged_world_model

from conftest import ROOT, tiny_spec
from test_paper_a_ablations import _batch, _prepare, small_world_model

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")


def _rows(out: Batch, batch: Batch) -> torch.Tensor:
    """Which rows' next states differ from the batch's."""
    return (out.next_observations != batch.next_observations).any(-1)


def test_the_controls_replace_the_same_rows_as_the_world_model_with_what_they_say(hopper_random):
    data = subsample(hopper_random, 2000, seed=0)
    wm = small_world_model(data)
    batch = _batch(data, n=256)
    sd = torch.linspace(0.05, 1.0, data.obs_dim)

    def run(**kw):
        return WorldModelAugmenter(wm, rate=0.5, generator=torch.Generator().manual_seed(3), **kw)(batch)

    model, copy, noise = run(), run(next_state="copy"), run(next_state="noise", noise_sd=sd)
    idx = torch.randperm(256, generator=torch.Generator().manual_seed(3))[:128]  # the rows the model replaces
    chosen = torch.zeros(256, dtype=torch.bool)
    chosen[idx] = True
    assert torch.equal(_rows(model, batch), chosen)
    # copy: s' := s on exactly those rows (rows with s' = s already would not show; hopper's never has one)
    assert torch.equal(copy.next_observations[chosen], batch.observations[chosen])
    assert torch.equal(copy.next_observations[~chosen], batch.next_observations[~chosen])
    # noise: s' + eps on exactly those rows, eps's sd per dimension as given (128 rows: the sample sd of a normal
    # is within 4 standard errors, sd / sqrt(2 * 127), of the truth)
    assert torch.equal(_rows(noise, batch), chosen)
    eps = noise.next_observations[chosen] - batch.next_observations[chosen]
    tolerance = 4 * sd / np.sqrt(2 * 127)
    assert ((eps.std(0) - sd).abs() < tolerance).all(), (eps.std(0), sd)
    assert (eps.mean(0).abs() < 4 * sd / np.sqrt(128)).all()
    for out in (copy, noise):  # rewards, terminals, actions and states stay the data's
        for name in ("observations", "actions", "rewards", "terminals"):
            assert torch.equal(getattr(out, name), getattr(batch, name))


def test_the_noise_control_draws_its_noise_from_each_seeds_own_stream(hopper_random):
    """Two seeds side by side get what each gets alone (their own rows and noise, their own sd)."""
    data = subsample(hopper_random, 500, seed=0)
    wm = small_world_model(data)
    batch = _batch(data, n=32)
    sds = torch.stack([torch.full((data.obs_dim,), 0.1), torch.full((data.obs_dim,), 2.0)])
    from wmaug.paper_a.world_model import WorldModelGroup

    group = WorldModelAugmenter(WorldModelGroup([wm, wm]), rate=0.5, next_state="noise", noise_sd=sds,
                                generator=[torch.Generator().manual_seed(k) for k in range(2)])(batch.for_members(2))
    for k in range(2):
        alone = WorldModelAugmenter(wm, rate=0.5, next_state="noise", noise_sd=sds[k],
                                    generator=torch.Generator().manual_seed(k))(batch)
        torch.testing.assert_close(group.member(k).next_observations, alone.next_observations)


def test_the_controls_settings_are_checked(hopper_random):
    wm = small_world_model(subsample(hopper_random, 200, seed=0))
    with pytest.raises(ValueError, match="needs noise_sd"):
        WorldModelAugmenter(wm, rate=0.5, next_state="noise")
    with pytest.raises(ValueError, match="one step only"):
        WorldModelAugmenter(wm, rate=0.5, steps=2, next_state="copy")
    with pytest.raises(ValueError, match="model, noise or copy"):
        WorldModelAugmenter(wm, rate=0.5, next_state="zeros")


def test_the_noise_sd_is_the_root_of_the_models_held_out_squared_error(tmp_path):
    path = tmp_path / "by_dimension.csv"
    pd.DataFrame({"dim": [1, 0, 2], "heldout_mse_raw": [4.0, 0.25, 9.0]}).to_csv(path, index=False)
    torch.testing.assert_close(noise_sd(str(path), 3), torch.tensor([0.5, 2.0, 3.0]))
    with pytest.raises(ValueError, match="each of the 4 state dimensions"):
        noise_sd(str(path), 4)
    with pytest.raises(InputError, match="names no paths.noise_sd"):
        noise_sd(None, 3)


def test_the_converged_model_stops_when_its_held_out_error_stops_falling(hopper_random):
    """Early stopping on 20% of a 1,000-row sample: it stops by patience before max_epochs, keeps the best
    evaluation's weights (their held-out error is the recorded one) and records epochs and the ratio to copying."""
    data = subsample(hopper_random, 1000, seed=0)
    cfg = WorldModelConfig(hidden=32, layers=2, batch_size=128, lr=3e-3)
    model, history, record = train_converged_world_model(data, cfg, seed=0, holdout_share=0.2, patience=10,
                                                         max_epochs=400, check_every=2)
    assert record["stopped"] == "patience" and record["epochs"] < 400, record["epochs"]
    assert record["epochs"] == len(history) and record["epochs"] - record["best_epoch"] >= 10
    checked = {c["epoch"]: c["heldout_mse_normalized"] for c in record["checks"]}
    assert record["heldout_mse_normalized"] == min(checked.values()) == checked[record["best_epoch"]]
    order = np.random.default_rng([0, 0xC0DE]).permutation(len(data))
    held_out = data.take(np.sort(order[:200]))
    assert one_step_error(model, held_out)["model_mse_normalized"] == pytest.approx(record["heldout_mse_normalized"])
    assert record["ratio_normalized"] == pytest.approx(record["heldout_mse_normalized"] / record["copy_mse_normalized"])
    # a model that learns at all beats copying the state on held-out rows here
    assert record["ratio_normalized"] < 1


@pytest.mark.parametrize("method", ["wm_noise_td3bc_td3", "wm_copy_td3bc_td3"])
def test_a_control_runs_as_a_cell(tmp_path, hopper_random, base_config, method):
    data = subsample(hopper_random, 2000, seed=0)
    spec = tiny_spec(base_config, tmp_path, method, offline_iterations=20, online_steps=60, online_start_steps=30,
                     eval_every=30)
    _prepare(tmp_path, data, spec)
    if method == "wm_noise_td3bc_td3":
        spec["paths"]["noise_sd"] = str(tmp_path / "by_dimension.csv")
        pd.DataFrame({"dim": range(11), "heldout_mse_raw": 0.01}).to_csv(spec["paths"]["noise_sd"], index=False)
    summary = run_cell(spec, tmp_path / "out", progress=False)
    assert summary["finished"] and summary["cell"]["method"] == method
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["spec"]["recipe"]["next_state"] != "model"


def test_the_controls_are_wired_and_the_other_cells_specs_did_not_change():
    """The plain recipes' specs carry no control field (so no finished cell re-runs); the noise control's spec reads
    its world model's held-out error table, which its cell waits for; the converged control has its own model."""
    cfg = C.load_config(ROOT / "config" / "config.yaml", "evidence")
    plain = C.cell_spec(cfg, "wmaug", "hopper", "medium-replay", "wm_td3bc_td3", 0).to_json()
    assert "next_state" not in plain["recipe"] and "converged" not in plain["recipe"]
    assert "noise_sd" not in plain["paths"]
    noise = C.cell_spec(cfg, "wmaug", "hopper", "medium-replay", "wm_noise_td3bc_td3", 1)
    table = C.world_model_error_paths(cfg, "wmaug", "hopper", "medium-replay", 1)["by_dimension"]
    assert noise.paths.noise_sd == table and table in C.paper_a_cell_inputs(cfg, noise)
    assert noise.paths.world_model == plain["paths"]["world_model"].replace("seed0", "seed1")
    converged = C.cell_spec(cfg, "wmaug", "hopper", "medium-replay", "wm_converged_td3bc_td3", 0)
    assert converged.paths.world_model.endswith("seed0_converged.pt")
    assert C.converged_world_model_jobs(cfg, "wmaug") == [
        {"env": "hopper", "dataset": "medium-replay", "seed": s, "n": 10_000} for s in range(3)]
    assert {METHODS[m].next_state for m in ("wm_noise_td3bc_td3", "wm_copy_td3bc_td3")} == {"noise", "copy"}
