"""Power and error rates of the claims audit, measured by simulation through its own code (`evaluate_claims`, the
function `wmaug claims` runs on the report's tables).

Each draw is one simulated study for one claim of config/claims.yaml, on the paper-scale grid, at the papers' seeds
(paper A 5 per cell, paper B 4; `--seeds` for others). Every cell a check reads gets, per seed, a value of the
check's metric drawn normal with the cell's true mean and sd 1 (one seed standard deviation = 1 unit); a cell read
by several checks is drawn once per study. The audit reads those values through `StudyEvidence.runs`, so everything
after the per-run metric is the audit's own code: estimates, bootstrap standard errors, tests, quantifiers, claim
verdicts. (How a curve becomes a per-run metric is tested on its own: tests/test_claims.py.)

Scenarios, per claim (E: the claimed effect, 1 seed SD for a claim over 4 or more tasks, 2 SD over 1-3 tasks):
  true            every check shows its claimed effect at E on every task it covers; the right verdict: supported
                  (its rate is the power), a `contradicted` is false
  boundary        every check exactly on its threshold: a `supported` is false
  boundary_one    one check on its threshold on every task, the others true at E (the least favourable case of an
                  intersection-union test: each check alone keeps the claim's false `supported` at 5%); one row per
                  check
  opposing        every check E on the wrong side of its threshold: a `supported` is false (a `contradicted` is right)
  share_boundary  for a check over a share of tasks (most, nearly all, all; 2+ tasks), the effect E on one task fewer
                  than the share needs and the threshold on the rest, the other checks true: the claim is false, by
                  one task (reported, not bounded: docs/claims.md, "What the share quantifiers test")
`within` checks: true = E inside the margin, boundary = on the margin, opposing = E outside.

    python benchmarks/claims_calibration.py --draws 1000 --out benchmarks/claims_power_after.csv
    python benchmarks/claims_calibration.py --claims B1 A2 --scenarios true boundary --draws 200

The "before" table of docs/claims.md ran this script against the audit of 2026-12-05 (commit 773548a: Bonferroni over
every interval of a claim) with that commit's claims file: PYTHONPATH=<a checkout of it> python <this script>.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # a PYTHONPATH checkout (the "before" audit) comes first

from wmaug.report import claims as CL  # noqa: E402

SCENARIOS = ("true", "boundary", "boundary_one", "opposing", "share_boundary")
PAPER_SEEDS = {"A": 5, "B": 4}


# --------------------------------------------------------------------------- the truth of a scenario
def _side_metric(check, side) -> tuple[str, tuple]:
    metric = getattr(side, "metric", None)
    name, params = (metric, side.params) if metric is not None else (check.metric, check.params)
    return name, tuple(sorted(params.items()))


def cell_key(check, side, env: str, dataset: str) -> tuple:
    """What identifies one simulated cell's per-run values: method, env, dataset, curve column, metric."""
    return (side.method, env, side.dataset or dataset, side.column, *_side_metric(check, side))


def claim_tasks(claim, grid: dict) -> set:
    return {t for c in claim.checks for t in CL.check_tasks(c, grid)}


def claimed_effect(claim, grid: dict) -> float:
    """The issue's bars: 1 seed SD for a claim over 4 or more tasks, 2 SD over 1-3."""
    return 1.0 if len(claim_tasks(claim, grid)) >= 4 else 2.0


def _direction(check) -> float:
    return 1.0 if check.op in (">", ">=") else -1.0


def constraints(claim, grid: dict, margins: list) -> list[tuple]:
    """(x key, y key or None, target) per check and task: the statistic's truth must sit `margins[i][task]` on the
    claimed side of check i's threshold (at least: other checks may move a shared cell further)."""
    out = []
    for i, check in enumerate(claim.checks):
        threshold = check.threshold
        if check.check == "improvement_probability":  # P(x > y) = 1/2 is a shift of 0 between the sides
            if threshold != 0.5:
                raise ValueError(f"{claim.id}: P(x > y) sits on {threshold} only at an unknown shift")
            threshold = 0.0
        for t, (env, ds) in enumerate(CL.check_tasks(check, grid)):
            margin = margins[i][t]
            x = cell_key(check, check.x, env, ds)
            y = cell_key(check, check.y, env, ds) if check.y is not None else None
            if check.op == "within":  # the difference sits `margin` inside the band (on its upper side)
                out.append((x, y, threshold - margin))
            else:
                out.append((x, y, threshold + _direction(check) * margin))
    return out


