"""Tests for wmaug.report.aggregate and wmaug.report.figures on synthetic finished cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from rliable import metrics as rlm

from wmaug.report import aggregate as agg
from wmaug.report.aggregate import (
    aggregate_metrics,
    collect_scores,
    curve_intervals,
    probability_of_improvement,
)
from wmaug.report.figures import plot_aggregate_metrics, plot_learning_curves

from conftest import make_cell  # the synthetic finished-cell writer shared with test_report_b.py

ENVS = ["halfcheetah", "hopper", "walker2d", "ant"]
DATASETS = ["medium-expert", "medium-replay", "random"]
METHODS = ["wm_td3bc_td3", "td3bc_td3", "td3"]
REPS = 400  # enough for stable percentiles in these tests, small enough to stay fast


def make_grid(root: Path, score_fn, *, envs=ENVS, datasets=DATASETS, methods=METHODS,
              seeds=range(1, 6), n_steps: int = 11, **kw) -> list[Path]:
    """Cells for every combination; ``score_fn(env, dataset, method, seed, rng) -> (n_steps,)``."""
    rng = np.random.default_rng(1234)
    return [make_cell(root, e, d, m, s, score_fn(e, d, m, s, rng, n_steps), **kw)
            for e in envs for d in datasets for m in methods for s in seeds]


def noisy(level_by_method):
    def fn(env, dataset, method, seed, rng, n):
        return level_by_method[method] * np.linspace(0.1, 1.0, n) + rng.normal(0, 8, n)
    return fn


# --------------------------------------------------------------------------- collect_scores
def test_collect_scores_long_table(tmp_path):
    dirs = make_grid(tmp_path, noisy({"wm_td3bc_td3": 90, "td3bc_td3": 60, "td3": 50}),
                     envs=["hopper"], datasets=["random"], seeds=[2, 3])
    s = collect_scores(dirs)
    assert list(s.columns) == agg.SCORE_COLUMNS
    assert {k: v for k, v in s.attrs.items() if k != "references"} == {"scale": "smoke", "config_hash": "cfg0"}
    # summaries written before reference pairs were recorded were scored with D4RL's
    assert set(map(tuple, s.attrs["references"].values())) == {(-20.272305, 3234.3, "D4RL table (d4rl/infos.py)")}
    assert set(s["phase"]) == {"offline", "online"}
    assert len(s) == 3 * 2 * 11 + 2 * 2 * 3  # td3 has no offline rows
    assert s[(s.method == "td3")]["phase"].eq("online").all()


def test_collect_scores_rejects_mixed_scales_and_hashes(tmp_path):
    a = make_cell(tmp_path, "hopper", "random", "td3", 2, np.ones(3), scale="smoke")
    b = make_cell(tmp_path, "hopper", "random", "td3", 3, np.ones(3), scale="smoke")
    c = make_cell(tmp_path, "ant", "random", "td3", 4, np.ones(3), scale="full")
    with pytest.raises(ValueError, match="scale") as exc:
        collect_scores([a, b, c])
    msg = str(exc.value)
    for label in ("wmaug/hopper/random/td3/seed2", "wmaug/hopper/random/td3/seed3",
                  "wmaug/ant/random/td3/seed4"):
        assert label in msg
    assert "'full'" in msg and "'smoke'" in msg
    d = make_cell(tmp_path, "ant", "random", "td3", 5, np.ones(3), config_hash="other")
    with pytest.raises(ValueError, match="config_hash") as exc:
        collect_scores([a, d])
    assert "wmaug/ant/random/td3/seed5" in str(exc.value)


@pytest.mark.parametrize("finished", [False, None, "true"])
def test_collect_scores_rejects_unfinished(tmp_path, finished):
    ok = make_cell(tmp_path, "hopper", "random", "td3", 2, np.ones(3))
    bad = make_cell(tmp_path, "hopper", "random", "td3", 3, np.ones(3), finished=finished)
    with pytest.raises(ValueError, match="finished") as exc:
        collect_scores([ok, bad])
    assert str(bad) in str(exc.value) and str(ok) not in str(exc.value)


def test_the_report_command_names_unfinished_cells_in_one_line_and_exits_1(tmp_path, capsys):
    from wmaug import cli

    ok = make_cell(tmp_path, "hopper", "random", "td3", 0, np.ones(3), scale="smoke")
    bad = make_cell(tmp_path, "hopper", "random", "td3bc_td3", 0, np.ones(3), scale="smoke", finished=False)
    with pytest.raises(SystemExit) as exc:
        cli.main(["report", "--scale", "smoke", "--study", "wmaug", "--cells", str(ok), str(bad),
                  "--results-out", str(tmp_path / "r"), "--figures-out", str(tmp_path / "f")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("wmaug report: error: cannot use 1 cell folder(s):") and str(bad) in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "f").exists()


def test_collect_scores_rejects_missing_summary_and_duplicates(tmp_path):
    ok = make_cell(tmp_path, "hopper", "random", "td3", 2, np.ones(3))
    empty = tmp_path / "empty_cell"
    empty.mkdir()
    with pytest.raises(ValueError, match="summary.json") as exc:
        collect_scores([ok, empty])
    assert str(empty) in str(exc.value)
    with pytest.raises(ValueError, match="also read from"):
        collect_scores([ok, ok])
    with pytest.raises(ValueError, match="no cell folders given"):
        collect_scores([])


# --------------------------------------------------------------------------- curve_intervals
@pytest.fixture(scope="module")
def curve_scores(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("curve_cells")
    fn = noisy({"wm_td3bc_td3": 90, "td3bc_td3": 60, "td3": 50})

    def score(env, dataset, method, seed, rng, n):
        if method == "td3":  # constant across seeds: degenerate bootstrap
            return np.linspace(0.0, 30.0, n) + 0.1
        return fn(env, dataset, method, seed, rng, n)

    dirs = make_grid(tmp_path, score, envs=["hopper", "ant"], datasets=["random"])
    return collect_scores(dirs)


def test_curve_intervals_point_estimates(curve_scores):
    ci = curve_intervals(curve_scores, reps=REPS)
    assert list(ci.columns) == agg.CURVE_COLUMNS
    assert ci.attrs["scale"] == "smoke" and ci.attrs["phase"] == "online"
    online = curve_scores[curve_scores.phase == "online"]
    assert len(ci) == online.groupby(["env", "dataset", "method", "step"]).ngroups
    for (env, ds, m), g in ci.groupby(["env", "dataset", "method"]):
        wide = online[(online.env == env) & (online.dataset == ds) & (online.method == m)] \
            .pivot(index="seed", columns="step", values="normalized_score")
        x = wide.to_numpy()
        assert (g["step"].to_numpy() == wide.columns.to_numpy()).all()
        assert (g["n_seeds"] == 5).all()
        np.testing.assert_allclose(g["mean"], x.mean(axis=0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g["iqm"], scipy.stats.trim_mean(x, 0.25, axis=0),
                                   rtol=1e-12, atol=1e-12)
        # and per step the same as rliable's own IQM
        np.testing.assert_allclose(
            g["iqm"], [rlm.aggregate_iqm(x[:, [t]]) for t in range(x.shape[1])], atol=1e-12)
    eps = 1e-9
    for est in ("mean", "iqm"):
        assert (ci[f"{est}_lo"] <= ci[est] + eps).all()
        assert (ci[est] <= ci[f"{est}_hi"] + eps).all()
    noisy_rows = ci[ci.method != "td3"]
    assert (noisy_rows["mean_hi"] - noisy_rows["mean_lo"] > 1.0).all()
    const = ci[ci.method == "td3"]
    for est in ("mean", "iqm"):
        assert (const[f"{est}_hi"] - const[f"{est}_lo"] == 0).all()
        np.testing.assert_allclose(const[est], const[f"{est}_lo"], atol=1e-12)


def test_curve_intervals_offline_phase_skips_online_only_methods(curve_scores):
    ci = curve_intervals(curve_scores, phase="offline", reps=50)
    assert set(ci.method) == {"wm_td3bc_td3", "td3bc_td3"}
    assert sorted(ci.step.unique()) == [0, 5000, 10000]


def test_curve_intervals_reproducible_and_order_independent(curve_scores):
    state = np.random.get_state()
    a = curve_intervals(curve_scores, reps=REPS, seed=7)
    after = np.random.get_state()
    assert all(np.array_equal(u, v) for u, v in zip(state[1:2], after[1:2]))  # state restored
    np.random.seed(999)  # disturbing the global generator must not matter
    b = curve_intervals(curve_scores.sample(frac=1.0, random_state=3), reps=REPS, seed=7)
    pd.testing.assert_frame_equal(a, b)
    # one group alone (a different call order / set of calls) gives the same numbers
    only = curve_scores[(curve_scores.env == "ant") & (curve_scores.method == "td3bc_td3")]
    c = curve_intervals(only, reps=REPS, seed=7)
    sub = a[(a.env == "ant") & (a.method == "td3bc_td3")].reset_index(drop=True)
    pd.testing.assert_frame_equal(sub, c)
    # while another seed gives other intervals
    d = curve_intervals(curve_scores, reps=REPS, seed=8)
    assert not np.allclose(a["mean_lo"], d["mean_lo"])


def test_single_seed_degenerates_without_crash(tmp_path):
    rng = np.random.default_rng(0)
    dirs = [make_cell(tmp_path, e, "random", m, 2, rng.normal(50, 10, 4))
            for e in ("hopper", "ant") for m in ("wm_td3bc_td3", "td3bc_td3")]
    s = collect_scores(dirs)
    ci = curve_intervals(s, reps=REPS)
    assert (ci["n_seeds"] == 1).all()
    for est in ("mean", "iqm"):
        assert (ci[f"{est}_lo"] == ci[est]).all() and (ci[f"{est}_hi"] == ci[est]).all()
    m = aggregate_metrics(s, reps=REPS)
    assert (m["n_seeds"] == 1).all() and (m["lo"] == m["value"]).all() \
        and (m["hi"] == m["value"]).all()
    p = probability_of_improvement(s, reps=REPS)
    assert (p["lo"] == p["value"]).all() and (p["hi"] == p["value"]).all()


def test_iqm_matches_scipy_trim_mean():
    rng = np.random.default_rng(5)
    for n in range(1, 13):
        x = rng.normal(size=(n, 7))
        np.testing.assert_allclose(agg.iqm(x, axis=0), scipy.stats.trim_mean(x, 0.25, axis=0),
                                   atol=1e-12)
        np.testing.assert_allclose(agg.iqm(x), scipy.stats.trim_mean(x, 0.25, axis=None),
                                   atol=1e-12)
        # the last axis: one IQM per row (the claims' bootstrap statistic, wmaug.report.claims)
        np.testing.assert_allclose(agg.iqm(x.T, axis=-1), scipy.stats.trim_mean(x.T, 0.25, axis=-1),
                                   atol=1e-12)


# --------------------------------------------------------------------------- aggregates
def final_matrix(scores, method):
    f = agg.final_scores(scores)
    return f[f.method == method].pivot(index="seed", columns=["env", "dataset"],
                                       values="normalized_score").to_numpy()


@pytest.fixture(scope="module")
def separated_scores(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("separated_cells")
    """'good' ~ 95 +- 6 (some above 100), 'bad' ~ 40 +- 6 at the final step, on 12 tasks."""
    def score(env, dataset, method, seed, rng, n):
        level = 95.0 if method == "wm_td3bc_td3" else 40.0
        out = rng.normal(20, 5, n)  # earlier steps: not what is aggregated
        out[-1] = level + rng.normal(0, 6)
        return out
    dirs = make_grid(tmp_path, score, methods=["wm_td3bc_td3", "td3bc_td3"], n_steps=4)
    return collect_scores(dirs)


def test_aggregate_metrics_separates_and_matches_definitions(separated_scores):
    m = aggregate_metrics(separated_scores, reps=REPS)
    assert list(m.columns) == agg.METRIC_COLUMNS
    assert (m["n_tasks"] == 12).all() and (m["n_seeds"] == 5).all()
    v = m.set_index(["method", "metric"])
    good, bad = v.loc["wm_td3bc_td3"], v.loc["td3bc_td3"]
    assert good.loc["iqm", "lo"] > bad.loc["iqm", "hi"]
    assert good.loc["optimality_gap", "hi"] < bad.loc["optimality_gap", "lo"]
    for method in ("wm_td3bc_td3", "td3bc_td3"):
        x = final_matrix(separated_scores, method)
        row = v.loc[method]
        assert (x > 100).any() or method == "td3bc_td3"  # clipping is exercised
        assert row.loc["optimality_gap", "value"] == pytest.approx(
            np.mean(np.maximum(100.0 - x, 0.0)))
        assert row.loc["mean", "value"] == pytest.approx(x.mean())
        assert row.loc["median", "value"] == pytest.approx(np.median(x.mean(axis=0)))
        assert row.loc["iqm", "value"] == pytest.approx(scipy.stats.trim_mean(x.ravel(), 0.25))
        assert ((row["lo"] <= row["value"] + 1e-9) & (row["value"] <= row["hi"] + 1e-9)).all()
    again = aggregate_metrics(separated_scores, reps=REPS)
    pd.testing.assert_frame_equal(m, again)


def test_aggregate_metrics_unequal_seeds_error_or_trim(separated_scores):
    drop = (separated_scores.method == "td3bc_td3") & (separated_scores.env == "ant") \
        & (separated_scores.dataset == "random") & (separated_scores.seed == 5)
    s = separated_scores[~drop]
    with pytest.raises(ValueError, match="unequal seed counts.*ant/random: 4"):
        aggregate_metrics(s, reps=50)
    with pytest.warns(RuntimeWarning, match="keeping the 4 lowest seed ids"):
        m = aggregate_metrics(s, reps=50, unequal_seeds="trim")
    assert m.set_index("method").loc["td3bc_td3", "n_seeds"].eq(4).all()


def test_probability_of_improvement_clear_winner(separated_scores):
    p = probability_of_improvement(separated_scores, reps=REPS)
    assert list(p.columns) == agg.POI_COLUMNS
    total = p[p.scope == "aggregate"].iloc[0]
    assert total["value"] == 1.0 and total["lo"] >= 0.95 and total["n_tasks"] == 12
    assert len(p[p.scope == "task"]) == 12 and (p.loc[p.scope == "task", "value"] == 1.0).all()
    rev = probability_of_improvement(separated_scores, x="td3bc_td3", y="wm_td3bc_td3",
                                     reps=REPS)
    assert rev[rev.scope == "aggregate"]["value"].iloc[0] == 0.0


def test_probability_of_improvement_identical_distributions(tmp_path):
    """Same distribution for x and y: |P - 0.5| < 0.1 (about 2.5 sd for 10 x 10 seeds on
    12 tasks), and the 95% CI contains 0.5; identical arrays give exactly 0.5."""
    def score(env, dataset, method, seed, rng, n):
        return rng.normal(50, 10, n)
    s = collect_scores(make_grid(tmp_path, score, methods=["wm_td3bc_td3", "td3bc_td3"],
                                 seeds=range(1, 11), n_steps=2))
    p = probability_of_improvement(s, reps=REPS)
    total = p[p.scope == "aggregate"].iloc[0]
    assert abs(total["value"] - 0.5) < 0.1
    assert total["lo"] < 0.5 < total["hi"]
    # equal to rliable's own (scipy Mann-Whitney based) estimator, overall and per task
    x, y = final_matrix(s, "wm_td3bc_td3"), final_matrix(s, "td3bc_td3")
    assert total["value"] == pytest.approx(rlm.probability_of_improvement(x, y))
    tasks = p[p.scope == "task"].reset_index(drop=True)
    for i in range(x.shape[1]):
        assert tasks.loc[i, "value"] == pytest.approx(
            rlm.probability_of_improvement(x[:, [i]], y[:, [i]]))
    # identical score arrays (x is a copy of y): exactly 0.5
    y_rows = s[s.method == "td3bc_td3"]
    twin = pd.concat([y_rows, y_rows.assign(method="wm_td3bc_td3")], ignore_index=True)
    pt = probability_of_improvement(twin, reps=REPS)
    assert (pt["value"] == 0.5).all()


def test_probability_of_improvement_ties_and_unequal_seed_counts(tmp_path):
    """Different seed counts for x and y are fine (rliable normalises by n_x * n_y)."""
    rng = np.random.default_rng(3)
    dirs = []
    for e in ("hopper", "ant"):
        for s in range(1, 6):
            dirs.append(make_cell(tmp_path, e, "random", "wm_td3bc_td3", s,
                                  [0.0, float(rng.integers(0, 3))]))
        for s in range(1, 4):
            dirs.append(make_cell(tmp_path, e, "random", "td3bc_td3", s,
                                  [0.0, float(rng.integers(0, 3))]))
    scores = collect_scores(dirs)
    p = probability_of_improvement(scores, reps=REPS)
    assert (p["n_seeds_x"] == 5).all() and (p["n_seeds_y"] == 3).all()
    x, y = final_matrix(scores, "wm_td3bc_td3"), final_matrix(scores, "td3bc_td3")
    assert p.loc[p.scope == "aggregate", "value"].iloc[0] == pytest.approx(
        rlm.probability_of_improvement(x, y))


def test_final_step_must_agree_within_task(tmp_path):
    a = make_cell(tmp_path, "hopper", "random", "td3", 2, [1.0, 2.0, 3.0])
    b = make_cell(tmp_path, "hopper", "random", "wm_td3bc_td3", 2, [1.0, 2.0])
    s = collect_scores([a, b])
    with pytest.raises(ValueError, match="different steps"):
        aggregate_metrics(s, reps=10)
    m = aggregate_metrics(s, step=5000, reps=10)
    assert set(m.method) == {"td3", "wm_td3bc_td3"}
    with pytest.raises(ValueError, match="no online evaluation at step 10000"):
        aggregate_metrics(s, step=10000, reps=10)


# --------------------------------------------------------------------------- figures
def test_learning_curve_figure_files_and_csv(curve_scores, tmp_path):
    ci = curve_intervals(curve_scores, reps=100)
    out = tmp_path / "figs" / "fig3.smoke"
    envs, datasets = ["hopper", "walker2d", "ant"], ["random", "medium-replay"]
    table = plot_learning_curves(ci, out, envs=envs, datasets=datasets, methods=METHODS,
                                 title="Fig 3", estimator="iqm")
    for suffix in (".png", ".pdf", ".csv"):
        assert (tmp_path / "figs" / f"fig3.smoke{suffix}").stat().st_size > 0
    assert not list((tmp_path / "figs").glob(".*tmp"))
    csv = pd.read_csv(tmp_path / "figs" / "fig3.smoke.csv", float_precision="round_trip")
    assert list(csv.columns) == ["env", "dataset", "method", "step", "value", "lo", "hi",
                                 "estimator"]
    plotted = ci[ci.env.isin(envs) & ci.dataset.isin(datasets) & ci.method.isin(METHODS)]
    # 2 envs with data x 1 dataset with data x 3 methods x 11 steps; empty panels add nothing
    assert len(csv) == len(table) == len(plotted) == 2 * 3 * 11
    pd.testing.assert_frame_equal(csv, table, check_dtype=False)
    merged = csv.merge(plotted, on=["env", "dataset", "method", "step"])
    assert len(merged) == len(csv)
    np.testing.assert_array_equal(merged["value"], merged["iqm"])
    np.testing.assert_array_equal(merged["lo"], merged["iqm_lo"])
    np.testing.assert_array_equal(merged["hi"], merged["iqm_hi"])


def test_learning_curve_figure_all_missing_panels(curve_scores, tmp_path):
    ci = curve_intervals(curve_scores, reps=20)
    table = plot_learning_curves(ci, tmp_path / "empty", envs=["halfcheetah"],
                                 datasets=["medium-expert"], methods=METHODS, title="none")
    assert len(table) == 0 and (tmp_path / "empty.png").exists()
    assert len(pd.read_csv(tmp_path / "empty.csv")) == 0


def test_aggregate_figure_files_and_csv(separated_scores, tmp_path):
    m = aggregate_metrics(separated_scores, reps=100)
    p = probability_of_improvement(separated_scores, reps=100)
    methods = ["wm_td3bc_td3", "td3bc_td3", "td3"]  # td3 absent: annotated, no row
    table = plot_aggregate_metrics(m, p, tmp_path / "agg", methods=methods, title="Aggregates")
    for suffix in (".png", ".pdf", ".csv"):
        assert (tmp_path / f"agg{suffix}").stat().st_size > 0
    csv = pd.read_csv(tmp_path / "agg.csv", float_precision="round_trip")
    assert len(csv) == len(table) == 4 * 2 + 13
    assert set(csv.panel) == {"iqm", "median", "mean", "optimality_gap",
                              "poi:wm_td3bc_td3>td3bc_td3"}
    iqm_row = csv[(csv.panel == "iqm") & (csv.label == "wm_td3bc_td3")].iloc[0]
    ref = m[(m.method == "wm_td3bc_td3") & (m.metric == "iqm")].iloc[0]
    assert (iqm_row["value"], iqm_row["lo"], iqm_row["hi"]) == (ref["value"], ref["lo"],
                                                                 ref["hi"])
    no_poi = plot_aggregate_metrics(m, None, tmp_path / "agg2", methods=methods, title="x")
    assert len(no_poi) == 8
    # two comparisons concatenated (what the report build passes): one panel per pair
    rev = probability_of_improvement(separated_scores, x="td3bc_td3", y="wm_td3bc_td3",
                                     reps=20)
    two = plot_aggregate_metrics(m, pd.concat([p, rev], ignore_index=True), tmp_path / "agg3",
                                 methods=methods, title="x")
    assert len(two) == 8 + 2 * 13
    assert two.panel.value_counts()["poi:td3bc_td3>wm_td3bc_td3"] == 13


def test_figure_write_is_atomic(curve_scores, tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    ci = curve_intervals(curve_scores, reps=20)
    out = tmp_path / "atomic"
    real = Figure.savefig

    def broken(self, fname, *args, **kwargs):
        if kwargs.get("format") == "png":
            Path(fname).write_bytes(b"half a png")
            raise KeyboardInterrupt("killed mid-write")
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(KeyboardInterrupt):
        plot_learning_curves(ci, out, envs=["hopper"], datasets=["random"], methods=METHODS,
                             title="t")
    assert not (tmp_path / "atomic.png").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
