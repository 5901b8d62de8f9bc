"""Minari's datasets as they are (issue 35, part 1), on datasets written here in Minari's published layout:
`<root>/mujoco/hopper/<kind>-v0/data/{metadata.json, main_data.hdf5}` (or Arrow files), with namespace files, made
by minari 0.5.4's own `create_dataset_from_buffers` from real Hopper-v5 rollouts."""

from __future__ import annotations

import copy
import json
import shutil
import sys
from importlib import metadata
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import make_cell
from wmaug.core import config as C
from wmaug.core.references import mixed_reference_note, reference_score
from wmaug.data import minari_io as mio
from wmaug.data.d4rl_protocol import rollout_episodes, uniform_policy

# A stand-in for Minari's own pair (its Hopper sets record their own ref_min_score/ref_max_score; these numbers are
# the test's): far enough from D4RL's (-20.27 / 3234.3) that a score taken against the wrong pair shows.
MINARI_PAIR = {"ref_min": -5.0, "ref_max": 3600.0}


def publish(root: Path, kind: str, seed: int, data_format: str = "hdf5", n: int = 300) -> str:
    """A Minari-layout hopper dataset `mujoco/hopper/<kind>-v0` under root; returns its source string."""
    episodes = rollout_episodes("hopper", uniform_policy("hopper", seed), n, seed)
    dataset_id = f"mujoco/hopper/{kind}-v0"
    mio.write_minari_dataset(dataset_id, episodes, "hopper", root, description=f"test {kind}", algorithm_name="SAC",
                             reference=MINARI_PAIR, data_format=data_format)
    return f"minari:{dataset_id}"


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("minari")
    for i, kind in enumerate(("simple", "medium", "expert")):
        publish(root, kind, i)
    return root


@pytest.fixture
def user_root(minari_root, monkeypatch) -> Path:
    monkeypatch.setattr(C, "USER_MINARI_ROOT", str(minari_root))  # where a user's Minari ids are looked up
    return minari_root


def small_grid(base_config: dict, datasets: list[str], envs=("hopper",)) -> dict:
    cfg = copy.deepcopy(base_config)
    cfg["scale"] = "smoke"
    cfg["studies"] = {"wmaug": {"envs": list(envs), "datasets": datasets, "methods": ["td3bc_td3", "td3"]},
                      "balanced_replay": {"pipeline": "balanced_replay", "envs": list(envs), "datasets": datasets,
                                          "methods": ["ours", "sac"]}}
    cfg["scales"]["smoke"].pop("grid_subset", None)
    for s in cfg["scales"].values():
        s.pop("grid_subset", None)
        s.pop("study_seeds", None)
    return cfg


# ---- a. any dataset a source provides is a dataset of the grid ------------------------------------------------------

def test_a_kind_only_a_source_provides_joins_the_grid(base_config, user_root):
    cfg = small_grid(base_config, ["simple", "random"])
    cfg["dataset_sources"] = {"hopper": {"simple": "minari:mujoco/hopper/simple-v0"}}
    cfg = C.validate(cfg)
    assert {c["dataset"] for c in C.grid_cells(cfg, "wmaug")} == {"simple", "random"}
    spec = C.cell_spec(cfg, "wmaug", "hopper", "simple", "td3bc_td3", 0).to_json()
    assert "/samples/hopper/simple/" in spec["paths"]["sample"]
    b = C.cell_spec(cfg, "balanced_replay", "hopper", "simple", "ours", 0).to_json()
    assert b["paths"]["dataset"] == "minari:mujoco/hopper/simple-v0"
    assert C.dataset_input(cfg, "hopper", "simple") == []  # nothing to build


def test_a_misspelled_or_unsourced_dataset_is_named(base_config, user_root):
    cfg = small_grid(base_config, ["simpel"])
    cfg["dataset_sources"] = {"hopper": {"simple": "minari:mujoco/hopper/simple-v0"}}
    with pytest.raises(C.ConfigError, match=r"unknown dataset 'simpel'.*Did you mean 'simple'"):
        C.validate(cfg)
    cfg = small_grid(base_config, ["simple"], envs=("hopper", "walker2d"))
    cfg["dataset_sources"] = {"hopper": {"simple": "minari:mujoco/hopper/simple-v0"}}
    with pytest.raises(C.ConfigError, match=r"'simple' must come from dataset_sources, which names none for walker2d"):
        C.validate(cfg)
    cfg = small_grid(base_config, ["random"])
    cfg["dataset_sources"] = {"hopper": {"Simple v0": "minari:mujoco/hopper/simple-v0"}}
    with pytest.raises(C.ConfigError, match=r"dataset_sources.hopper.Simple v0.*lower-case"):
        C.validate(cfg)


