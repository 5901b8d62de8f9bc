"""The papers' claims as data: the model of ``config/claims.yaml`` (claims, checks, sides, metrics) and its parser,
which names the claim, the key and the bad value (with the closest valid name) before anything runs (the Snakefile
checks the file through :mod:`wmaug.report.claims`, which re-exports these names); verdicts are that module's."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from wmaug.core import config as C
from wmaug.core.envs import DATASET_KINDS
from wmaug.core.envs import ENV_SPECS, unknown_name_message
from wmaug.core.errors import InputError
from wmaug.core.papers import BY_CLAIM_PREFIX
from wmaug.core.methods import METHODS

VERDICTS = ("supported", "contradicted", "inconclusive", "not comparable", "not run")
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
    "critic_bias": ({"tail": 0}, "mean (min(Q1, Q2) - G_t) / mean |G_t| along the Fig 5 expert episode"),
}
CRITIC_METRICS = ("critic_error", "critic_gap", "critic_bias")
SCORE_COLUMN = "normalized_score"
CLAIM_KEYS = ("id", "paper", "figure", "says", "checks", "quote", "where", "detectable_sd", "source")
SOURCES = ("paper", "harness")  # harness: the harness's own question about the paper (a control), not the paper's claim
REQUIRED_CLAIM_KEYS = ("id", "paper", "figure", "says", "checks")
CHECK_KEYS = ("check", "x", "y", "metric", "op", "threshold", "scope", "over_tasks", "envs", "datasets", "tasks",
              "estimator", "paper_budget")
SIDE_KEYS = ("method", "dataset", "column", "metric")


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
    # this side's own metric (name, params) instead of the check's: A8 sets wm's best score within the first 10%
    # of the run against TD3's final one
    metric: str | None = None
    params: dict | None = None

    def describe(self) -> str:
        extra = [v for v in (self.dataset, None if self.column == SCORE_COLUMN else self.column) if v]
        if self.metric is not None:
            extra.append(METRICS[self.metric][1].format(**self.params))
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
    # the mean over seeds (Welch's t test, exact for normal runs); "iqm": rliable's IQM with a bootstrap standard
    # error, which at 4 seeds keeps the middle 2 runs and reads too small (docs/claims.md, "How a verdict is made")
    estimator: str = "mean"
    envs: tuple | None = None
    datasets: tuple | None = None
    tasks: tuple | None = None  # explicit (env, dataset) pairs instead of envs x datasets
    # the threshold is a number of the paper's budget (A1's 100 within 100K of 500K steps): at another scale the
    # check is `not comparable` rather than decided
    paper_budget: bool = False

    def metric_text(self) -> str:
        return METRICS[self.metric][1].format(**self.params)

    def side_metric(self, side: Side) -> tuple[str, dict]:
        """The metric a side is read with: its own, or the check's."""
        return (side.metric, side.params) if side.metric is not None else (self.metric, self.params)

    def describe(self) -> str:
        ym = self.side_metric(self.y)[0] if self.y else self.metric
        stat = {"level": f"{self.estimator.upper()} {self.metric}[{self.x.describe()}]",
                "difference": f"{self.estimator.upper()} {self.side_metric(self.x)[0]}[{self.x.describe()}] - "
                              f"{self.estimator.upper()} {ym}[{self.y.describe() if self.y else ''}]",
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
    quote: str = ""  # the paper's own sentence(s)
    where: str = ""  # where they stand in the paper (section, figure)
    # where the power bar is out of reach at the papers' seeds: the smallest effect, in seed SDs on every task, it is
    # supported at with 80% probability (benchmarks/claims_calibration.py --detectable)
    detectable_sd: float | None = None
    source: str = "paper"

    @property
    def pipeline(self) -> str:
        return BY_CLAIM_PREFIX[self.paper].pipeline


@dataclass(frozen=True)
class Claims:
    min_seeds: int
    claims: tuple[Claim, ...]
    path: str = ""
    interval: str = "calibrated"  # the one test design of wmaug.report.claims (docs/claims.md, "How a verdict is made")


# How a check is decided (wmaug.report.claims). The audits before 2026-12-07 (rliable's percentile intervals; then
# Bonferroni over every interval) are in git history, their measured rates in benchmarks/claims_calibration_*.csv.
INTERVALS = ("calibrated",)


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
    metric = params = None
    if "metric" in obj:
        metric, params = _metric(obj["metric"], f"{where}.metric")
        if metric in CRITIC_METRICS:
            raise ClaimsError(f"{where}.metric: a side's own metric is a curve metric, got {metric!r}")
    return Side(method, dataset, column, metric, params)


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
    estimator = _name("estimator", obj.get("estimator", "mean"), ESTIMATORS, f"{where}.estimator")
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
    paper_budget = obj.get("paper_budget", False)
    if not isinstance(paper_budget, bool):
        raise ClaimsError(f"{where}.paper_budget: expected true or false, got {paper_budget!r}")
    if (x.metric is not None or (y is not None and y.metric is not None)) and metric in CRITIC_METRICS:
        raise ClaimsError(f"{where}: a side's own metric cannot be mixed with the critic metric {metric!r}")
    return Check(kind, x, metric, params, op, threshold, y, scope, over, estimator, envs, datasets, tasks,
                 paper_budget)


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
        obj = _keys(obj, CLAIM_KEYS, w, required=REQUIRED_CLAIM_KEYS)
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
        text = {}
        for key in ("quote", "where"):
            if not isinstance(obj.get(key, ""), str):
                raise ClaimsError(f"{w}.{key}: expected text, got {obj[key]!r}")
            text[key] = " ".join(obj.get(key, "").split())
        detectable = obj.get("detectable_sd")
        if detectable is not None and _number(detectable, f"{w}.detectable_sd") <= 0:
            raise ClaimsError(f"{w}.detectable_sd: expected a positive effect in seed SDs, got {detectable!r}")
        source = _name("source", obj.get("source", "paper"), list(SOURCES), f"{w}.source")
        claims.append(Claim(cid, paper, figure, " ".join(obj["says"].split()), checks, **text,
                            detectable_sd=None if detectable is None else float(detectable), source=source))
    return Claims(min_seeds, tuple(claims), where, interval)


def load_claims(path: str | Path) -> Claims:
    return parse_claims(C.read_yaml(path, ClaimsError, "claims file"), where=str(path))
