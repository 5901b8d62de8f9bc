"""The guard against submitting a stopped Snakemake's live SLURM jobs a second time (wmaug/core/cluster.py); the
real squeue and sbatch are in tests/test_slurm.py."""

from __future__ import annotations

import time

from wmaug.core.cluster import jobs_from_squeue, live_jobs, live_jobs_message


def test_only_snakemake_jobs_of_this_folder_count(tmp_path):
    other = tmp_path / "other"
    text = "\n".join([
        f"12|RUNNING|{tmp_path}|rule_cell_wildcards_wmaug_hopper_random_td3_0",
        f"13|PENDING|{tmp_path}|rule_pretrain_wildcards_cql_halfcheetah_random_0",
        f"14|RUNNING|{other}|rule_cell_wildcards_wmaug_hopper_random_td3_1",  # another workflow's folder
        f"15|RUNNING|{tmp_path}|(null)",                                      # not submitted by Snakemake
        "garbage line",
    ])
    jobs = jobs_from_squeue(text, tmp_path)
    assert [(j["id"], j["state"], j["job"]) for j in jobs] == [
        ("12", "RUNNING", "cell wmaug_hopper_random_td3_0"), ("13", "PENDING", "pretrain cql_halfcheetah_random_0")]
    message = live_jobs_message(jobs, tmp_path)
    assert "12 RUNNING: cell wmaug_hopper_random_td3_0" in message and "scancel 12 13" in message


def test_no_slurm_config_means_no_squeue_call_and_no_wait(tmp_path, monkeypatch):
    """squeue without a config retries for a minute (SLURM 22.05): without one the guard does not ask."""
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "missing.conf"))
    started = time.monotonic()
    assert live_jobs(tmp_path) == []
    assert time.monotonic() - started < 2
