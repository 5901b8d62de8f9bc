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
        counts[CL.evaluate_check(check, ev, 3, 100, draw, (scenario,), "calibrated", m)["verdict"]] += 1  # 100 resamples: a standard error
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


def test_seeds_to_decide_is_the_smallest_n_the_normal_approximation_allows():
    from scipy import stats

    from wmaug.report import claims as CL

    chk = CL.Check("level", CL.Side("td3"), "final", {}, ">", 0.0)
    spread, n_obs, m = 2.0, 3, 4
    q = lambda n: stats.t.ppf(1 - 0.05 / (2 * m), n - 1)  # noqa: E731
    half = q(n_obs) * spread / np.sqrt(n_obs)
    est = {"value": 1.0, "lo": 1.0 - half, "hi": 1.0 + half, "n_seeds_x": n_obs, "n_seeds_y": None}
    n = CL.seeds_to_decide(est, chk, m, "calibrated")
    assert (q(n) + 0.8416) * spread / np.sqrt(n) <= 1.0 < (q(n - 1) + 0.8416) * spread / np.sqrt(n - 1)
    assert CL.seeds_to_decide({**est, "value": 0.0}, chk, m, "calibrated") is None  # on the threshold
    assert CL.seeds_to_decide({**est, "n_seeds_x": 1, "lo": 1.0, "hi": 1.0}, chk, m, "calibrated") is None


@pytest.mark.slow  # 300 simulated audits
def test_at_the_seeds_it_names_a_check_is_decided_about_80_percent_of_the_time():
    """Truth = an effect of 0.5 with sd 1 per run: 3 seeds leave the check inconclusive; at the seeds the truth's
    numbers give, 300 simulated audits decide it (supported) in 70-95% of draws (80% aimed at; the normal
    approximation's and the simulation's tolerance)."""
    import claims_calibration as cal

    from wmaug.report import claims as CL

    chk = CL.Check("level", CL.Side("wm_td3bc_td3"), "final", {}, ">", 0.0, tasks=(("hopper", "medium"),))
    rng = np.random.default_rng(0)
    tasks = [("hopper", "medium")]

    def audit(n, draw):
        ev = CL.StudyEvidence("s", cal.scores(rng, tasks, {"wm_td3bc_td3": 0.5}, n), {}, {})
        return CL.evaluate_check(chk, ev, 3, 300, draw, ("power",), "calibrated", 1)

    first = audit(3, 0)
    needed = first["seeds_needed"] if first["verdict"] == "inconclusive" else None
    # the observed effect and spread of one draw are noisy: use the truth's own numbers for the seeds named
    from scipy import stats

    half = stats.t.ppf(0.975, 1) * 1.0 / np.sqrt(2)  # the interval 2 seeds of sd 1 would give
    n_true = CL.seeds_to_decide({"value": 0.5, "lo": 0.5 - half, "hi": 0.5 + half, "n_seeds_x": 2, "n_seeds_y": None},
                                chk, 1, "calibrated")
    assert needed is None or needed >= 3
    decided = sum(audit(n_true, d)["verdict"] == "supported" for d in range(300)) / 300
    assert 0.70 <= decided <= 0.95, (n_true, decided)
