"""Score collection and rliable-based aggregation of finished cells (paper A's `wmaug` study and
paper B's `balanced_replay`, whose report lives in :mod:`wmaug.paper_b.report`).

Inputs are finished training cells: directories with ``summary.json`` and ``curve.csv``
(see :func:`collect_scores`). Every interval here is a 95% percentile interval from
rliable's stratified bootstrap (``rliable.library.get_interval_estimates``): runs (seeds)
are resampled with replacement independently inside each stratum (task, and for curves
also each evaluation step).

Reproducibility: rliable 1.2 draws its bootstrap indices from NumPy's *global* generator
(``np.random.choice`` in ``StratifiedBootstrap.update_indices``) and never uses its
``random_state`` argument. Every rliable call here therefore runs inside
:func:`_seeded_global_rng`, which seeds the global generator with a seed derived from the
caller's ``seed`` and the group key by SHA-256 (not Python's salted ``hash``) and restores the
caller's global state afterwards. Results thus depend only on (data, seed, group key), not on
the order of calls or on anything else that used ``np.random``.

Speed: the estimators passed to rliable are vectorised NumPy re-implementations that are
equal (up to floating-point summation order) to ``rliable.metrics.aggregate_iqm`` and
``rliable.metrics.probability_of_improvement``; those two, as shipped, go through
``scipy.stats.trim_mean`` / ``scipy.stats.mannwhitneyu`` whose per-call overhead (~1 ms)
made the full grid take about a minute (IQM curves) and ~20 s per comparison (POI).
The tests check the equality against the rliable functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from rliable import library as rly

from wmaug.core.errors import ReportInputError
from wmaug.core.references import d4rl_reference
from rliable import metrics as rlm

__all__ = [
    "SCORE_COLUMNS",
    "CURVE_COLUMNS",
    "METRIC_COLUMNS",
    "POI_COLUMNS",
    "METRICS",
    "collect_scores",
    "final_scores",
    "curve_intervals",
    "aggregate_metrics",
    "probability_of_improvement",
    "derive_seed",
    "iqm",
]

SCORE_COLUMNS = [
    "study", "env", "dataset", "method", "seed", "scale",
    "phase", "step", "normalized_score", "raw_return",
]
CURVE_COLUMNS = [
    "env", "dataset", "method", "step", "n_seeds",
    "mean", "mean_lo", "mean_hi", "iqm", "iqm_lo", "iqm_hi",
]
METRIC_COLUMNS = ["method", "metric", "value", "lo", "hi", "n_tasks", "n_seeds"]
POI_COLUMNS = [
    "x", "y", "scope", "env", "dataset", "value", "lo", "hi",
    "n_tasks", "n_seeds_x", "n_seeds_y",
]
#: metric names of :func:`aggregate_metrics`, in output order
METRICS = ("iqm", "median", "mean", "optimality_gap")
#: normalised score of an expert; the optimality-gap threshold (rliable's default is 1)
EXPERT_SCORE = 100.0
CI_SIZE = 0.95

_CELL_KEYS = ("study", "env", "dataset", "method", "seed")
_CURVE_REQUIRED = ("phase", "step", "normalized_score", "raw_return")
_PHASES = ("offline", "online")


# --------------------------------------------------------------------------- seeding
def derive_seed(seed: int, *key: object) -> int:
    """A 32-bit seed from ``seed`` and a group key, stable across processes and platforms."""
    text = json.dumps([int(seed), *[str(k) for k in key]], separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


@contextlib.contextmanager
def _seeded_global_rng(seed: int, *key: object) -> Iterator[None]:
    """Seed NumPy's global generator for one rliable call; restore the caller's state after."""
    saved = np.random.get_state()
    np.random.seed(derive_seed(seed, *key))
    try:
        yield
    finally:
        np.random.set_state(saved)


# --------------------------------------------------------------------------- estimators
def iqm(scores: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Interquartile mean = ``scipy.stats.trim_mean(x, 0.25, axis)``, without scipy's overhead.

    ``axis=None`` pools every value (what ``rliable.metrics.aggregate_iqm`` does);
    ``axis=0`` gives one IQM per trailing index (one per step for a ``(runs*tasks, steps)`` array).
    """
    a = np.asarray(scores, dtype=float)
    if axis is None:
        a, axis = a.ravel(), 0
    a = np.sort(a, axis=axis)
    n = a.shape[axis]
    cut = int(0.25 * n)  # same rounding as scipy.stats.trim_mean
    if axis == 0:
        return a[cut:n - cut].mean(axis=0)
    return np.take(a, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def _curve_estimates(scores: np.ndarray) -> np.ndarray:
    """(runs, tasks, steps) -> [mean per step..., IQM per step...] (length 2*steps).

    Per step this is ``rliable.metrics.aggregate_mean(scores[..., t])`` and
    ``rliable.metrics.aggregate_iqm(scores[..., t])``.
    """
    steps = scores.shape[-1]
    return np.concatenate([rlm.aggregate_mean(scores), iqm(scores.reshape(-1, steps), axis=0)])


def _metric_estimates(scores: np.ndarray) -> np.ndarray:
    """(runs, tasks) -> [IQM, median, mean, optimality gap] in the order of :data:`METRICS`."""
    return np.array([
        iqm(scores),
        rlm.aggregate_median(scores),
        rlm.aggregate_mean(scores),
        rlm.aggregate_optimality_gap(scores, gamma=EXPERT_SCORE),
    ])


def _poi_per_task(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X_m > Y_m) per task m, ties counting 1/2 (the Mann-Whitney U / (n_x n_y) rliable uses)."""
    diff = x[:, None, :] - y[None, :, :]
    return (diff > 0).mean(axis=(0, 1)) + 0.5 * (diff == 0).mean(axis=(0, 1))


def _poi_estimates(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[average over tasks (= rliable.metrics.probability_of_improvement), per task...]."""
    per_task = _poi_per_task(x, y)
    return np.concatenate([[per_task.mean()], per_task])


def _interval(score_dict, func, reps: int, seed: int, key: tuple, size: float = CI_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One seeded rliable call for a single-entry score dict -> (point, (2, k) interval of coverage `size`)."""
    (name,) = score_dict
    with _seeded_global_rng(seed, *key):
        point, ci = rly.get_interval_estimates(
            score_dict, func, reps=reps, confidence_interval_size=size)
    point_arr = np.atleast_1d(point[name]).astype(float)
    return point_arr, np.asarray(ci[name], dtype=float).reshape(2, -1)


def _check_reps(reps: int) -> None:
    if int(reps) < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")


# --------------------------------------------------------------------------- collection
def _cell_label(cell: dict) -> str:
    return "{study}/{env}/{dataset}/{method}/seed{seed}".format(**cell)


def _describe_groups(groups: dict[str, list[str]], limit: int = 20) -> str:
    parts = []
    for value, cells in sorted(groups.items(), key=lambda kv: (len(kv[1]), kv[0])):
        shown = ", ".join(cells[:limit])
        more = f", ... and {len(cells) - limit} more" if len(cells) > limit else ""
        parts.append(f"  {value!r}: {len(cells)} cell(s): {shown}{more}")
    return "\n".join(parts)


def collect_scores(cell_dirs: Sequence[Path | str],
                   extra_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read finished cells into one long table (one row per evaluation).

    Columns: :data:`SCORE_COLUMNS`, then ``extra_columns`` (other numeric columns of
    ``curve.csv`` to keep, e.g. paper B's ``offline_share`` or ``auroc_ensemble``; a cell whose
    curve lacks one gets NaN there). Any other column of ``curve.csv`` is ignored.
    ``df.attrs`` holds ``scale`` and ``config_hash``.

    Raises ``ValueError`` (all problems in one message) when a directory lacks
    ``summary.json`` or ``curve.csv``, its summary is not ``"finished": true`` or lacks a
    cell field, its curve lacks a required column or holds a NaN score / duplicated
    (phase, step), the same cell appears twice, or the cells do not all share one ``scale``
    and one ``config_hash`` (the message lists the cells of each value).
    """
    dirs = [Path(d) for d in cell_dirs]
    extra_columns = [c for c in dict.fromkeys(extra_columns) if c not in SCORE_COLUMNS]
    if not dirs:
        raise ReportInputError("no cell folders given")
    problems: list[str] = []
    frames: list[dict[str, np.ndarray]] = []
    scale_groups: dict[str, list[str]] = {}
    hash_groups: dict[str, list[str]] = {}
    seen: dict[tuple, Path] = {}
    references: dict[str, list] = {}
    for d in dirs:
        summary_path = d / "summary.json"
        if not summary_path.is_file():
            problems.append(f"{d}: no summary.json (cell not finished?)")
            continue
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            problems.append(f"{d}: unreadable summary.json ({exc})")
            continue
        if summary.get("finished") is not True:
            problems.append(f"{d}: summary.json lacks \"finished\": true "
                            f"(finished={summary.get('finished')!r})")
            continue
        cell = summary.get("cell")
        missing = [k for k in _CELL_KEYS if not isinstance(cell, dict) or k not in cell]
        missing += [k for k in ("scale", "config_hash") if k not in summary]
        if missing:
            problems.append(f"{d}: summary.json lacks {', '.join(missing)}")
            continue
        cell = {k: cell[k] for k in _CELL_KEYS}
        cell["seed"] = int(cell["seed"])
        label = _cell_label(cell)
        key = tuple(cell[k] for k in _CELL_KEYS)
        if key in seen:
            problems.append(f"{d}: cell {label} also read from {seen[key]}")
            continue
        seen[key] = d
        # the pair its scores were normalised with; a summary written before pairs were recorded used D4RL's
        ref = (summary.get("dataset") or {}).get("reference") or d4rl_reference(cell["env"])
        references[label] = [ref["ref_min"], ref["ref_max"], ref["from"]]
        curve_path = d / "curve.csv"
        if not curve_path.is_file():
            problems.append(f"{d}: no curve.csv")
            continue
        try:
            curve = pd.read_csv(curve_path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            problems.append(f"{d}: unreadable curve.csv ({exc})")
            continue
        absent = [c for c in _CURVE_REQUIRED if c not in curve.columns]
        if absent:
            problems.append(f"{d}: curve.csv lacks column(s) {', '.join(absent)}")
            continue
        if curve.empty:
            problems.append(f"{d}: curve.csv has no evaluations")
            continue
        phase = curve["phase"].astype(str).to_numpy()
        bad_phase = sorted(set(phase) - set(_PHASES))
        if bad_phase:
            problems.append(f"{d}: curve.csv has unknown phase(s) {bad_phase}")
            continue
        score = pd.to_numeric(curve["normalized_score"], errors="coerce").to_numpy(float)
        if np.isnan(score).any():
            problems.append(f"{d}: curve.csv has NaN/non-numeric normalized_score")
            continue
        step = pd.to_numeric(curve["step"], errors="coerce").to_numpy(float)
        if np.isnan(step).any() or not np.all(step == np.round(step)):
            problems.append(f"{d}: curve.csv has non-integer step values")
            continue
        if curve.duplicated(["phase", "step"]).any():
            problems.append(f"{d}: curve.csv has duplicated (phase, step) rows")
            continue
        n = len(curve)
        columns = {k: np.full(n, v, dtype=object) for k, v in cell.items() if k != "seed"}
        columns.update(seed=np.full(n, cell["seed"]), scale=np.full(n, str(summary["scale"]),
                                                                     dtype=object),
                       phase=phase.astype(object), step=step.astype(np.int64),
                       normalized_score=score,
                       raw_return=pd.to_numeric(curve["raw_return"], errors="coerce")
                       .to_numpy(float))
        for c in extra_columns:
            columns[c] = (pd.to_numeric(curve[c], errors="coerce").to_numpy(float)
                          if c in curve.columns else np.full(n, np.nan))
        frames.append(columns)
        scale_groups.setdefault(str(summary["scale"]), []).append(label)
        hash_groups.setdefault(str(summary["config_hash"]), []).append(label)
    if problems:
        raise ReportInputError(f"cannot use {len(problems)} cell folder(s): {_first(problems)}")
    mixed = []
    if len(scale_groups) > 1:
        mixed.append("cells differ in scale:\n" + _describe_groups(scale_groups))
    if len(hash_groups) > 1:
        mixed.append("cells differ in config_hash:\n" + _describe_groups(hash_groups))
    if mixed:
        raise ReportInputError("one table must hold cells of one scale and one config_hash; "
                               + " ".join(m.replace("\n", " ") for m in mixed))
    df = pd.DataFrame({c: np.concatenate([f[c] for f in frames])
                       for c in SCORE_COLUMNS + extra_columns})
    df = df.sort_values(["study", "env", "dataset", "method", "seed", "phase", "step"],
                        kind="stable").reset_index(drop=True)
    df.attrs["scale"] = next(iter(scale_groups))
    df.attrs["config_hash"] = next(iter(hash_groups))
    df.attrs["references"] = references  # cell label -> [ref_min, ref_max, from]: figures label a mix
    return df


def _first(problems: list[str], shown: int = 3) -> str:
    more = f"; ... and {len(problems) - shown} more" if len(problems) > shown else ""
    return "; ".join(p.replace("\n", " ") for p in problems[:shown]) + more


def _single(scores: pd.DataFrame, col: str) -> str | None:
    vals = scores[col].unique() if col in scores.columns else []
    if len(vals) > 1:
        raise ValueError(f"scores hold several values of {col!r}: {sorted(map(str, vals))}; "
                         f"aggregate one at a time")
    return str(vals[0]) if len(vals) else None


def _carry_attrs(out: pd.DataFrame, scores: pd.DataFrame, **extra) -> pd.DataFrame:
    out.attrs.update({k: v for k, v in scores.attrs.items() if k in ("scale", "config_hash")})
    if "references" in scores.attrs and set(_CELL_KEYS) <= set(scores.columns):  # only the cells aggregated here
        keys = scores[list(_CELL_KEYS)].drop_duplicates().itertuples(index=False)
        cells = {_cell_label(dict(zip(_CELL_KEYS, key))) for key in keys}
        out.attrs["references"] = {k: v for k, v in scores.attrs["references"].items() if k in cells}
    for col in ("scale", "study"):
        if col in scores.columns and len(scores):
            out.attrs[col] = _single(scores, col)
    out.attrs.update(extra)
    return out


def _phase_rows(scores: pd.DataFrame, phase: str) -> pd.DataFrame:
    if phase not in _PHASES:
        raise ValueError(f"phase must be one of {_PHASES}, got {phase!r}")
    _single(scores, "study")
    _single(scores, "scale")
    rows = scores[scores["phase"] == phase]
    if rows.empty:
        raise ValueError(f"no {phase!r} rows in the scores")
    return rows


# --------------------------------------------------------------------------- curves
def curve_intervals(scores: pd.DataFrame, phase: str = "online", reps: int = 2000,
                    seed: int = 0, *, value: str = "normalized_score",
                    missing: str = "error") -> pd.DataFrame:
    """Mean and IQM over seeds, with 95% stratified-bootstrap CIs, per (env, dataset, method, step).

    One ``rliable.library.get_interval_estimates`` call per (env, dataset, method) on a
    ``(seeds, 1, steps)`` array whose function returns the mean and the IQM of every step
    (rliable's stratified bootstrap resamples seeds independently per step, so each step's
    interval is that step's own bootstrap). Methods without rows in ``phase`` (``td3`` offline)
    are simply absent. With one seed, lo = hi = the point estimate. All seeds of a group must
    have been evaluated at the same steps (else ``ValueError``).

    ``value`` picks the column summarised (default the normalised score; any numeric column
    of the scores, e.g. ``raw_return`` or one of ``collect_scores``'s ``extra_columns``).
    Rows where it is NaN are dropped first (paper B's analysis columns are NaN at step 0), so
    a step where every seed is NaN simply has no row. ``missing="drop"`` drops, with a
    warning, the steps where only some seeds have a value instead of raising.
    Columns: :data:`CURVE_COLUMNS` (``mean``/``iqm`` are of ``value``); ``attrs`` carry
    ``scale``/``config_hash``/``phase``/``value``.
    """
    _check_reps(reps)
    if missing not in ("error", "drop"):
        raise ValueError(f"missing must be 'error' or 'drop', got {missing!r}")
    if value not in scores.columns:
        raise ValueError(f"curve_intervals: no column {value!r} in the scores")
    rows = _phase_rows(scores, phase)
    rows = rows[rows[value].notna()]
    out = []
    for (env, dataset, method), g in rows.groupby(["env", "dataset", "method"], sort=True):
        wide = g.pivot(index="seed", columns="step", values=value).sort_index(axis=1)
        if missing == "drop" and wide.isna().any().any():
            partial = wide.columns[wide.isna().any()]
            warnings.warn(f"curve_intervals: {env}/{dataset}/{method} ({phase}, {value}): "
                          f"dropping {len(partial)} step(s) that not every seed has "
                          f"(first: {[int(t) for t in partial[:5]]})", RuntimeWarning,
                          stacklevel=2)
            wide = wide.loc[:, wide.notna().all()]
            if wide.shape[1] == 0:
                continue
        if wide.isna().any().any():
            gaps = {int(s): sorted(int(t) for t in wide.columns[wide.loc[s].isna()])[:5]
                    for s in wide.index if wide.loc[s].isna().any()}
            raise ValueError(f"curve_intervals: {env}/{dataset}/{method} ({phase}): seeds were "
                             f"not evaluated at the same steps; missing steps per seed "
                             f"(first 5): {gaps}")
        steps = wide.columns.to_numpy(dtype=int)
        n_seeds, n_steps = wide.shape
        arr = wide.to_numpy(dtype=float)[:, None, :]  # (runs, tasks=1, steps)
        if n_seeds == 1:
            point = _curve_estimates(arr)
            lo = hi = point
        else:
            # the default value keeps its original key, so existing intervals do not move
            key = (("curve", phase, env, dataset, method) if value == "normalized_score"
                   else ("curve", phase, value, env, dataset, method))
            point, ci = _interval({method: arr}, _curve_estimates, reps, seed, key)
            lo, hi = ci
        out.append(pd.DataFrame({
            "env": env, "dataset": dataset, "method": method, "step": steps,
            "n_seeds": n_seeds,
            "mean": point[:n_steps], "mean_lo": lo[:n_steps], "mean_hi": hi[:n_steps],
            "iqm": point[n_steps:], "iqm_lo": lo[n_steps:], "iqm_hi": hi[n_steps:],
        }))
    if not out:
        raise ValueError(f"curve_intervals: no {phase!r} rows with a {value!r} value")
    result = pd.concat(out, ignore_index=True)[CURVE_COLUMNS]
    return _carry_attrs(result, scores, phase=phase, reps=int(reps), seed=int(seed),
                        value=value)


# --------------------------------------------------------------------------- final scores
def _area_under_curve(rows: pd.DataFrame, cell: list[str]) -> pd.DataFrame:
    """Per cell: the trapezoidal mean of the normalised score over its evaluated steps."""
    out = []
    for key, g in rows.groupby(cell, sort=True):
        g = g.sort_values("step")
        x = g["step"].to_numpy(dtype=float)
        y = g["normalized_score"].to_numpy(dtype=float)
        span = x[-1] - x[0]
        area = (float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)) / span) if span > 0
                else float(y.mean()))
        out.append({**dict(zip(cell, key)), "step": int(x[-1]), "normalized_score": area})
    return pd.DataFrame(out, columns=cell + ["step", "normalized_score"])