def solve_truth(claim, grid: dict, margins: list, base: float = 50.0) -> dict:
    """Cell means meeting every constraint: a level fixes its cell; a difference fixes one side from the other.
    Constraints are met in order, levels first; where both cells are already fixed, a check short of its margin
    (a margin >= 0: at least that far on the claimed side; < 0: at least that far on the other) moves its y side
    (a larger effect than asked may stand; `verify` then checks every constraint)."""
    truth: dict[tuple, float] = {}
    rows = constraints(claim, grid, margins)
    flat = [m for ms in margins for m in ms]
    pending = sorted(range(len(rows)), key=lambda k: rows[k][1] is not None)
    for _ in range(len(rows) + 1):
        left = []
        for k in pending:
            x, y, target = rows[k]
            sign = _direction(_check_of(claim, grid, k)) if _check_of(claim, grid, k).op != "within" else 1.0
            short = (lambda value: sign * (value - target) < 0) if flat[k] >= 0 else \
                (lambda value: sign * (value - target) > 0)
            if y is None:
                if x not in truth or short(truth[x]):
                    truth[x] = target
            elif x in truth and y in truth:
                if short(truth[x] - truth[y]):
                    truth[y] = truth[x] - target
            elif x in truth:
                truth[y] = truth[x] - target
            elif y in truth:
                truth[x] = truth[y] + target
            else:
                left.append(k)
        if not left:
            break
        truth[rows[left[0]][1]] = base  # anchor an unconnected pair
        pending = left
    return truth


def _check_of(claim, grid: dict, k: int):
    for check in claim.checks:
        n = len(CL.check_tasks(check, grid))
        if k < n:
            return check
        k -= n
    raise IndexError(k)


def scenario_margins(claim, grid: dict, scenario: str, effect: float, which: int = 0) -> list | None:
    """Per check, per task: how far on the claimed side its truth sits. None: the scenario does not apply."""
    sizes = [len(CL.check_tasks(c, grid)) for c in claim.checks]
    if scenario == "true":
        return [[effect] * n for n in sizes]
    if scenario == "boundary":
        return [[0.0] * n for n in sizes]
    if scenario == "opposing":
        return [[-effect] * n for n in sizes]
    if scenario == "boundary_one":
        return [[0.0 if i == which else effect] * n for i, n in enumerate(sizes)]
    if scenario == "share_boundary":
        check = claim.checks[which]
        n = sizes[which]
        if check.scope != "per_task" or n < 2 or check.over_tasks == "any":
            return None
        need = CL.need_of(check.over_tasks, n) if hasattr(CL, "need_of") else _need(check.over_tasks, n)
        return [[(effect if t < need - 1 else 0.0) for t in range(k)] if i == which else [effect] * k
                for i, k in enumerate(sizes)]
    raise ValueError(scenario)


