"""How often the claims audit gives a wrong verdict, measured by simulation through its own code
(`wmaug.report.claims.evaluate_check` and `combine`, rliable's intervals as the audit computes them).

Each draw builds a study's scores from a known truth: per task, every seed's final score of method x is normal with
mean mu_x and sd 1 (y likewise), the curves constant, so the statistic's true value is known. Scenarios:

  level_at_threshold   one task, IQM[x] > 0 with the truth exactly 0 (the outside audit's case)
  difference_null      12 tasks, IQM[x] - IQM[y] > 0 per task for all tasks, no true difference (claim A2's shape)
  aggregate_null       12 tasks pooled: IQM[x] - IQM[y] > 0 over tasks, no true difference

A verdict other than `inconclusive` is wrong in every scenario: the truth sits on the threshold. Printed per
scenario and seed count: the rate of false `supported` and of false `contradicted`, with a 95% Wilson interval.

    python benchmarks/claims_calibration.py --draws 1000 --seeds 3 5 10 --out benchmarks/results/claims_calibration.csv
    python benchmarks/claims_calibration.py --claims --draws 1000 --seeds 3 5 10 --out benchmarks/claims_calibration_claims.csv

`--claims`: every claim of config/claims.yaml whole, through `evaluate_claims` (what `wmaug claims` runs on the
tables `wmaug report` writes), each draw a study whose truth puts every check of the claim on its threshold (see
claim_truth below), on the paper-scale grid.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wmaug.report import claims as CL  # noqa: E402

ENVS = ["halfcheetah", "hopper", "walker2d", "ant"]
DATASETS = ["random", "medium", "medium-replay"]
TASKS = [(e, d) for e in ENVS for d in DATASETS]


def scores(rng: np.random.Generator, tasks, methods: dict[str, float], n: int) -> pd.DataFrame:
    """Constant online curves (steps 0 and 1) of n seeds per (task, method), final score ~ N(mu, 1)."""
    rows = []
    for env, dataset in tasks:
        for method, mu in methods.items():
            values = rng.normal(mu, 1.0, n)
            for seed, v in enumerate(values):
                for step in (0, 1):
                    rows.append((env, dataset, method, seed, step, v))
    frame = pd.DataFrame(rows, columns=["env", "dataset", "method", "seed", "step", "normalized_score"])
    frame["phase"] = "online"
    return frame


def scenario(name: str) -> tuple[CL.Check, list, dict]:
    x, y = CL.Side("wm_td3bc_td3"), CL.Side("td3bc_td3")
    if name == "level_at_threshold":
        return CL.Check("level", x, "final", {}, ">", 0.0), TASKS[:1], {"wm_td3bc_td3": 0.0}
    if name == "difference_null":
        return CL.Check("difference", x, "final", {}, ">", 0.0, y), TASKS, {"wm_td3bc_td3": 0.0, "td3bc_td3": 0.0}
    if name == "aggregate_null":
        return (CL.Check("difference", x, "final", {}, ">", 0.0, y, scope="aggregate"), TASKS,
                {"wm_td3bc_td3": 0.0, "td3bc_td3": 0.0})
    raise ValueError(name)


# ---- every claim of a claims file, through evaluate_claims (what `wmaug claims` runs on the report's tables) ----
# Each draw builds, for one claim, the tables `wmaug report` leaves (scores with online curves; paper A's critic
# traces) from a truth that puts every check of the claim on its threshold, then evaluates the claim with
# `evaluate_claims`. The right verdict of the claim is then `inconclusive` (a claim holds when all its checks do, and
# at least one sits on its threshold), so a `supported` or `contradicted` claim is a false verdict.
#   at_threshold  every check's true statistic equals its threshold (a difference of `threshold`, a level of it,
#                 P(x > y) = 0.5)
#   no_effect     no true difference between the sides of any difference check (x and y the same distribution);
#                 level checks on their threshold. It differs from at_threshold where a difference check's threshold
#                 is not 0 (A3's "< 5", A4's and B2's "within 10"): there the truth clearly holds.
# A run's value enters the tables so that the audit's own metric returns it: a constant curve (final, auc,
# best_until, late_mean), a curve that falls by the value right after the hand-off (dip), a critic whose Q sits the
# value above the return-to-go, the reference critic on it (critic_error, critic_gap).
CLAIM_SCENARIOS = ("at_threshold", "no_effect")
KIND = {"final": "curve", "auc": "curve", "best_until": "curve", "late_mean": "curve", "dip": "dip",
        "critic_error": "critic", "critic_gap": "critic"}
BASE = {"curve": 50.0, "dip": 20.0, "critic": 1.0}  # a cell's truth where no check fixes it
SPREAD = {"curve": 1.0, "dip": 1.0, "critic": 0.05}  # sd of one run's value: dips and critic errors stay positive


def claim_truth(claim: CL.Claim, grid: dict, scenario: str) -> dict[tuple, float]:
    """{(kind, method, env, dataset, column): the true mean of a run's value} putting every check of the claim on
    its threshold (scenario at_threshold) or every difference at 0 (no_effect). Levels are fixed first, then each
    difference from whichever side is already fixed; a claim whose checks cannot all sit there is an error."""
    truth: dict[tuple, float] = {}

    def key(side: CL.Side, check: CL.Check, env: str, dataset: str) -> tuple:
        kind = KIND[check.metric]
        return kind, side.method, env, side.dataset or dataset, side.column if kind != "critic" else "-"

    def fix(k: tuple, value: float) -> None:
        if k in truth and not math.isclose(truth[k], value):
            raise ValueError(f"{claim.id}: {k} would need truths {truth[k]} and {value}")
        truth[k] = value

    for check in sorted(claim.checks, key=lambda c: c.check != "level"):
        if check.check == "improvement_probability" and check.threshold != 0.5:
            raise ValueError(f"{claim.id}: P(x > y) sits on {check.threshold} only for x and y of one distribution")
        for env, dataset in CL.check_tasks(check, grid):
            x = key(check.x, check, env, dataset)
            if check.check == "level":
                fix(x, check.threshold)
                continue
            y = key(check.y, check, env, dataset)
            gap = check.threshold if scenario == "at_threshold" and check.check == "difference" else 0.0
            if x in truth:
                fix(y, truth[x] - gap)
            else:
                fix(x, truth.get(y, BASE[x[0]]) + gap)
                fix(y, truth[x] - gap)
    return truth


def claim_tables(truth: dict[tuple, float], rng: np.random.Generator, n: int,
                 spread: float = 1.0) -> tuple[pd.DataFrame, dict]:
    """The scores table and critic traces of n seeds per cell, each run's value ~ N(truth, spread x SPREAD[kind])."""
    rows: dict[tuple, dict] = {}
    traces: dict[tuple, list] = {}
    for (kind, method, env, dataset, column), mu in sorted(truth.items()):
        for seed, v in enumerate(rng.normal(mu, spread * SPREAD[kind], n)):
            if kind == "critic":  # 4 steps, the last 2 cut as `tail`; G_t = 1, the reference critic (td3_long) on it
                for t in range(4):
                    traces.setdefault((env, dataset), []).extend([
                        {"label": method, "seed": seed, "t": t, "return_to_go": 1.0, "q_min": 1.0 + v},
                        {"label": "td3_long", "seed": seed, "t": t, "return_to_go": 1.0, "q_min": 1.0}])
                continue
            # curve: constant v; dip: v above the level it falls to at once (steps 0..10)
            curve = [(0, v), (1, v)] if kind == "curve" else [(0, 50.0 + v)] + [(t, 50.0) for t in range(1, 11)]
            for step, value in curve:
                row = rows.setdefault((env, dataset, method, seed, step), {})
                if column in row:
                    raise ValueError(f"{method} on {env} {dataset}: two truths for {column}")
                row[column] = value
    frame = pd.DataFrame([{"env": e, "dataset": d, "method": m, "seed": s, "step": t, "phase": "online", **values}
                          for (e, d, m, s, t), values in rows.items()])
    return frame, {k: pd.DataFrame(v).drop_duplicates(["label", "seed", "t"]) for k, v in traces.items()}


def claim_scenarios(claim: CL.Claim, grid: dict) -> list[str]:
    """The scenarios that differ for this claim (no_effect is at_threshold where every difference's threshold is 0)."""
    out = []
    for scenario in CLAIM_SCENARIOS:
        if all(claim_truth(claim, grid, scenario) != claim_truth(claim, grid, other) for other in out):
            out.append(scenario)
    return out


def claim_verdicts(claims: CL.Claims, claim_id: str, grid: dict, scenario: str, n: int, draws: int, reps: int,
                   seed: int = 0) -> dict[str, int]:
    """How often each verdict of one claim comes out over `draws` simulated studies of n seeds per cell."""
    claim = next(c for c in claims.claims if c.id == claim_id)
    truth = claim_truth(claim, grid, scenario)
    one = CL.Claims(min(claims.min_seeds, n), (claim,), claims.path, claims.interval)
    rng = np.random.default_rng([seed, n, CLAIM_SCENARIOS.index(scenario), int.from_bytes(claim_id.encode(), "big")])
    counts = {v: 0 for v in CL.VERDICTS}
    for draw in range(draws):
        scores, traces = claim_tables(truth, rng, n)
        ev = CL.StudyEvidence("sim", scores, traces, grid)
        counts[CL.evaluate_claims(one, {claim.pipeline: ev}, scale="sim", reps=reps, seed=draw)[0]["verdict"]] += 1
    return counts


def paper_grids(config: str = "config/config.yaml") -> dict[str, dict]:
    """{pipeline: its study's envs and datasets} at paper scale: the tasks each claim's checks range over."""
    from wmaug.core import config as C

    cfg = C.load_config(config, "paper")
    out = {}
    for study, spec in cfg["studies"].items():
        out.setdefault(spec["pipeline"], {"envs": list(spec["envs"]), "datasets": list(spec["datasets"])})
    return out


def false_rates(counts: dict[str, int], draws: int) -> dict:
    """The rates of false `supported` and false `contradicted`, each with its 95% Wilson interval."""
    row = {}
    for v in ("supported", "contradicted"):
        lo, hi = wilson(counts[v], draws)
        row[f"false_{v}"] = counts[v] / draws
        row[f"false_{v}_ci"] = f"[{lo:.3f}, {hi:.3f}]"
    return row


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p, z = k / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples per interval (paper scale: 2000)")
    parser.add_argument("--scenarios", nargs="+", default=["level_at_threshold", "difference_null", "aggregate_null"])
    parser.add_argument("--interval", default="calibrated", choices=CL.INTERVALS,
                        help="calibrated: the audit's (Bonferroni over the check's intervals, t with the bootstrap's "
                             "standard error); percentile: rliable's 95%% percentile interval, as before 2026-12-04")
    parser.add_argument("--out", default="benchmarks/results/claims_calibration.csv")
    parser.add_argument("--claims", nargs="*", default=None, metavar="ID",
                        help="measure whole claims of config/claims.yaml instead of the scenarios (no ID: all), "
                             "through evaluate_claims, under at_threshold and no_effect")
    args = parser.parse_args(argv)
    if args.claims is not None:
        return measure_claims(args)
    out_rows = []
    for name in args.scenarios:
        check, tasks, methods = scenario(name)
        for n in args.seeds:
            rng = np.random.default_rng(1000 + n)
            counts = {v: 0 for v in CL.VERDICTS}
            t0 = time.time()
            for draw in range(args.draws):
                ev = CL.StudyEvidence("s", scores(rng, tasks, methods, n), {},
                                      {"envs": sorted({e for e, _ in tasks}), "datasets": sorted({d for _, d in tasks})})
                check_tasks = CL.Check(**{**check.__dict__, "tasks": tuple(tasks)})
                m = len(tasks) if check.scope == "per_task" else 1  # the intervals this verdict rests on
                r = CL.evaluate_check(check_tasks, ev, min_seeds=min(3, n), reps=args.reps, seed=draw, key=(name,),
                                      interval=args.interval, m=m)
                counts[r["verdict"]] += 1
            row = {"scenario": name, "interval": args.interval, "seeds": n, "draws": args.draws, "reps": args.reps,
                   **false_rates(counts, args.draws)}
            out_rows.append(row)
            print(f"{name:<20} seeds {n:>2}: false supported {row['false_supported']:.3f} "
                  f"{row['false_supported_ci']}, false contradicted {row['false_contradicted']:.3f} "
                  f"{row['false_contradicted_ci']} ({time.time() - t0:.0f} s)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(out_rows).to_csv(args.out, index=False)


def measure_claims(args) -> None:
    claims = CL.load_claims(Path(__file__).resolve().parent.parent / "config" / "claims.yaml")
    if args.interval != claims.interval:
        claims = CL.Claims(claims.min_seeds, claims.claims, claims.path, args.interval)
    grids = paper_grids(str(Path(__file__).resolve().parent.parent / "config" / "config.yaml"))
    out_rows = []
    for claim in claims.claims:
        if args.claims and claim.id not in args.claims:
            continue
        grid = grids[claim.pipeline]
        for scenario in claim_scenarios(claim, grid):
            for n in args.seeds:
                t0 = time.time()
                counts = claim_verdicts(claims, claim.id, grid, scenario, n, args.draws, args.reps)
                row = {"claim": claim.id, "scenario": scenario, "interval": args.interval, "seeds": n,
                       "draws": args.draws, "reps": args.reps, "intervals": CL.intervals_in(claim, grid),
                       **false_rates(counts, args.draws)}
                out_rows.append(row)
                print(f"{claim.id} {scenario:<12} seeds {n:>2}: false supported {row['false_supported']:.3f}, "
                      f"false contradicted {row['false_contradicted']:.3f} ({time.time() - t0:.0f} s)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(out_rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
