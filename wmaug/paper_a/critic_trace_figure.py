"""Paper A's Fig 5: critic values along one real expert episode beside its discounted return-to-go.

One panel per critic (paper's layout: (a) 10K with augmentation, (b) 10K without, (c) 50K without,
(d) online only), each with its own y-axis: the point of the figure is the scale of Q. Input is
:func:`wmaug.paper_a.critic_trace.critic_trace`'s long table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from wmaug.report.figures import plot_note, save_figure, wrap_title

__all__ = ["CRITIC_PLOT_COLUMNS", "plot_critic_trace"]

#: the figure's CSV: one row per (label, step) drawn
CRITIC_PLOT_COLUMNS = ["panel", "label", "t", "q_min_mean", "q_min_lo", "q_min_hi", "n_seeds",
                       "return_to_go", "mean_abs_error"]
_PANEL_COLORS = ["#d62728", "#1f77b4", "#9467bd", "#7f7f7f", "#2ca02c", "#ff7f0e"]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"


def plot_critic_trace(table: pd.DataFrame, out_prefix: Path, *, labels: dict[str, str],
                      order: Sequence[str], title: str, scale: str) -> pd.DataFrame:
    """Fig 5 from a critic-trace table (columns label, seed, t, q_min, return_to_go, ...).

    Panel i shows critic label ``order[i]``, titled "(a) <labels[label]>": min(Q1, Q2) as the mean
    over seeds with a min-max band over seeds, and the episode's discounted return-to-go as a black
    dashed line; its own y-axis, with the y-range and mean |Q - G| (over seeds and steps) printed in
    the panel. A label absent from the table gets a panel saying "no cells"; an empty table gives a
    note figure. Writes ``out_prefix``.png/.pdf/.csv and returns the CSV's table
    (:data:`CRITIC_PLOT_COLUMNS`, one row per plotted (label, step)).
    """
    order = list(order)
    if not order:
        raise ValueError("plot_critic_trace: order (the critic labels to show) must be non-empty")
    if table is None or len(table) == 0:
        return plot_note(out_prefix, title=title, columns=CRITIC_PLOT_COLUMNS, scale=scale,
                         note="no critic traces: no finished cells with the critics of this figure")
    missing_cols = [c for c in ("label", "seed", "t", "q_min", "return_to_go") if c not in table.columns]
    if missing_cols:
        raise ValueError(f"plot_critic_trace: the table lacks columns {missing_cols}")
    n = len(order)
    ncols = n if n <= 4 else 3
    nrows = -(-n // ncols)
    width = 3.6 * ncols + 0.4
    fig = Figure(figsize=(width, 2.9 * nrows + 1.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    groups = {k: g for k, g in table.groupby("label", sort=False)}
    plotted: list[pd.DataFrame] = []
    seeds_drawn: list[int] = []
    for i, (ax, key) in enumerate(zip(axes, order)):
        name = f"({chr(ord('a') + i)}) {labels.get(key, key)}"
        ax.set_title(wrap_title(name, 3.4, 10), fontsize=10)
        ax.grid(alpha=0.3, linewidth=0.5)
        ax.set_xlabel("step of the episode")
        if i % ncols == 0:
            ax.set_ylabel("value")
        g = groups.get(key)
        if g is None or g.empty:
            ax.text(0.5, 0.5, "no cells", transform=ax.transAxes, ha="center", va="center",
                    fontsize=10, color="0.35", style="italic")
            ax.set_yticks([])
            ax.set_xticks([])
            ax.set_xlabel("")
            continue
        if g.duplicated(["seed", "t"]).any():
            raise ValueError(f"plot_critic_trace: several rows per (seed, t) for label {key!r}")
        per_t = g.groupby("t").agg(q_min_mean=("q_min", "mean"), q_min_lo=("q_min", "min"),
                                   q_min_hi=("q_min", "max"), n_seeds=("seed", "nunique"),
                                   return_to_go=("return_to_go", "mean")).reset_index()
        mae = float((g["q_min"] - g["return_to_go"]).abs().mean())
        color = _PANEL_COLORS[i % len(_PANEL_COLORS)]
        t = per_t["t"].to_numpy()
        ax.fill_between(t, per_t["q_min_lo"], per_t["q_min_hi"], color=color, alpha=0.25, linewidth=0)
        ax.plot(t, per_t["q_min_mean"], color=color, linewidth=1.4)
        ax.plot(t, per_t["return_to_go"], color="black", linestyle="--", linewidth=1.1)
        q_lo, q_hi = float(per_t["q_min_lo"].min()), float(per_t["q_min_hi"].max())
        g_lo, g_hi = float(per_t["return_to_go"].min()), float(per_t["return_to_go"].max())
        lo, hi = min(q_lo, g_lo), max(q_hi, g_hi)
        span = (hi - lo) or max(abs(hi), 1.0)
        ax.set_ylim(lo - 0.05 * span, hi + 0.42 * span)  # headroom for the panel text
        n_seeds = int(g["seed"].nunique())
        seeds_drawn.append(n_seeds)
        ax.text(0.03, 0.97,
                f"y range drawn [{_fmt(lo)}, {_fmt(hi)}]\n"
                f"Q in [{_fmt(q_lo)}, {_fmt(q_hi)}], G in [{_fmt(g_lo)}, {_fmt(g_hi)}]\n"
                f"mean |Q - G| = {_fmt(mae)} ({n_seeds} seeds)",
                transform=ax.transAxes, ha="left", va="top", fontsize=7.5)
        plotted.append(per_t.assign(panel=name, label=key, mean_abs_error=mae))
    for ax in axes[n:]:
        ax.set_axis_off()
    handles = [Line2D([], [], color="0.3", linewidth=1.4, label="Q(s, a) = min(Q1, Q2): mean over seeds"),
               Patch(facecolor="0.3", alpha=0.25, label="min-max over seeds"),
               Line2D([], [], color="black", linestyle="--", linewidth=1.1,
                      label="discounted return-to-go G of the episode")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3 if width > 10 else 1, fontsize=9,
               frameon=False)
    seeds = (f"{min(seeds_drawn)}" if seeds_drawn and min(seeds_drawn) == max(seeds_drawn)
             else f"{min(seeds_drawn)}\u2013{max(seeds_drawn)}" if seeds_drawn else "none drawn")
    fig.suptitle(wrap_title(f"{title}\nscale: {scale} \u00b7 seeds per panel: {seeds} \u00b7 "
                            "each panel has its own y-axis", width), fontsize=11)
    out = (pd.concat(plotted, ignore_index=True)[CRITIC_PLOT_COLUMNS] if plotted
           else pd.DataFrame(columns=CRITIC_PLOT_COLUMNS))
    save_figure(fig, out, out_prefix)
    return out
