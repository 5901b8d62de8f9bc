"""Figures for the `wmaug` study: Fig 3 learning curves and rliable-style aggregate intervals.

Every figure is written as ``<out_prefix>.png``, ``<out_prefix>.pdf`` and ``<out_prefix>.csv``;
the CSV holds exactly the numbers drawn (one row per plotted point or interval). Files are
written to a temporary name in the target directory and moved into place with
``os.replace``, so an interrupted job never leaves a half-written file under the final name.

Matplotlib is used through ``Figure`` + the Agg canvas only (no ``pyplot``): nothing global
is switched and no figure is left open.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from wmaug.io import atomic_path

__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "CURVE_PLOT_COLUMNS",
    "METRIC_PLOT_COLUMNS",
    "method_colors",
    "plot_learning_curves",
    "plot_aggregate_metrics",
]

#: fixed colours, so a method looks the same in every figure of the harness
METHOD_COLORS = {
    "wm_td3bc_td3": "#d62728",  # red: ours
    "td3bc_td3": "#1f77b4",     # blue
    "td3": "#7f7f7f",           # grey: online from scratch
}
METHOD_LABELS = {
    "wm_td3bc_td3": "WM-aug. TD3+BC \u2192 TD3 (ours)",
    "td3bc_td3": "TD3+BC \u2192 TD3",
    "td3": "TD3 from scratch",
}
_FALLBACK_COLORS = ["#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]

CURVE_PLOT_COLUMNS = ["env", "dataset", "method", "step", "value", "lo", "hi", "estimator"]
METRIC_PLOT_COLUMNS = ["panel", "label", "value", "lo", "hi"]
_METRIC_TITLES = {"iqm": "IQM", "median": "Median", "mean": "Mean",
                  "optimality_gap": "Optimality gap"}
_METRIC_XLABELS = {
    "iqm": "normalised score",
    "median": "normalised score",
    "mean": "normalised score",
    "optimality_gap": "normalised points below 100\n(lower is better)",
}
_ESTIMATOR_NAMES = {"mean": "mean", "iqm": "IQM (25% trimmed mean)"}
_PNG_META = {"Software": None}
_PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}


# --------------------------------------------------------------------------- helpers
def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """Colour per method: fixed for the study's methods, then a fixed palette by sorted name."""
    colors = {m: METHOD_COLORS[m] for m in methods if m in METHOD_COLORS}
    others = sorted(m for m in set(methods) if m not in METHOD_COLORS)
    for i, m in enumerate(others):
        colors[m] = _FALLBACK_COLORS[i % len(_FALLBACK_COLORS)]
    return colors


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _with_suffix(prefix: Path, suffix: str) -> Path:
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + suffix)


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def _save_all(fig: Figure, table: pd.DataFrame, out_prefix: Path) -> None:
    FigureCanvasAgg(fig)
    _write_atomic(_with_suffix(out_prefix, ".csv"), lambda p: table.to_csv(p, index=False))
    _write_atomic(_with_suffix(out_prefix, ".png"),
                  lambda p: fig.savefig(p, format="png", dpi=150, metadata=_PNG_META))
    # the layout is solved now; freezing it saves a second (slow) constrained-layout pass
    fig.set_layout_engine("none")
    _write_atomic(_with_suffix(out_prefix, ".pdf"),
                  lambda p: fig.savefig(p, format="pdf", metadata=_PDF_META))


def _seed_text(n_seeds: pd.Series) -> str:
    if n_seeds.empty:
        return "n/a"
    lo, hi = int(n_seeds.min()), int(n_seeds.max())
    return f"{lo}" if lo == hi else f"{lo}\u2013{hi}"


def _steps_formatter(v: float, _pos) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