def final_scores(scores: pd.DataFrame, phase: str = "online",
                 step: int | str = "final") -> pd.DataFrame:
    """One score per cell: its last ``phase`` evaluation (``step="final"``) or the one at ``step``.

    With ``step="final"`` every cell of a task (env, dataset) must end at the same step, so
    that methods are compared at equal budgets; otherwise ``ValueError`` lists the final
    steps (pass an int ``step`` to compare at a common step). An int ``step`` that a cell
    never evaluated is an error naming the cell.

    ``step="auc"``: the normalised area under each cell's curve, i.e. the trapezoidal mean of
    its normalised score over [first, last] evaluated step (a sample-efficiency score in
    normalised-score units; 100 = expert from the first step on). Like ``"final"``, every
    cell of a task must end at the same step; the ``step`` column holds that last step.
    Columns: env, dataset, method, seed, step, normalized_score.
    """
    rows = _phase_rows(scores, phase)
    cell = ["env", "dataset", "method", "seed"]
    if step in ("final", "auc"):
        picked = rows.loc[rows.groupby(cell, sort=True)["step"].idxmax()]
        per_task = picked.groupby(["env", "dataset"])["step"].nunique()
        uneven = per_task[per_task > 1]
        if len(uneven):
            details = "; ".join(
                f"{env}/{ds}: " + ", ".join(
                    f"{m}/seed{s}@{t}" for m, s, t in picked[(picked.env == env) & (
                        picked.dataset == ds)][["method", "seed", "step"]].itertuples(index=False))
                for env, ds in uneven.index)
            raise ValueError("final_scores: cells of one task end at different steps "
                             f"(pass an int step to compare at a common one): {details}")
        if step == "auc":
            picked = _area_under_curve(rows, cell)
    else:
        if isinstance(step, str) or not float(step).is_integer():
            raise ValueError(f"step must be 'final', 'auc' or an int, got {step!r}")
        picked = rows[rows["step"] == int(step)]
        have = set(map(tuple, picked[cell].itertuples(index=False)))
        lacking = [f"{e}/{d}/{m}/seed{s}" for e, d, m, s in
                   rows[cell].drop_duplicates().itertuples(index=False) if (e, d, m, s) not in have]
        if lacking:
            raise ValueError(f"final_scores: no {phase} evaluation at step {int(step)} in: "
                             + ", ".join(lacking))
    return picked[cell + ["step", "normalized_score"]].sort_values(cell).reset_index(drop=True)


