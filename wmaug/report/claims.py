"""The verdicts of the papers' claims (``config/claims.yaml``, read by :mod:`wmaug.report.claims_file`) from the
regenerated results.

A claim is a list of checks; each check is one of :data:`CHECKS` over a per-run metric (:data:`METRICS`: one
value per seed of a cell, from the study's ``scores.csv`` or paper A's Fig 5 critic traces). The statistic of a
check is the mean (or IQM) over seeds, per task or pooled over tasks. Each estimate gets one-sided t tests on either
side of the threshold (Welch's for a mean; an IQM's standard error from rliable's stratified bootstrap); a check
over several tasks combines them as its quantifier says (the verdicts section below, and docs/claims.md). The
verdict:

- ``supported``: the test for the claimed side rejects its null at ALPHA (a claim: every check supported);
- ``contradicted``: the test for the other side rejects (a claim: any check, each at ALPHA / k for k checks);
- ``inconclusive``: neither, or a side has fewer than ``min_seeds`` seeds, or a task was not run;
- ``not comparable``: the check's threshold is a number of the paper's budget and the scale is another;
- ``not run``: none of the check's cells were found.

Nothing here guesses: a missing cell never becomes a number.
"""

from __future__ import annotations

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

# The level of every test (docs/claims.md, "How a verdict is made"): 4%, so that a claim's false verdict stays under
# 5% with room to spare (at an exact boundary the rate equals the level; a simulation measures it with +/-1.4% error
# at 1,000 draws).
ALPHA = 0.04


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
    """Per seed: the critic's error to the return-to-go (critic_error), its signed bias (critic_bias), or its
    distance to the ``ref`` critic of the same seed (critic_gap), all over mean |G_t|; each seed's last ``tail``
    steps left out (at most half)."""
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
        if metric == "critic_bias":  # signed: below 0 the critic is conservative (Fig 5's "more conservative")
            out.append((q - g["return_to_go"].to_numpy(float)).mean() / scale if scale > 0 else np.nan)
            continue
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
# How a check is decided (docs/claims.md, "How a verdict is made"). Per task: the check's statistic (mean or IQM over
# seeds) minus its threshold, with its standard error (Welch's for a mean; the stratified bootstrap's, scaled by
# sqrt(n / (n - 1)), for an IQM) and Student's t, gives two one-sided p-values: for the claimed side of the
# threshold (support) and for the other (contradiction).
#   support of a check over T tasks: Stouffer's combination of the T support p-values at level ALPHA (the null: every
#     task on the threshold), and the point estimates on the claimed side on at least the quantifier's share of tasks
#     (`all`: 80%, see point_need), and no more tasks individually contradicted at ALPHA than the quantifier allows;
#   contradiction: at least u = T - need + 1 tasks on the wrong side, by the Bonferroni partial-conjunction test
#     (Benjamini & Heller 2008: (T - u + 1) x the u-th smallest contradiction p-value);
#   a pooled (`aggregate`) check: its one pooled estimate, t at tasks x (n - 1) degrees of freedom.
# A claim is supported when every check is (an intersection-union test: each at ALPHA gives the claim ALPHA, no
# correction), contradicted when any check is, each contradiction tested at ALPHA / k for k checks (a union).


def point_need(quantifier: str, n: int) -> int:
    """How many of n point estimates must lie on the claimed side: as many as the quantifier needs, except `all`,
    which asks 80% (nearly_all's share): at a true 1-SD effect on 12 tasks and 5 seeds, all 12 estimates on the
    claimed side happens only half the time."""
    return need_of("nearly_all" if quantifier == "all" else quantifier, n)


def need_of(quantifier: str, n: int) -> int:
    """How many of n tasks a quantifier needs: all n, 80% (nearly_all), more than half (most), one (any)."""
    if quantifier == "any":
        return 1
    if quantifier == "most":
        return n // 2 + 1
    return math.ceil(QUANTIFIERS[quantifier] * n - 1e-9)


