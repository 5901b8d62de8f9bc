"""The verdicts of the papers' claims (``config/claims.yaml``, read by :mod:`wmaug.report.claims_file`) from the
regenerated results.

A claim is a list of checks; each check is one of :data:`CHECKS` over a per-run metric (:data:`METRICS`: one
value per seed of a cell, from the study's ``scores.csv`` or paper A's Fig 5 critic traces). The statistic of a
check is the IQM (or mean) over seeds, per task or pooled over tasks, with a 95% interval from rliable's
stratified bootstrap (:func:`wmaug.report.aggregate._interval`, seeded per claim, check and task). The verdict:

- ``supported``: the whole interval lies on the claimed side of the threshold;
- ``contradicted``: the whole interval lies on the other side;
- ``inconclusive``: the interval overlaps the threshold, or a side has fewer than ``min_seeds`` seeds;
- ``not run``: none of the check's cells were found.

Per-task checks combine their tasks by a quantifier (``all``, ``nearly_all``, ``most``, ``any``): supported
when enough tasks are supported to meet it, contradicted when too many are contradicted for it ever to be met,
inconclusive otherwise (a task not run counts as undecided). A claim combines its checks the same way with
``all``. Nothing here guesses: a missing cell never becomes a number.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from wmaug.core import config as C
from wmaug.core.papers import study_paper
# The claims file's model; its names are this module's too (callers read both as one API).
from wmaug.report.claims_file import (CHECKS, CRITIC_METRICS, INTERVALS, METRICS, QUANTIFIERS, VERDICTS,  # noqa: F401
                                      Check, Claim, Claims, ClaimsError, Side, load_claims, parse_claims)

log = logging.getLogger("wmaug.claims")

# How a check's interval is made (docs/claims.md, "Calibration"). "calibrated": the claim's false-verdict rate is held
# at ALPHA as a whole (Bonferroni over its m intervals, each at 1 - ALPHA / m), and each interval is Student's t
# around the estimate with the stratified bootstrap's standard error, that error scaled by sqrt(n / (n - 1)) for n runs
# (the bootstrap's own n-divisor; for a mean this is exactly the t interval). A percentile interval cannot be wider
# than the data's range, so at 3-5 seeds it undercovers whatever its level. "percentile": rliable's 95% percentile
# interval per check, unadjusted: the audit before 2026-12-04, kept to compare (benchmarks/claims_calibration.py).
ALPHA = 0.05


def _t_interval(func: Callable, mats: list[np.ndarray], reps: int, seed: int, key: tuple,
                m: int) -> tuple[float, float]:
    """The calibrated interval over (runs, tasks) matrices. The stratified bootstrap resamples runs within each task,
    so its variance carries each task's (n - 1) / n with n runs: undone by n / (n - 1); the t quantile has the
    within-task degrees of freedom, tasks x (n - 1), of the smaller side."""
    from scipy import stats

    from wmaug.report.aggregate import derive_seed

    point = float(func(*mats))
    n = min(mat.shape[0] for mat in mats)
    df = min(mat.shape[1] * (mat.shape[0] - 1) for mat in mats)
    rng = np.random.default_rng(derive_seed(seed, *key))
    se = math.sqrt(stratified_bootstrap_var(func, mats, reps, rng) * n / (n - 1))
    half = float(stats.t.ppf(1 - ALPHA / (2 * max(m, 1)), df)) * se
    return point - half, point + half


def stratified_bootstrap_var(func: Callable, mats: list[np.ndarray], reps: int, rng: np.random.Generator) -> float:
    """The variance of ``func`` over ``reps`` stratified bootstrap resamples: each (runs, tasks) matrix's runs drawn
    with replacement within each task, the matrices independently. This is the resampling of rliable's
    StratifiedBootstrap / StratifiedIndependentBootstrap (and arch's ``var``: divisor reps), drawn at once and
    evaluated by a statistic that takes a leading resample axis (tests/test_claims_calibration.py compares the two)."""
    samples = []
    for mat in mats:
        n, tasks = mat.shape
        idx = rng.integers(0, n, size=(reps, n, tasks))
        samples.append(np.take_along_axis(np.broadcast_to(mat, (reps, n, tasks)), idx, axis=1))
    return float(np.var(func(*samples)))


# --------------------------------------------------------------------------- the evidence at hand
@dataclass
class StudyEvidence:
    """One study's regenerated results: its scores table (None: not aggregated) and paper A's critic traces
    per (env, dataset)."""

    study: str
    scores: pd.DataFrame | None
    critic_traces: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)  # the configured main grid: default envs / datasets of a check
    figures: dict = field(default_factory=dict)  # figure name -> file (relative to the claims' folder)
    _cells: dict | None = field(default=None, init=False, repr=False, compare=False)  # (env, dataset, method) -> rows

    def online_rows(self, env: str, dataset: str, method: str) -> pd.DataFrame | None:
        """A cell's online rows, by seed then step (the table is grouped once: a claim reads hundreds of cells)."""
        if self._cells is None:
            online = self.scores[self.scores["phase"] == "online"].sort_values(["seed", "step"], kind="stable")
            self._cells = dict(iter(online.groupby(["env", "dataset", "method"], sort=False)))
        return self._cells.get((env, dataset, method))

    def runs(self, side: Side, env: str, dataset: str, metric: str, params: dict) -> np.ndarray:
        """One value of ``metric`` per seed (ascending seed ids) of the cell ``side`` on (env, dataset)."""
        if metric in CRITIC_METRICS:
            return _critic_runs(self.critic_traces.get((env, dataset)), side.method, metric, params)
        if self.scores is None:
            return np.empty(0)
        rows = self.online_rows(env, dataset, side.method)
        if rows is None or rows.empty:
            return np.empty(0)
        if side.column not in rows.columns:
            raise ClaimsError(f"{self.study}: the scores table has no column {side.column!r} "
                              f"(columns: {', '.join(map(str, rows.columns))})")
        # rows run by seed, then step: one slice per seed
        cuts = np.flatnonzero(np.diff(rows["seed"].to_numpy()) != 0) + 1
        steps = np.split(rows["step"].to_numpy(float), cuts)
        values = np.split(rows[side.column].to_numpy(float), cuts)
        return np.asarray([run_metric(s, v, metric, params) for s, v in zip(steps, values)], dtype=float)


def run_metric(steps: np.ndarray, values: np.ndarray, metric: str, params: dict) -> float:
    """One run's ``metric`` from its online curve (steps ascending, step 0 = the hand-off evaluation)."""
    keep = ~np.isnan(values)
    steps, values = steps[keep], values[keep]
    if not len(values):
        return float("nan")
    span = steps[-1] - steps[0]
    if metric == "final":
        return float(values[-1])
    if metric == "auc":
        if span <= 0:
            return float(values.mean())
        return float(np.sum(0.5 * (values[1:] + values[:-1]) * np.diff(steps)) / span)
    if metric == "best_until":
        return float(values[steps <= steps[0] + params["at"] * span].max())
    if metric == "dip":
        window = values[steps <= steps[0] + params["within"] * span]
        return float(values[0] - window.min())
    if metric == "late_mean":
        return float(values[steps >= steps[0] + params["from"] * span].mean())
    raise ValueError(f"run_metric: unknown metric {metric!r}")


def _critic_runs(trace: pd.DataFrame | None, method: str, metric: str, params: dict) -> np.ndarray:
    """Per seed: the critic's error to the return-to-go (critic_error), or its distance to the ``ref`` critic of
    the same seed (critic_gap), both over mean |G_t|; each seed's last ``tail`` steps left out (at most half)."""
    if trace is None:
        return np.empty(0)
    own = trace[trace["label"] == method]
    ref = trace[trace["label"] == params["ref"]] if metric == "critic_gap" else None
    out = []
    for seed, g in own.sort_values(["seed", "t"]).groupby("seed", sort=True):
        keep = len(g) - min(int(params["tail"]), len(g) // 2)
        g = g.iloc[:keep]
        scale = np.abs(g["return_to_go"].to_numpy(float)).mean()
        q = g["q_min"].to_numpy(float)
        if ref is None:
            other = g["return_to_go"].to_numpy(float)
        else:
            r = ref[ref["seed"] == seed].sort_values("t").iloc[:keep]
            if len(r) != len(g):
                continue  # the reference critic of this seed was not traced
            other = r["q_min"].to_numpy(float)
        out.append(np.abs(q - other).mean() / scale if scale > 0 else np.nan)
    return np.asarray(out, dtype=float)


# --------------------------------------------------------------------------- verdicts
def interval_verdict(op: str, threshold: float, lo: float, hi: float) -> str:
    """supported / contradicted / inconclusive of the claim ``statistic <op> threshold`` given its interval."""
    if op in (">", ">="):
        ok = lo > threshold if op == ">" else lo >= threshold
        bad = hi <= threshold if op == ">" else hi < threshold
    elif op in ("<", "<="):
        ok = hi < threshold if op == "<" else hi <= threshold
        bad = lo >= threshold if op == "<" else lo > threshold
    else:  # within +/- threshold
        ok = -threshold <= lo and hi <= threshold
        bad = lo > threshold or hi < -threshold
    return "supported" if ok else "contradicted" if bad else "inconclusive"


def combine(verdicts: Sequence[str], quantifier: str) -> str:
    """Several verdicts (tasks of a check, checks of a claim) -> one, under ``quantifier``: supported once enough
    are supported, contradicted once too many are contradicted for it ever to hold; ``not run`` if none ran."""
    n = len(verdicts)
    if not n or all(v == "not run" for v in verdicts):
        return "not run"
    need = 1 if quantifier == "any" else (n // 2 + 1 if quantifier == "most" else
                                         math.ceil(QUANTIFIERS[quantifier] * n - 1e-9))
    supported = sum(v == "supported" for v in verdicts)
    contradicted = sum(v == "contradicted" for v in verdicts)
    if supported >= need:
        return "supported"
    if n - contradicted < need:
        return "contradicted"
    return "inconclusive"


def _statistic(check: Check) -> Callable[..., np.ndarray]:
    """(..., runs, tasks) arrays of x (and y) -> the check's statistic per leading index (a float for plain
    matrices). IQM and mean pool a matrix's runs and tasks (rliable's aggregate_iqm / aggregate_mean); P(x > y) is
    the per-task probability averaged over tasks (rliable's probability_of_improvement)."""
    from wmaug.report.aggregate import iqm

    def estimate(a: np.ndarray) -> np.ndarray:
        pooled = a.reshape(*a.shape[:-2], -1)
        return iqm(pooled, axis=-1) if check.estimator == "iqm" else pooled.mean(axis=-1)

    if check.check == "level":
        return estimate
    if check.check == "difference":
        return lambda x, y: estimate(x) - estimate(y)

    def improvement_probability(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        diff = x[..., :, None, :] - y[..., None, :, :]  # (..., runs x, runs y, tasks)
        per_task = (diff > 0).mean(axis=(-3, -2)) + 0.5 * (diff == 0).mean(axis=(-3, -2))
        return per_task.mean(axis=-1)

    return improvement_probability


def _matrix(columns: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """Tasks' seed values -> (runs, tasks), keeping the lowest seed ids up to the smallest count."""
    n = min(len(c) for c in columns)
    return np.stack([c[:n] for c in columns], axis=1), n


def _fewest_seeds(est: dict) -> int:
    """The smaller seed count of an estimate's sides (one side: its own)."""
    return min(est["n_seeds_x"], est["n_seeds_y"] or est["n_seeds_x"])


def _estimate_with_interval(check: Check, xs: list[np.ndarray], ys: list[np.ndarray] | None, reps: int,
                            seed: int, key: tuple, interval: str = "percentile", m: int = 1) -> dict:
    from wmaug.report.aggregate import _interval

    mx, nx = _matrix(xs)
    mats = [mx]
    n_y = None
    if ys is not None:
        my, n_y = _matrix(ys)
        mats.append(my)
    func = _statistic(check)
    point = float(func(*mats))
    n = min(nx, n_y or nx)
    level = 1 - ALPHA / max(m, 1) if interval == "calibrated" else 0.95
    if n < 2 or reps < 1:
        lo = hi = point
    elif interval == "calibrated":
        lo, hi = _t_interval(func, mats, reps, seed, key, m)
    else:
        score = {"|".join(map(str, key)): mats[0] if ys is None else mats}
        p, ci = _interval(score, lambda *a: np.array([func(*a)]), reps, seed, key)
        point, lo, hi = float(p[0]), float(ci[0, 0]), float(ci[1, 0])
    return {"value": point, "lo": lo, "hi": hi, "n_seeds_x": nx, "n_seeds_y": n_y, "level": level}


def check_tasks(check: Check, grid: dict) -> list[tuple[str, str]]:
    """The (env, dataset) tasks a check is about: its own list, or envs x datasets (default: the study's grid)."""
    if check.tasks is not None:
        return list(check.tasks)
    envs = check.envs or tuple(grid.get("envs", ()))
    datasets = check.datasets or tuple(grid.get("datasets", ()))
    return [(e, d) for e in envs for d in datasets]


MAX_SEEDS = 1000  # beyond this many seeds per cell, "indistinguishable from the threshold"
POWER_Z = 0.8416  # the standard normal's 80% quantile: decided with 80% probability


def seeds_to_decide(est: dict, check: Check, m: int, interval: str, tasks: int = 1) -> int | None:
    """Seeds per cell that would decide an inconclusive estimate with 80% probability, if the observed effect and
    spread are the truth (a normal approximation): the smallest n with
        |estimate - threshold| >= (q(n) + z_0.8) * s / sqrt(n),
    s the per-run spread the interval implies, q(n) the interval's quantile at n runs. None when no n up to
    MAX_SEEDS does: the effect is indistinguishable from the threshold."""
    n_obs = _fewest_seeds(est)
    if n_obs < 2 or n_obs > MAX_SEEDS or est["hi"] <= est["lo"]:
        return None
    alpha = ALPHA / max(m, 1) if interval == "calibrated" else 0.05

    ns = np.arange(2, MAX_SEEDS + 1)
    quantile = _t_quantiles(alpha, tasks) if interval == "calibrated" else np.full(ns.shape, 1.96)  # at each n
    spread = (est["hi"] - est["lo"]) / (2 * quantile[n_obs - 2]) * math.sqrt(n_obs)  # one run's sd
    t = check.threshold
    v = est["value"]
    gap = abs(abs(v) - t) if check.op == "within" else abs(v - t)
    decided = np.flatnonzero((ns >= n_obs) & (gap >= (quantile + POWER_Z) * spread / np.sqrt(ns)))
    return int(ns[decided[0]]) if len(decided) else None


@functools.lru_cache(maxsize=64)
def _t_quantiles(alpha: float, tasks: int) -> np.ndarray:
    """The calibrated interval's t quantile for n = 2 ... MAX_SEEDS runs per cell (one scipy call, kept)."""
    from scipy import stats

    return stats.t.ppf(1 - alpha / 2, tasks * (np.arange(2, MAX_SEEDS + 1) - 1))


def _needed(est: dict, check: Check, m: int, interval: str, tasks: int, min_seeds: int) -> int | None:
    """Seeds to decide, at least min_seeds; None: the spread is unknown (one seed) or the effect indistinguishable
    from the threshold."""
    n = seeds_to_decide(est, check, m, interval, tasks)
    return None if n is None else max(n, min_seeds)


def intervals_in(claim: Claim, grid: dict) -> int:
    """m, the intervals a claim's verdict rests on: one per task of a per-task check, one per pooled check."""
    return sum(len(check_tasks(c, grid)) if c.scope == "per_task" else 1 for c in claim.checks)


def evaluate_check(check: Check, ev: StudyEvidence, min_seeds: int, reps: int, seed: int, key: tuple,
                   interval: str = "percentile", m: int = 1) -> dict:
    """A check's verdict with its evidence: per-task (or pooled) estimate, 95% interval and seed counts."""
    sides = [check.x] + ([check.y] if check.y is not None else [])
    rows, xs, ys, ran = [], [], [], []
    tasks = check_tasks(check, ev.grid)
    for env, ds in tasks:
        values = [ev.runs(s, env, s.dataset or ds, check.metric, check.params) for s in sides]
        values = [v[~np.isnan(v)] for v in values]
        label = {"env": env, "dataset": " vs ".join(dict.fromkeys(s.dataset or ds for s in sides))}
        lacking = [s.describe() for s, v in zip(sides, values) if not len(v)]
        if lacking:
            rows.append({**label, "verdict": "not run", "why": f"no finished cells of {', '.join(lacking)}"})
            continue
        ran.append(label)
        xs.append(values[0])
        if len(values) > 1:
            ys.append(values[1])
        if check.scope == "per_task":
            est = _estimate_with_interval(check, [values[0]], [values[1]] if len(values) > 1 else None, reps, seed,
                                          (*key, env, ds), interval, m)
            row = {**label, **est, **_verdict(check, est, min_seeds)}
            if row["verdict"] == "inconclusive":
                row["seeds_needed"] = _needed(est, check, m, interval, 1, min_seeds)
            rows.append(row)
    result = {"check": check.describe(), "scope": check.scope, "tasks": rows}
    if check.scope == "per_task":
        result["verdict"] = combine([r["verdict"] for r in rows], check.over_tasks)
        decided = [r for r in rows if r["verdict"] != "not run"]
        result["summary"] = ", ".join(f"{sum(r['verdict'] == v for r in rows)} {v}" for v in VERDICTS
                                      if any(r["verdict"] == v for r in rows)) + f" of {len(rows)} task(s)"
        if decided:
            result["n_seeds"] = min(_fewest_seeds(r) for r in decided)
        needed = [r["seeds_needed"] for r in rows if "seeds_needed" in r]
        if result["verdict"] == "inconclusive" and needed:
            # the most any of its undecided tasks needs; None if one of them cannot be decided
            result["seeds_needed"] = None if None in needed else max(needed)
        return result
    if not ran:
        result.update(verdict="not run", summary=f"none of {len(tasks)} task(s) ran")
        return result
    est = _estimate_with_interval(check, xs, ys if check.y is not None else None, reps, seed, key, interval, m)
    verdict = _verdict(check, est, min_seeds)
    missing = [r for r in rows if r["verdict"] == "not run"]
    if missing and verdict["verdict"] != "inconclusive":
        # a pooled statistic over fewer tasks than claimed is a different claim
        verdict = {"verdict": "inconclusive", "why": f"{len(missing)} of {len(tasks)} task(s) not run"}
    if verdict["verdict"] == "inconclusive" and not missing:
        result["seeds_needed"] = _needed(est, check, m, interval, len(xs), min_seeds)
    result.update(est, **verdict, n_seeds=_fewest_seeds(est),
                  summary=f"pooled over {len(ran)} of {len(tasks)} task(s)")
    return result


def _verdict(check: Check, est: dict, min_seeds: int) -> dict:
    n = _fewest_seeds(est)
    if n < min_seeds:
        return {"verdict": "inconclusive", "why": f"{n} seed(s) < min_seeds = {min_seeds}"}
    return {"verdict": interval_verdict(check.op, check.threshold, est["lo"], est["hi"])}


def evaluate_claims(claims: Claims, evidence: dict[str, StudyEvidence], *, scale: str, reps: int,
                    seed: int = 0) -> list[dict]:
    """Every claim's verdict. ``evidence`` maps a pipeline (wmaug, balanced_replay) to its study's results."""
    out = []
    for claim in claims.claims:
        ev = evidence.get(claim.pipeline)
        entry = {"id": claim.id, "paper": claim.paper, "figure": claim.figure, "says": claim.says, "scale": scale}
        if ev is None:
            out.append({**entry, "study": None, "figure_file": None, "verdict": "not run",
                        "why": f"no study of pipeline {claim.pipeline!r} in the config", "checks": []})
            continue
        m = intervals_in(claim, ev.grid)
        checks = [evaluate_check(c, ev, claims.min_seeds, reps, seed, (claim.id, i), claims.interval, m)
                  for i, c in enumerate(claim.checks)]
        verdict = combine([c["verdict"] for c in checks], "all")
        seeds = [c["n_seeds"] for c in checks if "n_seeds" in c]
        row = {**entry, "study": ev.study, "figure_file": ev.figures.get(claim.figure), "verdict": verdict,
               "n_seeds": min(seeds) if seeds else 0, "min_seeds": claims.min_seeds, "checks": checks}
        if verdict == "inconclusive":
            needed = [c["seeds_needed"] for c in checks if c["verdict"] == "inconclusive" and "seeds_needed" in c]
            if needed and len(needed) == sum(c["verdict"] == "inconclusive" for c in checks):
                row["seeds_needed"] = None if None in needed else max(needed)
        out.append(row)
    return out


# --------------------------------------------------------------------------- evidence from the results folders
def study_evidence(cfg: dict, study: str, figures_dir: Path) -> StudyEvidence:
    """A study's results as the report rule left them: ``<results_dir>/<study>/scores.csv`` and, for paper A,
    its Fig 5 critic traces; figure files by name (those present in ``figures_dir``)."""
    s = C.scale_cfg(cfg)
    path = Path(s["results_dir"]) / study / "scores.csv"
    if not path.is_file():
        raise ClaimsError(_missing_scores_message(cfg, [study]))
    scores = pd.read_csv(path)
    if scores.empty:
        scores = None
    elif set(scores["scale"].astype(str)) != {cfg["scale"]}:
        raise ClaimsError(f"{path}: scores of scale(s) {sorted(set(scores['scale'].astype(str)))}, the claims "
                          f"are evaluated for scale {cfg['scale']!r}")
    traces = {}
    paper = study_paper(cfg, study)
    if paper.world_model_analyses:
        for job in C.critic_trace_jobs(cfg, study):
            p = Path(C.critic_trace_path(cfg, study, job["env"], job["dataset"]))
            if p.is_file():
                traces[(job["env"], job["dataset"])] = pd.read_csv(p)
    figures = {name: f"{study}_{name}.png" for name in paper.figures
               if (Path(figures_dir) / f"{study}_{name}.png").is_file()}
    grid = {k: cfg["studies"][study][k] for k in ("envs", "datasets")}
    return StudyEvidence(study, scores, traces, grid, figures)


def _missing_scores_message(cfg: dict, studies: list[str]) -> str:
    """Without a study's scores table every claim would read "not run", which is not the problem: name the file
    and what makes it."""
    s = C.scale_cfg(cfg)
    parts = [f"{Path(s['results_dir']) / study / 'scores.csv'} (rule report_{cfg['studies'][study]['pipeline']})"
             for study in studies]
    return (f"scores table(s) not found: {'; '.join(parts)}. The claims read each study's table: make them with "
            f"`snakemake --cores 2 figures --config scale={cfg['scale']}` (or `wmaug report --study <study> ...`)")


def claim_inputs(cfg: dict) -> list[str]:
    """What the claims rule reads: each study's scores table and paper A's critic traces."""
    s = C.scale_cfg(cfg)
    paths = [f"{s['results_dir']}/{study}/scores.csv" for study in cfg["studies"]]
    for study, grid in cfg["studies"].items():
        if study_paper(cfg, study).world_model_analyses:
            paths += [C.critic_trace_path(cfg, study, j["env"], j["dataset"]) for j in C.critic_trace_jobs(cfg, study)]
    return paths


def build_claims(cfg: dict, claims_path: str | Path, out_dir: str | Path, only: list[str] | None = None,
                 claim_hours=None) -> list[dict]:
    """Evaluate every claim (or those `only` names) on the results at hand and write claims.json, claims.md and
    claims.rst to out_dir."""
    from wmaug.core.io import write_json, write_text
    from wmaug.report.claims_pages import claims_markdown, claims_rst

    claims = load_claims(claims_path)
    if only:
        claims = Claims(claims.min_seeds, tuple(c for c in claims.claims if c.id in only), claims.path)
    pipelines = {c.pipeline for c in claims.claims}
    studies = [study for study in cfg["studies"] if study_paper(cfg, study).pipeline in pipelines]
    out_dir = Path(out_dir)
    results_dir = Path(C.scale_cfg(cfg)["results_dir"])
    missing = [study for study in studies if not (results_dir / study / "scores.csv").is_file()]
    if missing:
        raise ClaimsError(_missing_scores_message(cfg, missing))
    evidence = {}
    for study in studies:
        evidence.setdefault(study_paper(cfg, study).pipeline, study_evidence(cfg, study, out_dir))
    s = C.scale_cfg(cfg)
    results = evaluate_claims(claims, evidence, scale=cfg["scale"], reps=int(s["bootstrap_reps"]))
    _add_seed_costs(cfg, results, claim_hours)
    doc = {"scale": cfg["scale"], "min_seeds": claims.min_seeds, "interval": claims.interval,
           "claims_file": str(claims_path),
           "config_hash": _config_hash(evidence), "claims": results}
    write_json(out_dir / "claims.json", _jsonable(doc))
    write_text(out_dir / "claims.md", claims_markdown(doc))
    write_text(out_dir / "claims.rst", claims_rst(doc))
    counts = {v: sum(r["verdict"] == v for r in results) for v in VERDICTS}
    log.info("claims (scale %s): %s", cfg["scale"], ", ".join(f"{n} {v}" for v, n in counts.items()))
    return results


def _add_seed_costs(cfg: dict, results: list[dict], claim_hours) -> None:
    """What the seeds that would decide each inconclusive claim cost at this scale: the claim's planned hours
    (`claim_hours`, from wmaug plan) per seed per cell, times the seeds needed."""
    for r in results:
        if r.get("seeds_needed") and claim_hours is not None:
            r["seeds_needed_core_hours"] = claim_hours(r["id"]) / C.study_seeds(cfg, r["study"]) * r["seeds_needed"]


def _config_hash(evidence: dict[str, StudyEvidence]) -> dict:
    out = {}
    for ev in evidence.values():
        if ev.scores is not None and "config_hash" in ev.scores.attrs:
            out[ev.study] = ev.scores.attrs["config_hash"]
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
