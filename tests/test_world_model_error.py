"""The world model's held-out one-step error analysis (wmaug.paper_a.world_model_error) and its figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wmaug.paper_a.world_model_error import (
    BY_DIMENSION_COLUMNS,
    BY_DISTANCE_COLUMNS,
    SUMMARY_COLUMNS,
    distance_bins,
    held_out_rows,
    nearest_distances,
    world_model_error,
)
from wmaug.data.sample import subsample_indices
from wmaug.data.transitions import Transitions
from wmaug.paper_a.world_model import WorldModelConfig, one_step_error, train_world_model
from wmaug.paper_a.world_model_error_figure import WORLD_MODEL_ERROR_PLOT_COLUMNS, plot_world_model_error

# A tiny world model on 1,000 of the 3,000 real Hopper transitions (uniform random actions; ~130 terminal
# rows), the other usable rows held out: 2x64 MLPs, batch 128, lr 1e-3, 120 epochs = 960 Adam updates, ~2 s.
# Measured with this budget, sample and init seeds 0/1/2/3 (1,000 held-out rows, 4 distance bins):
#   held-out / copy-the-state MSE (z-scored)   0.41 / 0.29 / 0.33 / 0.41  -> bar 0.6 (it learned something)
#   generalisation gap held-out / train MSE     1.52 / 1.42 / 1.45 / 1.51  -> bar 1.15
#   farthest / nearest distance bin MSE         5.4  / 3.5  / 3.5  / 4.9   -> bar 2, and the two bins'
#                                                                             bootstrap CIs disjoint (all four)
TINY = dict(hidden=64, layers=2, batch_size=128, epochs=120, lr=1e-3)
N_TRAIN, N_HOLDOUT, BINS, SEED = 1000, 1000, 4, 0


@pytest.fixture(scope="module")
def hopper_model(hopper_random):
    idx = subsample_indices(len(hopper_random), N_TRAIN, SEED)
    model, _ = train_world_model(hopper_random.take(idx), WorldModelConfig(**TINY), seed=SEED)
    tables = world_model_error(model, hopper_random, idx, N_HOLDOUT, seed=SEED, bins=BINS, bootstrap_reps=500)
    return hopper_random, idx, model, tables


def _usable(data):
    return (data.terminals < 0.5) & (data.timeouts < 0.5)


# ---- held-out rows ---------------------------------------------------------------------------------------
def test_held_out_rows_avoid_training_rows_and_terminals():
    rng = np.random.default_rng(3)
    n = 2000
    usable = rng.random(n) > 0.1
    train = np.sort(rng.permutation(n)[:700])
    rows = held_out_rows(n, train, usable, 500, seed=1)
    assert len(rows) == 500 and len(np.unique(rows)) == 500 and np.all(np.diff(rows) > 0)
    assert not np.isin(rows, train).any()
    assert usable[rows].all()
    np.testing.assert_array_equal(rows, held_out_rows(n, train, usable, 500, seed=1))  # seeded
    assert not np.array_equal(rows, held_out_rows(n, train, usable, 500, seed=2))
    # asking for more than there is gives every candidate
    available = np.flatnonzero(usable & ~np.isin(np.arange(n), train))
    np.testing.assert_array_equal(held_out_rows(n, train, usable, 10**6, seed=1), available)
    # nothing left: the error names the numbers
    with pytest.raises(ValueError, match=r"of 10 rows 4 are usable.*\(4 distinct rows\)"):
        held_out_rows(10, np.array([0, 2, 4, 6]), np.isin(np.arange(10), [0, 2, 4, 6]), 5, seed=0)
    with pytest.raises(ValueError, match="bool mask"):
        held_out_rows(10, np.array([0]), np.ones(9, bool), 5, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        held_out_rows(10, np.array([0, 10]), np.ones(10, bool), 5, seed=0)


def test_world_model_error_excludes_training_and_terminal_rows(hopper_model):
    data, idx, model, tables = hopper_model
    s = tables["summary"].iloc[0]
    usable = _usable(data)
    assert data.terminals.sum() > 50  # random Hopper falls: the exclusion is exercised
    assert s.n_total == len(data)
    assert s.n_train == usable[idx].sum() and s.n_train_excluded == len(idx) - usable[idx].sum()
    assert s.n_holdout_available == usable.sum() - usable[idx].sum()
    assert s.n_holdout == min(N_HOLDOUT, s.n_holdout_available)
    # the held-out numbers are exactly one_step_error's on the held-out rows (same rows, same units)
    held = held_out_rows(len(data), idx, usable, N_HOLDOUT, SEED)
    err = one_step_error(model, data.take(held))
    assert err["n"] == s.n_holdout  # all usable: one_step_error dropped nothing
    assert s.heldout_mse_normalized == pytest.approx(err["model_mse_normalized"], rel=1e-9)
    assert s.heldout_copy_mse_normalized == pytest.approx(err["copy_mse_normalized"], rel=1e-9)
    assert s.heldout_mse_raw == pytest.approx(err["model_mse"], rel=1e-9)
    np.testing.assert_allclose(tables["by_dimension"]["heldout_mse_raw"], err["per_dim_model_mse"], rtol=1e-9)
    train_err = one_step_error(model, data.take(idx))  # drops the sample's terminal rows itself
    assert s.train_mse_normalized == pytest.approx(train_err["model_mse_normalized"], rel=1e-9)


# ---- distances and bins ----------------------------------------------------------------------------------
def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(37, 5)), rng.normal(size=(101, 5))
    r[7] = q[3]  # an exact duplicate: distance 0
    brute = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)).min(1)
    got = nearest_distances(q, r, query_chunk=8, reference_chunk=13)  # ragged chunks on both sides
    np.testing.assert_allclose(got, brute, rtol=1e-9, atol=1e-7)
    assert got[3] == pytest.approx(0.0, abs=1e-7)
    np.testing.assert_allclose(nearest_distances(q, r), brute, rtol=1e-9, atol=1e-7)


def test_distance_bins_are_equal_count_quantiles():
    d = np.array([5.0, 0.1, 3.0, 3.0, 3.0, 3.0, 0.2, 9.0, 1.0, 2.0, 4.0])
    b = distance_bins(d, 4)
    assert np.bincount(b).tolist() == [3, 3, 3, 2]  # ranks 0-2, 3-5, 6-8, 9-10 despite the ties
    order = np.argsort(d, kind="stable")
    assert np.all(np.diff(b[order]) >= 0)  # bins are monotone in distance
    assert distance_bins(d[:2], 5).tolist() == [1, 0]  # fewer rows than bins: one row each


def test_by_distance_agrees_with_brute_force(hopper_model):
    data, idx, model, tables = hopper_model
    usable = _usable(data)
    held = held_out_rows(len(data), idx, usable, N_HOLDOUT, SEED)
    train = idx[usable[idx]]
    scale = model.obs_std.numpy().astype(np.float64) + model.cfg.std_eps
    z = lambda rows: (data.observations[rows].astype(np.float64) - model.obs_mean.numpy()) / scale  # noqa: E731
    dist = np.sqrt(((z(held)[:, None, :] - z(train)[None, :, :]) ** 2).sum(-1)).min(1)
    pred = model.predict_next(data.observations[held], data.actions[held]).numpy()
    row_mse = (((pred - data.next_observations[held]) / scale) ** 2).mean(1)
    order = np.argsort(dist, kind="stable")
    t = tables["by_distance"]
    assert list(t.columns) == BY_DISTANCE_COLUMNS and t["bin"].tolist() == list(range(BINS))
    for b, part in enumerate(np.array_split(order, BINS)):
        row = t.iloc[b]
        assert row.n == len(part)
        assert row.dist_lo == pytest.approx(dist[part].min(), abs=1e-6)
        assert row.dist_hi == pytest.approx(dist[part].max(), abs=1e-6)
        assert row.mse_normalized == pytest.approx(row_mse[part].mean(), rel=1e-5)
        assert row.mse_normalized_lo < row.mse_normalized < row.mse_normalized_hi
    assert t["n"].sum() == tables["summary"].iloc[0].n_holdout
    assert np.all(np.diff(t["dist_mean"]) > 0)
    assert tables["summary"].iloc[0].nn_distance_median == pytest.approx(np.median(dist), abs=1e-6)


# ---- what the analysis is for: the model is worse off its training data --------------------------------
def test_held_out_error_exceeds_train_and_grows_with_distance(hopper_model):
    data, idx, model, tables = hopper_model
    s, t = tables["summary"].iloc[0], tables["by_distance"]
    print(f"ratio {s.ratio_normalized:.3f} gap {s.generalization_gap:.3f} bins {t['mse_normalized'].round(4).tolist()}")
    assert s.ratio_normalized < 0.6, s  # it learned: well under copying the state
    assert s.generalization_gap > 1.15, s
    assert s.generalization_gap == pytest.approx(s.heldout_mse_normalized / s.train_mse_normalized)
    first, last = t.iloc[0], t.iloc[-1]
    assert last.mse_normalized > 2.0 * first.mse_normalized, t
    assert last.mse_normalized_lo > first.mse_normalized_hi, t  # the bootstrap intervals do not overlap


def test_tables_are_deterministic_and_documented(hopper_model):
    data, idx, model, tables = hopper_model
    again = world_model_error(model, data, idx, N_HOLDOUT, seed=SEED, bins=BINS, bootstrap_reps=500)
    for name in tables:
        pd.testing.assert_frame_equal(tables[name], again[name])
    assert list(tables["summary"].columns) == SUMMARY_COLUMNS and len(tables["summary"]) == 1
    dims = tables["by_dimension"]
    assert list(dims.columns) == BY_DIMENSION_COLUMNS and dims["dim"].tolist() == list(range(data.obs_dim))
    assert dims["heldout_mse_normalized"].mean() == pytest.approx(tables["summary"].iloc[0].heldout_mse_normalized)
    other = world_model_error(model, data, idx, 300, seed=SEED + 1, bins=BINS, bootstrap_reps=500)
    assert other["summary"].iloc[0].n_holdout == 300
    with pytest.raises(ValueError, match="obs_dim"):
        world_model_error(model, Transitions(data.observations[:, :5], data.actions, data.rewards,
                                             data.next_observations[:, :5], data.terminals, data.timeouts),
                          idx, 10, seed=0)


# ---- the figure -------------------------------------------------------------------------------------------
def _cells(tables: dict) -> dict[str, pd.DataFrame]:
    """Fake a grid from one model's tables: 2 envs x 2 datasets x 2 seeds, errors scaled per cell."""
    out = {k: [] for k in tables}
    for i, (env, ds, seed) in enumerate([(e, d, s) for e in ("hopper", "walker2d") for d in ("random", "medium")
                                         for s in (0, 1)]):
        f = 1.0 + 0.3 * i
        for k, t in tables.items():
            t = t.copy()
            for c in t.columns:
                if "mse" in c:
                    t[c] = t[c] * f
            out[k].append(t.assign(env=env, dataset=ds, seed=seed))  # keys appended last, as the CLI does
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def test_figure_writes_png_pdf_and_documented_csv(hopper_model, tmp_path):
    grid = _cells(hopper_model[3])
    prefix = tmp_path / "wm_error"
    plot_world_model_error(grid, prefix, title="Paper A: world-model held-out one-step error", scale="smoke")
    for ext in (".png", ".pdf", ".csv"):
        assert (tmp_path / f"wm_error{ext}").stat().st_size > 0
    csv = pd.read_csv(tmp_path / "wm_error.csv")
    assert list(csv.columns) == WORLD_MODEL_ERROR_PLOT_COLUMNS
    a = csv[csv["panel"] == "a_per_task"]
    assert len(a) == 4 * 3 and set(a["series"]) == {"heldout", "train", "copy"} and (a["n_models"] == 2).all()
    s = grid["summary"]
    want = s[(s["env"] == "walker2d") & (s["dataset"] == "medium")]["heldout_mse_normalized"]
    got = a[(a["env"] == "walker2d") & (a["dataset"] == "medium") & (a["series"] == "heldout")].iloc[0]
    assert (got.value, got.lo, got.hi) == pytest.approx((want.mean(), want.min(), want.max()))
    b = csv[csv["panel"] == "b_by_distance"]
    assert len(b) == 4 * BINS and (b["lo"] <= b["value"]).all() and (b["value"] <= b["hi"]).all()
    c = csv[csv["panel"] == "c_top_dims"]
    assert len(c) == 2 * 5 and set(c["dataset"]) == {"all"} and (c["n_models"] == 4).all()
    for env, g in c.groupby("env"):  # the top dims, largest first
        per_dim = grid["by_dimension"].query("env == @env").groupby("dim")["heldout_mse_normalized"].mean()
        assert g["dim"].tolist() == per_dim.sort_values(ascending=False).index[:5].tolist()