def combine(verdicts: Sequence[str], quantifier: str) -> str:
    """Several verdicts (checks of a claim) -> one, under ``quantifier``: supported once enough are supported,
    contradicted once too many are contradicted for it ever to hold; ``not comparable`` when a check's threshold
    belongs to another budget and nothing contradicts it; ``not run`` if none ran."""
    n = len(verdicts)
    if not n or all(v == "not run" for v in verdicts):
        return "not run"
    need = need_of(quantifier, n)
    supported = sum(v == "supported" for v in verdicts)
    contradicted = sum(v == "contradicted" for v in verdicts)
    if supported >= need:
        return "supported"
    if n - contradicted < need:
        return "contradicted"
    if "not comparable" in verdicts and n - sum(v == "not comparable" for v in verdicts) < need:
        return "not comparable"
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


def _t_sf(t, df):
    """Student's t survival function (scipy's special function: the ufunc, without stats' per-call overhead)."""
    from scipy.special import stdtr

    return stdtr(df, -np.asarray(t, dtype=float))


def _norm_isf(p):
    from scipy.special import ndtri

    return -ndtri(np.asarray(p, dtype=float))


def one_sided_p(check: Check, value: float, se: float, df: float) -> tuple[float, float]:
    """(p of the claimed side, p of the other side) for one estimate: t = (estimate - threshold) / se at df.
    ``within``: the claimed side is inside +/- threshold (two one-sided tests, the larger p); the other side is
    outside it on either side (the smaller of two one-sided p-values, doubled)."""
    thr = check.threshold
    if se <= 0 or not math.isfinite(se):  # no spread: the point estimate decides
        se, df = 1e-300, max(df, 1.0)
    if check.op in (">", ">="):
        p = float(_t_sf((value - thr) / se, df))
        return p, 1.0 - p
    if check.op in ("<", "<="):
        p = float(_t_sf((thr - value) / se, df))
        return p, 1.0 - p
    inside = float(max(_t_sf((value + thr) / se, df), _t_sf((thr - value) / se, df)))
    outside = float(min(1.0, 2 * min(_t_sf((value - thr) / se, df), _t_sf((-thr - value) / se, df))))
    return inside, outside


def claimed_side_gap(check: Check, value: float) -> float:
    """How far an estimate lies on the claimed side of the threshold (negative: the other side)."""
    if check.op in (">", ">="):
        return value - check.threshold
    if check.op in ("<", "<="):
        return check.threshold - value
    return check.threshold - abs(value)


def _estimate(check: Check, xs: list[np.ndarray], ys: list[np.ndarray] | None, reps: int, seed: int,
              key: tuple) -> dict:
    """The check's statistic over (runs, tasks) matrices with its standard error and degrees of freedom (a mean:
    Welch's t test; an IQM or P(x > y): the stratified bootstrap's standard error scaled by n / (n - 1), the
    bootstrap's own n-divisor undone, at tasks x (n - 1) per side), both one-sided p-values and a 1 - 2 ALPHA
    interval (the two one-sided tests' bounds)."""
    from scipy.special import stdtrit

    from wmaug.report.aggregate import derive_seed

    mx, nx = _matrix(xs)
    mats, n_y = [mx], None
    if ys is not None:
        my, n_y = _matrix(ys)
        mats.append(my)
    func = _statistic(check)
    point = float(func(*mats))
    n = min(nx, n_y or nx)
    if check.estimator == "mean" and check.check != "improvement_probability":
        se, df = _welch(mats)
    else:
        # Welch's degrees of freedom at equal spreads: tasks x (n - 1) per side, summed over the sides
        df = float(sum(mat.shape[1] * (mat.shape[0] - 1) for mat in mats))
        if n < 2 or reps < 1:
            se = 0.0
        else:
            rng = np.random.default_rng(derive_seed(seed, *key))
            se = math.sqrt(stratified_bootstrap_var(func, mats, reps, rng) * n / (n - 1))
    half = float(stdtrit(max(df, 1.0), 1 - ALPHA)) * se
    # one run a side shows no spread: no test (nan, read as 1 wherever p-values combine)
    p_sup, p_con = one_sided_p(check, point, se, df) if n >= 2 else (float("nan"), float("nan"))
    return {"value": point, "lo": point - half, "hi": point + half, "se": se, "df": df, "n_seeds_x": nx,
            "n_seeds_y": n_y, "level": 1 - 2 * ALPHA, "p_support": p_sup, "p_contradict": p_con}


