"""Paper A's report (study `wmaug`): Fig 3, the across-task aggregate, Fig 4, Fig 5 and one figure per open
question of the reviewer's summary (augmentation rate, k-step rollouts, dataset size, world-model error,
stochastic dynamics).

Inputs: the study's finished cells, and beside them (results_out/analysis/) the tables the `world_model_error`
and `critic_trace` rules write. Every figure ``figures_out/{study}_{name}.png|pdf|csv`` is written whatever
ran: a figure whose cells are not in this scale's grid, or not finished, is a note saying so.
Curves and bars carry 95% stratified-bootstrap intervals (rliable; seeds resampled within each task).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from wmaug.core import config as C
from wmaug.core.methods import FIG5_CRITICS, METHODS
from wmaug.report.figures import plot_curve_grid, plot_learning_curves
from wmaug.report.study import StudyReport

log = logging.getLogger("wmaug.report")

# The paired comparisons reported as probability of improvement (x over y) on the main grid.
COMPARISONS = [("wm_td3bc_td3", "td3bc_td3"), ("wm_td3bc_td3", "td3")]

# Fig 4: panel -> (with augmentation, without augmentation); "both random" (td3) is drawn in every panel.
FIG4_PANELS = {
    "(a) actor only": ("wm_actor_only", "td3bc_actor_only"),
    "(b) critic only": ("wm_critic_only", "td3bc_critic_only"),
    "(c) actor and critic": ("wm_td3bc_td3", "td3bc_td3"),
}
FIG4_LINES = {"with": "with augmentation", "without": "without augmentation", "random": "both random (TD3)"}
# paper A's Fig 4 draws "both policy and actor random initialized, indicated in red": TD3 from scratch is red here too
FIG4_COLORS = {"with": "#2ca02c", "without": "#1f77b4", "random": "#d62728"}


def _fig3(r: StudyReport) -> None:
    name, paper_fig = "fig3", "Fig 3"
    methods = r.paper_blocks["main"]["methods"]
    n = C.scale_cfg(r.cfg)["offline_samples"]
    what = f"online fine-tuning from {n:,} offline transitions, normalised score vs online steps"
    why = r.absent_note("main", methods)
    if why:
        return r.note(name, paper_fig, what, why)
    b = r.blocks["main"]
    plot_learning_curves(r.curve("normalized_score", methods), r.prefix(name), envs=b["envs"], datasets=b["datasets"],
                         methods=methods, title=f"Paper A, {paper_fig}: {what}{r.scale_note('main')}", scale=r.scale)


def _aggregate(r: StudyReport) -> None:
    r.main_aggregates(
        "aggregate", "aggregate (claims A2, A3)", [(x, [y]) for x, y in COMPARISONS],
        lambda n: f"Paper A: final online normalised score (IQM, median, mean, optimality gap) and normalised area "
                  f"under the curve (AUC) across {n} task(s); P(X > Y) on the final score")


def _fig4(r: StudyReport) -> None:
    name, paper_fig, block = "fig4", "Fig 4", "fig4_init"
    what = "what the hand-off carries: actor only, critic only or both, with and without augmentation"
    own = [m for pair in FIG4_PANELS.values() for m in pair if m in METHODS]
    why = r.absent_note(block, r.paper_blocks.get(block, {}).get("methods", own))
    if why:
        return r.note(name, paper_fig, what, why)
    ci = r.curve("normalized_score", own + ["td3"])
    ci = ci[[(e, d) in set(r.block_tasks(block)) for e, d in zip(ci["env"], ci["dataset"])]]
    parts = []
    for panel, (with_aug, without_aug) in FIG4_PANELS.items():
        for line, method in (("with", with_aug), ("without", without_aug), ("random", "td3")):
            parts.append(ci[ci["method"] == method].assign(init=panel, line=line))
    table = pd.concat(parts, ignore_index=True)
    table["task"] = table["env"] + " \u00b7 " + table["dataset"]
    tasks = [f"{e} \u00b7 {d}" for e, d in r.block_tasks(block)]
    plot_curve_grid(table, r.prefix(name), rows=tasks, cols=list(FIG4_PANELS), lines=list(FIG4_LINES),
                    row_key="task", col_key="init", line_key="line", labels=FIG4_LINES, colors=FIG4_COLORS,
                    title=f"Paper A, {paper_fig}: {what}{r.scale_note(block)}", scale=r.scale,
                    panel_title=lambda row, col: f"{col} \u00b7 {row}")


def _fig5(r: StudyReport) -> None:
    from wmaug.paper_a.critic_trace_figure import plot_critic_trace

    name, paper_fig = "fig5", "Fig 5"
    what = "critic value Q(s, a) along one expert episode vs its discounted return-to-go"
    jobs = C.critic_trace_jobs(r.cfg, r.study)
    if not jobs:
        why = r.absent_note(C.FIG5_BLOCK, r.paper_blocks.get(C.FIG5_BLOCK, {}).get("methods", []))
        return r.note(name, paper_fig, what, why or "no Fig 5 task at this scale")
    paths = [Path(C.critic_trace_path(r.cfg, r.study, j["env"], j["dataset"])) for j in jobs]
    found = [p for p in paths if p.is_file()]
    if not found:
        return r.note(name, paper_fig, what, "no critic traces: the critic_trace rule has not run\n("
                      + ", ".join(str(p) for p in paths) + ")")
    table = pd.concat([pd.read_csv(p) for p in found], ignore_index=True)
    s = C.scale_cfg(r.cfg)
    sizes = {"wm_td3bc_td3": s["offline_samples"], "td3bc_td3": s["offline_samples"],
             "td3bc_data_x5": C.sample_size(s, METHODS["td3bc_data_x5"])}
    labels = {m: label + (f" ({sizes[m]:,} transitions)" if m in sizes else
                          f" ({s['online_long_steps']:,} steps)") for m, _, label in FIG5_CRITICS}
    tasks = ", ".join(f"{j['env']}-{j['dataset']}" for j in jobs)
    plot_critic_trace(table, r.prefix(name), labels=labels, order=[m for m, _, _ in FIG5_CRITICS],
                      title=f"Paper A, {paper_fig}: {what} ({tasks})", scale=r.scale)


def _size_label(r: StudyReport, method: str) -> str:
    n = C.sample_size(C.scale_cfg(r.cfg), METHODS[method])
    return f"{'with' if METHODS[method].augment else 'without'} aug., {n:,} transitions"


def _sweep_rate(r: StudyReport) -> None:
    lines = ["wm_rate0", "wm_rate25", "wm_td3bc_td3", "wm_rate75", "wm_rate100"]
    r.task_curves("sweep_rate", "open question", "augmentation rate 0 / 0.25 / 0.5 / 0.75 / 1 (0 = TD3+BC)",
                  "sweep_rate", lines, labels={m: f"rate {METHODS[m].rate if METHODS[m].rate is not None else 0.5:g}"
                                               + (" (paper)" if m == "wm_td3bc_td3" else "") for m in lines},
                  side=True)


def _sweep_rollout(r: StudyReport) -> None:
    lines = ["td3bc_td3", "wm_td3bc_td3", "wm_k2", "wm_k3", "wm_k5"]
    labels = {m: f"k = {METHODS[m].rollout_steps}" + (" (paper)" if m == "wm_td3bc_td3" else "") for m in lines[1:]}
    r.task_curves("sweep_rollout", "open question", "k-step latent rollouts (model-based value expansion), "
                  "k = 1, 2, 3, 5", "sweep_rollout", lines, labels={"td3bc_td3": "no augmentation", **labels},
                  side=True)


def _sweep_data(r: StudyReport) -> None:
    lines = ["wm_data_half", "wm_td3bc_td3", "wm_data_x5", "wm_data_x10",
             "td3bc_data_half", "td3bc_td3", "td3bc_data_x5", "td3bc_data_x10"]
    # with augmentation in reds, without in blues, darker for more data
    shades = {"wm": ["#fcae91", "#fb6a4a", "#de2d26", "#a50f15"], "td3bc": ["#bdd7e7", "#6baed6", "#3182bd", "#08519c"]}
    colors = {m: shades["wm" if METHODS[m].augment else "td3bc"][i % 4] for i, m in enumerate(lines)}
    r.task_curves("sweep_data", "open question", "offline sample size, with and without augmentation",
                  "sweep_data", lines, labels={m: _size_label(r, m) for m in lines}, colors=colors, side=True)


def _stochastic(r: StudyReport) -> None:
    lines = ["wm_td3bc_td3", "wm_mean_td3bc_td3", "td3bc_td3", "td3"]
    r.task_curves("stochastic", "open question", "deterministic vs noisy-action dynamics: sampled vs mean "
                  "world-model predictions", "stochastic", lines,
                  labels={"wm_td3bc_td3": "WM, sampled z (paper)", "wm_mean_td3bc_td3": "WM, z = mean",
                          "td3bc_td3": "no augmentation", "td3": "TD3 from scratch"})


CONTROLS = ["td3bc_td3", "wm_td3bc_td3", "wm_noise_td3bc_td3", "wm_copy_td3bc_td3", "wm_converged_td3bc_td3"]


def _error_ratios(r: StudyReport, env: str, dataset: str, converged: bool) -> str:
    """The task's world models' held-out error against copying the state (z-scored MSE ratio), mean over the seeds
    whose error tables exist, and (converged) their mean epochs; '?' where none has run."""
    ratios, epochs = [], []
    for seed in range(C.study_seeds(r.cfg, r.study)):
        path = Path(C.world_model_error_paths(r.cfg, r.study, env, dataset, seed, converged)["summary"])
        if path.is_file():
            summary = pd.read_csv(path).iloc[0]
            ratios.append(float(summary["ratio_normalized"]))
            if converged and "epochs" in summary:
                epochs.append(float(summary["epochs"]))
    if not ratios:
        return "?"
    return f"{np.mean(ratios):.2f}" + (f" ({np.mean(epochs):.0f} ep.)" if epochs else "")


def _controls(r: StudyReport) -> None:
    """The harness's controls: is augmentation's gain the world model's knowledge, or noise on the targets?"""
    epochs = C.scale_cfg(r.cfg)["world_model_epochs"]

    def title(dataset: str, env: str) -> str:
        return (f"{env} \u00b7 {dataset}\nheld-out error / copying s:\n{_error_ratios(r, env, dataset, False)} "
                f"({epochs} ep.), converged {_error_ratios(r, env, dataset, True)}")

    r.task_curves("controls", "harness control", "is the gain the world model's? noise at the model's error, "
                  "copying s, a converged model", "controls", CONTROLS,
                  labels={"td3bc_td3": "no augmentation", "wm_td3bc_td3": "world model (paper)",
                          "wm_noise_td3bc_td3": "s' + noise at the model's error", "wm_copy_td3bc_td3": "copy: s' := s",
                          "wm_converged_td3bc_td3": "converged world model"},
                  side=True, panel_title=title)


