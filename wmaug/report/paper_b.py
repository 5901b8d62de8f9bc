"""Paper B's report (study `balanced_replay`): every figure of PROTOCOL.md's "Paper B" section.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from wmaug import config as C
from wmaug.io import write_text
from wmaug.report.aggregate import (
    CURVE_COLUMNS,
    METRIC_COLUMNS,
    POI_COLUMNS,
    SCORE_COLUMNS,
    aggregate_metrics,
    collect_scores,
    curve_intervals,
    probability_of_improvement,
)
from wmaug.report.figures import (
    CURVE_PLOT_COLUMNS,
    METRIC_PLOT_COLUMNS,
    plot_aggregate_metrics,
    plot_curve_grid,
    plot_learning_curves,
    plot_note,
    save_figure,
    wrap_title,
)

log = logging.getLogger("wmaug.report")

#: curve.csv columns kept beside the scores (Fig 4a: offline_share; Fig 4b: auroc_*)
ANALYSIS_COLUMNS = ("raw_return_std", "offline_share", "auroc_ensemble", "auroc_single")
FIG1A_COLUMNS = ["source", "bin_left", "bin_right", "count", "density"]
AGG_TABLE_COLUMNS = ["block", "score"] + METRIC_COLUMNS
POI_TABLE_COLUMNS = ["block", "score"] + POI_COLUMNS
CURVE_TABLE_COLUMNS = ["quantity"] + CURVE_COLUMNS
RAW_RETURN_YLABEL = "average return\n(raw, undiscounted)"


def _note_title(paper_fig: str, what: str) -> str:
    return f"Paper B, {paper_fig}: {what}"


@dataclass
class _Report:
    cfg: dict
    study: str
    scores: pd.DataFrame | None
    figures_out: Path
    results_out: Path
    scale: str = ""
    reps: int = 0
    blocks: dict = field(default_factory=dict)        # at this scale (grid_subset applied)
    paper_blocks: dict = field(default_factory=dict)  # the configured grid, before any subset
    curves: dict = field(default_factory=dict)        # quantity -> curve intervals
    agg_rows: list = field(default_factory=list)
    poi_rows: list = field(default_factory=list)

    def __post_init__(self):
        self.scale = self.cfg["scale"]
        self.reps = int(C.scale_cfg(self.cfg)["bootstrap_reps"])
        self.blocks = C.grid_blocks(self.cfg, self.study)
        unsubset = {**self.cfg, "scales": {**self.cfg["scales"], self.scale: {
            k: v for k, v in C.scale_cfg(self.cfg).items() if k != "grid_subset"}}}
        self.paper_blocks = C.grid_blocks(unsubset, self.study)

    # ---- grid bookkeeping -------------------------------------------------------------------------
    def prefix(self, name: str) -> Path:
        return self.figures_out / f"{self.study}_{name}"

    def block_tasks(self, block: str, paper: bool = False) -> list[tuple[str, str]]:
        b = (self.paper_blocks if paper else self.blocks).get(block)
        return [] if b is None else [(e, d) for d in b["datasets"] for e in b["envs"]]

    def rows_of(self, methods: Sequence[str], tasks: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
        s = self.scores
        if s is None:
            return pd.DataFrame(columns=SCORE_COLUMNS)
        keep = s["method"].isin(list(methods))
        if tasks is not None:
            keep &= pd.Series(list(zip(s["env"], s["dataset"])), index=s.index).isin(set(tasks))
        return s[keep]

    def note(self, name: str, paper_fig: str, what: str, text: str,
             columns: Sequence[str] = CURVE_PLOT_COLUMNS) -> None:
        log.info("%s: %s", name, text)
        plot_note(self.prefix(name), title=_note_title(paper_fig, what), note=text, columns=columns,
                  scale=self.scale)

    def absent_note(self, block: str, methods: Sequence[str]) -> str | None:
        """Why a block's figure has nothing to draw at this scale, or None when it has data."""
        if block not in self.paper_blocks:
            return f"block '{block}' is not in the study's config"
        if not self.block_tasks(block):
            return (f"not run at scale '{self.scale}'\n(the scale's grid_subset leaves out "
                    + ", ".join(f"{e}-{d}" for e, d in self.block_tasks(block, paper=True)) + ")")
        own = self.paper_blocks[block]["methods"]  # the block's own cells, not the `ours` they are compared with
        if self.rows_of(own, self.block_tasks(block)).empty:
            return (f"no finished cells of {', '.join(own)}\non "
                    + ", ".join(f"{e}-{d}" for e, d in self.block_tasks(block)) + f" at scale '{self.scale}'")
        return None

    def scale_note(self, block: str) -> str:
        """A title line naming what of the paper's grid this scale leaves out ("" when nothing)."""
        here, paper = self.blocks[block], self.paper_blocks[block]
        left = {k: [x for x in paper[k] if x not in here[k]] for k in ("envs", "datasets")}
        parts = [f"{k[:-1] if len(v) == 1 else k} {', '.join(v)}" for k, v in left.items() if v]
        return f"\nnot run at scale '{self.scale}': {'; '.join(parts)}" if parts else ""

    # ---- intervals --------------------------------------------------------------------------------
    def compute_curves(self) -> None:
        """Curve intervals per quantity: scores of every cell; raw returns of Fig 1b/1c's cells;
        the analysis columns of `ours` (Fig 4a/4b)."""
        if self.scores is None:
            return
        raw = [self.rows_of(self.blocks[b]["methods"], self.block_tasks(b))
               for b in ("fig1b_sampling", "fig1c_q_init") if b in self.blocks]
        raw_cells = pd.concat(raw) if raw else self.scores.iloc[:0]
        wanted = [("normalized_score", self.scores), ("raw_return", raw_cells)]
        wanted += [(q, self.rows_of(["ours"])) for q in ("offline_share", "auroc_ensemble", "auroc_single")]
        for quantity, rows in wanted:
            rows = rows[rows[quantity].notna()] if len(rows) else rows
            if rows.empty:
                continue
            ci = curve_intervals(rows, phase="online", reps=self.reps, seed=0, value=quantity, missing="drop")
            self.curves[quantity] = ci.assign(quantity=quantity)

    def curve(self, quantity: str, methods: Sequence[str]) -> pd.DataFrame:
        ci = self.curves.get(quantity)
        if ci is None:
            return pd.DataFrame(columns=CURVE_TABLE_COLUMNS)
        out = ci[ci["method"].isin(list(methods))]
        out.attrs.update(ci.attrs)
        return out

    # ---- across-task aggregates -------------------------------------------------------------------
    def aggregate(self, block: str, methods: Sequence[str], tasks: Sequence[tuple[str, str]],
                  score: str) -> tuple[pd.DataFrame | None, list[tuple[str, str]]]:
        """aggregate_metrics over the tasks every method has cells of (seeds trimmed to a common
        count per method), recorded for aggregate_metrics.csv."""
        rows = self.rows_of(methods, tasks)
        have = [set(zip(g["env"], g["dataset"])) for _, g in rows.groupby("method")]
        loud = score == "final"  # one warning per block, not one per score
        if len(have) < len(methods) and loud:
            missing = sorted(set(methods) - set(rows["method"]))
            log.warning("%s: no cells of %s; aggregating the others", block, missing)
        common = sorted(set.intersection(*have)) if have else []
        if not common:
            return None, []
        if len(common) < len(set.union(*have)) and loud:
            log.warning("%s: aggregating the %d task(s) every method has: %s", block, len(common), common)
        rows = self.rows_of(methods, common)
        m = aggregate_metrics(rows, phase="online", step=score, reps=self.reps, seed=0, unequal_seeds="trim")
        self.agg_rows.append(m.assign(block=block, score=score)[AGG_TABLE_COLUMNS])
        return m, common

    def poi(self, block: str, x: str, ys: Sequence[str], tasks: Sequence[tuple[str, str]],
            score: str) -> pd.DataFrame | None:
        out = []
        for y in ys:
            rows = self.rows_of([x, y], tasks)
            if rows.empty or set(rows["method"]) != {x, y}:
                continue
            both = set.intersection(*[set(zip(g["env"], g["dataset"])) for _, g in rows.groupby("method")])
            if not both:
                continue
            p = probability_of_improvement(self.rows_of([x, y], sorted(both)), x=x, y=y, reps=self.reps, seed=0,
                                           phase="online", step=score, unequal_seeds="trim")
            self.poi_rows.append(p.assign(block=block, score=score)[POI_TABLE_COLUMNS])
            out.append(p)
        return pd.concat(out, ignore_index=True) if out else None

    # ---- one kind of figure: per-task curves of a block's methods ---------------------------------
    def task_curves(self, name: str, paper_fig: str, what: str, block: str, lines: Sequence[str], *,
                    quantity: str = "normalized_score", labels: dict | None = None, by_dataset_cols: bool = False,
                    side: bool = False, **options) -> None:
        """Curves of ``lines`` (methods) on every task of ``block``: datasets x envs panels (or, with
        ``by_dataset_cols``, envs x datasets); ``side`` adds IQM panels of the final score and of the
        normalised AUC over the block's tasks."""
        why = self.absent_note(block, lines)
        if why:
            return self.note(name, paper_fig, what, why)
        b = self.blocks[block]  # the panels: this scale's tasks of the block
        tasks = self.block_tasks(block)
        if by_dataset_cols:
            grid = dict(rows=b["envs"], cols=b["datasets"], row_key="env", col_key="dataset",
                        panel_title=lambda r, c: f"{r} \u00b7 {c}")
        else:
            grid = dict(rows=b["datasets"], cols=b["envs"])
        side_panels, side_titles = None, None
        if side:
            side_panels, side_titles = self.side_aggregates(name, lines, tasks)
        if quantity == "raw_return":
            options = dict(ylabel=RAW_RETURN_YLABEL, reference=None, **options)
        plot_curve_grid(self.curve(quantity, lines), self.prefix(name), lines=list(lines),
                        title=f"Paper B, {paper_fig}: {what}{self.scale_note(block)}", scale=self.scale,
                        labels=labels, side_panels=side_panels, side_titles=side_titles, **grid, **options)
        log.info("%s written", name)

    def side_aggregates(self, name: str, methods: Sequence[str], tasks) -> tuple[pd.DataFrame | None, dict]:
        panels, titles = [], {}
        for score in ("final", "auc"):
            m, common = self.aggregate(name, methods, tasks, score)
            if m is None:
                continue
            iqm = m[m["metric"] == "iqm"]
            panel = f"iqm_{score}"
            panels.append(pd.DataFrame({"panel": panel, "line": iqm["method"], "value": iqm["value"],
                                        "lo": iqm["lo"], "hi": iqm["hi"]}))
            seeds = f"{iqm['n_seeds'].min()}" if iqm["n_seeds"].nunique() == 1 else \
                f"{iqm['n_seeds'].min()}\u2013{iqm['n_seeds'].max()}"
            titles[panel] = (f"IQM across {len(common)} task(s) of the\n"
                             + ("final normalised score" if score == "final"
                                else "normalised AUC (mean score over the run)")
                             + f"\n{seeds} seed(s) per task, 95% CI")
        return (pd.concat(panels, ignore_index=True) if panels else None), titles


