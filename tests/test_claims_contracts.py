"""The claims audit's arithmetic and bookkeeping pinned where the verdict tests in tests/test_claims.py let a
mutant through (docs/testing.md, "Mutation scores"): both p-values of every test form, a reproducible and
correctly stated interval, the correlation sum's edge case, when seeds-to-decide is given, and the fields each
claim's entry carries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import yaml

from conftest import ROOT
from test_claims import check, curve_rows, evidence, seeds, verdict
from wmaug.core import config as C
from wmaug.report import claims as CL
from wmaug.report.claims_file import Claim, Claims


@pytest.mark.parametrize("op, value, thr, expected", [
    (">", 1.0, 0.0, lambda t: (t.sf(1.0), t.cdf(1.0))),
    ("<", 1.0, 0.0, lambda t: (t.cdf(1.0), t.sf(1.0))),
    # within +/-1 at 3.0 (se 0.5): inside = the larger of two one-sided p's; outside = twice the smaller one
    ("within", 3.0, 1.0, lambda t: (max(t.sf((3.0 + 1.0) / 0.5), t.sf((1.0 - 3.0) / 0.5)),
                                    min(1.0, 2 * min(t.sf((3.0 - 1.0) / 0.5), t.sf((-1.0 - 3.0) / 0.5))))),
    ("within", -1.5, 1.0, lambda t: (max(t.sf((-1.5 + 1.0) / 0.5), t.sf((1.0 + 1.5) / 0.5)),
                                     min(1.0, 2 * min(t.sf((-1.5 - 1.0) / 0.5), t.sf((-1.0 + 1.5) / 0.5))))),
])
def test_one_sided_p_values_are_students_t_on_both_sides(op, value, thr, expected):
    se = 1.0 if op != "within" else 0.5
    got = CL.one_sided_p(check("level", "m", op=op, threshold=thr), value, se, 7.0)
    np.testing.assert_allclose(got, expected(scipy.stats.t(7.0)), rtol=1e-9)


def test_a_bootstrap_estimate_is_reproducible_and_states_its_level():
    """The IQM's standard error is a bootstrap's: the same seed and key give the same interval; the interval is
    value +/- t(1 - ALPHA, df) se, at level 1 - 2 ALPHA."""
    chk = check("difference", "x", "y", estimator="iqm")
    rng = np.random.default_rng(0)
    x, y = rng.normal(5, 1, 5), rng.normal(4, 1, 5)
    a = CL._estimate(chk, [x], [y], 200, 3, ("k",))
    b = CL._estimate(chk, [x], [y], 200, 3, ("k",))
    assert a == b and a["se"] > 0
    assert a["level"] == pytest.approx(1 - 2 * CL.ALPHA)
    half = scipy.stats.t(a["df"]).ppf(1 - CL.ALPHA) * a["se"]
    assert (a["lo"], a["hi"]) == pytest.approx((a["value"] - half, a["value"] + half))


def test_an_estimate_without_spread_adds_no_correlation():
    cell = [(("m", "hopper", "medium-expert"), -1, 0.5)]
    rows = [{"se": 0.0, "cells": cell}, {"se": 1.0, "cells": cell}]
    assert CL.correlation_sum(rows) == 2.0


def test_seeds_to_decide_are_given_only_when_every_task_ran():
    """An inconclusive check over all its tasks says how many seeds would decide it; with a task missing the
    question is different (more tasks, not more seeds)."""
    grid = {"envs": ["hopper", "ant"], "datasets": ["random"]}
    chk = check("level", "m", op=">", threshold=50.0)
    both = evidence(curve_rows("hopper", "random", "m", seeds(51, 3)), curve_rows("ant", "random", "m", seeds(51, 3)),
                    grid=grid)
    res = verdict(chk, both)
    assert res["verdict"] == "inconclusive" and "seeds_needed" in res
    one = evidence(curve_rows("hopper", "random", "m", seeds(51, 3)), grid=grid)
    res = verdict(chk, one)
    assert res["verdict"] == "inconclusive" and "seeds_needed" not in res


def test_each_claims_entry_carries_its_sentence_and_its_seeds_to_decide():
    grid = {"envs": ["hopper"], "datasets": ["random"]}
    claim = Claim("A9", "A", "fig3", "m beats 50", (check("level", "m", op=">", threshold=50.0, estimator="iqm"),),
                  quote="the paper's words", where="Sec. 9", detectable_sd=2.5)
    other = Claim("B9", "B", "fig4a", "n beats 0", (check("level", "n", op=">", threshold=0.0),))
    ev = evidence(curve_rows("hopper", "random", "m", seeds(51, 3)), grid=grid)
    out = {r["id"]: r for r in CL.evaluate_claims(Claims(3, (claim, other)), {"wmaug": ev}, scale="smoke", reps=100)}
    a = out["A9"]
    assert (a["quote"], a["where"], a["detectable_sd"], a["scale"]) == ("the paper's words", "Sec. 9", 2.5, "smoke")
    assert a["verdict"] == "inconclusive" and a["seeds_needed"] == a["checks"][0]["seeds_needed"] >= 3
    assert a["checks"][0]["tasks"][0]["se"] > 0  # the bootstrap ran with the reps given
    assert out["B9"]["verdict"] == "not run" and "balanced_replay" in out["B9"]["why"]


def test_study_evidence_reads_paper_as_critic_traces_by_task(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["scale"] = "smoke"
    cfg["scales"]["smoke"].update(results_dir=str(tmp_path / "results"), figures_dir=str(tmp_path / "figures"))
    cfg = C.validate(cfg)
    (tmp_path / "results" / "wmaug").mkdir(parents=True)
    rows = curve_rows("hopper", "random", "m", seeds(1, 1))
    evidence(rows).scores.assign(study="wmaug").to_csv(tmp_path / "results" / "wmaug" / "scores.csv", index=False)
    job = C.critic_trace_jobs(cfg, "wmaug")[0]
    path = Path(C.critic_trace_path(cfg, "wmaug", job["env"], job["dataset"]))
    assert path.is_relative_to(tmp_path)  # under the results_dir above
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("label,seed,t,q_min\nm,0,0,1.0\n")
    ev = CL.study_evidence(cfg, "wmaug", tmp_path / "figures")
    assert list(ev.critic_traces) == [(job["env"], job["dataset"])]
