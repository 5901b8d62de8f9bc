"""SLURM jobs that a stopped Snakemake left queued or running in this workflow's folder.

Snakemake's SLURM executor submits each job with the workflow's folder as its working directory and a comment
`rule_<rule>_wildcards_<values>`. When the Snakemake that submitted them is killed (a dropped login session), the
jobs go on. A new Snakemake knows nothing of them: it would submit their jobs a second time, beside the first, both
writing the same files. The Snakefile asks this module before it plans anything and stops with the jobs' ids
(tests/test_slurm.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# squeue without --states lists only jobs that have not ended: pending, running, completing, requeued, suspended.
SQUEUE_FORMAT = "%i|%T|%Z|%k"


class LiveJobsError(RuntimeError):
    """Jobs of an earlier, stopped Snakemake are still queued or running here."""


def slurm_config_found() -> bool:
    """Whether squeue has a config file to read. Without one it retries for a minute before it fails (SLURM 22.05),
    which every Snakemake start would pay on a machine with SLURM's client but no cluster. (A configless cluster's
    login node without a local file goes unchecked.)"""
    candidates = [os.environ["SLURM_CONF"]] if os.environ.get("SLURM_CONF") else [
        "/etc/slurm/slurm.conf", "/etc/slurm-llnl/slurm.conf", "/run/slurm/conf/slurm.conf"]
    return any(Path(c).is_file() for c in candidates)


def live_jobs(workdir: str | Path) -> list[dict]:
    """This user's SLURM jobs submitted by Snakemake from `workdir` that have not ended; [] without SLURM."""
    if shutil.which("squeue") is None or not slurm_config_found():
        return []
    try:
        out = subprocess.run(["squeue", "--me", "-h", "-o", SQUEUE_FORMAT], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:  # no controller reachable: nothing of ours can be running there either
        return []
    return jobs_from_squeue(out.stdout, workdir)


def jobs_from_squeue(text: str, workdir: str | Path) -> list[dict]:
    """Snakemake's jobs from `workdir` in squeue's output (format SQUEUE_FORMAT)."""
    here = Path(workdir).resolve()
    jobs = []
    for line in text.splitlines():
        parts = line.split("|", 3)
        if len(parts) != 4:
            continue
        job_id, state, job_dir, comment = parts
        if comment.startswith("rule_") and Path(job_dir).resolve() == here:
            jobs.append({"id": job_id, "state": state, "job": comment[len("rule_"):].replace("_wildcards_", " ", 1)})
    return jobs


def live_jobs_message(jobs: list[dict], workdir: str | Path) -> str:
    listed = "\n".join(f"  {j['id']} {j['state']}: {j['job']}" for j in jobs)
    ids = " ".join(j["id"] for j in jobs)
    return (f"{len(jobs)} SLURM job(s) submitted from {workdir} by an earlier Snakemake, which has stopped, are still "
            f"queued or running:\n{listed}\n"
            "Planning now would submit their jobs a second time, beside them. Either wait until `squeue --me` no longer "
            "lists them (a job that finishes marks its outputs complete itself: the next run takes them as done), or "
            f"cancel them with `scancel {ids}` (a cell checkpoints on the signal and the next run resumes it); then "
            "run Snakemake again.")
