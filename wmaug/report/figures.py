"""Figures of the studies: learning curves with CI bands and rliable-style aggregate intervals.

Paper A (`wmaug`) uses :func:`plot_learning_curves` and :func:`plot_aggregate_metrics` as they
are; paper B (:mod:`wmaug.paper_b.report`) also uses their options (labels, colours, panel notes,
side panels of across-task aggregates, extra metric panels) and :func:`plot_curve_grid` for
panels that are not (dataset, env) grids, and :func:`plot_note` for figures it cannot draw.

Every figure is written as ``<out_prefix>.png``, ``<out_prefix>.pdf`` and ``<out_prefix>.csv``;
the CSV holds exactly the numbers drawn (one row per plotted point or interval). Files are
written to a temporary name in the target directory and moved into place with
``os.replace``, so an interrupted job never leaves a half-written file under the final name.

Matplotlib is used through ``Figure`` + the Agg canvas only (no ``pyplot``): nothing global
is switched and no figure is left open.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from wmaug.core.io import atomic_path
from wmaug.core.references import mixed_reference_note

__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "CURVE_PLOT_COLUMNS",
    "METRIC_PLOT_COLUMNS",
    "method_colors",
    "plot_learning_curves",
    "plot_curve_grid",
    "plot_aggregate_metrics",
    "plot_note",
    "save_figure",
    "wrap_title",
]

#: fixed colours, so a method looks the same in every figure of the harness
METHOD_COLORS = {
    "wm_td3bc_td3": "#d62728",  # red: ours
    "td3bc_td3": "#1f77b4",     # blue
    "td3": "#7f7f7f",           # grey: online from scratch
    # paper B (balanced_replay); all distinct, so any of its figures can mix them
    "ours": "#d62728",               # red: ours
    "awac": "#1f77b4",
    "bcq_ft": "#2ca02c",
    "sac_ft": "#ff7f0e",
    "sac": "#7f7f7f",                # grey: from scratch
    "sac_ft_online_only": "#9467bd",
    "ours_uniform": "#17becf",
    "ours_online_only": "#bcbd22",
    "ours_e1": "#8c564b",
    "ours_e2": "#e377c2",
    "fqe_e1": "#393b79",
    "ours_keep_cql": "#8c6d31",
    "ours_alt_ratio": "#637939",
    "ours_long": "#d62728",          # ours, for longer
    "fqe_long": "#393b79",           # FQE-initialised, like fqe_e1
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
#: extra panels plot_aggregate_metrics can draw when asked (``metric_names``): the same
#: metrics of the normalised area under the curve (``final_scores(step="auc")``)
_EXTRA_METRIC_TITLES = {f"auc_{k}": f"{v} of normalised AUC" for k, v in _METRIC_TITLES.items()}
_EXTRA_METRIC_XLABELS = {f"auc_{k}": (v if k == "optimality_gap" else
                                      "mean normalised score over the run")
                         for k, v in _METRIC_XLABELS.items()}
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


def _label(key: str, labels: dict[str, str] | None = None) -> str:
    """Display name: the caller's, else this module's, else wmaug.core.methods', else the key."""
    if labels and key in labels:
        return labels[key]
    if key in METHOD_LABELS:
        return METHOD_LABELS[key]
    from wmaug.core.methods import METHOD_LABELS as ALL_LABELS

    return ALL_LABELS.get(key, str(key))


def _interval_bar(ax, y: float, value: float, lo: float, hi: float, color: str,
                  alpha: float = 0.75, linewidth: float = 1.6) -> None:
    """One rliable-style interval: a bar from lo to hi and a tick at the point estimate."""
    ax.barh(y, hi - lo, left=lo, height=0.6, color=color, alpha=alpha)
    ax.vlines(value, y - 0.35, y + 0.35, color="black", linewidth=linewidth)


def _with_suffix(prefix: Path, suffix: str) -> Path:
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + suffix)


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def _save_all(fig: Figure, table: pd.DataFrame, out_prefix: Path) -> None:
    """Write ``out_prefix``.csv (``table``), .png and .pdf of ``fig``, each atomically."""
    FigureCanvasAgg(fig)
    _write_atomic(_with_suffix(out_prefix, ".csv"), lambda p: table.to_csv(p, index=False))
    _write_atomic(_with_suffix(out_prefix, ".png"),
                  lambda p: fig.savefig(p, format="png", dpi=150, metadata=_PNG_META))
    # the layout is solved now; freezing it saves a second (slow) constrained-layout pass
    fig.set_layout_engine("none")
    _write_atomic(_with_suffix(out_prefix, ".pdf"),
                  lambda p: fig.savefig(p, format="pdf", metadata=_PDF_META))