def _run_matrix(final: pd.DataFrame, method: str, tasks: list[tuple[str, str]],
                unequal_seeds: str) -> tuple[np.ndarray, int]:
    """(runs, tasks) matrix of one method; rows are seeds in ascending id order per task."""
    sub = final[final["method"] == method]
    cols = []
    for env, ds in tasks:
        t = sub[(sub["env"] == env) & (sub["dataset"] == ds)].sort_values("seed")
        cols.append(t["normalized_score"].to_numpy(dtype=float))
    counts = [len(c) for c in cols]
    if len(set(counts)) > 1:
        detail = ", ".join(f"{e}/{d}: {n}" for (e, d), n in zip(tasks, counts))
        if unequal_seeds == "trim":
            n = min(counts)
            warnings.warn(f"{method}: unequal seed counts per task ({detail}); keeping the "
                          f"{n} lowest seed ids of each task", RuntimeWarning, stacklevel=3)
            cols = [c[:n] for c in cols]
        else:
            raise ValueError(
                f"{method}: unequal seed counts per task ({detail}); rliable's across-task "
                f"estimators need a (runs x tasks) matrix. Finish the missing cells, or pass "
                f"unequal_seeds='trim' to keep the lowest n_min seed ids of every task.")
    return np.stack(cols, axis=1), len(cols[0])


