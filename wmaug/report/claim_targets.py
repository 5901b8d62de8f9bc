"""A claim as a unit of work: the cells its checks read (what `snakemake claim_<ID>` and `wmaug plan --claim` run
and count) and its audit on its own (`wmaug claim`): a report of only those cells, then its verdict page."""

from __future__ import annotations

from pathlib import Path

from wmaug.core import config as C
from wmaug.core.envs import unknown_name_message
from wmaug.report.claims import Claim, ClaimsError, build_claims, load_claims
from wmaug.report.plan import cells_needed, claim_hours


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
    return build_claims(sub, claims_path, out_dir, only=[claim_id], claim_hours=claim_hours(cfg, claims_path))[0]
