"""The SLURM profile against a real one-node SLURM (tests/slurm/start.sh): a smoke cell goes through sbatch, SLURM
reports it COMPLETED, and its curve is byte-identical to the same cell run locally with the same threads.

Skipped, with the reason, where SLURM cannot be started (not root, no apt, no Debian package)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SLURM = ROOT / "tests" / "slurm"
CELL = "results/smoke/wmaug/hopper/random/td3/seed0"  # TD3 from scratch: no dataset, one job
# This cluster has no slurmdbd (plain sacct fails: status from squeue), no accounts and no GPUs (no GRES): the
# profile's account, partitions and GPU requests are overridden the way docs/running.md says.
OVERRIDES = ["--default-resources", "slurm_partition=cpu", "--set-resources", "cell:slurm_partition=cpu", "cell:gpu=0",
             "--slurm-status-command", "squeue", "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "5"]
# (list-valued options first: a target after them would be read as one more of their values)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a one-node SLURM needs root (tests/slurm/start.sh)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and there is no apt-get to install it (tests/slurm/README.md)")
    env = {**os.environ, "WMAUG_SLURM_DIR": str(tmp_path_factory.mktemp("slurm"))}
    start = subprocess.run(["bash", str(SLURM / "start.sh")], capture_output=True, text=True, env=env, timeout=600)
    if start.returncode != 0:
        pytest.skip(f"tests/slurm/start.sh could not start SLURM here: {start.stderr.strip()[-500:]}")
    env["SLURM_CONF"] = re.search(r"export SLURM_CONF=(\S+)", start.stdout).group(1)
    yield env
    subprocess.run(["bash", str(SLURM / "stop.sh")], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow  # installs and starts SLURM, then a smoke cell through it: about 2 minutes
def test_the_profile_runs_a_cell_through_sbatch_to_the_local_result(slurm, tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    work = tmp_path / "work"
    work.mkdir()
    for part in ("Snakefile", "rules", "config", "profiles"):
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy)(ROOT / part, work / part)
    bin_dir = str(Path(sys.executable).parent)  # the job's shell finds wmaug and snakemake where this python is
    env = {**slurm, "PATH": f"{bin_dir}:{slurm['PATH']}"}
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "--config", "scale=smoke",
                          *OVERRIDES, f"{CELL}/summary.json"], cwd=work, capture_output=True, text=True, env=env,
                         timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    job = re.search(r"submitted with SLURM jobid (\d+)", log)
    assert job, log[-3000:]
    state = subprocess.run(["squeue", "--states=all", "-h", "-j", job.group(1), "-o", "%T"], capture_output=True,
                           text=True, env=env).stdout.strip()
    assert state == "COMPLETED", state
    # the same cell here, with the threads the profile gives a cell (set-threads: cell: 2)
    local = subprocess.run([sys.executable, "-m", "wmaug.cli", "cell", "--scale", "smoke", "--study", "wmaug", "--env",
                            "hopper", "--dataset", "random", "--method", "td3", "--seed", "0", "--threads", "2",
                            "--no-progress", "--out", str(tmp_path / "local")], cwd=work, capture_output=True,
                           text=True, env=env, timeout=600)
    assert local.returncode == 0, local.stderr[-2000:]
    assert (work / CELL / "curve.csv").read_bytes() == (tmp_path / "local" / "curve.csv").read_bytes()