def _need(quantifier: str, n: int) -> int:
    return {"any": 1, "most": n // 2 + 1}.get(quantifier, math.ceil(CL.QUANTIFIERS[quantifier] * n - 1e-9))


def verify(claim, grid: dict, truth: dict, margins: list) -> None:
    """Each check's true statistic is at least its margin on the claimed side (a negative margin: at least that far on
    the other side); a check on its threshold sits exactly
    there on enough tasks that it is false (all but need - 1 of them; where other checks' cells push a task past
    it, that task may sit beyond): the truth is what the scenario says. Returns whether every task asked to sit on
    its threshold does (False: a partial boundary, the check false but some of its tasks past the threshold)."""
    exact = True
    for i, check in enumerate(claim.checks):
        tasks = CL.check_tasks(check, grid)
        on_threshold = 0
        for t, (env, ds) in enumerate(tasks):
            x = truth[cell_key(check, check.x, env, ds)]
            stat = x - truth[cell_key(check, check.y, env, ds)] if check.y is not None else x
            threshold = 0.0 if check.check == "improvement_probability" else check.threshold
            gap = (threshold - abs(stat)) if check.op == "within" else _direction(check) * (stat - threshold)
            want = margins[i][t]
            if (gap < want - 1e-9) if want >= 0 else (gap > want + 1e-9):
                raise ValueError(f"{claim.id} check {i + 1}: {env} {ds} shows {gap:+g}, the scenario asks {want:+g}")
            on_threshold += want == 0.0 and math.isclose(gap, 0.0, abs_tol=1e-9)
        asked = sum(m == 0.0 for m in margins[i])
        if asked and on_threshold < min(asked, len(tasks) - _need(check.over_tasks, len(tasks)) + 1):
            raise Infeasible(f"{claim.id} check {i + 1}: other checks push all but {on_threshold} of its tasks off "
                             f"the threshold; it would hold")
        if on_threshold < asked:
            exact = False
    return exact


class Infeasible(ValueError):
    """The scenario cannot be built for this claim: its other checks, true, make the chosen check hold too."""


# --------------------------------------------------------------------------- simulated evidence
class SimulatedEvidence(CL.StudyEvidence):
    """A study whose per-run metric values are drawn from the truth: N(mean, 1) per seed, once per cell."""

    def __init__(self, truth: dict, rng: np.random.Generator, n: int, grid: dict):
        super().__init__("sim", None, {}, grid)
        self.truth, self.rng, self.n, self.drawn = truth, rng, n, {}

    def runs(self, side, env, dataset, metric, params):
        key = (side.method, env, dataset, side.column, metric, tuple(sorted(params.items())))
        if key not in self.drawn:
            if key not in self.truth:
                raise KeyError(f"no truth for {key}")
            self.drawn[key] = self.rng.normal(self.truth[key], 1.0, self.n)
        return self.drawn[key]


def simulate(claims, claim, grid: dict, scenario: str, n: int, draws: int, reps: int, which: int = 0,
             seed: int = 0, effect: float | None = None) -> dict | None:
    """Verdict counts of `claim` over `draws` simulated studies of the scenario (at the claim's bar E, or
    `effect` SD); None if it does not apply."""
    effect = claimed_effect(claim, grid) if effect is None else effect
    margins = scenario_margins(claim, grid, scenario, effect, which)
    if margins is None:
        return None
    truth = solve_truth(claim, grid, margins)
    try:
        exact = verify(claim, grid, truth, margins)
    except Infeasible as err:
        print(f"  skipped: {err}", flush=True)
        return None
    one = CL.Claims(min(claims.min_seeds, n), (claim,), claims.path, claims.interval)
    rng = np.random.default_rng([seed, n, SCENARIOS.index(scenario), which, int.from_bytes(claim.id.encode(), "big"),
                                 int(round(effect * 100))])
    counts = {v: 0 for v in CL.VERDICTS}
    for draw in range(draws):
        ev = SimulatedEvidence(truth, rng, n, grid)
        counts[CL.evaluate_claims(one, {claim.pipeline: ev}, scale="paper", reps=reps, seed=draw)[0]["verdict"]] += 1
    return {"effect_sd": effect, "tasks": len(claim_tasks(claim, grid)), "exact": exact, **counts}


def paper_grids(config: str = str(ROOT / "config" / "config.yaml")) -> dict[str, dict]:
    """{pipeline: its study's envs and datasets} at paper scale: the tasks each claim's checks range over."""
    from wmaug.core import config as C

    cfg = C.load_config(config, "paper")
    out = {}
    for study, spec in cfg["studies"].items():
        out.setdefault(spec["pipeline"], {"envs": list(spec["envs"]), "datasets": list(spec["datasets"])})
    return out


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p, z = k / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _row(claim, scenario: str, check, n: int, draws: int, reps: int, counts: dict) -> dict:
    row = {"claim": claim.id, "scenario": scenario, "check": check, "seeds": n, "draws": draws, "reps": reps,
           **counts}
    for v in ("supported", "contradicted", "inconclusive"):
        row[f"{v}_rate"] = counts[v] / draws
        lo, hi = wilson(counts[v], draws)
        row[f"{v}_ci"] = f"[{lo:.3f}, {hi:.3f}]"
    return row


def measure(claims, ids, scenarios, seeds, draws: int, reps: int, out: str | None,
            detectable: bool = False) -> pd.DataFrame:
    """Every scenario of every claim (rows written to `out` as each finishes). `detectable`: for a claim whose
    power at its bar falls short of 80%, the smallest effect (steps of 0.25 SD, up to 6) that reaches it, as
    scenario `detectable` rows."""
    grids = paper_grids()
    rows = []

    def add(row: dict) -> None:
        rows.append(row)
        print(f"{row['claim']:<4} {row['scenario']:<15}{row['check']!s:>2} seeds {row['seeds']}, effect "
              f"{row['effect_sd']:g} SD: supported {row['supported_rate']:.3f}, contradicted "
              f"{row['contradicted_rate']:.3f}", flush=True)
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(out, index=False)

    for claim in claims.claims:
        if ids and claim.id not in ids:
            continue
        grid = grids[claim.pipeline]
        for n in seeds or [PAPER_SEEDS[claim.paper]]:
            power = None
            for scenario in scenarios:
                per_check = scenario in ("boundary_one", "share_boundary")
                for which in range(len(claim.checks) if per_check else 1):
                    counts = simulate(claims, claim, grid, scenario, n, draws, reps, which)
                    if counts is None:
                        continue
                    add(_row(claim, scenario, which + 1 if per_check else "", n, draws, reps, counts))
                    if scenario == "true":
                        power = counts["supported"] / draws
            effect = claimed_effect(claim, grid)
            while detectable and power is not None and power < 0.8 and effect < 6:
                effect += 0.25
                counts = simulate(claims, claim, grid, "true", n, draws, reps, effect=effect)
                power = counts["supported"] / draws
                add(_row(claim, "detectable", "", n, draws, reps, counts))
    return pd.DataFrame(rows)


def power_table(frame: pd.DataFrame) -> str:
    """The docs' table, one row per claim and seed count: its bar, power there (and the smallest effect reaching
    80% where it falls short), false `contradicted` when true, false `supported` on the boundary (all checks; the
    worst single check), opposing, and the share boundary's rate (reported, not bounded)."""
    out = ["| claim | tasks | seeds | bar (SD) | supported when true | contradicted when true | supported on the "
           "boundary: all checks / worst check | supported when opposed | supported at the share boundary "
           "(worst check) |", "|---|---|---|---|---|---|---|---|---|"]
    for (claim, n), g in frame.groupby(["claim", "seeds"], sort=False):
        def rate(scenario: str, verdict: str, exact_only: bool = False) -> str:
            rows = g[g["scenario"] == scenario]
            if exact_only and "exact" in rows:
                rows = rows[rows["exact"].astype(bool)]
            return "-" if rows.empty else f"{rows[f'{verdict}_rate'].max():.1%}"

        true = g[g["scenario"] == "true"].iloc[0]
        power = f"{true['supported_rate']:.1%}"
        searched = g[g["scenario"] == "detectable"]
        reached = searched[searched["supported_rate"] >= 0.8]
        if true["supported_rate"] < 0.8 and not searched.empty:
            power += (f" (80% at {reached['effect_sd'].min():g} SD)" if not reached.empty else
                      " (80% not reached by 6 SD)")
        out.append(f"| {claim} | {true['tasks']} | {n} | {true['effect_sd']:g} | {power} | "
                   f"{rate('true', 'contradicted')} | {rate('boundary', 'supported')} / "
                   f"{rate('boundary_one', 'supported', True)} | {rate('opposing', 'supported')} | "
                   f"{rate('share_boundary', 'supported')} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", nargs="*", default=None, metavar="ID", help="claims to measure (default: all)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--seeds", type=int, nargs="*", default=None,
                        help="seeds per cell (default: the paper's, A 5 and B 4)")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=200, help="bootstrap resamples per standard error")
    parser.add_argument("--claims-file", default=str(ROOT / "config" / "claims.yaml"))
    parser.add_argument("--detectable", action="store_true",
                        help="for a claim short of 80%% power at its bar, find the smallest effect that reaches it")
    parser.add_argument("--out", default="benchmarks/results/claims_power.csv")
    parser.add_argument("--table", metavar="CSV", help="print the docs' markdown table of a finished CSV and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(power_table(pd.read_csv(args.table)))
        return
    claims = CL.load_claims(args.claims_file)
    measure(claims, args.claims, args.scenarios, args.seeds, args.draws, args.reps, args.out, args.detectable)


if __name__ == "__main__":
    main()