# ---- b. reference scores per source -------------------------------------------------------------------------------

def test_a_minari_dataset_is_scored_against_its_own_reference_returns(user_root, tmp_path):
    data, prov = mio.load_source("minari:mujoco/hopper/medium-v0", "hopper", user_root)
    assert prov["reference"] == {**MINARI_PAIR, "from": "dataset metadata (minari:mujoco/hopper/medium-v0)"}
    assert reference_score(prov["reference"], 3600.0) == pytest.approx(100.0)
    # a D4RL file records none: D4RL's table
    path = tmp_path / "hopper.hdf5"
    with h5py.File(path, "w") as f:
        for key in ("observations", "actions", "rewards", "terminals", "timeouts"):
            f[key] = getattr(data, key)[:50]
    ref = mio.load_source(f"d4rl:{path}", "hopper", None)[1]["reference"]
    assert (ref["ref_min"], ref["ref_max"], ref["from"]) == (-20.272305, 3234.3, "D4RL table (d4rl/infos.py)")


@pytest.mark.slow  # trains a tiny cell (seconds): the scores of curve.csv and the pair in summary.json, end to end
def test_a_cell_on_a_minari_dataset_scores_and_records_its_pair(base_config, user_root, tmp_path, monkeypatch):
    from conftest import tiny_spec
    from wmaug.cell import run_cell
    from wmaug.cli import main

    monkeypatch.chdir(tmp_path)
    cfg = small_grid(base_config, ["simple"])
    cfg["dataset_sources"] = {"hopper": {"simple": "minari:mujoco/hopper/simple-v0"}}
    (tmp_path / "config.yaml").write_text(json.dumps(cfg))
    main(["subsample", "--config", "config.yaml", "--env", "hopper", "--dataset", "simple", "--seed", "0",
          "--n", "100", "--out", str(tmp_path / "sample.npz")])
    spec = tiny_spec(base_config, tmp_path, "td3bc_td3", offline_iterations=20, online_steps=120,
                     online_start_steps=60, eval_every=60)
    summary = run_cell(spec, tmp_path / "cell", device="cpu", progress=False)
    assert summary["dataset"]["reference"]["ref_max"] == MINARI_PAIR["ref_max"]
    import pandas as pd

    curve = pd.read_csv(tmp_path / "cell" / "curve.csv")
    np.testing.assert_allclose(curve["normalized_score"],
                               100 * (curve["raw_return"] - MINARI_PAIR["ref_min"]) / 3605.0, rtol=1e-9)


def test_a_figure_that_mixes_reference_pairs_says_so(tmp_path):
    from wmaug.report.aggregate import collect_scores, curve_intervals
    from wmaug.report.figures import plot_curve_grid

    dirs = [make_cell(tmp_path, "hopper", d, "td3", s, np.linspace(0, 50, 4), offline=False)
            for d in ("simple", "random") for s in (0, 1)]
    for d in dirs[:2]:  # the simple cells were scored against Minari's pair
        summary = json.loads((d / "summary.json").read_text())
        summary["dataset"] = {"reference": {**MINARI_PAIR, "from": "dataset metadata (minari:mujoco/hopper/simple-v0)"}}
        (d / "summary.json").write_text(json.dumps(summary))
    scores = collect_scores(dirs)
    note = mixed_reference_note(scores.attrs["references"])
    assert "mixed reference returns" in note and "-5/3600 for simple" in note and "-20.2723/3234.3 for random" in note
    assert mixed_reference_note(collect_scores(dirs[2:]).attrs["references"]) == ""  # one pair: no label
    intervals = curve_intervals(scores, reps=20)
    assert intervals.attrs["references"] == scores.attrs["references"]
    only_random = curve_intervals(scores[scores["dataset"] == "random"], reps=20)
    assert mixed_reference_note(only_random.attrs["references"]) == ""  # the subset plotted decides
    plot_curve_grid(intervals, tmp_path / "fig", rows=["simple", "random"], cols=["hopper"], lines=["td3"],
                    title="test")
    assert (tmp_path / "fig.png").is_file()


# ---- c. Arrow datasets through minari's API ------------------------------------------------------------------------

def test_an_arrow_dataset_reads_like_its_hdf5_twin(tmp_path):
    pytest.importorskip("pyarrow")
    arrow = publish(tmp_path, "medium", 5, data_format="arrow")
    assert not (tmp_path / "mujoco/hopper/medium-v0/data/main_data.hdf5").exists()
    twin_root = tmp_path / "twin"
    publish(twin_root, "medium", 5)
    mio.check_source(arrow, "hopper", tmp_path)
    mio.check_finite_streaming(arrow, tmp_path, tmp_path / "checked")
    got, prov = mio.load_source(arrow, "hopper", tmp_path)
    want, _ = mio.load_source(arrow, "hopper", twin_root)
    for key in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(got, key), getattr(want, key))
    assert prov["reference"]["ref_max"] == MINARI_PAIR["ref_max"] and len(prov["checksum"]) == 64
    assert len(mio.read_minari_episodes("mujoco/hopper/medium-v0", tmp_path)) >= 1


