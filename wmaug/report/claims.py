"""The papers' claims as data (``config/claims.yaml``) and their verdicts from the regenerated results.

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
from wmaug.core.envs import DATASET_KINDS
from wmaug.core.envs import ENV_SPECS, unknown_name_message
from wmaug.core.errors import InputError
from wmaug.core.papers import BY_CLAIM_PREFIX, study_paper
from wmaug.core.methods import METHODS

log = logging.getLogger("wmaug.claims")

VERDICTS = ("supported", "contradicted", "inconclusive", "not run")
CHECKS = ("level", "difference", "improvement_probability")
OPS = (">", ">=", "<", "<=", "within")
SCOPES = ("per_task", "aggregate")
ESTIMATORS = ("iqm", "mean")
#: share of the tasks a quantifier needs (any: one task)
QUANTIFIERS = {"all": 1.0, "nearly_all": 0.8, "most": 0.5, "any": 0.0}
#: metric -> (its parameters with defaults, what it measures)
METRICS = {
    "final": ({}, "last online evaluation"),
    "auc": ({}, "mean normalised score over the online run (trapezoid)"),
    "best_until": ({"at": None}, "best evaluation within the first {at:.0%} of the online run"),
    "dip": ({"within": None}, "hand-off score minus the lowest within the first {within:.0%} of the online run"),
    "late_mean": ({"from": 0.0}, "mean over the online run after its first {from:.0%}"),
    "critic_error": ({"tail": 0}, "mean |min(Q1, Q2) - G_t| / mean |G_t| along the Fig 5 expert episode"),
    "critic_gap": ({"ref": None, "tail": 0}, "mean |Q - Q_{ref}| / mean |G_t| along the Fig 5 expert episode"),
}
CRITIC_METRICS = ("critic_error", "critic_gap")
SCORE_COLUMN = "normalized_score"
CLAIM_KEYS = ("id", "paper", "figure", "says", "checks")
CHECK_KEYS = ("check", "x", "y", "metric", "op", "threshold", "scope", "over_tasks", "envs", "datasets", "tasks",
              "estimator")
SIDE_KEYS = ("method", "dataset", "column")


# rliable (via wmaug.report.aggregate) is imported where intervals are computed, not here: the Snakefile imports
# this module to check the claims file, and every Snakemake start (also each cluster job's) would pay ~1 s for it.


class ClaimsError(InputError):
    """A claims file that cannot be used: bad YAML, unknown names, missing or ill-typed keys."""


# --------------------------------------------------------------------------- the claims file
@dataclass(frozen=True)
class Side:
    method: str
    dataset: str | None = None  # replaces the task's dataset (B5: random vs medium-expert of one env)
    column: str = SCORE_COLUMN  # a curve column (late_mean), e.g. paper B's offline_share

    def describe(self) -> str:
        extra = [v for v in (self.dataset, None if self.column == SCORE_COLUMN else self.column) if v]
        return self.method + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class Check:
    check: str
    x: Side
    metric: str
    params: dict
    op: str
    threshold: float
    y: Side | None = None
    scope: str = "per_task"
    over_tasks: str = "all"
    estimator: str = "iqm"
    envs: tuple | None = None
    datasets: tuple | None = None
    tasks: tuple | None = None  # explicit (env, dataset) pairs instead of envs x datasets

    def metric_text(self) -> str:
        return METRICS[self.metric][1].format(**self.params)

    def describe(self) -> str:
        stat = {"level": f"{self.estimator.upper()} {self.metric}[{self.x.describe()}]",
                "difference": f"{self.estimator.upper()} {self.metric}[{self.x.describe()}] - "
                              f"{self.estimator.upper()} {self.metric}[{self.y.describe() if self.y else ''}]",
                "improvement_probability": f"P({self.x.describe()} > {self.y.describe() if self.y else ''}) "
                                           f"on {self.metric}"}[self.check]
        op = f"within +/-{self.threshold:g}" if self.op == "within" else f"{self.op} {self.threshold:g}"
        where = ("pooled over tasks" if self.scope == "aggregate" else
                 f"per task, {self.over_tasks.replace('_', ' ')} of them")
        return f"{stat} {op} ({where}; {self.metric}: {self.metric_text()})"


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    figure: str
    says: str
    checks: tuple[Check, ...]

    @property
    def pipeline(self) -> str:
        return BY_CLAIM_PREFIX[self.paper].pipeline


@dataclass(frozen=True)
class Claims:
    min_seeds: int
    claims: tuple[Claim, ...]
    path: str = ""
    interval: str = "calibrated"  # or "percentile": rliable's 95% percentile interval per check, unadjusted


# How a check's interval is made (docs/claims.md, "Calibration"). "calibrated": the claim's false-verdict rate is held
# at ALPHA as a whole (Bonferroni over its m intervals, each at 1 - ALPHA / m), and each interval is Student's t
# around the estimate with the stratified bootstrap's standard error, that error scaled by sqrt(n / (n - 1)) for n runs
# (the bootstrap's own n-divisor; for a mean this is exactly the t interval). A percentile interval cannot be wider
# than the data's range, so at 3-5 seeds it undercovers whatever its level. "percentile": rliable's 95% percentile
# interval per check, unadjusted: the audit before 2026-12-04, kept to compare (benchmarks/claims_calibration.py).
INTERVALS = ("calibrated", "percentile")
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


def _name(kind: str, value, valid: Sequence[str], where: str) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ClaimsError(unknown_name_message(kind, value, list(valid), where))
    return value


def _keys(obj, valid: Sequence[str], where: str, required: Sequence[str] = ()) -> dict:
    if not isinstance(obj, dict):
        raise ClaimsError(f"{where}: expected a mapping, got {type(obj).__name__} {obj!r}")
    for k in obj:
        _name("key", k, valid, where)
    missing = [k for k in required if k not in obj]
    if missing:
        raise ClaimsError(f"{where}: missing key(s) {', '.join(missing)}")
    return obj


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ClaimsError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _share(value, where: str) -> float:
    v = _number(value, where)
    if not 0.0 <= v <= 1.0:
        raise ClaimsError(f"{where}: expected a share of the online run in [0, 1], got {value!r}")
    return v


def _side(obj, pipeline: str, where: str) -> Side:
    obj = _keys(obj, SIDE_KEYS, where, required=("method",))
    methods = [m for m, r in METHODS.items() if r.pipeline == pipeline]
    method = _name("method", obj["method"], methods, f"{where}.method")
    dataset = obj.get("dataset")
    if dataset is not None:
        _name("dataset", dataset, DATASET_KINDS, f"{where}.dataset")
    column = obj.get("column", SCORE_COLUMN)
    if not isinstance(column, str) or not column:
        raise ClaimsError(f"{where}.column: expected a column name, got {column!r}")
    return Side(method, dataset, column)


def _metric(obj, where: str) -> tuple[str, dict]:
    obj = _keys(obj, ["name", *{p for ps, _ in METRICS.values() for p in ps}], where, required=("name",))
    name = _name("metric", obj["name"], list(METRICS), f"{where}.name")
    defaults = METRICS[name][0]
    params = {}
    for k, v in obj.items():
        if k == "name":
            continue
        if k not in defaults:
            raise ClaimsError(unknown_name_message(f"parameter of metric {name!r}", k, list(defaults), where))
        params[k] = v
    for k, default in defaults.items():
        if k not in params:
            if default is None:
                raise ClaimsError(f"{where}: metric {name!r} needs {k!r}")
            params[k] = default
    for k in ("at", "within", "from"):
        if k in params:
            params[k] = _share(params[k], f"{where}.{k}")
    if "tail" in params:
        if isinstance(params["tail"], bool) or not isinstance(params["tail"], int) or params["tail"] < 0:
            raise ClaimsError(f"{where}.tail: expected a whole number of steps >= 0, got {params['tail']!r}")
    return name, params


def _check(obj, pipeline: str, where: str) -> Check:
    obj = _keys(obj, CHECK_KEYS, where, required=("check", "x", "metric", "op", "threshold"))
    kind = _name("check", obj["check"], CHECKS, f"{where}.check")
    x = _side(obj["x"], pipeline, f"{where}.x")
    y = None
    if kind in ("difference", "improvement_probability"):
        if "y" not in obj:
            raise ClaimsError(f"{where}: check {kind!r} compares two sides and needs 'y'")
        y = _side(obj["y"], pipeline, f"{where}.y")
    elif "y" in obj:
        raise ClaimsError(f"{where}: check 'level' has one side; remove 'y' or use 'difference'")
    metric, params = _metric(obj["metric"], f"{where}.metric")
    if metric == "critic_gap":
        methods = [m for m, r in METHODS.items() if r.pipeline == pipeline]
        _name("method", params["ref"], methods, f"{where}.metric.ref")
    op = _name("op", obj["op"], OPS, f"{where}.op")
    threshold = _number(obj["threshold"], f"{where}.threshold")
    if op == "within" and threshold < 0:
        raise ClaimsError(f"{where}.threshold: 'within' needs a margin >= 0, got {threshold:g}")
    if kind == "improvement_probability" and not 0.0 <= threshold <= 1.0:
        raise ClaimsError(f"{where}.threshold: a probability of improvement lies in [0, 1], got {threshold:g}")
    scope = _name("scope", obj.get("scope", "per_task"), SCOPES, f"{where}.scope")
    over = _name("quantifier", obj.get("over_tasks", "all"), list(QUANTIFIERS), f"{where}.over_tasks")
    estimator = _name("estimator", obj.get("estimator", "iqm"), ESTIMATORS, f"{where}.estimator")
    envs = datasets = tasks = None
    if "tasks" in obj:
        if "envs" in obj or "datasets" in obj:
            raise ClaimsError(f"{where}: give either 'tasks' or 'envs'/'datasets', not both")
        if not isinstance(obj["tasks"], list) or not obj["tasks"]:
            raise ClaimsError(f"{where}.tasks: expected a non-empty list of [env, dataset] pairs")
        pairs = []
        for i, t in enumerate(obj["tasks"]):
            if not isinstance(t, list) or len(t) != 2:
                raise ClaimsError(f"{where}.tasks[{i}]: expected [env, dataset], got {t!r}")
            pairs.append((_name("env", t[0], list(ENV_SPECS), f"{where}.tasks[{i}]"),
                          _name("dataset", t[1], DATASET_KINDS, f"{where}.tasks[{i}]")))
        tasks = tuple(pairs)
    for key, valid in (("envs", list(ENV_SPECS)), ("datasets", DATASET_KINDS)):
        if key in obj:
            if not isinstance(obj[key], list) or not obj[key]:
                raise ClaimsError(f"{where}.{key}: expected a non-empty list, got {obj[key]!r}")
            names = tuple(_name(key[:-1], v, valid, f"{where}.{key}") for v in obj[key])
            envs, datasets = (names, datasets) if key == "envs" else (envs, names)
    return Check(kind, x, metric, params, op, threshold, y, scope, over, estimator, envs, datasets, tasks)


def parse_claims(data, where: str = "claims") -> Claims:
    """Check a loaded claims file (names, types, required keys) and build :class:`Claims`; raises
    :class:`ClaimsError` naming the claim, the key and the bad value."""
    data = _keys(data, ("min_seeds", "interval", "claims"), where, required=("claims",))
    interval = _name("interval", data.get("interval", "calibrated"), INTERVALS, f"{where}: interval")
    min_seeds = data.get("min_seeds", 3)
    if isinstance(min_seeds, bool) or not isinstance(min_seeds, int) or min_seeds < 1:
        raise ClaimsError(f"{where}: min_seeds must be a whole number >= 1, got {min_seeds!r}")
    if not isinstance(data["claims"], list) or not data["claims"]:
        raise ClaimsError(f"{where}: 'claims' must be a non-empty list")
    claims, seen = [], set()
    for i, obj in enumerate(data["claims"]):
        w = f"{where}: claims[{i}]"
        obj = _keys(obj, CLAIM_KEYS, w, required=CLAIM_KEYS)
        cid = obj["id"]
        if not isinstance(cid, str) or not cid:
            raise ClaimsError(f"{w}.id: expected a name, got {cid!r}")
        if cid in seen:
            raise ClaimsError(f"{w}.id: claim {cid!r} appears twice")
        seen.add(cid)
        w = f"{where}: claim {cid}"
        paper = _name("paper", obj["paper"], list(BY_CLAIM_PREFIX), f"{w}.paper")
        figure = _name("figure", obj["figure"], list(BY_CLAIM_PREFIX[paper].figures), f"{w}.figure")
        if not isinstance(obj["says"], str) or not obj["says"].strip():
            raise ClaimsError(f"{w}.says: expected the claim in words")
        if not isinstance(obj["checks"], list) or not obj["checks"]:
            raise ClaimsError(f"{w}.checks: expected a non-empty list of checks")
        checks = tuple(_check(c, BY_CLAIM_PREFIX[paper].pipeline, f"{w}.checks[{j}]") for j, c in enumerate(obj["checks"]))
        claims.append(Claim(cid, paper, figure, " ".join(obj["says"].split()), checks))
    return Claims(min_seeds, tuple(claims), where, interval)


def load_claims(path: str | Path) -> Claims:
    return parse_claims(C.read_yaml(path, ClaimsError, "claims file"), where=str(path))


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
