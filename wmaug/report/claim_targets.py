"""A claim as a unit of work: the cells its checks read (what `snakemake claim_<ID>` and `wmaug plan --claim` run
and count) and its audit on its own (`wmaug claim`): a report of only those cells, then its verdict page."""

from __future__ import annotations

from pathlib import Path

from wmaug.core import config as C
from wmaug.core.envs import unknown_name_message
from wmaug.core.methods import FIG5_CRITICS
from wmaug.core.papers import study_paper
from wmaug.report.claims import CRITIC_METRICS, Claim, ClaimsError, build_claims, check_tasks, load_claims


def cells_needed(cfg: dict, claim: Claim) -> tuple[set[tuple], set[tuple]]:
    """What a claim's checks read, as the config's grid has it: cells (study, env, dataset, method), every seed of
    each, and Fig 5's critic traces (study, env, dataset) for the critic metrics. A task the grid lacks at this scale
    is left out (the check will say it had no runs)."""
    cells, traces = set(), set()
    for study, grid in cfg["studies"].items():
        if study_paper(cfg, study).pipeline != claim.pipeline:
            continue
        have = {(c["env"], c["dataset"], c["method"]) for c in C.grid_cells(cfg, study)}
        main = {k: grid[k] for k in ("envs", "datasets")}
        for check in claim.checks:
            for env, dataset in check_tasks(check, main):
                if check.metric in CRITIC_METRICS:
                    traces.add((study, env, dataset))
                    continue
                for side in (check.x, check.y):
                    if side is not None and (env, side.dataset or dataset, side.method) in have:
                        cells.add((study, env, side.dataset or dataset, side.method))
        for study_, env, dataset in [t for t in traces if t[0] == study]:
            for job in C.critic_trace_jobs(cfg, study):
                if (job["env"], job["dataset"]) == (env, dataset):
                    cells |= {(study, env, dataset, m) for m in {m for m, _, _ in FIG5_CRITICS}
                              if (env, dataset, m) in have}
    return cells, traces


def claim_cell_inputs(cfg: dict, claim: Claim) -> list[str]:
    """What `snakemake claim_<ID>` waits for: the summary of every seed of each cell the claim reads, and the critic
    traces of its critic metrics."""
    cells, traces = cells_needed(cfg, claim)
    out = [f"{C.cell_dir(cfg, study, env, dataset, method, seed)}/summary.json"
           for study, env, dataset, method in sorted(cells) for seed in range(C.study_seeds(cfg, study))]
    return out + [C.critic_trace_path(cfg, study, env, dataset) for study, env, dataset in sorted(traces)]


def audit_claim(cfg: dict, claims_path: str | Path, claim_id: str, out_dir: str | Path) -> dict:
    """One claim on its own: each study it reads is reported from only the cells the claim needs (tables under
    <results_dir>/claims/<ID>/, figures in out_dir), then the claim alone is evaluated into out_dir's claims.md /
    .json / .rst."""
    import copy
    import shutil

    from wmaug.report.build import build_study_report

    claims = {c.id: c for c in load_claims(claims_path).claims}
    if claim_id not in claims:
        raise ClaimsError(unknown_name_message("claim", claim_id, list(claims), str(claims_path)))
    claim = claims[claim_id]
    cells, traces = cells_needed(cfg, claim)
    s = C.scale_cfg(cfg)
    sub = copy.deepcopy(cfg)  # the same config, its results read from the claim's own folder
    sub["scales"][cfg["scale"]]["results_dir"] = str(Path(s["results_dir"]) / "claims" / claim_id)
    out_dir = Path(out_dir)
    for study in sorted({c[0] for c in cells}):
        dirs = [Path(C.cell_dir(cfg, study, env, dataset, method, seed)) for st, env, dataset, method in sorted(cells)
                if st == study for seed in range(C.study_seeds(cfg, study))]
        build_study_report(cfg, study, dirs, Path(C.scale_cfg(sub)["results_dir"]) / study, out_dir)
    for study, env, dataset in traces:
        target = Path(C.critic_trace_path(sub, study, env, dataset))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(C.critic_trace_path(cfg, study, env, dataset), target)
    return build_claims(sub, claims_path, out_dir, only=[claim_id])[0]