def test_an_arrow_dataset_without_pyarrow_says_so(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow")
    arrow = publish(tmp_path, "medium", 6, data_format="arrow")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an environment without pyarrow raises on import
    with pytest.raises(mio.DatasetError, match=r"stored as arrow.*pyarrow, not installed here.*minari\[arrow\]"):
        mio.check_source(arrow, "hopper", tmp_path)


def test_an_arrow_dataset_without_its_data_is_named(tmp_path):
    pytest.importorskip("pyarrow")
    arrow = publish(tmp_path, "medium", 7, data_format="arrow")
    data = tmp_path / "mujoco/hopper/medium-v0/data"
    for p in data.iterdir():
        if p.name != "metadata.json":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    with pytest.raises(mio.DatasetError, match=r"the arrow dataset holds metadata but no episode data"):
        mio.load_source(arrow, "hopper", tmp_path)


# ---- d. D4RL's ant files ---------------------------------------------------------------------------------------------

def test_a_d4rl_ant_file_is_refused_with_the_reason_and_the_way_forward(tmp_path, base_config):
    path = tmp_path / "ant_medium-v2.hdf5"
    n = 20
    with h5py.File(path, "w") as f:
        obs = np.zeros((n, 111), np.float32)
        obs[:, :27] = np.random.default_rng(0).normal(size=(n, 27))  # columns 27-110 zero, as in D4RL's files
        f["observations"], f["actions"] = obs, np.zeros((n, 8), np.float32)
        f["rewards"], f["terminals"], f["timeouts"] = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
    with pytest.raises(mio.DatasetError, match=r"D4RL ant file.*contact forces read 0.*mujoco/ant/<kind>-v0"):
        mio.load_d4rl_hdf5(path, "ant")
    cfg = copy.deepcopy(base_config)
    cfg["dataset_sources"] = {"ant": {"random": f"d4rl:{path}"}}
    with pytest.raises(C.ConfigError, match=r"dataset_sources.ant.random.*D4RL ant file"):
        C.validate(cfg)


# ---- e. the minari preset ------------------------------------------------------------------------------------------

def test_the_minari_preset_takes_minaris_sets_and_builds_the_rest(base_config, user_root):
    cfg = small_grid(base_config, ["simple", "medium", "medium-expert", "random", "medium-replay"])
    cfg["datasets"] = "minari"
    cfg = C.validate(cfg)
    assert cfg["dataset_sources"] == {"hopper": {k: f"minari:mujoco/hopper/{k}-v0"
                                                 for k in ("simple", "medium", "expert")}}
    for kind in ("random", "medium-replay", "medium-expert"):  # built here
        assert C.dataset_input(cfg, "hopper", kind) == [C.dataset_marker(cfg, "hopper", kind)]
    # a source the user names wins over the preset's
    raw = small_grid(base_config, ["medium"])
    raw.update(datasets="minari", dataset_sources={"hopper": {"medium": "minari:mujoco/hopper/simple-v0"}})
    assert C.validate(raw)["dataset_sources"]["hopper"]["medium"] == "minari:mujoco/hopper/simple-v0"


def test_the_minari_preset_names_a_set_not_installed(base_config, tmp_path, monkeypatch):
    monkeypatch.setattr(C, "USER_MINARI_ROOT", str(tmp_path))
    cfg = small_grid(base_config, ["expert"])
    cfg["datasets"] = "minari"
    with pytest.raises(C.ConfigError, match=r"dataset_sources.hopper.expert.*minari download mujoco/hopper/expert-v0"):
        C.validate(cfg)
    cfg["datasets"] = "published"
    with pytest.raises(C.ConfigError, match=r"'datasets' = 'published'"):
        C.validate(cfg)


def test_the_preset_leaves_the_existing_experiment_alone(base_config):
    """Without the key nothing is added: hopper_noisy and the default config keep building every dataset."""
    cfg = C.validate(copy.deepcopy(base_config))
    assert cfg["dataset_sources"] == {} and "datasets" not in cfg


# ---- e + f. medium-expert from Minari's parts, and what a built dataset's marker records ----------------------------

@pytest.mark.slow  # rolls out 2,000 random Hopper steps and writes three Minari datasets (seconds)
def test_built_datasets_record_their_returns_and_pairs(base_config, user_root, tmp_path, monkeypatch):
    from wmaug.cli import main

    monkeypatch.chdir(tmp_path)
    cfg = small_grid(base_config, ["medium-expert", "random"])
    cfg["datasets"] = "minari"
    (tmp_path / "config.yaml").write_text(json.dumps(cfg))
    marker = tmp_path / "me.json"
    main(["dataset", "--config", "config.yaml", "--env", "hopper", "--kind", "medium-expert", "--out", str(marker)])
    info = json.loads(marker.read_text())
    assert info["parts"] == {"medium": "minari:mujoco/hopper/medium-v0", "expert": "minari:mujoco/hopper/expert-v0"}
    parts = [mio.read_minari_episodes(f"mujoco/hopper/{k}-v0", user_root) for k in ("medium", "expert")]
    returns = [float(np.sum(ep["rewards"])) for eps in parts for ep in eps]
    r = info["returns"]
    assert r["episodes"] == len(returns) == info["n_episodes"]
    assert r["mean_return"] == pytest.approx(np.mean(returns)) and r["sd_return"] == pytest.approx(np.std(returns))
    assert r["reference"]["ref_max"] == MINARI_PAIR["ref_max"]  # the parts' pair, and the built dataset keeps it
    assert r["normalized_score"] == pytest.approx(reference_score(MINARI_PAIR, np.mean(returns)))
    built = f"minari:{C.built_minari_id('smoke', 'hopper', 'medium-expert')}"
    assert mio.source_reference(built, "hopper", C.MINARI_ROOT)["ref_max"] == MINARI_PAIR["ref_max"]

    main(["dataset", "--config", "config.yaml", "--env", "hopper", "--kind", "random", "--out", "random.json"])
    r = json.loads((tmp_path / "random.json").read_text())["returns"]
    assert r["reference"]["from"] == "D4RL table (d4rl/infos.py)" and r["sd_return"] > 0
    packages = json.loads((tmp_path / "random.json").read_text())["provenance"]["packages"]
    assert packages["mujoco"] == metadata.version("mujoco") and packages["gymnasium"] == metadata.version("gymnasium")
    assert "d4rl_v2_mean_return" not in r  # D4RL publishes no hopper-random mean in the harness's table


def test_the_markers_d4rl_published_mean_stands_beside_the_harness_own():
    from wmaug.data.d4rl_protocol import dataset_returns

    episodes = [{"rewards": np.full(10, 100.0)}, {"rewards": np.full(10, 200.0)}]
    r = dataset_returns("hopper", "medium", episodes)
    assert (r["mean_return"], r["sd_return"]) == (1500.0, 500.0)
    assert r["d4rl_v2_mean_return"] == 1422.0 and r["d4rl_v2_normalized_score"] == pytest.approx(44.3, abs=0.05)


def test_an_old_medium_expert_marker_reads_fine_and_a_changed_part_stops_the_run(base_config, user_root, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "resources/smoke/datasets/hopper/medium-expert.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"env": "hopper", "kind": "medium-expert", "scale": "smoke", "returns": {
        "mean_return": 583.0, "normalized_score": 18.5, "episodes": 200}}))  # written by the code before this one
    cfg = small_grid(base_config, ["medium-expert"])
    C.check_samples_current(C.validate(copy.deepcopy(cfg)))  # the harness's own parts, as before: fine
    cfg["datasets"] = "minari"
    with pytest.raises(C.ConfigError, match=r"medium-expert.json concatenates.*delete"):
        C.check_samples_current(C.validate(cfg))