def _metric_key(check: Check, side: Side) -> tuple:
    name, params = check.side_metric(side)
    return name, tuple(sorted(params.items()))


def _mean_variances(check: Check, values: list[np.ndarray], se: float) -> list[float]:
    """Each side's share of a task estimate's variance: its mean's s^2 / n (the mean estimator), or an equal split
    of se^2 (an IQM or P(x > y), whose bootstrap gives only the total)."""
    if check.estimator == "mean" and check.check != "improvement_probability" and all(len(v) > 1 for v in values):
        return [float(v.var(ddof=1) / len(v)) for v in values]
    return [se**2 / len(values)] * len(values)


def _welch(mats: list[np.ndarray]) -> tuple[float, float]:
    """The standard error of a mean over (runs, tasks) matrices (a task's mean weighs 1 / tasks; a difference's
    sides add) and its Welch-Satterthwaite degrees of freedom: Student's t test, exact for normal runs."""
    parts, dfs = [], []
    for mat in mats:
        n, tasks = mat.shape
        if n < 2:
            return 0.0, 1.0
        parts.append(mat.var(axis=0, ddof=1) / n / tasks**2)  # per task: its mean's variance, weighted
        dfs.append(np.full(tasks, n - 1.0))
    v, d = np.concatenate(parts), np.concatenate(dfs)
    total = float(v.sum())
    if total <= 0:
        return 0.0, float(d.sum())
    return math.sqrt(total), total**2 / float((v**2 / d).sum())


def stouffer(ps: Sequence[float], corr_sum: float | None = None) -> float:
    """Stouffer's combination of one-sided p-values: the p of sum(z_i) / sqrt(T), z_i = Phi^-1(1 - p_i). Estimates
    that share a cell are correlated: ``corr_sum``, the sum of their correlation matrix (T when independent), is the
    variance of sum(z_i) then (Strube 1985)."""
    from scipy.special import ndtr

    z = _norm_isf(np.clip(np.nan_to_num(np.asarray(ps, dtype=float), nan=1.0), 1e-300, 1 - 1e-16))
    return float(ndtr(-z.sum() / math.sqrt(len(z) if corr_sum is None else corr_sum)))


def correlation_sum(rows: list[dict]) -> float:
    """The sum of the correlation matrix of a check's per-task estimates: two tasks whose estimates read the same
    cell (A7: random and medium-replay each against the same env's medium-expert run) covary by that cell mean's
    variance, with the sign of its side in each (x +, y -)."""
    total = 0.0
    for a in rows:
        for b in rows:
            if a is b:
                total += 1.0
                continue
            cov = sum(sa * sb * va for ka, sa, va in a["cells"] for kb, sb, _ in b["cells"] if ka == kb)
            if cov:
                total += cov / (a["se"] * b["se"]) if a["se"] > 0 and b["se"] > 0 else 0.0
    return total


def partial_conjunction(ps: Sequence[float], u: int) -> float:
    """The Bonferroni partial-conjunction p-value of "at least u of these nulls are false" (Benjamini & Heller 2008):
    (T - u + 1) x the u-th smallest p-value; 1 when fewer than u p-values."""
    ps = sorted(1.0 if math.isnan(p) else p for p in ps)
    if u < 1 or u > len(ps):
        return 1.0
    return min(1.0, (len(ps) - u + 1) * ps[u - 1])


