"""The SLURM profile against a real one-node SLURM (tests/slurm/start.sh): a cell goes through sbatch to COMPLETED,
and survives the faults a cluster deals out (preemption, its time limit, its node dying, the Snakemake that submitted
it killed) with a result byte-identical to the same cell run locally with the same threads; two cells go as one job
array. CI runs the run-through only (WMAUG_SLURM_TESTS=run-through, in .ci/run).

Each test prints what SLURM did and what the harness did (`pytest -s` shows it; docs/running.md has the table).
Skipped, with the reason, where SLURM cannot be started (not root, no apt, no Debian package)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

SLURM = ROOT / "tests" / "slurm"
CELL = "results/smoke/wmaug/hopper/random/td3/seed0"  # TD3 from scratch: no dataset, one job
CELL_ARGS = ["--scale", "smoke", "--study", "wmaug", "--env", "hopper", "--dataset", "random", "--method", "td3"]
# Online steps of the cell in these tests: long enough to be hit mid-run. The time-limit test's cell must outlast a
# 1-minute limit, which SLURM enforces at its next 30-second check: its steps are scaled from the local run of STEPS
# to about LONG_SECONDS on this machine. The smoke scale's other numbers stay.
STEPS, LONG_SECONDS = 2400, 150
# This cluster has no slurmdbd (plain sacct fails: status from squeue), no accounts and no GPUs (no GRES): the
# profile's account, partitions and GPU requests are overridden the way docs/running.md says.
# A smoke cell asks for the rules' least, 10 minutes: on a loaded 2-core machine a 2,400-step cell once took longer
# (TIMEOUT, then the profile's retry), so the tests give it an hour.
OVERRIDES = ["--default-resources", "slurm_partition=cpu", "--set-resources", "cell:slurm_partition=cpu", "cell:gpu=0",
             "cell:runtime=60", "--slurm-status-command", "squeue", "--slurm-no-account",
             "--slurm-init-seconds-before-status-checks", "5"]
# (list-valued options first: a target after them would be read as one more of their values)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a one-node SLURM needs root (tests/slurm/start.sh)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and there is no apt-get to install it (tests/slurm/README.md)")
    pytest.importorskip("snakemake_executor_plugin_slurm")
    env = {**os.environ, "WMAUG_SLURM_DIR": str(tmp_path_factory.mktemp("slurm"))}
    start = subprocess.run(["bash", str(SLURM / "start.sh")], capture_output=True, text=True, env=env, timeout=600)
    if start.returncode != 0:
        pytest.skip(f"tests/slurm/start.sh could not start SLURM here: {start.stderr.strip()[-500:]}")
    env["SLURM_CONF"] = re.search(r"export SLURM_CONF=(\S+)", start.stdout).group(1)
    # the jobs' shells find wmaug and snakemake where this python is
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    yield env
    subprocess.run(["bash", str(SLURM / "stop.sh")], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def beyond_run_through():
    """The tests past the run-through: CI (`.ci/run`) sets WMAUG_SLURM_TESTS=run-through to keep its time."""
    if os.environ.get("WMAUG_SLURM_TESTS", "all") == "run-through":
        pytest.skip("WMAUG_SLURM_TESTS=run-through: CI runs the run-through only (the faults and the array take "
                    "about 20 minutes more; docs/testing.md)")


def workflow(where: Path, steps: int) -> Path:
    """A copy of the workflow whose smoke cells run `steps` online steps (an evaluation at the middle and end), with
    two seeds for paper A."""
    where.mkdir(parents=True)
    for part in ("Snakefile", "rules", "config", "profiles"):
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy)(ROOT / part, where / part)
    config = where / "config" / "config.yaml"
    text = config.read_text()
    smoke = text.index("\n  smoke:")
    head, tail = text[:smoke], text[smoke:]
    for key, value in (("online_steps", steps), ("online_long_steps", 2 * steps), ("eval_every", steps // 2)):
        tail, n = re.subn(rf"(\n    {key}: )\d+", rf"\g<1>{value}", tail, count=1)
        assert n == 1, f"config/config.yaml: smoke scale has no {key}"
    # two seeds of paper A, for the job-array test (its targets name the cells: nothing else runs)
    tail, n = re.subn(r"(\n    study_seeds: \{wmaug: )1,", r"\g<1>2,", tail, count=1)
    assert n == 1, "config/config.yaml: smoke scale's study_seeds is not {wmaug: 1, ...}"
    config.write_text(head + tail)
    return where


@pytest.fixture(scope="module")
def local_curves(tmp_path_factory):
    """The cell run here without SLURM, at the threads the profile gives a cell (set-threads: cell: 2): curve.csv
    for each budget, computed once."""
    made, seconds = {}, {}

    def curve(steps: int, seed: int = 0) -> bytes:
        if (steps, seed) not in made:
            started = time.monotonic()
            work = workflow(tmp_path_factory.mktemp("local") / "work", steps)
            out = work / "local"
            run = subprocess.run([sys.executable, "-m", "wmaug.cli", "cell", *CELL_ARGS, "--seed", str(seed),
                                  "--threads", "2", "--no-progress", "--out", str(out)], cwd=work,
                                 capture_output=True, text=True, timeout=1200)
            assert run.returncode == 0, run.stderr[-2000:]
            made[steps, seed] = (out / "curve.csv").read_bytes()
            seconds[steps, seed] = time.monotonic() - started
        return made[steps, seed]

    def long_steps() -> int:
        """Online steps that take about LONG_SECONDS here (a multiple of 1,200: an evaluation at half and end)."""
        curve(STEPS)
        return 1200 * max(5, round(STEPS * LONG_SECONDS / seconds[STEPS, 0] / 1200))

    curve.long_steps = long_steps
    return curve


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_snakemake_left():
    """A failed test leaves no Snakemake of its own running (its jobs are cancelled by the next start.sh or stop.sh)."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def snakemake(work: Path, env: dict, *resources: str, targets=(f"{CELL}/summary.json",),
              options=()) -> subprocess.Popen:
    """The profile run of `targets` (the cell's), in the background (its own process group), with more
    `--set-resources` entries and other options; its output in work/snakemake-<n>.log."""
    path = work / f"snakemake-{len(list(work.glob('snakemake-*.log')))}.log"
    overrides = OVERRIDES[:OVERRIDES.index("cell:gpu=0") + 1] + list(resources) + OVERRIDES[
        OVERRIDES.index("cell:gpu=0") + 1:]
    with open(path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", *overrides,
                                 *options, "--config", "scale=smoke", "--", *targets], cwd=work, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log_path = path
    STARTED.append(proc)
    return proc


