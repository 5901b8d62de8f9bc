"""One study's report: finished cells -> rliable tables -> the study's figures (what the report rules run). Which
figures a study draws, and the code that draws them, is its paper's (`wmaug.core.papers`)."""

from __future__ import annotations

from pathlib import Path

from wmaug.core.papers import study_paper


def build_study_report(cfg: dict, study: str, cell_dirs: list[Path], results_out: Path, figures_out: Path) -> None:
    build = study_paper(cfg, study).load("build_report")
    build(cfg, study, cell_dirs, Path(results_out), Path(figures_out))