def check_tasks(check: Check, grid: dict) -> list[tuple[str, str]]:
    """The (env, dataset) tasks a check is about: its own list, or envs x datasets (default: the study's grid)."""
    if check.tasks is not None:
        return list(check.tasks)
    envs = check.envs or tuple(grid.get("envs", ()))
    datasets = check.datasets or tuple(grid.get("datasets", ()))
    return [(e, d) for e in envs for d in datasets]


MAX_SEEDS = 1000  # beyond this many seeds per cell, "indistinguishable from the threshold"
POWER_Z = 0.8416  # the standard normal's 80% quantile: decided with 80% probability


def _t_deflation(dfs: np.ndarray, alpha: float) -> np.ndarray:
    """(z_(1-alpha) + z_0.8) / (t_(1-alpha, df) + t_(0.8, df)) per task: how much a shift in standard errors is worth
    less at df degrees of freedom than under a normal law (the usual approximation of the noncentral t's power,
    noncentrality = t_(1-alpha) + t_0.8, read as a deflated z)."""
    from scipy.special import stdtrit

    dfs = np.maximum(np.asarray(dfs, dtype=float), 1.0)
    return (float(_norm_isf(alpha)) + POWER_Z) / (stdtrit(dfs, 1 - alpha) + stdtrit(dfs, 0.8))


def detectable_shift(ses: Sequence[float], dfs: Sequence[float], alpha: float = ALPHA,
                     corr_sum: float | None = None) -> float | None:
    """The smallest shift beyond the threshold, on every task alike, that the check's test detects with 80%
    probability at these standard errors: Stouffer's statistic, sum_t kappa_t shift / se_t / sqrt(T), reaching
    z_(1-alpha) + z_0.8 (kappa: :func:`_t_deflation`; for one task this is the noncentral t's usual approximation);
    in the statistic's own units (normalised points for scores). None: no spread measured."""
    ses, dfs = np.asarray(ses, dtype=float), np.asarray(dfs, dtype=float)
    if not len(ses) or np.any(ses <= 0) or np.any(~np.isfinite(ses)):
        return None
    target = float(_norm_isf(alpha)) + POWER_Z
    spread = len(ses) if corr_sum is None else corr_sum
    return float(target * math.sqrt(spread) / np.sum(_t_deflation(dfs, alpha) / ses))


def seeds_to_decide(gap: float, ses: Sequence[float], dfs: Sequence[float], n_obs: int,
                    alpha: float = ALPHA, corr_sum: float | None = None) -> int | None:
    """Seeds per cell that would decide a check with 80% probability if the observed effect (``gap``, the mean
    distance of its estimates from the threshold) and spread were the truth: the smallest n >= n_obs at which the
    standard errors, shrunk by sqrt(n_obs / n) (their degrees of freedom grown by (n - 1) / (n_obs - 1)), make
    ``gap`` detectable. None when no n up to MAX_SEEDS does (the effect is indistinguishable from the threshold) or
    the spread is unknown (one seed)."""
    ses, dfs = np.asarray(ses, dtype=float), np.asarray(dfs, dtype=float)
    if n_obs < 2 or not len(ses) or np.any(ses <= 0) or gap == 0 or not math.isfinite(gap):
        return None
    target = float(_norm_isf(alpha)) + POWER_Z
    ns = np.arange(n_obs, MAX_SEEDS + 1, dtype=float)[:, None]  # every n at once: (n, tasks)
    kappa = _t_deflation(dfs[None, :] * (ns - 1) / (n_obs - 1), alpha)
    spread = len(ses) if corr_sum is None else corr_sum
    z = np.sum(kappa * abs(gap) / (ses[None, :] * np.sqrt(n_obs / ns)), axis=1) / math.sqrt(spread)
    decided = np.flatnonzero(z >= target)
    return int(ns[decided[0], 0]) if len(decided) else None