def log_of(proc: subprocess.Popen) -> str:
    return proc.log_path.read_text()


def job_ids(log: str) -> list[str]:
    return re.findall(r"submitted with SLURM jobid (\d+)", log)


def job(job_id: str, env: dict) -> dict[str, str]:
    """`scontrol show job` as a dict (JobState, Restarts, ExitCode, ...)."""
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, env=env).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def wait_until(what: str, check, timeout: float = 900, every: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"not seen within {timeout:.0f} s: {what}")


def running_job(proc: subprocess.Popen, env: dict) -> str:
    """The id of the cell's job once SLURM runs it."""
    def started():
        assert proc.poll() is None, log_of(proc)[-3000:]
        ids = job_ids(log_of(proc))
        return ids[-1] if ids and job(ids[-1], env).get("JobState") == "RUNNING" else None

    return wait_until("the cell's job RUNNING", started)


def mid_run(work: Path, proc: subprocess.Popen, env: dict) -> str:
    """The id of the cell's job once it has written its first checkpoint: mid-run."""
    job_id = running_job(proc, env)
    wait_until("the cell's first checkpoint", lambda: (work / CELL / "checkpoint.pt").exists())
    return job_id


def release(job_id: str, env: dict) -> None:
    """SLURM holds a requeued job about 2 minutes before it may start again (its BeginTime); a test need not wait."""
    wait_until(f"job {job_id} back in the queue", lambda: job(job_id, env).get("JobState") == "PENDING", timeout=120)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, env=env)


