"""Paper B's report (study `balanced_replay`): every figure of docs/protocol.md's "Paper B" section.

Input: the study's finished cells (paper B's `curve.csv` has one "online" row per evaluation,
step 0 = the pre-trained agents, plus the analysis columns `offline_share` and `auroc_*`) and,
for Fig 1a, ``results_out/fig1a_loglik.csv`` written by the `likelihood_shift` rule.

Every curve and bar comes with a 95% stratified-bootstrap interval from
:mod:`wmaug.report.aggregate` (rliable; seeds resampled within each task and step), drawn by
:mod:`wmaug.report.figures`. Each figure ``figures_out/{study}_{name}.png|pdf|csv`` is written
whatever ran: a figure whose cells are not part of this scale's grid (the smoke scale runs a
sub-grid, see `grid_subset`) or have not finished is drawn as a note saying so, with a
header-only CSV; otherwise its panels are the tasks this scale runs, and its title names what of
the paper's grid the scale leaves out.

Tables in ``results_out``: scores.csv (every evaluation row, analysis columns included),
curve_intervals.csv (mean/IQM curves with CIs of each `quantity`), aggregate_metrics.csv and
probability_of_improvement.csv (across-task aggregates of the main grid and of Fig 4c/4d,
for the final score and for the normalised area under the curve).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from wmaug.core import config as C
from wmaug.report.figures import plot_curve_grid, plot_learning_curves, save_figure, wrap_title
from wmaug.report.study import StudyReport

log = logging.getLogger("wmaug.report")

#: curve.csv columns kept beside the scores (Fig 4a: offline_share; Fig 4b: auroc_*)
ANALYSIS_COLUMNS = ("raw_return_std", "offline_share", "auroc_ensemble", "auroc_single")
DATASET_COLORS = {"random": "#1f77b4", "medium": "#2ca02c", "medium-replay": "#9467bd", "medium-expert": "#ff7f0e"}
FIG1A_COLUMNS = ["source", "bin_left", "bin_right", "count", "density"]


# --------------------------------------------------------------------------- figures
def _compute_curves(r: StudyReport) -> None:
    """Curve intervals per quantity: scores of every cell; raw returns of Fig 1b/1c's cells;
    the analysis columns of `ours` (Fig 4a/4b)."""
    if r.scores is None:
        return
    raw = [r.rows_of(r.blocks[b]["methods"], r.block_tasks(b))
           for b in ("fig1b_sampling", "fig1c_q_init") if b in r.blocks]
    raw_cells = pd.concat(raw) if raw else r.scores.iloc[:0]
    wanted = [("normalized_score", r.scores), ("raw_return", raw_cells)]
    wanted += [(q, r.rows_of(["ours"])) for q in ("offline_share", "auroc_ensemble", "auroc_single")]
    for quantity, rows in wanted:
        r.add_curves(quantity, rows)


def _fig1a(r: StudyReport) -> None:
    name, paper_fig = "fig1a", "Fig 1a"
    what = "log-likelihood of offline vs online (s, a) under a VAE trained on halfcheetah-random"
    path = Path(r.results_out) / "fig1a_loglik.csv"
    if not path.is_file():
        return r.note(name, paper_fig, what, f"{path.name} not found in {path.parent}\n"
                      "(the likelihood_shift rule has not run at this scale)", FIG1A_COLUMNS)
    table = pd.read_csv(path)
    if not {"source", "log_likelihood"} <= set(table.columns):
        raise ValueError(f"{path}: need columns source and log_likelihood, got {list(table.columns)}")
    table = table[np.isfinite(pd.to_numeric(table["log_likelihood"], errors="coerce"))]
    sources = [s for s in ("offline", "online") if s in set(table["source"])]
    if not sources:
        return r.note(name, paper_fig, what, f"{path.name} holds no finite offline/online log-likelihoods",
                      FIG1A_COLUMNS)
    values = {s: table.loc[table["source"] == s, "log_likelihood"].to_numpy(float) for s in sources}
    pooled = np.concatenate(list(values.values()))
    lo, hi = np.quantile(pooled, [0.005, 0.995])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, 61)
    labels = {"offline": "offline (held-out dataset samples)", "online": "online (pre-trained CQL agent's samples)"}
    colors = {"offline": "#1f77b4", "online": "#d62728"}

    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    rows = []
    for s in sources:
        v = np.clip(values[s], lo, hi)  # the extreme 1% (pooled) counts in the end bins
        count, _ = np.histogram(v, bins=edges)
        density = count / (count.sum() * np.diff(edges))
        ax.stairs(density, edges, fill=True, alpha=0.35, color=colors[s])
        ax.stairs(density, edges, color=colors[s], linewidth=1.2,
                  label=f"{labels[s]}: n = {len(v)}, mean {values[s].mean():.1f}")
        rows.append(pd.DataFrame({"source": s, "bin_left": edges[:-1], "bin_right": edges[1:], "count": count,
                                  "density": density}))
    ax.set_xlabel("importance-weighted log-likelihood of (s, a) under the VAE")
    ax.set_ylabel("density")
    ax.grid(alpha=0.3, linewidth=0.5)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    fig.suptitle(wrap_title(f"Paper B, Fig 1a: {what}\nscale: {r.scale} \u00b7 one VAE (seed 0), no seeds to "
                            f"aggregate\nvalues beyond the pooled 0.5\u201399.5% quantiles are counted in the end bins",
                            7.5, fontsize=10), fontsize=10)
    save_figure(fig, pd.concat(rows, ignore_index=True)[FIG1A_COLUMNS], r.prefix(name))
    log.info("%s written", name)


def _fig1b(r: StudyReport) -> None:
    r.task_curves("fig1b", "Fig 1b", "a CQL agent fine-tuned with SAC on online samples only vs uniform over "
                  "offline + online (average return)", "fig1b_sampling", ["sac_ft_online_only", "sac_ft"],
                  quantity="raw_return", labels={"sac_ft_online_only": "Online only", "sac_ft": "Uniform"},
                  by_dataset_cols=True)


def _fig1c(r: StudyReport) -> None:
    r.task_curves("fig1c", "Fig 1c", "pessimistic (CQL) vs neutral (FQE) Q initialisation, one agent, balanced "
                  "replay (average return)", "fig1c_q_init", ["ours_e1", "fqe_e1"], quantity="raw_return",
                  labels={"ours_e1": "Pessimistic (CQL)", "fqe_e1": "Neutral (FQE)"}, by_dataset_cols=True)


def _fig3(r: StudyReport) -> None:
    name, paper_fig = "fig3", "Fig 3"
    methods = r.paper_blocks["main"]["methods"]
    what = "online fine-tuning, normalised score vs environment steps"
    why = r.absent_note("main", methods)
    if why:
        return r.note(name, paper_fig, what, why)
    b = r.blocks["main"]
    plot_learning_curves(r.curve("normalized_score", methods), r.prefix(name), envs=b["envs"],
                         datasets=b["datasets"], methods=methods,
                         title=f"Paper B, {paper_fig}: {what}{r.scale_note('main')}", scale=r.scale)
    log.info("%s written", name)


def _fig4a(r: StudyReport) -> None:
    name, paper_fig = "fig4a", "Fig 4a"
    what = "share of offline samples in the balanced-replay batches (ours), every dataset (Fig 4a; all tasks: Fig 9)"
    datasets = list(r.blocks["main"]["datasets"])
    envs = r.blocks["main"]["envs"]
    if not datasets or not envs:
        return r.note(name, paper_fig, what, f"no datasets run at scale '{r.scale}'")
    ci = r.curve("offline_share", ["ours"])
    ci = ci[ci["dataset"].isin(datasets)]
    if ci.empty:
        return r.note(name, paper_fig, what, f"no finished 'ours' cells with offline_share at scale '{r.scale}'")
    plot_curve_grid(ci, r.prefix(name), rows=["ours"], cols=envs, lines=datasets, row_key="method",
                    col_key="env", line_key="dataset", title=f"Paper B, {paper_fig}: {what}{r.scale_note('main')}",
                    scale=r.scale,
                    labels={d: d for d in datasets}, colors={d: DATASET_COLORS.get(d, "#7f7f7f") for d in datasets},
                    ylabel="offline share of replay batches\n(mean since the previous evaluation)",
                    reference=None, ylim=(-0.02, 1.02), panel_title=lambda _row, col: col)
    log.info("%s written", name)


def _fig4b(r: StudyReport) -> None:
    name, paper_fig = "fig4b", "Fig 4b"
    what = ("AUROC of Q at telling the agent's recent online actions from uniform-random actions, "
            "Q-ensemble vs single Q (ours, medium-expert)")
    envs = r.blocks["main"]["envs"]
    if "medium-expert" not in r.blocks["main"]["datasets"] or not envs:
        return r.note(name, paper_fig, what, f"medium-expert not run at scale '{r.scale}'")
    ci = pd.concat([r.curve(q, ["ours"]) for q in ("auroc_ensemble", "auroc_single")], ignore_index=True)
    ci = ci[ci["dataset"] == "medium-expert"]
    if ci.empty:
        return r.note(name, paper_fig, what, f"no finished 'ours' cells with AUROC values on medium-expert at "
                      f"scale '{r.scale}'")
    plot_curve_grid(ci, r.prefix(name), rows=["medium-expert"], cols=envs,
                    lines=["auroc_ensemble", "auroc_single"], line_key="quantity",
                    title=f"Paper B, {paper_fig}: {what}{r.scale_note('main')}", scale=r.scale,
                    labels={"auroc_ensemble": "Q-ensemble (mean of members' min Q)",
                            "auroc_single": "single Q (member 0)"},
                    colors={"auroc_ensemble": "#d62728", "auroc_single": "#8c564b"},
                    ylabel="AUROC (online vs\nuniform-random actions)", reference=(0.5, "chance (0.5)"),
                    ylim=(-0.02, 1.02), panel_title=lambda row, col: f"{col} \u00b7 {row}")
    log.info("%s written", name)


def _fig4c(r: StudyReport) -> None:
    r.task_curves("fig4c", "Fig 4c (and appendix Fig 11, per task)", "balanced replay vs uniform vs online-only "
                  "sampling", "fig4c_sampling", ["ours", "ours_uniform", "ours_online_only"],
                  labels={"ours": "Balanced replay (ours)", "ours_uniform": "Uniform",
                          "ours_online_only": "Online only"}, side=True)


def _fig4d(r: StudyReport) -> None:
    r.task_curves("fig4d", "Fig 4d", "ensemble size N = 1, 2, 5 (balanced replay, CQL-initialised)",
                  "fig4d_ensemble_size", ["ours_e1", "ours_e2", "ours"],
                  labels={"ours_e1": "N = 1", "ours_e2": "N = 2", "ours": "N = 5 (ours)"}, side=True)


def _aggregate(r: StudyReport) -> None:
    methods = r.paper_blocks["main"]["methods"]
    r.main_aggregates(
        "aggregate", "aggregate (claims B1, B2)", [("ours", [m for m in methods if m != "ours"])],
        lambda n: f"Paper B: final online normalised score (IQM, median, mean, optimality gap) and normalised area "
                  f"under the curve (AUC, mean score over the run: sample efficiency) across {n} task(s); "
                  f"P(ours > baseline) on the final score")


def _appendix_cql_kept(r: StudyReport) -> None:
    r.task_curves("appendix_cql_kept", "appendix", "CQL regulariser removed (ours) vs kept during fine-tuning",
                  "cql_kept", ["ours", "ours_keep_cql"],
                  labels={"ours": "CQL regulariser removed (ours)", "ours_keep_cql": "CQL regulariser kept"})


def _appendix_long_runs(r: StudyReport) -> None:
    long = C.scale_cfg(r.cfg).get("finetune_long_steps")
    r.task_curves("appendix_long_runs", "appendix",
                  f"long halfcheetah runs ({long:,} steps), CQL- vs FQE-initialised ensemble" if long else
                  "long halfcheetah runs, CQL- vs FQE-initialised ensemble",
                  "long_runs", ["ours_long", "fqe_long"], by_dataset_cols=True,
                  labels={"ours_long": "Ours (CQL-init ensemble)", "fqe_long": "FQE-init ensemble"})


def _appendix_density_ratio(r: StudyReport) -> None:
    r.task_curves("appendix_density_ratio", "appendix", "density ratio d_on / d_off (ours) vs the alternative "
                  "d_on / d_(off+on)", "density_ratio_alt", ["ours", "ours_alt_ratio"],
                  labels={"ours": "w = d_on / d_off (ours)", "ours_alt_ratio": "w = d_on / d_(off+on)"})


FIGURE_BUILDERS: dict[str, Callable[[StudyReport], None]] = {
    "fig1a": _fig1a, "fig1b": _fig1b, "fig1c": _fig1c, "fig3": _fig3, "fig4a": _fig4a, "fig4b": _fig4b,
    "fig4c": _fig4c, "fig4d": _fig4d, "aggregate": _aggregate, "appendix_cql_kept": _appendix_cql_kept,
    "appendix_long_runs": _appendix_long_runs, "appendix_density_ratio": _appendix_density_ratio,
}


# --------------------------------------------------------------------------- entry point
def build_balanced_replay_report(cfg: dict, study: str, cell_dirs: Sequence[Path], results_out: Path,
                                 figures_out: Path) -> None:
    """Every figure of paper B's registry entry and the four tables, from the study's finished cells."""
    from wmaug.core.papers import paper

    r = StudyReport.of_cells(cfg, study, cell_dirs, results_out, figures_out, ANALYSIS_COLUMNS, paper="Paper B")
    _compute_curves(r)
    for name in paper("balanced_replay").figures:
        FIGURE_BUILDERS[name](r)
    r.write_tables(ANALYSIS_COLUMNS)