def evaluate_check(check: Check, ev: StudyEvidence, min_seeds: int, reps: int, seed: int, key: tuple,
                   alpha_contradict: float = ALPHA, comparable: bool = True) -> dict:
    """A check's verdict with its evidence: per-task (or pooled) estimates, one-sided p-values, 1 - 2 ALPHA (92%)
    intervals (the one-sided tests' bounds), the effect it could detect and, when inconclusive, the seeds that
    would decide it.
    ``alpha_contradict``: the level of its contradiction test (a claim of k checks: ALPHA / k); ``comparable``:
    False at a scale whose budget the check's threshold does not belong to."""
    sides = [check.x] + ([check.y] if check.y is not None else [])
    rows, xs, ys, ran = [], [], [], []
    tasks = check_tasks(check, ev.grid)
    for env, ds in tasks:
        values = [ev.runs(s, env, s.dataset or ds, *check.side_metric(s)) for s in sides]
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
            est = _estimate(check, [values[0]], [values[1]] if len(values) > 1 else None, reps, seed,
                            (*key, env, ds))
            cells = [((s.method, env, s.dataset or ds, s.column, *_metric_key(check, s)), sign, var)
                     for s, sign, var in zip(sides, (1, -1), _mean_variances(check, values, est["se"]))]
            rows.append({**label, **est, **_estimate_verdict(est, min_seeds, alpha_contradict), "cells": cells})
    result = {"check": check.describe(), "scope": check.scope, "tasks": rows}
    if not ran:
        result.update(verdict="not run", summary=f"none of {len(tasks)} task(s) ran")
        return result
    if check.scope == "per_task":
        decided = [r for r in rows if r["verdict"] != "not run"]
        result["n_seeds"] = min(_fewest_seeds(r) for r in decided)
        result.update(_per_task_verdict(check, decided, len(tasks), min_seeds, alpha_contradict))
        ses, dfs = [r["se"] for r in decided], [r["df"] for r in decided]
        gap = float(np.mean([claimed_side_gap(check, r["value"]) for r in decided]))
        corr_sum = result.get("correlation_sum")
        for r in rows:
            r.pop("cells", None)  # the audit's bookkeeping, not evidence
    else:
        est = _estimate(check, xs, ys if check.y is not None else None, reps, seed, key)
        result.update(est, n_seeds=_fewest_seeds(est), summary=f"pooled over {len(ran)} of {len(tasks)} task(s)")
        result.update(_estimate_verdict(est, min_seeds, alpha_contradict, len(tasks) - len(ran), len(tasks)))
        ses, dfs, gap = [est["se"]], [est["df"]], claimed_side_gap(check, est["value"])
        corr_sum = None
    result["detectable"] = detectable_shift(ses, dfs, corr_sum=corr_sum)
    if not comparable and result["verdict"] != "not run":
        result.update(verdict="not comparable",
                      why=f"its threshold ({check.threshold:g}) is a number of the paper's budget")
    elif result["verdict"] == "inconclusive" and result["n_seeds"] >= 2 and len(ran) == len(tasks):
        n = seeds_to_decide(gap, ses, dfs, result["n_seeds"], corr_sum=corr_sum)
        result["seeds_needed"] = None if n is None else max(n, min_seeds)
    return result


def _estimate_verdict(est: dict, min_seeds: int, alpha_contradict: float, missing: int = 0,
                      n_tasks: int = 1) -> dict:
    """The verdict of one estimate: a task's own reading (shown per task; a per-task check combines them) or a
    pooled check's. Its one-sided tests at ALPHA for the claimed side and at the check's contradiction level for the
    other; a pooled estimate over fewer tasks than claimed (`missing`) is a different claim."""
    n = _fewest_seeds(est)
    if n < min_seeds:
        return {"verdict": "inconclusive", "why": f"{n} seed(s) < min_seeds = {min_seeds}"}
    if missing:
        return {"verdict": "inconclusive", "why": f"{missing} of {n_tasks} task(s) not run"}
    if est["p_support"] <= ALPHA:
        return {"verdict": "supported"}
    if est["p_contradict"] <= alpha_contradict:
        return {"verdict": "contradicted"}
    return {"verdict": "inconclusive"}


