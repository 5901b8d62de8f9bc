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
    args = parser.parse_args(argv)
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
            row = {"scenario": name, "interval": args.interval, "seeds": n, "draws": args.draws, "reps": args.reps}
            for v in ("supported", "contradicted"):
                lo, hi = wilson(counts[v], args.draws)
                row[f"false_{v}"] = counts[v] / args.draws
                row[f"false_{v}_ci"] = f"[{lo:.3f}, {hi:.3f}]"
            out_rows.append(row)
            print(f"{name:<20} seeds {n:>2}: false supported {row['false_supported']:.3f} "
                  f"{row['false_supported_ci']}, false contradicted {row['false_contradicted']:.3f} "
                  f"{row['false_contradicted_ci']} ({time.time() - t0:.0f} s)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(out_rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
