"""Paper A's world model, held out: one figure of its one-step error per (env, dataset) and where it is largest.

Reads the tables of :func:`wmaug.paper_a.world_model_error.world_model_error`, one set per world model
(env, dataset, seed), concatenated by the caller with ``env``, ``dataset`` and ``seed`` columns added.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from wmaug.report.figures import plot_note, save_figure, wrap_title

__all__ = ["WORLD_MODEL_ERROR_PLOT_COLUMNS", "TOP_DIMS", "plot_world_model_error"]

#: the CSV written beside the figure: one row per plotted point (see plot_world_model_error)
WORLD_MODEL_ERROR_PLOT_COLUMNS = ["panel", "env", "dataset", "series", "bin", "distance", "dim",
                                  "value", "lo", "hi", "interval", "n_models"]
TOP_DIMS = 5
_KEYS = ["env", "dataset", "seed"]
_NEEDS = {
    "summary": ["train_mse_normalized", "heldout_mse_normalized", "heldout_copy_mse_normalized"],
    "by_distance": ["bin", "dist_mean", "mse_normalized", "mse_normalized_lo", "mse_normalized_hi",
                    "bootstrap_reps"],
    "by_dimension": ["dim", "heldout_mse_normalized"],
}
_ENV_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
_DATASET_STYLES = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", (0, (5, 1))), ("P", (0, (3, 1, 1, 1)))]
_YLABEL = "one-step MSE, z-scored states\n(mean over state dims"
_SERIES = {"heldout": "held-out (rows not in the training sample)", "train": "training sample",
           "copy": "copy-the-state baseline MSE(s, s'), held-out"}


def _table(tables: dict, name: str) -> pd.DataFrame:
    t = tables.get(name)
    if t is None or len(t) == 0:
        return pd.DataFrame(columns=_KEYS + _NEEDS[name])
    missing = [c for c in _KEYS + _NEEDS[name] if c not in t.columns]
    if missing:
        raise ValueError(f"plot_world_model_error: table {name!r} lacks columns {missing}")
    return t


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.35",
            style="italic")


def _log_if_positive(ax, values) -> None:
    """Log y (errors span decades across tasks) when every value is positive; the label says which."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    log = bool(len(v)) and bool((v > 0).all())
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(_YLABEL + ("; log scale)" if log else ")"))