def _per_task_verdict(check: Check, rows: list[dict], n_tasks: int, min_seeds: int, alpha_contradict: float) -> dict:
    """The verdict of a per-task check from its tasks' estimates (rows: those that ran; n_tasks: all it covers)."""
    need = need_of(check.over_tasks, n_tasks)
    few = min(_fewest_seeds(r) for r in rows)
    corr_sum = correlation_sum(rows)
    p_support = stouffer([r["p_support"] for r in rows], corr_sum)
    on_side = sum(claimed_side_gap(check, r["value"]) > 0 for r in rows)
    against = sum(r["p_contradict"] <= ALPHA for r in rows)
    p_contradict = partial_conjunction([r["p_contradict"] for r in rows], n_tasks - need + 1)
    test = f"no test under {min_seeds} seeds" if few < min_seeds else f"combined p = {p_support:.3g}"
    missing = f"; {n_tasks - len(rows)} of {n_tasks} task(s) not run" if len(rows) < n_tasks else ""
    out = {"p_support": p_support, "p_contradict": p_contradict, "on_claimed_side": on_side,
           "correlation_sum": corr_sum,
           "summary": f"{on_side} of {len(rows)} estimate(s) on the claimed side, {test}{missing}"}
    if few < min_seeds:
        return {**out, "verdict": "inconclusive", "why": f"{few} seed(s) < min_seeds = {min_seeds}"}
    if p_contradict <= alpha_contradict:
        return {**out, "verdict": "contradicted"}
    if len(rows) < n_tasks and check.over_tasks != "any":  # `any`: one task that ran can carry it
        return {**out, "verdict": "inconclusive", "why": f"{n_tasks - len(rows)} of {n_tasks} task(s) not run"}
    if p_support <= ALPHA and on_side >= point_need(check.over_tasks, n_tasks) and against <= n_tasks - need:
        return {**out, "verdict": "supported"}
    return {**out, "verdict": "inconclusive"}


def evaluate_claims(claims: Claims, evidence: dict[str, StudyEvidence], *, scale: str, reps: int,
                    seed: int = 0) -> list[dict]:
    """Every claim's verdict. ``evidence`` maps a pipeline (wmaug, balanced_replay) to its study's results."""
    out = []
    for claim in claims.claims:
        ev = evidence.get(claim.pipeline)
        entry = {"id": claim.id, "paper": claim.paper, "figure": claim.figure, "says": claim.says,
                 "quote": claim.quote, "where": claim.where, "detectable_sd": claim.detectable_sd, "scale": scale,
                 "source": claim.source}
        if ev is None:
            out.append({**entry, "study": None, "figure_file": None, "verdict": "not run",
                        "why": f"no study of pipeline {claim.pipeline!r} in the config", "checks": []})
            continue
        alpha_c = ALPHA / len(claim.checks)
        checks = [evaluate_check(c, ev, claims.min_seeds, reps, seed, (claim.id, i), alpha_c,
                                 comparable=scale == "paper" or not c.paper_budget)
                  for i, c in enumerate(claim.checks)]
        verdict = combine([c["verdict"] for c in checks], "all")
        seeds = [c["n_seeds"] for c in checks if "n_seeds" in c]
        row = {**entry, "study": ev.study, "figure_file": ev.figures.get(claim.figure), "verdict": verdict,
               "n_seeds": min(seeds) if seeds else 0, "min_seeds": claims.min_seeds, "checks": checks}
        if verdict == "inconclusive":
            undecided = [c for c in checks if c["verdict"] == "inconclusive"]
            if all("seeds_needed" in c for c in undecided):
                needed = [c["seeds_needed"] for c in undecided]
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