# --------------------------------------------------------------------------- Fig 3
def plot_learning_curves(intervals: pd.DataFrame, out_prefix: Path, *, envs: list[str],
                         datasets: list[str], methods: list[str], title: str,
                         estimator: str = "mean", scale: str | None = None) -> pd.DataFrame:
    """Fig 3: normalised score vs environment steps, one panel per (dataset row, env column).

    ``intervals`` is :func:`wmaug.report.aggregate.curve_intervals` output; the line is
    ``estimator`` ("mean" or "iqm"), the band its 95% CI. A (env, dataset, method) absent
    from ``intervals`` is listed as "no data" inside its panel. ``scale`` defaults to
    ``intervals.attrs["scale"]``. Writes ``out_prefix``.png/.pdf/.csv and returns the CSV's
    table (columns :data:`CURVE_PLOT_COLUMNS`, one row per plotted point).
    """
    if estimator not in _ESTIMATOR_NAMES:
        raise ValueError(f"estimator must be one of {list(_ESTIMATOR_NAMES)}, got {estimator!r}")
    if not envs or not datasets or not methods:
        raise ValueError("envs, datasets and methods must be non-empty")
    scale = scale if scale is not None else intervals.attrs.get("scale", "unknown")
    phase = intervals.attrs.get("phase", "online")
    colors = method_colors(methods)
    nrows, ncols = len(datasets), len(envs)
    fig = Figure(figsize=(3.4 * ncols + 0.6, 2.6 * nrows + 1.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, ncols, sharex=True, squeeze=False))
    groups = {k: g.sort_values("step") for k, g in
              intervals.groupby(["env", "dataset", "method"], sort=False)}
    plotted: list[pd.DataFrame] = []
    drawn_methods: set[str] = set()
    for r, dataset in enumerate(datasets):
        for c, env in enumerate(envs):
            ax = axes[r, c]
            missing = []
            for method in methods:
                g = groups.get((env, dataset, method))
                if g is None or g.empty:
                    missing.append(method)
                    continue
                step = g["step"].to_numpy()
                val = g[estimator].to_numpy(dtype=float)
                lo = g[f"{estimator}_lo"].to_numpy(dtype=float)
                hi = g[f"{estimator}_hi"].to_numpy(dtype=float)
                ax.fill_between(step, lo, hi, color=colors[method], alpha=0.2, linewidth=0)
                ax.plot(step, val, color=colors[method], linewidth=1.4)
                drawn_methods.add(method)
                plotted.append(pd.DataFrame({
                    "env": env, "dataset": dataset, "method": method, "step": step,
                    "value": val, "lo": lo, "hi": hi, "estimator": estimator,
                    "n_seeds": g["n_seeds"].to_numpy()}))
            ax.axhline(100.0, color="black", linestyle=":", linewidth=0.8)
            ax.set_title(f"{env} \u00b7 {dataset}", fontsize=10)
            ax.grid(alpha=0.3, linewidth=0.5)
            ax.xaxis.set_major_formatter(FuncFormatter(_steps_formatter))
            if missing:
                text = ("no data" if len(missing) == len(methods)
                        else "no data: " + ", ".join(missing))
                ax.text(0.5, 0.5 if len(missing) == len(methods) else 0.04, text,
                        transform=ax.transAxes, ha="center",
                        va="center" if len(missing) == len(methods) else "bottom",
                        fontsize=8, color="0.35", style="italic")
            if r == nrows - 1:
                ax.set_xlabel("online environment steps" if phase == "online"
                              else "offline training iterations")
            if c == 0:
                ax.set_ylabel("normalised score\n(D4RL, 100 = expert)")
    full = (pd.concat(plotted, ignore_index=True) if plotted
            else pd.DataFrame(columns=CURVE_PLOT_COLUMNS + ["n_seeds"]))
    handles = [Line2D([], [], color=colors[m], linewidth=2,
                      label=_label(m) + ("" if m in drawn_methods else " (no data)"))
               for m in methods]
    handles.append(Patch(facecolor="0.5", alpha=0.2, label="95% stratified-bootstrap CI"))
    handles.append(Line2D([], [], color="black", linestyle=":", linewidth=0.8,
                          label="expert (100)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5),
               fontsize=9, frameon=False)
    fig.suptitle(f"{title}\nscale: {scale} \u00b7 seeds per curve: {_seed_text(full['n_seeds'])}"
                 f" \u00b7 line: {_ESTIMATOR_NAMES[estimator]} over seeds, band: 95% CI",
                 fontsize=11)
    table = full[CURVE_PLOT_COLUMNS].reset_index(drop=True)
    _save_all(fig, table, out_prefix)
    return table


# --------------------------------------------------------------------------- aggregates
def plot_aggregate_metrics(metrics: pd.DataFrame, poi: pd.DataFrame | None, out_prefix: Path,
                           *, methods: Sequence[str], title: str,
                           scale: str | None = None) -> pd.DataFrame:
    """rliable-style interval plot of :func:`~wmaug.report.aggregate.aggregate_metrics` output.

    One panel per metric (IQM, median, mean, optimality gap) with a horizontal 95% CI bar and
    a point-estimate tick per method; when ``poi`` (output of
    :func:`~wmaug.report.aggregate.probability_of_improvement`, possibly several (x, y)
    pairs concatenated) is given, a row below with one panel per (x, y) pair: P(X > Y) over
    all tasks and per task.
    Writes ``out_prefix``.png/.pdf/.csv; returns the CSV table (columns
    :data:`METRIC_PLOT_COLUMNS`: panel = metric name or ``poi:<x>><y>``, label = method or task).
    """
    methods = list(methods)
    if not methods:
        raise ValueError("methods must be non-empty")
    scale = scale if scale is not None else metrics.attrs.get("scale", "unknown")
    colors = method_colors(methods)
    metric_names = list(_METRIC_TITLES)
    # one POI panel per (x, y) pair: [(x, y, [(label, row), ...]), ...]
    poi_panels: list[tuple[str, str, list[tuple[str, pd.Series]]]] = []
    if poi is not None and len(poi):
        for x, y in dict.fromkeys(zip(poi["x"], poi["y"])):
            sub = poi[(poi["x"] == x) & (poi["y"] == y)]
            sub = pd.concat([sub[sub["scope"] == "aggregate"],
                             sub[sub["scope"] != "aggregate"].sort_values(["dataset", "env"])])
            labels = ["all tasks" if r["scope"] == "aggregate"
                      else f"{r['env']} \u00b7 {r['dataset']}" for _, r in sub.iterrows()]
            poi_panels.append((x, y, list(zip(labels, (r for _, r in sub.iterrows())))))
    n_poi = max((len(p[2]) for p in poi_panels), default=0)
    fig = Figure(figsize=(13.0, 1.0 + 0.45 * len(methods) + 1.4
                          + (1.2 + 0.28 * n_poi if n_poi else 0)), layout="constrained")
    poi_axes = []
    if poi_panels:
        grid = fig.add_gridspec(2, 1, height_ratios=[0.45 * len(methods) + 0.9,
                                                    0.28 * n_poi + 1.1])
        metric_axes = list(grid[0].subgridspec(1, 4).subplots())
        poi_axes = list(np.atleast_1d(grid[1].subgridspec(1, len(poi_panels)).subplots()))
    else:
        metric_axes = list(fig.subplots(1, 4))
    rows: list[dict] = []
    ys = np.arange(len(methods))[::-1]  # first method on top
    for i, (ax, metric) in enumerate(zip(metric_axes, metric_names)):
        sub = metrics[metrics["metric"] == metric].set_index("method")
        for y, method in zip(ys, methods):
            if method not in sub.index:
                ax.text(0.5, y, "no data", transform=ax.get_yaxis_transform(), ha="center",
                        va="center", fontsize=8, color="0.35", style="italic")
                continue
            r = sub.loc[method]
            value, lo, hi = float(r["value"]), float(r["lo"]), float(r["hi"])
            ax.barh(y, hi - lo, left=lo, height=0.6, color=colors[method], alpha=0.75)
            ax.vlines(value, y - 0.35, y + 0.35, color="black", linewidth=1.6)
            rows.append({"panel": metric, "label": method, "value": value, "lo": lo, "hi": hi})
        ax.set_yticks(ys, [_label(m) for m in methods] if i == 0 else [""] * len(methods))
        ax.set_ylim(-0.7, len(methods) - 0.3)
        ax.set_title(_METRIC_TITLES[metric], fontsize=11)
        ax.set_xlabel(_METRIC_XLABELS[metric])
        ax.grid(axis="x", alpha=0.3, linewidth=0.5)
        ax.margins(x=0.15)
    same_labels = len({tuple(lab for lab, _ in rows_) for _, _, rows_ in poi_panels}) == 1
    for j, (ax, (x, y, prow)) in enumerate(zip(poi_axes, poi_panels)):
        pys = np.arange(len(prow))[::-1]
        for yy, (label, r) in zip(pys, prow):
            value, lo, hi = float(r["value"]), float(r["lo"]), float(r["hi"])
            alpha = 0.9 if r["scope"] == "aggregate" else 0.5
            ax.barh(yy, hi - lo, left=lo, height=0.6, color=colors.get(x, "0.4"), alpha=alpha)
            ax.vlines(value, yy - 0.35, yy + 0.35, color="black", linewidth=1.4)
            rows.append({"panel": f"poi:{x}>{y}", "label": label, "value": value, "lo": lo,
                         "hi": hi})
        ax.axvline(0.5, color="black", linestyle=":", linewidth=0.8)
        show = j == 0 or not same_labels
        ax.set_yticks(pys, [lab for lab, _ in prow] if show else [""] * len(prow), fontsize=8)
        ax.set_ylim(-0.7, len(prow) - 0.3)
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(f"Probability of improvement P(X > Y)\nX = {_label(x)}, Y = {_label(y)}",
                     fontsize=10)
        ax.set_xlabel("P(a run of X scores higher than a run of Y\non the same task); "
                      "0.5 = no difference")
        ax.grid(axis="x", alpha=0.3, linewidth=0.5)
    n_tasks = _seed_text(metrics["n_tasks"]) if len(metrics) else "n/a"
    n_seeds = _seed_text(metrics["n_seeds"]) if len(metrics) else "n/a"
    where = ""
    if "phase" in metrics.attrs:
        step = metrics.attrs.get("step", "final")
        where = (f"{metrics.attrs['phase']} score at the final step of each run \u00b7 "
                 if step == "final" else f"{metrics.attrs['phase']} score at step {step} \u00b7 ")
    fig.suptitle(f"{title}\nscale: {scale} \u00b7 {where}{n_tasks} tasks \u00b7 seeds per task: "
                 f"{n_seeds} \u00b7 bars: 95% stratified-bootstrap CI, tick: point estimate",
                 fontsize=11)
    table = pd.DataFrame(rows, columns=METRIC_PLOT_COLUMNS)
    _save_all(fig, table, out_prefix)
    return table