# --------------------------------------------------------------------------- figures
def _fig1a(r: _Report) -> None:
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


def _fig1b(r: _Report) -> None:
    r.task_curves("fig1b", "Fig 1b", "a CQL agent fine-tuned with SAC on online samples only vs uniform over "
                  "offline + online (average return)", "fig1b_sampling", ["sac_ft_online_only", "sac_ft"],
                  quantity="raw_return", labels={"sac_ft_online_only": "Online only", "sac_ft": "Uniform"},
                  by_dataset_cols=True)


def _fig1c(r: _Report) -> None:
    r.task_curves("fig1c", "Fig 1c", "pessimistic (CQL) vs neutral (FQE) Q initialisation, one agent, balanced "
                  "replay (average return)", "fig1c_q_init", ["ours_e1", "fqe_e1"], quantity="raw_return",
                  labels={"ours_e1": "Pessimistic (CQL)", "fqe_e1": "Neutral (FQE)"}, by_dataset_cols=True)


def _fig3(r: _Report) -> None:
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


def _fig4a(r: _Report) -> None:
    name, paper_fig = "fig4a", "Fig 4a"
    what = "share of offline samples in the balanced-replay batches (ours), random vs medium-expert"
    datasets = [d for d in ("random", "medium-expert") if d in r.blocks["main"]["datasets"]]
    envs = r.blocks["main"]["envs"]
    if not datasets or not envs:
        return r.note(name, paper_fig, what, f"random / medium-expert not run at scale '{r.scale}'")
    ci = r.curve("offline_share", ["ours"])
    ci = ci[ci["dataset"].isin(datasets)]
    if ci.empty:
        return r.note(name, paper_fig, what, f"no finished 'ours' cells with offline_share on random / "
                      f"medium-expert at scale '{r.scale}'")
    plot_curve_grid(ci, r.prefix(name), rows=["ours"], cols=envs, lines=datasets, row_key="method",
                    col_key="env", line_key="dataset", title=f"Paper B, {paper_fig}: {what}{r.scale_note('main')}",
                    scale=r.scale,
                    labels={d: d for d in datasets}, colors={"random": "#1f77b4", "medium-expert": "#ff7f0e"},
                    ylabel="offline share of replay batches\n(mean since the previous evaluation)",
                    reference=None, ylim=(-0.02, 1.02), panel_title=lambda _row, col: col)
    log.info("%s written", name)