def cell_log(work: Path) -> str:
    return (work / "logs/smoke/cells/wmaug/hopper-random-td3-seed0.log").read_text()


def report(scenario: str, **facts) -> None:
    print(f"\n[slurm scenario] {scenario}: " + "; ".join(f"{k}: {v}" for k, v in facts.items()))


@pytest.mark.slow  # starts SLURM (installs it if missing), then a smoke cell through it
def test_the_profile_runs_a_cell_through_sbatch_to_the_local_result(slurm, local_curves, tmp_path):
    work = workflow(tmp_path / "work", STEPS)
    proc = snakemake(work, slurm)
    proc.wait(timeout=1200)
    log = log_of(proc)
    assert proc.returncode == 0, log[-3000:]
    (job_id,) = job_ids(log)
    assert job(job_id, slurm)["JobState"] == "COMPLETED"
    assert (work / CELL / "curve.csv").read_bytes() == local_curves(STEPS)
    report("run to completion", job=job_id, slurm="COMPLETED", harness="one job", identical=True)


@pytest.mark.slow  # a smoke cell through SLURM, requeued mid-run
def test_a_requeued_cell_checkpoints_on_the_signal_and_resumes_to_the_local_result(
        beyond_run_through, slurm, local_curves, tmp_path):
    """Preemption: `scontrol requeue` sends the job SIGTERM, the cell checkpoints at the next episode end and exits
    143, SLURM puts the same job id back in the queue (the profile's slurm-requeue), it runs again and resumes."""
    work = workflow(tmp_path / "work", STEPS)
    proc = snakemake(work, slurm)
    job_id = mid_run(work, proc, slurm)
    subprocess.run(["scontrol", "requeue", job_id], check=True, env=slurm)
    release(job_id, slurm)
    proc.wait(timeout=1200)
    log = log_of(proc)
    assert proc.returncode == 0, log[-3000:]
    assert job_ids(log) == [job_id]  # the same job ran twice: Snakemake did not submit another
    info = job(job_id, slurm)
    assert info["JobState"] == "COMPLETED" and int(info["Restarts"]) >= 1
    resumed = re.search(r"resumed from \S+ at online step (\d+)", cell_log(work))
    assert resumed, cell_log(work)[-2000:]
    assert (work / CELL / "curve.csv").read_bytes() == local_curves(STEPS)
    report("preemption (scontrol requeue)", job=job_id, slurm=f"requeued, restarts {info['Restarts']}, COMPLETED",
           harness=f"checkpoint on SIGTERM, resumed at online step {resumed.group(1)}", identical=True)


@pytest.mark.slow  # a longer smoke cell through SLURM, its first attempt ended by a 1-minute limit
def test_a_cell_past_its_time_limit_leaves_no_result_and_its_retry_resumes_to_the_local_result(
        beyond_run_through, slurm, local_curves, tmp_path):
    """The running job's limit is cut to 1 minute (`scontrol update TimeLimit=1`, as if it had asked for too little):
    SLURM ends it at its next limit check (SIGTERM, SIGKILL after KillWait), the cell checkpoints and exits, the job
    is TIMEOUT, Snakemake counts it failed, and no summary.json is left. The profile's retries submit it again, with
    the rule's own limit; the retry resumes."""
    long = local_curves.long_steps()
    work = workflow(tmp_path / "work", long)
    proc = snakemake(work, slurm)  # its retry gets the hour OVERRIDES gives every cell
    first = running_job(proc, slurm)
    subprocess.run(["scontrol", "update", f"JobId={first}", "TimeLimit=1"], check=True, env=slurm)
    ended = wait_until(f"job {first} ended", lambda: (lambda s: s if s not in ("RUNNING", "COMPLETING") else None)(
        job(first, slurm).get("JobState")), timeout=300, every=0.2)
    assert ended == "TIMEOUT", f"job {first} {ended} before its limit: raise LONG_SECONDS on this machine"
    assert not (work / CELL / "summary.json").exists(), "a timed-out cell must not look finished"
    proc.wait(timeout=1500)
    log = log_of(proc)
    assert proc.returncode == 0, log[-3000:]
    ids = job_ids(log)
    states = [job(i, slurm)["JobState"] for i in ids]
    assert ids[0] == first and states == ["TIMEOUT", "COMPLETED"], (ids, states)
    assert "resumed from" in cell_log(work)
    assert (work / CELL / "curve.csv").read_bytes() == local_curves(long)
    report(f"time limit ({long} steps)", jobs=" ".join(f"{i} {s}" for i, s in zip(ids, states)),
           harness="the attempt at the limit left no summary.json; Snakemake's retry resumed from the checkpoint",
           identical=True)