@pytest.mark.slow  # starts Snakemake (a dry run of the smoke DAG)
def test_the_dag_plans_a_minari_grid_building_only_what_minari_lacks(base_config, minari_root, tmp_path):
    import os
    import shutil
    import subprocess

    from conftest import ROOT

    for name in ("Snakefile", "rules", "config"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    cfg = small_grid(base_config, ["simple", "medium-expert"])
    cfg["studies"]["wmaug"]["methods"] = ["td3bc_td3"]
    del cfg["studies"]["balanced_replay"]
    (tmp_path / "config/config.yaml").write_text(json.dumps(cfg))
    cells = [f"results/smoke/wmaug/hopper/{d}/td3bc_td3/seed0/summary.json" for d in ("simple", "medium-expert")]
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", *cells, "--config", "scale=smoke", "datasets=minari"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MINARI_DATASETS_PATH": str(minari_root)})
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    planned = [line.split()[-1] for line in text.splitlines() if line.strip().startswith("output:")]
    datasets = [p for p in planned if "/datasets/" in p]
    assert datasets == ["resources/smoke/datasets/hopper/medium-expert.json"], datasets  # no behaviour SAC either
    assert not any("/behaviour/" in p for p in planned)
    assert any("samples/hopper/simple/" in p for p in planned)