def _fig4b(r: _Report) -> None:
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


def _fig4c(r: _Report) -> None:
    r.task_curves("fig4c", "Fig 4c (and appendix Fig 11, per task)", "balanced replay vs uniform vs online-only "
                  "sampling", "fig4c_sampling", ["ours", "ours_uniform", "ours_online_only"],
                  labels={"ours": "Balanced replay (ours)", "ours_uniform": "Uniform",
                          "ours_online_only": "Online only"}, side=True)


def _fig4d(r: _Report) -> None:
    r.task_curves("fig4d", "Fig 4d", "ensemble size N = 1, 2, 5 (balanced replay, CQL-initialised)",
                  "fig4d_ensemble_size", ["ours_e1", "ours_e2", "ours"],
                  labels={"ours_e1": "N = 1", "ours_e2": "N = 2", "ours": "N = 5 (ours)"}, side=True)


def _aggregate(r: _Report) -> None:
    name, paper_fig = "aggregate", "aggregate (claims B1, B2)"
    methods = r.paper_blocks["main"]["methods"]
    what = "across-task aggregates of the main grid"
    why = r.absent_note("main", methods)
    if why:
        return r.note(name, paper_fig, what, why, METRIC_PLOT_COLUMNS)
    tasks = r.block_tasks("main")
    final, common = r.aggregate("main", methods, tasks, "final")
    auc, _ = r.aggregate("main", methods, tasks, "auc")
    if final is None:
        return r.note(name, paper_fig, what, "no task has cells of every main method", METRIC_PLOT_COLUMNS)
    baselines = [m for m in methods if m != "ours"]
    poi = r.poi("main", "ours", baselines, tasks, "final") if "ours" in methods else None
    if "ours" in methods:
        r.poi("main", "ours", baselines, tasks, "auc")  # the table only
    metrics = pd.concat([final, auc.assign(metric="auc_" + auc["metric"])], ignore_index=True)
    plot_aggregate_metrics(
        metrics, poi, r.prefix(name), methods=methods,
        title=f"Paper B: final online normalised score (IQM, median, mean, optimality gap) and normalised area under "
              f"the curve (AUC, mean score over the run: sample efficiency) across {len(common)} task(s); "
              f"P(ours > baseline) on the final score{r.scale_note('main')}",
        scale=r.scale, metric_names=["iqm", "median", "mean", "optimality_gap", "auc_iqm", "auc_mean"],
        where="online fine-tuning")
    log.info("%s written", name)