def _world_model_error(r: StudyReport) -> None:
    from wmaug.paper_a.world_model_error_figure import plot_world_model_error

    name, paper_fig = "world_model_error", "open question"
    what = "the world models' held-out one-step error, and where in the state space it is largest"
    jobs = C.world_model_error_jobs(r.cfg, r.study)
    if not jobs:
        return r.note(name, paper_fig, what, "the main grid has no augmenting method: no world models")
    tables: dict[str, list[pd.DataFrame]] = {}
    missing = []
    for job in jobs:
        for table, path in C.world_model_error_paths(r.cfg, r.study, job["env"], job["dataset"], job["seed"]).items():
            if Path(path).is_file():
                tables.setdefault(table, []).append(pd.read_csv(path))
            else:
                missing.append(path)
    if not tables:
        return r.note(name, paper_fig, what, f"no world-model error tables ({len(missing)} missing): the "
                      "world_model_error rule has not run")
    if missing:
        log.warning("world_model_error: %d tables missing, e.g. %s", len(missing), missing[0])
    plot_world_model_error({k: pd.concat(v, ignore_index=True) for k, v in tables.items()}, r.prefix(name),
                           title=f"Paper A, {paper_fig}: {what}", scale=r.scale)


FIGURE_BUILDERS: dict[str, Callable[[StudyReport], None]] = {
    "fig3": _fig3, "aggregate": _aggregate, "fig4": _fig4, "fig5": _fig5, "sweep_rate": _sweep_rate,
    "sweep_rollout": _sweep_rollout, "sweep_data": _sweep_data, "world_model_error": _world_model_error,
    "stochastic": _stochastic, "controls": _controls,
}


def build_wmaug_report(cfg: dict, study: str, cell_dirs: Sequence[Path], results_out: Path,
                       figures_out: Path) -> None:
    """Every figure of paper A's registry entry and the four tables, from the study's finished cells."""
    from wmaug.core.papers import paper

    r = StudyReport.of_cells(cfg, study, cell_dirs, results_out, figures_out, paper="Paper A")
    if r.scores is not None:
        r.add_curves("normalized_score", r.scores)
    for name in paper("wmaug").figures:
        FIGURE_BUILDERS[name](r)
    r.write_tables()