save_figure = _save_all


def wrap_title(text: str, width_in: float, fontsize: float = 11.0) -> str:
    """Wrap each line of a title to the figure's width (about 12 characters per inch at 11 pt)."""
    chars = max(20, int(width_in * 12.0 * 11.0 / fontsize))
    return "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) if len(line) > chars else line
                     for line in text.split("\n"))


def _legend_columns(labels: Sequence[str], width_in: float, most: int = 5) -> int:
    """The most legend columns (up to ``most``) whose entries fit across the figure.

    Estimates each entry at 0.55 in (handle and padding) plus 0.0625 in per character (9 pt)
    and fills columns the way matplotlib does (column-major, the first columns one longer).
    """
    widths = [0.55 + 0.0625 * len(t) for t in labels]
    for ncol in range(min(most, len(widths)), 1, -1):
        per, extra = divmod(len(widths), ncol)
        sizes = [per + 1] * extra + [per] * (ncol - extra)
        starts = np.cumsum([0] + sizes[:-1])
        if sum(max(widths[a:a + n]) for a, n in zip(starts, sizes) if n) <= 0.95 * width_in:
            return ncol
    return 1


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


# --------------------------------------------------------------------------- curves
def plot_learning_curves(intervals: pd.DataFrame, out_prefix: Path, *, envs: list[str],
                         datasets: list[str], methods: list[str], title: str,
                         estimator: str = "mean", scale: str | None = None,
                         **options) -> pd.DataFrame:
    """Fig 3: normalised score vs environment steps, one panel per (dataset row, env column).

    ``intervals`` is :func:`wmaug.report.aggregate.curve_intervals` output; the line is
    ``estimator`` ("mean" or "iqm"), the band its 95% CI. A (env, dataset, method) absent
    from ``intervals`` is listed as "no data" inside its panel. ``scale`` defaults to
    ``intervals.attrs["scale"]``. Writes ``out_prefix``.png/.pdf/.csv and returns the CSV's
    table (columns :data:`CURVE_PLOT_COLUMNS`, one row per plotted point).
    ``options`` go to :func:`plot_curve_grid` (labels, colours, panel notes, side panels...).
    """
    return plot_curve_grid(intervals, out_prefix, rows=datasets, cols=envs, lines=methods,
                           title=title, estimator=estimator, scale=scale, **options)


