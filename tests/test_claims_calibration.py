"""The claims audit's false-verdict rates, measured through its own code (`evaluate_check`, rliable's bootstrap):
with the truth exactly on a check's threshold, a verdict other than `inconclusive` is wrong. At 5 seeds per cell each
side's rate must stay at or below 5% (tolerance: the 1,000-draw estimate itself; the expected rates are about 1-3%,
benchmarks/claims_calibration.py), for a one-task level check, a 12-task per-task difference check (claim A2's shape)
and a 12-task pooled difference check."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.mark.slow  # 3,000 simulated audits
@pytest.mark.parametrize("scenario", ["level_at_threshold", "difference_null", "aggregate_null"])
def test_false_verdicts_stay_at_or_below_5_percent_at_5_seeds(scenario):
    import claims_calibration as cal

    from wmaug.report import claims as CL

    check, tasks, methods = cal.scenario(scenario)
    check = CL.Check(**{**check.__dict__, "tasks": tuple(tasks)})
    m = len(tasks) if check.scope == "per_task" else 1
    rng = np.random.default_rng(5)
    counts = {v: 0 for v in CL.VERDICTS}
    draws = 1000
    for draw in range(draws):
        ev = CL.StudyEvidence("s", cal.scores(rng, tasks, methods, 5), {}, {})
        counts[CL.evaluate_check(check, ev, 3, 200, draw, (scenario,), "calibrated", m)["verdict"]] += 1
    assert counts["supported"] / draws <= 0.05 and counts["contradicted"] / draws <= 0.05, counts
    assert counts["not run"] == 0


@pytest.mark.slow  # 200 simulated audits
def test_the_percentile_interval_it_replaces_undercovers_at_3_seeds():
    """Why the audit changed: rliable's 95% percentile interval, one task, truth on the threshold, 3 seeds, gives
    a false verdict far more often than 5% (11.7% + 14.8% measured over 1,000 draws; here 200 draws, bar 10%)."""
    import claims_calibration as cal

    from wmaug.report import claims as CL

    check, tasks, methods = cal.scenario("level_at_threshold")
    check = CL.Check(**{**check.__dict__, "tasks": tuple(tasks)})
    rng = np.random.default_rng(3)
    wrong = 0
    for draw in range(200):
        ev = CL.StudyEvidence("s", cal.scores(rng, tasks, methods, 3), {}, {})
        wrong += CL.evaluate_check(check, ev, 3, 200, draw, ("p",), "percentile", 1)["verdict"] != "inconclusive"
    assert wrong / 200 > 0.10, wrong
