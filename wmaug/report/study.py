"""What every study report shares: the grid blocks at this scale and in the config, curve intervals and
across-task aggregates with rliable's 95% stratified-bootstrap intervals, per-task curve figures, and
figures that say why they have nothing to draw."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from wmaug.core import config as C
from wmaug.core.errors import ReportInputError
from wmaug.core.io import write_text
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
from wmaug.report.figures import CURVE_PLOT_COLUMNS, METRIC_PLOT_COLUMNS, plot_aggregate_metrics, plot_curve_grid, plot_note

log = logging.getLogger("wmaug.report")

AGG_TABLE_COLUMNS = ["block", "score"] + METRIC_COLUMNS
POI_TABLE_COLUMNS = ["block", "score"] + POI_COLUMNS
CURVE_TABLE_COLUMNS = ["quantity"] + CURVE_COLUMNS
RAW_RETURN_YLABEL = "average return\n(raw, undiscounted)"


@dataclass
class StudyReport:
    """One study's figures: its grid blocks at this scale and in the config, its scores, the curve
    intervals and across-task aggregates the figures draw (kept for the report's tables)."""

    cfg: dict
    study: str
    scores: pd.DataFrame | None
    figures_out: Path
    results_out: Path
    paper: str = "Paper B"  # titles: "<paper>, <figure>: ..."
    scale: str = ""
    reps: int = 0
    blocks: dict = field(default_factory=dict)        # at this scale (grid_subset applied)
    paper_blocks: dict = field(default_factory=dict)  # the configured grid, before any subset
    curves: dict = field(default_factory=dict)        # quantity -> curve intervals
    agg_rows: list = field(default_factory=list)
    poi_rows: list = field(default_factory=list)

    @classmethod
    def of_cells(cls, cfg: dict, study: str, cell_dirs: Sequence[Path], results_out: Path, figures_out: Path,
                 extra_columns: Sequence[str] = (), paper: str = "Paper B") -> "StudyReport":
        """The report over the study's finished cells (all of one scale and one study)."""
        scores = None
        if not cell_dirs:
            log.warning("no finished cells given: every figure is a note")
        else:
            scores = collect_scores([Path(d) for d in cell_dirs], extra_columns=extra_columns)
            if scores.attrs["scale"] != cfg["scale"]:
                raise ReportInputError(f"cells are of scale {scores.attrs['scale']!r}, the report is for scale "
                                 f"{cfg['scale']!r}")
            studies = set(scores["study"])
            if studies != {study}:
                raise ReportInputError(f"cells of other studies given to the {study} report: {sorted(studies - {study})}")
            log.info("%d finished cells, %d evaluation rows, scale %s, config %s",
                     scores[["env", "dataset", "method", "seed"]].drop_duplicates().shape[0], len(scores),
                     scores.attrs["scale"], scores.attrs["config_hash"])
        return cls(cfg, study, scores, Path(figures_out), Path(results_out), paper=paper)

    def write_tables(self, extra_columns: Sequence[str] = ()) -> None:
        """scores, curve_intervals, aggregate_metrics and probability_of_improvement as CSVs in results_out."""
        self.results_out.mkdir(parents=True, exist_ok=True)
        curves = (pd.concat(list(self.curves.values()), ignore_index=True)[CURVE_TABLE_COLUMNS] if self.curves
                  else pd.DataFrame(columns=CURVE_TABLE_COLUMNS))
        tables = {
            "scores": self.scores if self.scores is not None else pd.DataFrame(columns=SCORE_COLUMNS + list(extra_columns)),
            "curve_intervals": curves,
            "aggregate_metrics": (pd.concat(self.agg_rows, ignore_index=True) if self.agg_rows
                                  else pd.DataFrame(columns=AGG_TABLE_COLUMNS)),
            "probability_of_improvement": (pd.concat(self.poi_rows, ignore_index=True) if self.poi_rows
                                           else pd.DataFrame(columns=POI_TABLE_COLUMNS)),
        }
        for name, table in tables.items():
            write_text(self.results_out / f"{name}.csv", table.to_csv(index=False))
        log.info("report for %s written to %s and %s", self.study, self.results_out, self.figures_out)

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
        plot_note(self.prefix(name), title=f"{self.paper}, {paper_fig}: {what}", note=text, columns=columns,
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
    def add_curves(self, quantity: str, rows: pd.DataFrame, phase: str = "online") -> None:
        """Curve intervals of `quantity` over the given evaluation rows (rows without it are dropped)."""
        rows = rows[rows[quantity].notna()] if len(rows) else rows
        if rows.empty:
            return
        ci = curve_intervals(rows, phase=phase, reps=self.reps, seed=0, value=quantity, missing="drop")
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
                        title=f"{self.paper}, {paper_fig}: {what}{self.scale_note(block)}", scale=self.scale,
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

    # ---- one kind of figure: the main grid's across-task aggregates -------------------------------------
    def main_aggregates(self, name: str, paper_fig: str, pairs: Sequence[tuple[str, Sequence[str]]],
                        title: Callable[[int], str]) -> None:
        """IQM, median, mean and optimality gap of the final score and of the normalised AUC across the main
        grid's tasks, and P(x > y) for each (x, ys) of ``pairs`` (drawn for the final score; the AUC's goes to
        the table). ``title(n_tasks)`` is the figure's title."""
        methods = self.paper_blocks["main"]["methods"]
        what = "across-task aggregates of the main grid"
        why = self.absent_note("main", methods)
        if why:
            return self.note(name, paper_fig, what, why, METRIC_PLOT_COLUMNS)
        tasks = self.block_tasks("main")
        final, common = self.aggregate("main", methods, tasks, "final")
        auc, _ = self.aggregate("main", methods, tasks, "auc")
        if final is None:
            return self.note(name, paper_fig, what, "no task has cells of every main method", METRIC_PLOT_COLUMNS)
        drawn = []
        for x, ys in pairs:
            ys = [y for y in ys if y in methods]
            if x in methods and ys:
                drawn.append(self.poi("main", x, ys, tasks, "final"))
                self.poi("main", x, ys, tasks, "auc")  # the table only
        drawn = [p for p in drawn if p is not None]
        metrics = pd.concat([final, auc.assign(metric="auc_" + auc["metric"])], ignore_index=True)
        plot_aggregate_metrics(
            metrics, pd.concat(drawn, ignore_index=True) if drawn else None, self.prefix(name), methods=methods,
            title=title(len(common)) + self.scale_note("main"), scale=self.scale,
            metric_names=["iqm", "median", "mean", "optimality_gap", "auc_iqm", "auc_mean"],
            where="online fine-tuning")
        log.info("%s written", name)
