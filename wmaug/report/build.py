"""One study's report: finished cells -> rliable tables -> the study's figures (what `rule report` runs)."""

from __future__ import annotations

import logging
from pathlib import Path

from wmaug import config as C
from wmaug.io import write_text
from wmaug.methods import METHODS
from wmaug.report.aggregate import aggregate_metrics, collect_scores, curve_intervals, probability_of_improvement
from wmaug.report.figures import plot_aggregate_metrics, plot_learning_curves

log = logging.getLogger("wmaug.report")

# The paired comparisons each study reports as probability of improvement (x over y).
COMPARISONS = {"wmaug": [("wm_td3bc_td3", "td3bc_td3"), ("wm_td3bc_td3", "td3")]}


FIGURES = {
    "wmaug": ["fig3", "aggregate"],
    "balanced_replay": ["fig1a", "fig1b", "fig1c", "fig3", "fig4a", "fig4b", "fig4c", "fig4d", "aggregate",
                        "appendix_cql_kept", "appendix_long_runs", "appendix_density_ratio"],
}


def figure_names(pipeline: str) -> list[str]:
    return FIGURES[pipeline]


def build_study_report(cfg: dict, study: str, cell_dirs: list[Path], results_out: Path, figures_out: Path) -> None:
    grid = cfg["studies"][study]
    if grid["pipeline"] == "balanced_replay":
        from wmaug.report.paper_b import build_balanced_replay_report

        return build_balanced_replay_report(cfg, study, cell_dirs, results_out, figures_out)
    reps = C.scale_cfg(cfg)["bootstrap_reps"]
    scale = cfg["scale"]
    scores = collect_scores(cell_dirs)
    log.info("%d finished cells, %d evaluation rows", scores[["env", "dataset", "method", "seed"]].drop_duplicates().shape[0], len(scores))
    intervals = curve_intervals(scores, phase="online", reps=reps, seed=0)
    metrics = aggregate_metrics(scores, phase="online", step="final", reps=reps, seed=0)
    pairs = [(x, y) for x, y in COMPARISONS.get(study, []) if {x, y} <= set(grid["methods"])]
    poi = None
    if pairs:
        import pandas as pd

        poi = pd.concat([probability_of_improvement(scores, x=x, y=y, reps=reps, seed=0) for x, y in pairs],
                        ignore_index=True)
    results_out.mkdir(parents=True, exist_ok=True)
    for name, table in (("scores", scores), ("curve_intervals", intervals), ("aggregate_metrics", metrics),
                        ("probability_of_improvement", poi)):
        write_text(results_out / f"{name}.csv", table.to_csv(index=False) if table is not None else "x,y,value\n")
    n_seeds = scores.groupby(["env", "dataset", "method"])["seed"].nunique()
    seeds = f"{n_seeds.min()}" if n_seeds.min() == n_seeds.max() else f"{n_seeds.min()}-{n_seeds.max()}"
    plot_learning_curves(
        intervals, figures_out / f"{study}_fig3", envs=grid["envs"], datasets=grid["datasets"], methods=grid["methods"],
        title=f"Paper A, Fig 3: online fine-tuning from {C.scale_cfg(cfg)['offline_samples']:,} offline transitions "
              f"({seeds} seeds, scale '{scale}')",
        estimator="mean", scale=scale,
    )
    plot_aggregate_metrics(
        metrics, poi, figures_out / f"{study}_aggregate", methods=grid["methods"],
        title=f"Paper A: final online normalised score across {len(grid['envs']) * len(grid['datasets'])} tasks "
              f"({seeds} seeds, scale '{scale}')",
        scale=scale,
    )
    log.info("report for %s written to %s and %s", study, results_out, figures_out)


assert all(m in METHODS for pairs in COMPARISONS.values() for pair in pairs for m in pair)