@pytest.mark.slow  # a smoke cell through SLURM, its Snakemake killed mid-run
def test_a_killed_snakemake_neither_doubles_a_running_cell_nor_reruns_a_finished_one(
        beyond_run_through, slurm, local_curves, tmp_path):
    """Snakemake SIGKILLed while its cell runs (a dropped login session): the job goes on. The next Snakemake stops
    before planning, naming the live job (it would have submitted the cell a second time beside it). Once the job
    has finished, the next Snakemake finds its outputs complete (the job's own Snakemake marked them so) and runs
    nothing."""
    work = workflow(tmp_path / "work", STEPS)
    proc = snakemake(work, slurm)
    job_id = running_job(proc, slurm)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert job(job_id, slurm)["JobState"] == "RUNNING"
    again = snakemake(work, slurm)
    again.wait(timeout=300)
    assert again.returncode != 0
    stopped = log_of(again)
    assert "LiveJobsError" in stopped and f"{job_id} RUNNING" in stopped and f"scancel {job_id}" in stopped, stopped
    assert not job_ids(stopped)
    wait_until(f"job {job_id} COMPLETED", lambda: job(job_id, slurm).get("JobState") == "COMPLETED", timeout=1200)
    last = snakemake(work, slurm)
    last.wait(timeout=600)
    log = log_of(last)
    assert last.returncode == 0, log[-3000:]
    assert "Nothing to be done" in log and not job_ids(log)
    assert (work / CELL / "curve.csv").read_bytes() == local_curves(STEPS)
    report("Snakemake killed mid-job", slurm=f"job {job_id} ran on to COMPLETED",
           harness=f"the next run stopped before planning, naming job {job_id}; the run after the job ended found "
                   "its outputs complete and ran nothing", identical=True)


@pytest.mark.slow  # two smoke cells through SLURM as one job array
def test_cells_that_ask_the_same_go_as_one_array_to_the_local_results(
        beyond_run_through, slurm, local_curves, tmp_path):
    """`--slurm-array-jobs cell` on two cells that ask for the same resources (TD3, seeds 0 and 1): one `sbatch
    --array`, whose tasks <id>_1 and <id>_2 run the two cells (the second through the job-step Snakemake's
    array table) to COMPLETED, each to its local curve. (The profile arrays only rules whose jobs all ask the same:
    the plugin gives an array its first job's resources; tests/test_config.py.)"""
    work = workflow(tmp_path / "work", STEPS)
    seeds = (0, 1)
    cells = [CELL.replace("seed0", f"seed{seed}") for seed in seeds]
    proc = snakemake(work, slurm, targets=[f"{cell}/summary.json" for cell in cells],
                     options=["--slurm-array-jobs", "cell"])
    proc.wait(timeout=1200)
    log = log_of(proc)
    assert proc.returncode == 0, log[-3000:]
    array = re.search(r"Submitted array job with Snakemake IDs \S+ and SLURM job ID (\d+)\. The individual task IDs "
                      r"are 1-2\.", log)
    assert array and not job_ids(log), log[-3000:]  # one array submission, no single job
    tasks = [f"{array.group(1)}_{i}" for i in (1, 2)]
    states = [job(task, slurm).get("JobState") for task in tasks]
    assert states == ["COMPLETED", "COMPLETED"], (tasks, states)
    for seed, cell in zip(seeds, cells):
        assert (work / cell / "curve.csv").read_bytes() == local_curves(STEPS, seed), cell
    report("two cells as one job array", jobs=" ".join(f"{t} {s}" for t, s in zip(tasks, states)),
           harness="one sbatch --array=1-2; each task ran its cell", identical=True)