def test_figure_with_no_tables_is_a_note(tmp_path):
    empty = {k: pd.DataFrame() for k in ("summary", "by_distance", "by_dimension")}
    plot_world_model_error(empty, tmp_path / "none", title="Paper A: world-model error", scale="smoke")
    for ext in (".png", ".pdf"):
        assert (tmp_path / f"none{ext}").stat().st_size > 0
    csv = pd.read_csv(tmp_path / "none.csv")
    assert list(csv.columns) == WORLD_MODEL_ERROR_PLOT_COLUMNS and csv.empty
    plot_world_model_error({}, tmp_path / "none2", title="t", scale="smoke")
    assert (tmp_path / "none2.png").exists()
    with pytest.raises(ValueError, match="lacks columns"):
        plot_world_model_error({"summary": pd.DataFrame({"env": ["a"]})}, tmp_path / "bad", title="t", scale="s")


def test_figure_with_identical_seeds(hopper_model, tmp_path):
    """Seeds that agree exactly: the mean of equal floats can pass their max by an ulp (mean([0.1] * 3) >
    0.1), which must not make a negative error bar (matplotlib refuses those)."""
    tables = {k: v.copy() for k, v in hopper_model[3].items()}
    tables["summary"][["train_mse_normalized", "heldout_mse_normalized"]] = 0.1
    grid = {k: pd.concat([t.assign(env="hopper", dataset="random", seed=s) for s in range(3)], ignore_index=True)
            for k, t in tables.items()}
    grid["by_dimension"]["heldout_mse_normalized"] = 0.1
    plot_world_model_error(grid, tmp_path / "same", title="t", scale="smoke")
    csv = pd.read_csv(tmp_path / "same.csv")
    a = csv[(csv["panel"] == "a_per_task") & (csv["series"] == "heldout")].iloc[0]
    assert a.value == pytest.approx(0.1) and a.lo == a.hi == 0.1