def plot_curve_grid(intervals: pd.DataFrame, out_prefix: Path, *, rows: Sequence[str],
                    cols: Sequence[str], lines: Sequence[str], title: str,
                    row_key: str = "dataset", col_key: str = "env", line_key: str = "method",
                    estimator: str = "mean", scale: str | None = None,
                    labels: dict[str, str] | None = None, colors: dict[str, str] | None = None,
                    ylabel: str = "normalised score\n(D4RL, 100 = expert)",
                    xlabel: str | None = None,
                    reference: tuple[float, str] | None = (100.0, "expert (100)"),
                    panel_title: Callable[[str, str], str] | None = None,
                    panel_notes: dict[tuple[str, str], str] | None = None,
                    side_panels: pd.DataFrame | None = None,
                    side_titles: dict[str, str] | None = None,
                    ylim: tuple[float, float] | None = None) -> pd.DataFrame:
    """Curves with 95% CI bands on a grid of panels: ``rows`` x ``cols``, one line per ``lines``.

    Panels are the values ``rows`` of column ``row_key`` by ``cols`` of ``col_key``; inside a
    panel one line per value ``lines`` of ``line_key`` (paper A's Fig 3: datasets x envs,
    one line per method). ``intervals`` holds curve-interval rows (columns env, dataset,
    method, step, n_seeds, ``estimator``, ``estimator``_lo/_hi, plus any key column).
    A line absent from ``intervals`` is listed as "no data" in its panel; ``panel_notes``
    {(row, col): text} replaces that with a note of the caller's (e.g. "not run at this
    scale"). ``labels``/``colors`` map line values to legend names/colours (default: the
    method's). ``reference`` is a dotted horizontal line (value, legend text) or None.

    ``side_panels`` (columns panel, line, value, lo, hi) adds a column of interval panels at
    the right (one per distinct ``panel``, titled by ``side_titles``): across-task aggregates
    with their 95% CIs. Their CSV rows have row/col key = "all", step empty and
    ``estimator`` = the panel name.

    Writes ``out_prefix``.png/.pdf/.csv; returns the CSV table: columns
    :data:`CURVE_PLOT_COLUMNS`, then the key columns not among them.
    """
    if estimator not in _ESTIMATOR_NAMES:
        raise ValueError(f"estimator must be one of {list(_ESTIMATOR_NAMES)}, got {estimator!r}")
    rows, cols, lines = list(rows), list(cols), list(lines)
    if not rows or not cols or not lines:
        raise ValueError("rows, cols and lines (datasets, envs and methods) must be non-empty")
    scale = scale if scale is not None else intervals.attrs.get("scale", "unknown")
    phase = intervals.attrs.get("phase", "online")
    palette = method_colors(lines) if line_key == "method" else {}
    palette.update(colors or {})
    for i, key in enumerate(k for k in lines if k not in palette):
        palette[key] = _FALLBACK_COLORS[i % len(_FALLBACK_COLORS)]
    panel_notes = panel_notes or {}
    columns = CURVE_PLOT_COLUMNS + [k for k in dict.fromkeys((row_key, col_key, line_key))
                                    if k not in CURVE_PLOT_COLUMNS]
    ids = [c for c in columns if c not in ("step", "value", "lo", "hi", "estimator")]
    nrows, ncols = len(rows), len(cols)
    side_names = (list(dict.fromkeys(side_panels["panel"]))
                  if side_panels is not None and len(side_panels) else [])
    width = 3.4 * ncols + 0.6 + (4.2 if side_names else 0.0)
    fig = Figure(figsize=(width, 2.6 * nrows + 1.6), layout="constrained")
    side_axes = []
    if side_names:
        grid = fig.add_gridspec(1, 2, width_ratios=[3.4 * ncols, 3.8])
        axes = np.atleast_2d(grid[0].subgridspec(nrows, ncols).subplots(sharex=True,
                                                                         squeeze=False))
        side_axes = list(np.atleast_1d(grid[1].subgridspec(len(side_names), 1).subplots()))
    else:
        axes = np.atleast_2d(fig.subplots(nrows, ncols, sharex=True, squeeze=False))
    groups = {k: g.sort_values("step") for k, g in
              intervals.groupby([row_key, col_key, line_key], sort=False)}
    plotted: list[pd.DataFrame] = []
    drawn: set[str] = set()
    for r, row in enumerate(rows):
        for c, col in enumerate(cols):
            ax = axes[r, c]
            missing = []
            for line in lines:
                g = groups.get((row, col, line))
                if g is None or g.empty:
                    missing.append(line)
                    continue
                if g["step"].duplicated().any():
                    raise ValueError(f"plot_curve_grid: several rows per step for "
                                     f"{row_key}={row}, {col_key}={col}, {line_key}={line}")
                step = g["step"].to_numpy()
                val = g[estimator].to_numpy(dtype=float)
                lo = g[f"{estimator}_lo"].to_numpy(dtype=float)
                hi = g[f"{estimator}_hi"].to_numpy(dtype=float)
                ax.fill_between(step, lo, hi, color=palette[line], alpha=0.2, linewidth=0)
                ax.plot(step, val, color=palette[line], linewidth=1.4)
                drawn.add(line)
                part = pd.DataFrame({k: g[k].to_numpy() for k in ids if k in g.columns})
                part = part.assign(step=step, value=val, lo=lo, hi=hi, estimator=estimator,
                                   n_seeds=g["n_seeds"].to_numpy())
                plotted.append(part)
            if reference is not None:
                ax.axhline(reference[0], color="black", linestyle=":", linewidth=0.8)
            ax.set_title(panel_title(row, col) if panel_title else f"{col} \u00b7 {row}",
                         fontsize=10)
            ax.grid(alpha=0.3, linewidth=0.5)
            ax.xaxis.set_major_formatter(FuncFormatter(_steps_formatter))
            if ylim is not None:
                ax.set_ylim(*ylim)
            note = panel_notes.get((row, col))
            everything = len(missing) == len(lines)
            if note is None and missing:
                note = "no data" if everything else "no data: " + ", ".join(missing)
            if note:
                ax.text(0.5, 0.5 if everything else 0.04, note, transform=ax.transAxes,
                        ha="center", va="center" if everything else "bottom",
                        fontsize=8, color="0.35", style="italic", wrap=True)
            if r == nrows - 1:
                ax.set_xlabel(xlabel if xlabel is not None else
                              "online environment steps" if phase == "online"
                              else "offline training iterations")
            if c == 0:
                ax.set_ylabel(ylabel)
    for ax, name in zip(side_axes, side_names):
        sub = side_panels[side_panels["panel"] == name].set_index("line")
        shown = list(lines)
        ys = np.arange(len(shown))[::-1]
        for y, line in zip(ys, shown):
            if line not in sub.index:
                ax.text(0.5, y, "no data", transform=ax.get_yaxis_transform(), ha="center",
                        va="center", fontsize=8, color="0.35", style="italic")
                continue
            rec = sub.loc[line]
            value, lo, hi = float(rec["value"]), float(rec["lo"]), float(rec["hi"])
            _interval_bar(ax, y, value, lo, hi, palette.get(line, "0.4"))
            row_out = {k: "all" for k in ids}
            row_out.update({line_key: line, "step": np.nan, "value": value, "lo": lo, "hi": hi,
                            "estimator": name})
            plotted.append(pd.DataFrame([row_out]))
            drawn.add(line)
        ax.set_yticks(ys, [_label(k, labels) for k in shown], fontsize=8)
        ax.set_ylim(-0.7, len(shown) - 0.3)
        ax.set_title((side_titles or {}).get(name, name), fontsize=9)
        ax.grid(axis="x", alpha=0.3, linewidth=0.5)
        ax.use_sticky_edges = False  # bars stick the limits to their ends: zero-width ones (one seed) sat on the frame
        ax.margins(x=0.15)
    full = (pd.concat(plotted, ignore_index=True) if plotted
            else pd.DataFrame(columns=columns + ["n_seeds"]))
    if "n_seeds" not in full.columns:
        full["n_seeds"] = np.nan
    handles = [Line2D([], [], color=palette[k], linewidth=2,
                      label=_label(k, labels) + ("" if k in drawn else " (no data)"))
               for k in lines]
    handles.append(Patch(facecolor="0.5", alpha=0.2, label="95% stratified-bootstrap CI"))
    if reference is not None:
        handles.append(Line2D([], [], color="black", linestyle=":", linewidth=0.8,
                              label=reference[1]))
    fig.legend(handles=handles, loc="outside lower center",
               ncol=_legend_columns([h.get_label() for h in handles], width),
               fontsize=9, frameon=False)
    fig.suptitle(wrap_title(f"{title}\nscale: {scale} \u00b7 seeds per curve: "
                       f"{_seed_text(full['n_seeds'].dropna())}"
                       f" \u00b7 line: {_ESTIMATOR_NAMES[estimator]} over seeds, band: 95% CI"
                       + _reference_line(intervals), width), fontsize=11)
    table = full[columns].reset_index(drop=True)
    _save_all(fig, table, out_prefix)
    return table