def _tasks_of(final: pd.DataFrame, methods: Sequence[str]) -> list[tuple[str, str]]:
    sets = {m: set(map(tuple, final.loc[final["method"] == m, ["env", "dataset"]]
                       .itertuples(index=False))) for m in methods}
    missing = [m for m in methods if not sets[m]]
    if missing:
        raise ValueError(f"no scores for method(s) {missing}")
    common, union = set.intersection(*sets.values()), set.union(*sets.values())
    if common != union:
        detail = "; ".join(f"{m}: lacks {sorted(f'{e}/{d}' for e, d in union - s)}"
                           for m, s in sets.items() if s != union)
        raise ValueError("methods cover different tasks, so across-task aggregates would not "
                         f"be comparable: {detail}")
    return sorted(common)


# --------------------------------------------------------------------------- aggregates
def aggregate_metrics(scores: pd.DataFrame, phase: str = "online", step: int | str = "final",
                      reps: int = 2000, seed: int = 0, *,
                      unequal_seeds: str = "error") -> pd.DataFrame:
    """IQM, median, mean and optimality gap across tasks (env x dataset) per method.

    Scores are each cell's ``phase`` score at ``step`` (see :func:`final_scores`). The
    optimality gap uses threshold 100 (expert): ``mean(max(100 - score, 0))``. 95% CIs from
    one seeded stratified-bootstrap call per method (seeds resampled within each task).
    All methods must cover the same tasks; within a method every task needs the same number
    of seeds, else ``ValueError`` (or, with ``unequal_seeds="trim"``, a warning and the
    lowest-id seeds up to the smallest count). One seed: lo = hi = value.
    Columns: :data:`METRIC_COLUMNS`.
    """
    _check_reps(reps)
    final = final_scores(scores, phase, step)
    methods = sorted(final["method"].unique())
    tasks = _tasks_of(final, methods)
    out = []
    for method in methods:
        mat, n_seeds = _run_matrix(final, method, tasks, unequal_seeds)
        if n_seeds == 1:
            point = _metric_estimates(mat)
            lo = hi = point
        else:
            point, (lo, hi) = _interval({method: mat}, _metric_estimates, reps, seed,
                                        ("aggregate", phase, step, method))
        for i, name in enumerate(METRICS):
            out.append({"method": method, "metric": name, "value": point[i], "lo": lo[i],
                        "hi": hi[i], "n_tasks": len(tasks), "n_seeds": n_seeds})
    result = pd.DataFrame(out, columns=METRIC_COLUMNS)
    return _carry_attrs(result, scores, phase=phase, step=step, reps=int(reps), seed=int(seed))