def _appendix_cql_kept(r: _Report) -> None:
    r.task_curves("appendix_cql_kept", "appendix", "CQL regulariser removed (ours) vs kept during fine-tuning",
                  "cql_kept", ["ours", "ours_keep_cql"],
                  labels={"ours": "CQL regulariser removed (ours)", "ours_keep_cql": "CQL regulariser kept"})


def _appendix_long_runs(r: _Report) -> None:
    long = C.scale_cfg(r.cfg).get("finetune_long_steps")
    r.task_curves("appendix_long_runs", "appendix",
                  f"long halfcheetah runs ({long:,} steps), CQL- vs FQE-initialised ensemble" if long else
                  "long halfcheetah runs, CQL- vs FQE-initialised ensemble",
                  "long_runs", ["ours_long", "fqe_long"], by_dataset_cols=True,
                  labels={"ours_long": "Ours (CQL-init ensemble)", "fqe_long": "FQE-init ensemble"})


def _appendix_density_ratio(r: _Report) -> None:
    r.task_curves("appendix_density_ratio", "appendix", "density ratio d_on / d_off (ours) vs the alternative "
                  "d_on / d_(off+on)", "density_ratio_alt", ["ours", "ours_alt_ratio"],
                  labels={"ours": "w = d_on / d_off (ours)", "ours_alt_ratio": "w = d_on / d_(off+on)"})