def plot_note(out_prefix: Path, *, title: str, note: str, columns: Sequence[str],
              scale: str | None = None) -> pd.DataFrame:
    """A figure that only says why it has nothing to show, and a header-only CSV (``columns``)."""
    fig = Figure(figsize=(8.0, 3.0), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=12,
            color="0.3", style="italic", wrap=True)
    scale_text = f"scale: {scale} \u00b7 " if scale is not None else ""
    fig.suptitle(wrap_title(f"{title}\n{scale_text}seeds: none drawn", 8.0), fontsize=11)
    table = pd.DataFrame(columns=list(columns))
    _save_all(fig, table, out_prefix)
    return table


# --------------------------------------------------------------------------- aggregates
def _reference_line(table: pd.DataFrame) -> str:
    """A title line when the plotted cells were normalised against different reference returns (a Minari dataset's
    own beside D4RL's: docs/datasets.md, "Reference scores"); '' otherwise."""
    note = mixed_reference_note(table.attrs.get("references", {}))
    return f"\n{note}" if note else ""


def plot_aggregate_metrics(metrics: pd.DataFrame, poi: pd.DataFrame | None, out_prefix: Path,
                           *, methods: Sequence[str], title: str,
                           scale: str | None = None, labels: dict[str, str] | None = None,
                           metric_names: Sequence[str] | None = None,
                           where: str | None = None) -> pd.DataFrame:
    """rliable-style interval plot of :func:`~wmaug.report.aggregate.aggregate_metrics` output.

    One panel per metric (IQM, median, mean, optimality gap) with a horizontal 95% CI bar and
    a point-estimate tick per method; when ``poi`` (output of
    :func:`~wmaug.report.aggregate.probability_of_improvement`, possibly several (x, y)
    pairs concatenated) is given, a row below with one panel per (x, y) pair: P(X > Y) over
    all tasks and per task.
    Writes ``out_prefix``.png/.pdf/.csv; returns the CSV table (columns
    :data:`METRIC_PLOT_COLUMNS`: panel = metric name or ``poi:<x>><y>``, label = method or task).

    Options: ``labels`` (method -> display name), ``metric_names`` (the metric panels, in
    order; default the four above; ``auc_<metric>`` names are the same metrics of the
    normalised area under the curve, passed in ``metrics`` under those names) and ``where``
    (what was aggregated, for the subtitle; default from ``metrics.attrs``).
    """
    methods = list(methods)
    if not methods:
        raise ValueError("methods must be non-empty")
    scale = scale if scale is not None else metrics.attrs.get("scale", "unknown")
    colors = method_colors(methods)
    metric_names = list(metric_names) if metric_names is not None else list(_METRIC_TITLES)
    titles = {**_METRIC_TITLES, **_EXTRA_METRIC_TITLES}
    xlabels = {**_METRIC_XLABELS, **_EXTRA_METRIC_XLABELS}
    n_metrics = len(metric_names)
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
    width = max(13.0, 3.25 * n_metrics)
    fig = Figure(figsize=(width, 1.0 + 0.45 * len(methods) + 1.4
                          + (1.2 + 0.28 * n_poi if n_poi else 0)), layout="constrained")
    poi_axes = []
    if poi_panels:
        grid = fig.add_gridspec(2, 1, height_ratios=[0.45 * len(methods) + 0.9,
                                                    0.28 * n_poi + 1.1])
        metric_axes = list(np.atleast_1d(grid[0].subgridspec(1, n_metrics).subplots()))
        poi_axes = list(np.atleast_1d(grid[1].subgridspec(1, len(poi_panels)).subplots()))
    else:
        metric_axes = list(np.atleast_1d(fig.subplots(1, n_metrics)))
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
            _interval_bar(ax, y, value, lo, hi, colors[method])
            rows.append({"panel": metric, "label": method, "value": value, "lo": lo, "hi": hi})
        ax.set_yticks(ys, [_label(m, labels) for m in methods] if i == 0 else [""] * len(methods))
        ax.set_ylim(-0.7, len(methods) - 0.3)
        ax.set_title(titles.get(metric, metric), fontsize=11)
        ax.set_xlabel(xlabels.get(metric, ""))
        ax.grid(axis="x", alpha=0.3, linewidth=0.5)
        ax.use_sticky_edges = False  # as in the curve grid's side panels
        ax.margins(x=0.15)
    same_labels = len({tuple(lab for lab, _ in rows_) for _, _, rows_ in poi_panels}) == 1
    for j, (ax, (x, y, prow)) in enumerate(zip(poi_axes, poi_panels)):
        pys = np.arange(len(prow))[::-1]
        for yy, (label, r) in zip(pys, prow):
            value, lo, hi = float(r["value"]), float(r["lo"]), float(r["hi"])
            alpha = 0.9 if r["scope"] == "aggregate" else 0.5
            _interval_bar(ax, yy, value, lo, hi, colors.get(x, "0.4"), alpha, linewidth=1.4)
            rows.append({"panel": f"poi:{x}>{y}", "label": label, "value": value, "lo": lo,
                         "hi": hi})
        ax.axvline(0.5, color="black", linestyle=":", linewidth=0.8)
        show = j == 0 or not same_labels
        ax.set_yticks(pys, [lab for lab, _ in prow] if show else [""] * len(prow), fontsize=8)
        ax.set_ylim(-0.7, len(prow) - 0.3)
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(f"Probability of improvement P(X > Y)\n"
                     f"X = {_label(x, labels)}, Y = {_label(y, labels)}",
                     fontsize=10)
        ax.set_xlabel("P(a run of X scores higher than a run of Y\non the same task); "
                      "0.5 = no difference")
        ax.grid(axis="x", alpha=0.3, linewidth=0.5)
    n_tasks = _seed_text(metrics["n_tasks"]) if len(metrics) else "n/a"
    n_seeds = _seed_text(metrics["n_seeds"]) if len(metrics) else "n/a"
    if where is not None:
        where = f"{where} \u00b7 " if where else ""
    elif "phase" in metrics.attrs:
        step = metrics.attrs.get("step", "final")
        phase = metrics.attrs["phase"]
        where = (f"{phase} score at the final step of each run \u00b7 " if step == "final" else
                 f"{phase} normalised area under the curve \u00b7 " if step == "auc" else
                 f"{phase} score at step {step} \u00b7 ")
    else:
        where = ""
    fig.suptitle(wrap_title(f"{title}\nscale: {scale} \u00b7 {where}{n_tasks} tasks \u00b7 seeds per task: "
                       f"{n_seeds} \u00b7 bars: 95% stratified-bootstrap CI, tick: point estimate"
                       + _reference_line(metrics), width), fontsize=11)
    table = pd.DataFrame(rows, columns=METRIC_PLOT_COLUMNS)
    _save_all(fig, table, out_prefix)
    return table
