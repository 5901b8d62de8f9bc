"""Paper B's report (wmaug.paper_b.report) on synthetic finished cells of study `balanced_replay`.

The grid is the smoke scale's (halfcheetah, hopper x random, medium-expert; Fig 1b's
halfcheetah-medium is left out), 3 seeds, with every `ours_alt_ratio` cell and the `ours_uniform`
cells of hopper-medium-expert missing. Scores are a known mean per (method, task, step) plus a
per-seed offset from {-d, 0, +d}: the mean over seeds is the known mean exactly, so every
plotted mean can be checked, and a 95% percentile-bootstrap interval must contain it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

from conftest import ROOT, assert_report_files, build_report_noting, make_cell
from wmaug.core import config as C
from wmaug.paper_b import report as paper_b
from wmaug.report.aggregate import collect_scores, curve_intervals, final_scores
from wmaug.core.papers import PAPERS
from wmaug.report.build import build_study_report
from wmaug.report.figures import CURVE_PLOT_COLUMNS

STUDY = "balanced_replay"
SEEDS = 3
OFFSETS = {0: -1.0, 1: 0.0, 2: 1.0}  # x the spread of each quantity: seed means are exact
LEVEL = {"ours": 90.0, "awac": 60.0, "bcq_ft": 55.0, "sac_ft": 50.0, "sac": 30.0, "sac_single": 25.0,
         "sac_ft_online_only": 20.0, "ours_uniform": 70.0, "ours_online_only": 40.0, "ours_e1": 65.0,
         "ours_e2": 75.0, "fqe_e1": 35.0, "ours_keep_cql": 45.0, "ours_alt_ratio": 85.0,
         "ours_long": 95.0, "fqe_long": 50.0}
DROPPED = {"ours_alt_ratio": None, "ours_uniform": ("hopper", "medium-expert")}  # None: everywhere


def smoke_config() -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["scale"] = "smoke"
    # pinned here so that the test does not move with the smoke scale's budgets
    cfg["scales"]["smoke"].update(
        study_seeds={STUDY: SEEDS}, bootstrap_reps=100, finetune_steps=300, finetune_long_steps=450,
        finetune_eval_every=150,
        grid_subset={STUDY: {"envs": ["halfcheetah", "hopper"], "datasets": ["random", "medium-expert"]}})
    return C.validate(cfg)


def steps_of(cfg: dict, method: str) -> np.ndarray:
    s = C.scale_cfg(cfg)
    total = s["finetune_long_steps"] if method.endswith("_long") else s["finetune_steps"]
    return np.arange(0, total + 1, s["finetune_eval_every"])


def true_score(method, env, dataset, steps) -> np.ndarray:
    bump = {"halfcheetah": 0.0, "hopper": 3.0}[env] + {"random": 0.0, "medium-expert": 5.0}[dataset]
    return (LEVEL[method] + bump) * (0.2 + 0.8 * steps / steps.max())


def true_share(dataset, steps) -> np.ndarray:
    out = 0.5 * np.exp(-steps / 150.0) if dataset == "random" else 0.45 + 0.0 * steps
    return np.where(steps == 0, np.nan, out)


def true_auroc(kind, steps) -> np.ndarray:
    return np.where(steps == 0, np.nan, (0.8 if kind == "ensemble" else 0.6) + 0.0 * steps)


def write_cells(root: Path, cfg: dict, **kw) -> list[Path]:
    dirs = []
    for cell in C.grid_cells(cfg, STUDY):
        env, ds, m, seed = cell["env"], cell["dataset"], cell["method"], cell["seed"]
        if m in DROPPED and DROPPED[m] in (None, (env, ds)):
            continue
        steps = steps_of(cfg, m)
        off = OFFSETS[seed]
        extra = {
            "offline_share": (true_share(ds, steps) + 0.05 * off) if m != "ours_online_only" else 0.0,
            "auroc_ensemble": true_auroc("ensemble", steps) + 0.04 * off,
            "auroc_single": true_auroc("single", steps) + 0.04 * off,
            "actor_loss": 0.1, "q_mean": 3.0, "alpha": 0.2, "env_steps": steps, "updates": steps,
        }
        score = true_score(m, env, ds, steps) + 4.0 * off
        dirs.append(make_cell(root, env, ds, m, seed, score, steps, offline=False, study=STUDY,
                              raw_return=score * 30.0, extra=extra, **kw))
    return dirs


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_b")
    cfg = smoke_config()
    cells = write_cells(root / "cells", cfg)
    results, figures = root / "results" / STUDY, root / "figures"
    results.mkdir(parents=True)
    rng = np.random.default_rng(0)
    loglik = pd.DataFrame({"source": ["offline"] * 400 + ["online"] * 300,
                           "log_likelihood": np.concatenate([rng.normal(-10, 2, 400), rng.normal(-40, 8, 300)])})
    loglik.to_csv(results / "fig1a_loglik.csv", index=False)
    notes = build_report_noting(cfg, STUDY, cells, results, figures)
    return {"cfg": cfg, "cells": cells, "results": results, "figures": figures, "notes": notes,
            "loglik": loglik}


def fig_csv(report, name) -> pd.DataFrame:
    return pd.read_csv(report["figures"] / f"{STUDY}_{name}.csv", float_precision="round_trip")


# --------------------------------------------------------------------------- files and notes
@pytest.mark.slow  # draws every figure of a report (seconds; nothing trains)
def test_every_figure_and_table_is_written(report):
    assert_report_files(report["figures"], report["results"], STUDY)
    leftovers = [p.name for d in (report["figures"], report["results"]) for p in d.iterdir()
                 if p.name.startswith(".")]
    assert leftovers == []
    # only the figures without data are notes
    assert set(report["notes"]) == {f"{STUDY}_fig1b", f"{STUDY}_appendix_density_ratio"}


def test_block_outside_the_scale_is_a_note_with_header_only_csv(report):
    note = report["notes"][f"{STUDY}_fig1b"]
    assert "not run at scale 'smoke'" in note and "halfcheetah-medium" in note
    csv = fig_csv(report, "fig1b")
    assert csv.empty and list(csv.columns) == CURVE_PLOT_COLUMNS


def test_block_without_finished_cells_is_a_note(report):
    note = report["notes"][f"{STUDY}_appendix_density_ratio"]
    assert "no finished cells" in note and "ours_alt_ratio" in note
    csv = fig_csv(report, "appendix_density_ratio")
    assert csv.empty and list(csv.columns) == CURVE_PLOT_COLUMNS


# --------------------------------------------------------------------------- plotted numbers
def test_fig3_means_are_the_true_means_inside_their_intervals(report):
    csv = fig_csv(report, "fig3")
    blocks = C.grid_blocks(report["cfg"], STUDY)
    main = blocks["main"]
    assert set(csv["method"]) == set(main["methods"])
    assert set(zip(csv["env"], csv["dataset"])) == {(e, d) for e in main["envs"] for d in main["datasets"]}
    assert len(csv) == 4 * len(main["methods"]) * len(steps_of(report["cfg"], "ours"))
    for (env, ds, m), g in csv.groupby(["env", "dataset", "method"]):
        truth = true_score(m, env, ds, g["step"].to_numpy())
        np.testing.assert_allclose(g["value"], truth, atol=1e-9)
        assert (g["lo"] <= truth + 1e-9).all() and (truth <= g["hi"] + 1e-9).all()
        assert (g["hi"] - g["lo"] > 1.0).all()  # the seeds' spread makes a real interval


def test_fig4a_csv_holds_the_offline_share_means(report):
    csv = fig_csv(report, "fig4a")
    assert set(csv["method"]) == {"ours"} and set(csv["dataset"]) == {"random", "medium-expert"}
    assert set(csv["env"]) == {"halfcheetah", "hopper"}
    assert (csv["step"] > 0).all()  # step 0 has no replay batches (NaN): not plotted
    for (env, ds), g in csv.groupby(["env", "dataset"]):
        truth = true_share(ds, g["step"].to_numpy())
        np.testing.assert_allclose(g["value"], truth, atol=1e-12)
        assert (g["lo"] <= truth + 1e-12).all() and (truth <= g["hi"] + 1e-12).all()
    # matches a direct computation from the cells
    s = collect_scores(report["cells"], extra_columns=["offline_share"])
    ours = s[(s.method == "ours") & s.offline_share.notna() & s.dataset.isin(["random", "medium-expert"])]
    direct = ours.groupby(["env", "dataset", "step"])["offline_share"].mean()
    got = csv.set_index(["env", "dataset", "step"])["value"].sort_index()
    np.testing.assert_allclose(got, direct.loc[got.index], atol=1e-12)


def test_fig4b_csv_holds_both_aurocs_on_medium_expert(report):
    csv = fig_csv(report, "fig4b")
    assert set(csv["dataset"]) == {"medium-expert"} and set(csv["method"]) == {"ours"}
    assert set(csv["quantity"]) == {"auroc_ensemble", "auroc_single"}
    for q, g in csv.groupby("quantity"):
        np.testing.assert_allclose(g["value"], 0.8 if q == "auroc_ensemble" else 0.6, atol=1e-12)


def test_fig1_raw_returns_and_loglik_histogram(report):
    c = fig_csv(report, "fig1c")
    assert set(c["method"]) == {"ours_e1", "fqe_e1"} and set(c["env"]) == {"halfcheetah"}
    for (ds, m), g in c.groupby(["dataset", "method"]):
        np.testing.assert_allclose(g["value"], 30.0 * true_score(m, "halfcheetah", ds, g["step"].to_numpy()),
                                   rtol=1e-12)
    a = fig_csv(report, "fig1a")
    assert list(a.columns) == paper_b.FIG1A_COLUMNS
    for source, n in (("offline", 400), ("online", 300)):
        g = a[a.source == source]
        assert g["count"].sum() == n
        assert (g["density"] * (g["bin_right"] - g["bin_left"])).sum() == pytest.approx(1.0)


def test_fig4c_missing_cells_and_aggregate_panel(report):
    csv = fig_csv(report, "fig4c")
    curves, side = csv[csv["step"].notna()], csv[csv["step"].isna()]
    uniform_tasks = set(zip(curves.loc[curves.method == "ours_uniform", "env"],
                            curves.loc[curves.method == "ours_uniform", "dataset"]))
    assert ("hopper", "medium-expert") not in uniform_tasks and len(uniform_tasks) == 3
    assert set(side["estimator"]) == {"iqm_final", "iqm_auc"}
    assert (side["env"] == "all").all() and set(side["method"]) == {"ours", "ours_uniform", "ours_online_only"}
    # IQM of the final score over the 3 tasks every method has, 3 seeds each
    common = sorted(uniform_tasks)
    final_step = steps_of(report["cfg"], "ours")
    for m, row in side[side.estimator == "iqm_final"].set_index("method").iterrows():
        runs = [true_score(m, e, d, final_step)[-1] + 4.0 * o for e, d in common for o in OFFSETS.values()]
        assert row["value"] == pytest.approx(scipy.stats.trim_mean(runs, 0.25))
        assert row["lo"] <= row["value"] <= row["hi"]
    agg = pd.read_csv(report["results"] / "aggregate_metrics.csv")
    fig4c = agg[(agg.block == "fig4c") & (agg.metric == "iqm")]
    assert set(fig4c.score) == {"final", "auc"} and (fig4c.n_tasks == 3).all()


def test_aggregate_figure_and_tables(report):
    csv = fig_csv(report, "aggregate")
    metric_panels = {"iqm", "median", "mean", "optimality_gap", "auc_iqm", "auc_mean"}
    poi_panels = {f"poi:ours>{b}" for b in ("awac", "bcq_ft", "sac_ft", "sac", "sac_single")}
    assert set(csv["panel"]) == metric_panels | poi_panels
    assert len(csv[csv.panel.isin(metric_panels)]) == 6 * 6
    poi = csv[csv.panel.isin(poi_panels)]
    assert len(poi) == 5 * (1 + 4) and (poi["value"] == 1.0).all()  # ours beats every baseline everywhere
    # the mean of the final score is the mean of the known finals
    final_step = steps_of(report["cfg"], "ours")
    tasks = [(e, d) for e in ("halfcheetah", "hopper") for d in ("random", "medium-expert")]
    for m in ("ours", "sac"):
        row = csv[(csv.panel == "mean") & (csv.label == m)].iloc[0]
        assert row["value"] == pytest.approx(np.mean([true_score(m, e, d, final_step)[-1] for e, d in tasks]))
        assert row["lo"] <= row["value"] <= row["hi"]
    # AUC (trapezoidal mean of the curve): ours' known curve is linear, so its mean over the run is its midpoint
    auc = csv[(csv.panel == "auc_mean") & (csv.label == "ours")].iloc[0]
    assert auc["value"] == pytest.approx(np.mean([true_score("ours", e, d, final_step)[[0, -1]].mean()
                                                  for e, d in tasks]))
    scores = pd.read_csv(report["results"] / "scores.csv")
    assert {"offline_share", "auroc_ensemble", "auroc_single"} <= set(scores.columns)
    assert "actor_loss" not in scores.columns and set(scores.phase) == {"online"}
    ci = pd.read_csv(report["results"] / "curve_intervals.csv")
    assert set(ci.quantity) == {"normalized_score", "raw_return", "offline_share", "auroc_ensemble", "auroc_single"}
    p = pd.read_csv(report["results"] / "probability_of_improvement.csv")
    assert set(p.score) == {"final", "auc"} and set(p.y) == {"awac", "bcq_ft", "sac_ft", "sac", "sac_single"}


def test_long_runs_have_their_own_length(report):
    csv = fig_csv(report, "appendix_long_runs")
    assert set(csv["method"]) == {"ours_long", "fqe_long"} and set(csv["env"]) == {"halfcheetah"}
    assert csv["step"].max() == steps_of(report["cfg"], "ours_long").max() > steps_of(report["cfg"], "ours").max()


# --------------------------------------------------------------------------- refusals and helpers
def test_report_refuses_mixed_config_hashes_and_scales(tmp_path):
    cfg = smoke_config()
    a = make_cell(tmp_path, "hopper", "random", "ours", 0, [1.0, 2.0], [0, 150], offline=False, study=STUDY)
    b = make_cell(tmp_path, "hopper", "random", "ours", 1, [1.0, 2.0], [0, 150], offline=False, study=STUDY,
                  config_hash="other")
    with pytest.raises(ValueError, match="config_hash"):
        build_study_report(cfg, STUDY, [a, b], tmp_path / "r", tmp_path / "f")
    c = make_cell(tmp_path, "hopper", "random", "ours", 2, [1.0, 2.0], [0, 150], offline=False, study=STUDY,
                  scale="quick")
    with pytest.raises(ValueError, match="scale"):
        build_study_report(cfg, STUDY, [c], tmp_path / "r", tmp_path / "f")
    assert not (tmp_path / "f").exists()


def test_collect_scores_extra_columns_and_analysis_curves(tmp_path):
    steps = np.array([0, 100, 200])
    a = make_cell(tmp_path, "hopper", "random", "ours", 0, [1.0, 2.0, 3.0], steps, offline=False, study=STUDY,
                  extra={"offline_share": [np.nan, 0.4, 0.2], "w_online": 1.0})
    b = make_cell(tmp_path, "hopper", "random", "ours", 1, [1.0, 4.0, 5.0], steps, offline=False, study=STUDY,
                  extra={"offline_share": [np.nan, 0.6, np.nan]})
    s = collect_scores([a, b])
    assert "offline_share" not in s.columns  # only asked-for columns are kept
    s = collect_scores([a, b], extra_columns=["offline_share", "auroc_single"])
    assert s["auroc_single"].isna().all()  # absent from the curves
    with pytest.raises(ValueError, match="same steps"):
        curve_intervals(s, reps=20, value="offline_share")
    with pytest.warns(RuntimeWarning, match="dropping 1 step"):
        ci = curve_intervals(s, reps=20, value="offline_share", missing="drop")
    assert ci["step"].tolist() == [100] and ci["mean"].iloc[0] == pytest.approx(0.5)
    assert ci.attrs["value"] == "offline_share"
    # the default value keeps paper A's numbers; another value gets its own bootstrap key
    plain = curve_intervals(s, reps=50, seed=3)
    assert plain["mean"].tolist() == [1.0, 3.0, 4.0]
    raw = curve_intervals(s, reps=50, seed=3, value="raw_return")
    np.testing.assert_allclose(raw["mean"], 10 * plain["mean"])


def test_final_scores_auc_is_the_trapezoidal_mean(tmp_path):
    steps = np.array([0, 100, 300])
    a = make_cell(tmp_path, "hopper", "random", "ours", 0, [0.0, 10.0, 30.0], steps, offline=False, study=STUDY)
    b = make_cell(tmp_path, "hopper", "random", "sac", 0, [20.0, 20.0, 20.0], steps, offline=False, study=STUDY)
    f = final_scores(collect_scores([a, b]), step="auc").set_index("method")
    # ours: (0+10)/2*100 + (10+30)/2*200 = 500 + 4000 = 4500 over 300 steps
    assert f.loc["ours", "normalized_score"] == pytest.approx(15.0) and f.loc["ours", "step"] == 300
    assert f.loc["sac", "normalized_score"] == pytest.approx(20.0)
    c = make_cell(tmp_path, "ant", "random", "ours", 0, [0.0, 1.0], [0, 100], offline=False, study=STUDY)
    d = make_cell(tmp_path, "ant", "random", "sac", 0, [0.0, 1.0, 2.0], [0, 100, 200], offline=False, study=STUDY)
    with pytest.raises(ValueError, match="different steps"):
        final_scores(collect_scores([c, d]), step="auc")


def test_no_cells_gives_notes_only(tmp_path):
    cfg = smoke_config()
    paper_b.build_balanced_replay_report(cfg, STUDY, [], tmp_path / "r", tmp_path / "f")
    for name in PAPERS[STUDY].figures:
        assert (tmp_path / "f" / f"{STUDY}_{name}.png").is_file()
        assert pd.read_csv(tmp_path / "f" / f"{STUDY}_{name}.csv").empty
    assert pd.read_csv(tmp_path / "r" / "scores.csv").empty
