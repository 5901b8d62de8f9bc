"""`wmaug plan`: the jobs a DAG (or a claim) needs and their cost, before anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wmaug.core import config as C
from wmaug.core.errors import InputError
from wmaug.report.plan import cells_of, jobs_of, plan

from conftest import ROOT

CLAIMS = ROOT / "config" / "claims.yaml"


def paper_config() -> dict:
    return C.load_config(ROOT / "config" / "config.yaml", "paper")


def test_a_claim_plans_only_the_cells_its_checks_read_and_what_they_need():
    """A6 reads actor-only hand-offs on ant medium-replay: wm_actor_only and td3bc_actor_only, every seed, plus
    their world models (wm_actor_only augments), samples, the dataset and its behaviour policy."""

    cfg = paper_config()
    cells, traces = cells_of(cfg, ["A6"], CLAIMS)
    seeds = C.study_seeds(cfg, "wmaug")
    assert {(c["env"], c["dataset"], c["method"]) for c in cells} == {
        ("ant", "medium-replay", m) for m in ("wm_actor_only", "td3bc_actor_only")}
    assert len(cells) == 2 * seeds and not traces
    p = plan(cfg, ["A6"], claims_file=CLAIMS)
    rules = {rule: r["jobs"] for rule, r in p["rules"].items()}
    behaviour_runs = len(C.scale_cfg(cfg)["behaviour_seeds"])  # one env's runs, the datasets' strongest picked later
    assert rules == {"behaviour_run": behaviour_runs, "behaviour": 1, "dataset": 1, "subsample": seeds, "world_model": seeds, "cell": 2 * seeds,
                     "report": 1, "claims": 1}
    assert p["total"]["hours"] > 0 and p["total"]["updates"] > 0


def test_every_claim_plans_a_part_of_the_grid_and_rates_can_come_from_a_speed_json():
    cfg = paper_config()
    whole = plan(cfg, claims_file=CLAIMS)
    from wmaug.report.claims import load_claims

    for claim in load_claims(CLAIMS).claims:
        p = plan(cfg, [claim.id], claims_file=CLAIMS)
        assert 0 < p["cells"] <= whole["cells"], claim.id
        assert p["total"]["hours"] <= whole["total"]["hours"], claim.id
    gpu = plan(cfg, ["A6"], device="cuda", rates_file=ROOT / "benchmarks" / "gpu" / "speed_gpu.json", claims_file=CLAIMS)
    table = plan(cfg, ["A6"], device="cuda", claims_file=CLAIMS)
    assert "speed_gpu.json" in gpu["rates"] and "config/rates.yaml" in table["rates"]
    assert gpu["total"]["hours"] == pytest.approx(table["total"]["hours"], rel=0.01)  # the table holds that JSON's rates


def test_the_wall_clock_estimate_schedules_stages_on_the_cores():
    """Stage by stage, longest first: one 4-hour job and four 1-hour ones on 2 cores take 4 hours; a second stage
    of two 1-hour jobs waits for the first, and on 1 core everything is sequential."""
    from wmaug.report.plan import wall_hours

    jobs = [(0, 4.0), (0, 1.0), (0, 1.0), (0, 1.0), (0, 1.0), (1, 1.0), (1, 1.0)]
    assert wall_hours(jobs, 2) == pytest.approx(5.0)
    assert wall_hours(jobs, 1) == pytest.approx(10.0)
    assert wall_hours(jobs, 8) == pytest.approx(5.0)  # the longest chain bounds it


def test_the_evidence_scale_costs_what_its_line_promises():
    """config.yaml's evidence scale: about 40 core-hours at the committed rates (issue 31), and its wall clock on 8
    cores under a day."""
    p = plan(C.load_config(ROOT / "config" / "config.yaml", "evidence"), claims_file=CLAIMS)
    assert p["total"]["hours"] <= 45 and p["wall_hours"] < 24, (p["total"]["hours"], p["wall_hours"])
    assert p["wall_hours"] >= p["total"]["hours"] / 8


def test_evaluation_episodes_are_priced_as_the_loops_run_them():
    """run_loop evaluates at step 0, every eval_every steps and at the last: an evidence-scale paper A cell (20K
    offline iterations, 50K online steps, every 2,500, 5 episodes) evaluates 9 + 21 times, 5 whole episodes each; a
    paper B cell (12K steps, every 1,000) 13 times, 5,000 steps each. At paper scale evaluation is about 77% of all
    environment steps (an outside analysis of the grid found the same share)."""
    from wmaug.report.plan import evaluations

    assert evaluations(50_000, 2_500) == 21 and evaluations(20_000, 2_500) == 9 and evaluations(12_000, 5_000) == 4
    cfg = C.load_config(ROOT / "config" / "config.yaml", "evidence")
    cells, traces = cells_of(cfg, None, CLAIMS)
    jobs = jobs_of(cfg, cells, traces, whole=True)
    assert jobs[("cell", "wmaug", "hopper", "random", "wm_td3bc_td3", 0)].eval_steps == (9 + 21) * 5 * 1000
    assert jobs[("cell", "wmaug", "hopper", "random", "td3", 0)].eval_steps == 21 * 5 * 1000  # no offline phase
    assert jobs[("cell", "balanced_replay", "halfcheetah", "random", "ours", 0)].eval_steps == 13 * 5000
    total = plan(paper_config(), claims_file=CLAIMS)["total"]
    assert 0.75 < total["eval_steps"] / (total["eval_steps"] + total["env_steps"]) < 0.8


def test_an_unknown_claim_is_named():
    with pytest.raises(InputError, match="'A66'.*A6"):
        plan(paper_config(), ["A66"], claims_file=CLAIMS)


@pytest.mark.slow  # starts Snakemake
def test_the_whole_plan_has_the_jobs_snakemake_plans():
    counts = {}
    for rule, n in snakemake_jobs("figures", "--config", "scale=paper").items():
        rule = "report" if rule.startswith("report_") else rule
        counts[rule] = counts.get(rule, 0) + n
    counts.pop("figures")
    p = plan(paper_config(), claims_file=CLAIMS)
    assert {rule: r["jobs"] for rule, r in p["rules"].items()} == counts


def snakemake_jobs(*args: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", *args, "--quiet", "rules"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    counts = {}
    for line in out.stdout.splitlines():  # the first "Job stats" table
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.slow  # starts Snakemake
def test_figures_for_named_claims_runs_their_targets_only():
    jobs = snakemake_jobs("figures", "--config", "scale=paper", "claims=[A6,B7]")
    assert jobs.pop("claim_A6") == jobs.pop("claim_B7") == jobs.pop("figures") == 1
    planned = plan(paper_config(), ["A6", "B7"], claims_file=CLAIMS)["rules"]
    assert jobs == {rule: r["jobs"] for rule, r in planned.items() if rule not in ("report", "claims")}


@pytest.mark.slow  # starts Snakemake
def test_a_claim_target_plans_only_what_its_checks_read():
    """`snakemake -n claim_A6` at paper scale: A6's 10 cells (two methods on ant medium-replay, 5 seeds) and what
    they need, nothing else; the same jobs `wmaug plan --claim A6` counts (its report is the claim's own job)."""
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "claim_A6", "--config", "scale=paper", "--quiet",
                          "rules"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    counts = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    planned = {rule: r["jobs"] for rule, r in plan(paper_config(), ["A6"], claims_file=CLAIMS)["rules"].items()}
    assert counts.pop("claim_A6") == 1
    assert counts == {k: v for k, v in planned.items() if k not in ("report", "claims")}
    assert counts["cell"] == 10


@pytest.mark.slow  # starts Snakemake
def test_a_dry_run_of_the_plan_target_prints_the_plan():
    """`snakemake -n plan` runs nothing, so the numbers come as the job's message: the same total line as `wmaug plan`."""
    from wmaug.report.plan import plan_text

    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "plan", "--config", "scale=paper"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    total = next(line for line in plan_text(plan(paper_config(), claims_file=CLAIMS)).splitlines()
                 if line.startswith("total"))
    assert total in out.stdout + out.stderr


def test_the_evidence_bookkeeping_times_finished_jobs_from_snakemakes_log(tmp_path):
    """benchmarks/evidence.py reads a job's start and end from Snakemake's log (its format as of 9.27) and finds the
    planner's estimate of the same job; a job that never finished is left out."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import evidence

    log = tmp_path / "run.snakemake.log"
    log.write_text("""Select jobs to execute...
[Mon Dec  7 15:52:04 2026]
localrule behaviour_run:
    output: resources/evidence/behaviour/ant/seed0.pt
    jobid: 57
    wildcards: env=ant, seed=0
[Mon Dec  7 15:52:04 2026]
localrule cell:
    output: results/evidence/wmaug/hopper/medium-expert/td3/seed0/summary.json
    jobid: 18
    wildcards: study=wmaug, env=hopper, dataset=medium-expert, method=td3, seed=0
[Mon Dec  7 16:37:10 2026]
Finished jobid: 57 (Rule: behaviour_run)
1 of 77 steps (1%) done
""")
    jobs = evidence.snakemake_jobs(log)
    assert len(jobs) == 1 and jobs[0]["rule"] == "behaviour_run"
    assert (jobs[0]["end"] - jobs[0]["start"]).total_seconds() == 45 * 60 + 6
    cfg = C.load_config(ROOT / "config" / "config.yaml", "evidence")
    cells, traces = cells_of(cfg, None, CLAIMS)
    planned = jobs_of(cfg, cells, traces, whole=True)
    assert evidence.planner_key(jobs[0]) == ("behaviour_run", "ant", 0) in planned
    cell = {"rule": "cell", "wildcards": {"study": "wmaug", "env": "hopper", "dataset": "medium-expert",
                                          "method": "td3", "seed": "0"}}
    assert evidence.planner_key(cell) in planned