def probability_of_improvement(scores: pd.DataFrame, x: str = "wm_td3bc_td3",
                               y: str = "td3bc_td3", reps: int = 2000, seed: int = 0, *,
                               phase: str = "online", step: int | str = "final",
                               unequal_seeds: str = "error") -> pd.DataFrame:
    """rliable's probability of improvement P(X > Y) of method ``x`` over ``y``, with 95% CIs.

    Row ``scope="aggregate"`` (env = dataset = "all") is the average over tasks of
    P(X_m > Y_m) (ties count 1/2); rows ``scope="task"`` give each task's P(X_m > Y_m).
    All rows come from ONE seeded ``StratifiedIndependentBootstrap`` call (x and y resampled
    independently, per task), so per-task and aggregate intervals share resamples.

    Seed counts: ``x`` and ``y`` may have different numbers of seeds (rliable's POI takes
    separate run arrays and normalises by n_x * n_y). Within one method every task must have
    the same number of seeds: ``ValueError`` otherwise, or with ``unequal_seeds="trim"`` the
    lowest-id seeds up to that method's smallest count are kept (with a warning).
    Both methods must cover the same tasks. One seed each: lo = hi = value.
    Columns: :data:`POI_COLUMNS`.
    """
    _check_reps(reps)
    if x == y:
        raise ValueError("x and y must be different methods")
    final = final_scores(scores, phase, step)
    tasks = _tasks_of(final, [x, y])
    mx, nx = _run_matrix(final, x, tasks, unequal_seeds)
    my, ny = _run_matrix(final, y, tasks, unequal_seeds)
    if nx == 1 and ny == 1:
        point = _poi_estimates(mx, my)
        lo = hi = point
    else:
        point, (lo, hi) = _interval({f"{x}>{y}": [mx, my]}, _poi_estimates, reps, seed,
                                    ("poi", phase, step, x, y))
    labels = [("aggregate", "all", "all")] + [("task", e, d) for e, d in tasks]
    result = pd.DataFrame([
        {"x": x, "y": y, "scope": scope, "env": env, "dataset": ds, "value": point[i],
         "lo": lo[i], "hi": hi[i], "n_tasks": len(tasks) if scope == "aggregate" else 1,
         "n_seeds_x": nx, "n_seeds_y": ny}
        for i, (scope, env, ds) in enumerate(labels)], columns=POI_COLUMNS)
    return _carry_attrs(result, scores, phase=phase, step=step, reps=int(reps), seed=int(seed))