def job_processes(env: dict) -> list[int]:
    """Every slurmstepd of this cluster and all processes under them: what a job leaves on its node."""
    out = subprocess.run(["pgrep", "-x", "slurmstepd"], capture_output=True, text=True).stdout.split()
    found, todo = [], [int(p) for p in out]
    while todo:
        pid = todo.pop()
        found.append(pid)
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        todo += [int(c) for c in children]
    return found


@pytest.mark.slow  # a smoke cell through SLURM whose node dies mid-run
def test_a_cell_whose_node_dies_is_requeued_and_resumes_to_the_local_result(
        beyond_run_through, slurm, local_curves, tmp_path):
    """A node failure mid-run: slurmd and every process of the job are SIGKILLed (no signal reaches the cell, so it
    resumes from its last periodic checkpoint), and the node is set DOWN (`scontrol update state=down`). SLURM ends
    the job (NODE_FAIL) and requeues it (the profile's slurm-requeue). The node's slurmd comes back and registers
    (ReturnToService=2 returns a DOWN node then; else `state=resume`), the job runs again and the cell resumes."""
    work = workflow(tmp_path / "work", STEPS)
    proc = snakemake(work, slurm)
    job_id = mid_run(work, proc, slurm)
    node = job(job_id, slurm)["NodeList"]
    slurmd = int((Path(slurm["WMAUG_SLURM_DIR"]) / "run" / "slurmd.pid").read_text())
    doomed = [slurmd, *job_processes(slurm)]
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["scontrol", "update", f"NodeName={node}", "State=DOWN", "Reason=wmaug-test-node-died"],
                   check=True, env=slurm)
    after_down = wait_until(f"job {job_id} off its dead node", lambda: (lambda s: s if s not in (
        "RUNNING", "COMPLETING") else None)(job(job_id, slurm).get("JobState")), timeout=180, every=0.2)
    node_state = lambda: subprocess.run(["sinfo", "-h", "-n", node, "-o", "%T"], capture_output=True, text=True,
                                        env=slurm).stdout.strip()
    down = node_state()
    subprocess.run(["slurmd", "-f", slurm["SLURM_CONF"]], check=True, env=slurm)  # the node boots again
    wait_until("the node back", lambda: node_state() in ("idle", "mixed", "allocated"), timeout=180)
    back = node_state()
    release(job_id, slurm)
    proc.wait(timeout=1200)
    log = log_of(proc)
    assert proc.returncode == 0, log[-3000:]
    ids = job_ids(log)
    states = [job(i, slurm)["JobState"] for i in ids]
    info = job(job_id, slurm)
    assert ids == [job_id] and states == ["COMPLETED"] and int(info["Restarts"]) >= 1, (ids, states, info)
    resumed = re.search(r"resumed from \S+ at online step (\d+)", cell_log(work))
    assert resumed, cell_log(work)[-2000:]
    assert (work / CELL / "curve.csv").read_bytes() == local_curves(STEPS)
    report("node died mid-job", job=job_id,
           slurm=f"{len(doomed)} processes killed, node {down}; job {after_down}, requeued; node {back} once its "
                 f"slurmd registered; restarts {info['Restarts']}, COMPLETED",
           harness=f"Snakemake waited on the same job; the cell resumed at online step {resumed.group(1)}",
           identical=True)