FIGURE_BUILDERS: dict[str, Callable[[_Report], None]] = {
    "fig1a": _fig1a, "fig1b": _fig1b, "fig1c": _fig1c, "fig3": _fig3, "fig4a": _fig4a, "fig4b": _fig4b,
    "fig4c": _fig4c, "fig4d": _fig4d, "aggregate": _aggregate, "appendix_cql_kept": _appendix_cql_kept,
    "appendix_long_runs": _appendix_long_runs, "appendix_density_ratio": _appendix_density_ratio,
}


# --------------------------------------------------------------------------- entry point
def _read_scores(cfg: dict, study: str, cell_dirs: Sequence[Path]) -> pd.DataFrame | None:
    if not cell_dirs:
        log.warning("no finished cells given: every figure is a note")
        return None
    scores = collect_scores(cell_dirs, extra_columns=ANALYSIS_COLUMNS)
    if scores.attrs["scale"] != cfg["scale"]:
        raise ValueError(f"cells are of scale {scores.attrs['scale']!r}, the report is for scale {cfg['scale']!r}")
    studies = set(scores["study"])
    if studies != {study}:
        raise ValueError(f"cells of other studies given to the {study} report: {sorted(studies - {study})}")
    return scores


def build_balanced_replay_report(cfg: dict, study: str, cell_dirs: Sequence[Path], results_out: Path,
                                 figures_out: Path) -> None:
    """Every figure of FIGURES['balanced_replay'] and the four tables, from the study's finished cells."""
    from wmaug.report.build import FIGURES

    results_out, figures_out = Path(results_out), Path(figures_out)
    scores = _read_scores(cfg, study, [Path(d) for d in cell_dirs])
    r = _Report(cfg, study, scores, figures_out, results_out)
    if scores is not None:
        log.info("%d finished cells, %d evaluation rows, scale %s, config %s",
                 scores[["env", "dataset", "method", "seed"]].drop_duplicates().shape[0], len(scores),
                 scores.attrs["scale"], scores.attrs["config_hash"])
    r.compute_curves()
    for name in FIGURES["balanced_replay"]:
        FIGURE_BUILDERS[name](r)
    results_out.mkdir(parents=True, exist_ok=True)
    curves = (pd.concat(list(r.curves.values()), ignore_index=True)[CURVE_TABLE_COLUMNS] if r.curves
              else pd.DataFrame(columns=CURVE_TABLE_COLUMNS))
    tables = {
        "scores": scores if scores is not None else pd.DataFrame(columns=SCORE_COLUMNS + list(ANALYSIS_COLUMNS)),
        "curve_intervals": curves,
        "aggregate_metrics": (pd.concat(r.agg_rows, ignore_index=True) if r.agg_rows
                              else pd.DataFrame(columns=AGG_TABLE_COLUMNS)),
        "probability_of_improvement": (pd.concat(r.poi_rows, ignore_index=True) if r.poi_rows
                                       else pd.DataFrame(columns=POI_TABLE_COLUMNS)),
    }
    for table_name, table in tables.items():
        write_text(results_out / f"{table_name}.csv", table.to_csv(index=False))
    log.info("report for %s written to %s and %s", study, results_out, figures_out)