def plot_world_model_error(tables: dict[str, pd.DataFrame], out_prefix: Path, *, title: str,
                           scale: str) -> None:
    """Writes ``out_prefix``.png/.pdf/.csv: three panels of the world models' held-out one-step error.

    ``tables``: {"summary", "by_distance", "by_dimension"} as returned by
    :func:`~wmaug.paper_a.world_model_error.world_model_error`, each concatenated over world models with
    columns ``env``, ``dataset``, ``seed`` added (anywhere). All errors are MSEs on states z-scored with
    each model's training-sample statistics, averaged over rows and state dims.

    (a) per (env, dataset): held-out MSE (filled marker) and training-sample MSE (open marker), each the
        mean over seeds with a min-max bar over seeds, and the copy-the-state baseline (black dash);
    (b) held-out MSE against the distance of a held-out state to its nearest training state, one line per
        (env, dataset) over the distance bins: x = the bin's mean distance, y = the mean over seeds,
        band = from the lowest to the highest of the seeds' 95% bootstrap bounds;
    (c) per env, the ``TOP_DIMS`` state dims with the largest held-out MSE (mean over datasets and seeds,
        min-max bar over those models), each labelled with its dim index.

    CSV columns (:data:`WORLD_MODEL_ERROR_PLOT_COLUMNS`), one row per plotted point:
      panel    "a_per_task", "b_by_distance" or "c_top_dims";
      env, dataset  the task (dataset "all" in panel c: averaged over datasets);
      series   "heldout", "train" or "copy" (panels b and c: "heldout");
      bin      distance bin, 0 = nearest (panel b; else empty);
      distance mean nearest-training-state distance of the bin, z-scored L2, mean over seeds (panel b);
      dim      state dimension (panel c);
      value    the plotted MSE (z-scored states); lo, hi: its bar or band; interval: what lo/hi are;
      n_models world models (seeds; panel c: datasets x seeds) averaged.
    With no summary rows a note figure (header-only CSV) is written instead.
    """
    summary = _table(tables, "summary")
    by_distance = _table(tables, "by_distance")
    by_dimension = _table(tables, "by_dimension")
    if summary.empty:
        plot_note(out_prefix, title=title, scale=scale, columns=WORLD_MODEL_ERROR_PLOT_COLUMNS,
                  note="no world-model error tables to plot\n(no world model of this study has been "
                       "evaluated at this scale)")
        return

    tasks = list(summary[["env", "dataset"]].drop_duplicates().itertuples(index=False, name=None))
    envs = list(dict.fromkeys(e for e, _ in tasks))
    datasets = list(dict.fromkeys(d for _, d in tasks))
    env_color = {e: _ENV_COLORS[i % len(_ENV_COLORS)] for i, e in enumerate(envs)}
    ds_style = {d: _DATASET_STYLES[i % len(_DATASET_STYLES)] for i, d in enumerate(datasets)}
    rows: list[dict] = []

    width = max(14.0, 9.0 + 0.45 * len(tasks) + 0.4 * len(envs))
    fig = Figure(figsize=(width, 6.0), layout="constrained")
    ax_a, ax_b, ax_c = fig.subplots(1, 3, width_ratios=[max(0.9, 0.2 * len(tasks)), 1.5,
                                                        max(1.2, 0.2 * len(envs) + 0.6)])

    # (a) per task: held-out vs train, copy baseline
    metric = {"heldout": "heldout_mse_normalized", "train": "train_mse_normalized",
              "copy": "heldout_copy_mse_normalized"}
    plotted_a = []
    for x, (env, ds) in enumerate(tasks):
        g = summary[(summary["env"] == env) & (summary["dataset"] == ds)]
        for series, col in metric.items():
            v = g[col].to_numpy(dtype=float)
            mean, lo, hi = float(np.mean(v)), float(np.min(v)), float(np.max(v))
            plotted_a += [mean, lo, hi]
            rows.append({"panel": "a_per_task", "env": env, "dataset": ds, "series": series, "value": mean,
                         "lo": lo, "hi": hi, "interval": "min-max over seeds", "n_models": len(v)})
            if series == "copy":
                ax_a.plot([x - 0.3, x + 0.3], [mean, mean], color="black", linewidth=2.0)
                continue
            dx = -0.1 if series == "heldout" else 0.1
            face = env_color[env] if series == "heldout" else "white"
            ax_a.errorbar(x + dx, mean, yerr=[[max(mean - lo, 0.0)], [max(hi - mean, 0.0)]], fmt="o", color=env_color[env],
                          markerfacecolor=face, markersize=6, capsize=3, linewidth=1.2)
    if len(tasks) > 6:
        ax_a.set_xticks(range(len(tasks)), [f"{e} {d}" for e, d in tasks], fontsize=8, rotation=40,
                        ha="right", rotation_mode="anchor")
    else:
        ax_a.set_xticks(range(len(tasks)), [f"{e}\n{d}" for e, d in tasks], fontsize=8)
    ax_a.set_xlim(-0.6, len(tasks) - 0.4)
    _log_if_positive(ax_a, plotted_a)
    ax_a.set_title("(a) one-step error per (env, dataset)\nmarker: mean over seeds, bar: min\u2013max over seeds",
                   fontsize=9)
    ax_a.grid(axis="y", alpha=0.3, linewidth=0.5)

    # (b) error vs distance to the nearest training state
    reps = sorted({int(r) for r in by_distance["bootstrap_reps"].dropna()}) if len(by_distance) else []
    band_text = (f"envelope of the seeds' 95% bootstrap CIs ({'/'.join(map(str, reps))} resamples over held-out "
                 "rows)")
    plotted_b = []
    for env, ds in tasks:
        g = by_distance[(by_distance["env"] == env) & (by_distance["dataset"] == ds)]
        if g.empty:
            continue
        agg = g.groupby("bin").agg(distance=("dist_mean", "mean"), value=("mse_normalized", "mean"),
                                   lo=("mse_normalized_lo", "min"), hi=("mse_normalized_hi", "max"),
                                   n_models=("seed", "nunique")).reset_index().sort_values("bin")
        marker, style = ds_style[ds]
        ax_b.fill_between(agg["distance"], agg["lo"], agg["hi"], color=env_color[env], alpha=0.15, linewidth=0)
        ax_b.plot(agg["distance"], agg["value"], color=env_color[env], marker=marker, linestyle=style,
                  markersize=4, linewidth=1.3)
        plotted_b += list(agg["lo"]) + list(agg["hi"]) + list(agg["value"])
        for r in agg.itertuples(index=False):
            rows.append({"panel": "b_by_distance", "env": env, "dataset": ds, "series": "heldout",
                         "bin": int(r.bin), "distance": float(r.distance), "value": float(r.value),
                         "lo": float(r.lo), "hi": float(r.hi), "interval": band_text,
                         "n_models": int(r.n_models)})
    if plotted_b:
        _log_if_positive(ax_b, plotted_b)
    else:
        _no_data(ax_b)
        ax_b.set_ylabel(_YLABEL + ")")
    ax_b.set_xlabel("distance from the held-out state to the nearest training state\n"
                    "(Euclidean, z-scored states; mean of each equal-count distance bin)")
    ax_b.set_title("(b) held-out error vs distance from the training sample\n"
                   "line: mean over seeds, band: lowest-highest 95% bootstrap bound over seeds", fontsize=9)
    ax_b.grid(alpha=0.3, linewidth=0.5)

    # (c) per env, the dims with the largest held-out error
    labels, ys, y = [], [], 0.0
    for env in envs:
        g = by_dimension[by_dimension["env"] == env]
        if g.empty:
            continue
        agg = (g.groupby("dim")["heldout_mse_normalized"].agg(["mean", "min", "max", "count"])
               .reset_index().sort_values(["mean", "dim"], ascending=[False, True]).head(TOP_DIMS))
        for r in agg.itertuples(index=False):
            ax_c.barh(y, r.mean, color=env_color[env], alpha=0.8, height=0.7)
            ax_c.errorbar(r.mean, y, xerr=[[max(r.mean - r.min, 0.0)], [max(r.max - r.mean, 0.0)]], fmt="none", color="black",
                          capsize=2, linewidth=0.9)
            labels.append(f"{env} dim {int(r.dim)}")
            ys.append(y)
            rows.append({"panel": "c_top_dims", "env": env, "dataset": "all", "series": "heldout",
                         "dim": int(r.dim), "value": float(r.mean), "lo": float(r.min), "hi": float(r.max),
                         "interval": "min-max over (dataset, seed) models", "n_models": int(r.count)})
            y += 1.0
        y += 0.6  # a gap between envs
    if labels:
        ax_c.set_yticks(ys, labels, fontsize=8)
        ax_c.invert_yaxis()
    else:
        _no_data(ax_c)
    ax_c.set_xlabel("held-out one-step MSE of the dim\n(z-scored states)")
    ax_c.set_title(f"(c) per env, the {TOP_DIMS} state dims\nwith the largest held-out error\n"
                   "bar: mean over datasets and seeds\nwhisker: min\u2013max over them", fontsize=9)
    ax_c.grid(axis="x", alpha=0.3, linewidth=0.5)

    handles = (
        [Patch(facecolor=env_color[e], label=f"env {e}") for e in envs]
        + [Line2D([], [], marker="o", color="0.3", linestyle="none", label=f"(a) {_SERIES['heldout']}"),
           Line2D([], [], marker="o", color="0.3", markerfacecolor="white", linestyle="none",
                  label=f"(a) {_SERIES['train']}"),
           Line2D([], [], color="black", linewidth=2.0, label=f"(a) {_SERIES['copy']}")]
        + [Line2D([], [], color="0.3", marker=ds_style[d][0], linestyle=ds_style[d][1], label=f"(b) dataset {d}")
           for d in datasets]
        + [Patch(facecolor="0.5", alpha=0.15, label="(b) 95% bootstrap band")])
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, frameon=False,
               ncol=min(len(handles), max(1, int(width / 3.6))))

    n_seeds = summary.groupby(["env", "dataset"])["seed"].nunique()
    lo_s, hi_s = int(n_seeds.min()), int(n_seeds.max())
    seeds = f"{lo_s}" if lo_s == hi_s else f"{lo_s}\u2013{hi_s}"
    fig.suptitle(wrap_title(f"{title}\nscale: {scale} \u00b7 world models (seeds) per task: {seeds} \u00b7 "
                            "one-step MSE of the deterministic prediction on held-out rows (not in the model's "
                            "training sample; terminal/timeout rows excluded), states z-scored with the "
                            "training sample's statistics", width), fontsize=11)
    table = pd.DataFrame(rows, columns=WORLD_MODEL_ERROR_PLOT_COLUMNS)
    save_figure(fig, table, out_prefix)
