"""One study's report: finished cells -> rliable tables -> the study's figures (what the report rules run)."""

from __future__ import annotations

from pathlib import Path

FIGURES = {
    "wmaug": ["fig3", "aggregate", "fig4", "fig5", "sweep_rate", "sweep_rollout", "sweep_data", "world_model_error",
              "stochastic"],
    "balanced_replay": ["fig1a", "fig1b", "fig1c", "fig3", "fig4a", "fig4b", "fig4c", "fig4d", "aggregate",
                        "appendix_cql_kept", "appendix_long_runs", "appendix_density_ratio"],
}


def figure_names(pipeline: str) -> list[str]:
    return FIGURES[pipeline]


def build_study_report(cfg: dict, study: str, cell_dirs: list[Path], results_out: Path, figures_out: Path) -> None:
    if cfg["studies"][study]["pipeline"] == "balanced_replay":
        from wmaug.report.paper_b import build_balanced_replay_report as build
    else:
        from wmaug.report.paper_a import build_wmaug_report as build
    build(cfg, study, cell_dirs, Path(results_out), Path(figures_out))
