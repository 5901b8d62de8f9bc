"""The registry of the papers the harness reproduces. A study names its paper by `pipeline` in config.yaml; everything
that differs between the papers is looked up here, so no code branches on a pipeline's name. Each paper's code is
named as "module:attribute" and imported only when used: the core (and the Snakefile) read this registry without
importing either paper, and a paper's package imports the core, never the other way round.

Adding a paper: a package beside paper_a/ and paper_b/ with its methods, its cell run and its report, then one
entry below."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    pipeline: str  # the value of `studies.<study>.pipeline`
    claim_prefix: str  # claims.yaml's `paper:` ("A": claim ids A1, A2, ...)
    title: str  # how reports and figure pages name it
    figures: tuple[str, ...]  # the figures a study's report draws, in order (rules declare them as outputs)
    cell_spec: str  # "module:function" (config, cell, recipe) -> the spec a cell's job runs
    cell_inputs: str  # "module:function" (config, spec) -> the files a cell's job reads (its rule's inputs)
    cell_minutes: str  # "module:function" (config, spec) -> minutes to ask a cluster for
    make_run: str  # "module:function" (specs, out_dirs, device, progress) -> (run, the runs of its seeds)
    build_report: str  # "module:function" (cfg, study, cell_dirs, results_out, figures_out)
    sized_samples: bool  # its methods train on a per-cell offline sample, sized from the scale, that must fit
    seed_groups: bool  # several seeds of a cell may share a job (`seeds_per_job`)
    world_model_analyses: bool  # its report reads the world models' held-out errors and Fig 5's critic traces
    likelihood_shift: bool  # its report reads Fig 1a's likelihood shift (halfcheetah runs it)

    def load(self, field: str):
        """The paper's code that `field` names, imported now."""
        module, name = getattr(self, field).split(":")
        return getattr(importlib.import_module(module), name)


PAPERS = {
    "wmaug": Paper(
        pipeline="wmaug", claim_prefix="A", title="Paper A: world-model augmentation",
        figures=("fig3", "aggregate", "fig4", "fig5", "sweep_rate", "sweep_rollout", "sweep_data", "world_model_error",
                 "stochastic", "controls"),
        cell_spec="wmaug.core.config:paper_a_cell_spec", cell_inputs="wmaug.core.config:paper_a_cell_inputs",
        cell_minutes="wmaug.core.config:paper_a_cell_minutes", make_run="wmaug.paper_a.pipeline:make_run", build_report="wmaug.paper_a.report:build_wmaug_report",
        sized_samples=True, seed_groups=True, world_model_analyses=True, likelihood_shift=False),
    "balanced_replay": Paper(
        pipeline="balanced_replay", claim_prefix="B", title="Paper B: balanced replay",
        figures=("fig1a", "fig1b", "fig1c", "fig3", "fig4a", "fig4b", "fig4c", "fig4d", "aggregate",
                 "appendix_cql_kept", "appendix_long_runs", "appendix_density_ratio"),
        cell_spec="wmaug.core.config:finetune_cell_spec", cell_inputs="wmaug.core.config:finetune_cell_inputs",
        cell_minutes="wmaug.core.config:finetune_cell_minutes", make_run="wmaug.paper_b.finetune:make_run", build_report="wmaug.paper_b.report:build_balanced_replay_report",
        sized_samples=False, seed_groups=False, world_model_analyses=False, likelihood_shift=True),
}
DEFAULT_PIPELINE = "wmaug"  # a study that names no pipeline
BY_CLAIM_PREFIX = {p.claim_prefix: p for p in PAPERS.values()}


def paper(pipeline: str) -> Paper:
    return PAPERS[pipeline]


def study_paper(config: dict, study: str) -> Paper:
    return PAPERS[config["studies"][study].get("pipeline", DEFAULT_PIPELINE)]
