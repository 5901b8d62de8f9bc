"""Several seeds of a paper A cell as one job: one batched TD3, one result folder and checkpoint per seed."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch

from wmaug.cell import run_cell, run_cells
from wmaug.core.errors import InputError, Preempted
from wmaug.core.io import torch_load
from wmaug.paper_a.world_model import save_world_model, train_reward_model
from wmaug.core.runner import check_seed_group
from wmaug.core.spec import cell_spec_from_json
from wmaug.paper_a.pipeline import SeedRun

from conftest import ROOT, tiny_spec, write_sample
from test_pipeline import small_world_model


def group_specs(base_config, tmp_path, hopper_random, method, seeds, env="hopper", **budget):
    """One spec per seed, each seed with its own offline sample (and the shared test world model)."""
    specs = []
    for seed in seeds:
        spec = tiny_spec(base_config, tmp_path, method, seed=seed, **budget)
        spec["cell"]["env"] = env
        if spec["recipe"]["offline"]:
            spec["paths"]["sample"] = str(write_sample(tmp_path / f"sample{seed}.npz", hopper_random, 500, seed))
        specs.append(spec)
    if specs[0]["recipe"]["augment"]:
        wm = small_world_model(hopper_random)
        reward = None  # k-step rollouts need the file's reward model
        if specs[0]["recipe"].get("rollout_steps", 1) > 1:
            reward, _ = train_reward_model(hopper_random, wm, seed=0, epochs=1, hidden=(16,))
        save_world_model(wm, tmp_path / "wm.pt", reward_model=reward)
    return specs


def curve(path) -> pd.DataFrame:
    return pd.read_csv(path / "curve.csv")


@pytest.mark.parametrize("method", ["wm_td3bc_td3", "td3bc_critic_only", "wm_k3"])
def test_seeds_trained_as_one_job_follow_the_curves_they_follow_alone(tmp_path, hopper_random, base_config, method):
    """Seeds 1 and 2 as one batched job and each alone: every seed has its own random streams (batches, exploration,
    target noise, augmentation, the fresh critic of a critic-only hand-off), so its curve is the one it has alone, up
    to float rounding of batched vs single matmuls (seen here: relative 2e-7 at most; tolerance 1e-4), over 60
    offline iterations and 200 online steps. wm_k3: the seeds' world models roll 3 latent steps as one batched model,
    the later steps' actions from every seed's own target actor."""
    specs = group_specs(base_config, tmp_path, hopper_random, method, [1, 2], online_steps=200)
    summaries = run_cells(specs, [tmp_path / "g1", tmp_path / "g2"], device="cpu", progress=False)
    alone = [run_cell(spec, tmp_path / f"a{spec['cell']['seed']}", device="cpu", progress=False) for spec in specs]
    for seed, summary, lone in zip([1, 2], summaries, alone):
        out = tmp_path / f"g{seed}"
        on_disk = json.loads((out / "summary.json").read_text())
        assert on_disk["finished"] and on_disk["cell"]["seed"] == seed and on_disk["seed_group"] == [1, 2]
        assert on_disk["counts"] == lone["counts"]  # the same schedule of steps, updates and episodes
        assert not (out / "checkpoint.pt").exists()
        grouped, single = curve(out), curve(tmp_path / f"a{seed}")
        assert list(grouped.phase) == list(single.phase)
        pd.testing.assert_frame_equal(grouped, single, check_exact=False, rtol=1e-4)
        model = torch_load(out / "model.pt")
        assert model["actor"]["net.layers.0.weight"].shape[0] == 1  # a one-agent model, like a single run's
        assert model["critic"]["net.layers.0.weight"].shape[0] == 2  # its twin critics
        single_model = torch_load(tmp_path / f"a{seed}" / "model.pt")
        torch.testing.assert_close(model["offline"]["critic"], single_model["offline"]["critic"], rtol=1e-4, atol=1e-5)
    # the seeds are different agents on different data
    assert not curve(tmp_path / "g1").raw_return.equals(curve(tmp_path / "g2").raw_return)
    m1, m2 = torch_load(tmp_path / "g1" / "model.pt"), torch_load(tmp_path / "g2" / "model.pt")
    assert not torch.equal(m1["actor"]["net.layers.0.weight"], m2["actor"]["net.layers.0.weight"])
    assert not torch.equal(m1["offline"]["normalizer"]["mean"], m2["offline"]["normalizer"]["mean"])


def test_a_preempted_seed_group_resumes_mid_episode_to_the_same_curves(tmp_path, hopper_random, base_config,
                                                                      monkeypatch):
    """hopper_noisy draws its action noise from the env's generator inside each step, so the replay of the
    interrupted episodes must rebuild that generator too. The stop falls at online step 130 of episodes that
    started at different steps in the two seeds."""
    specs = group_specs(base_config, tmp_path, hopper_random, "td3bc_td3", [0, 3], env="hopper_noisy",
                        online_steps=300, checkpoint_every=1000)
    reference = run_cells(copy.deepcopy(specs), [tmp_path / "r0", tmp_path / "r3"], device="cpu", progress=False)
    assert all(s["counts"]["episodes"] > 2 for s in reference)

    real_step = SeedRun.env_step

    def sigterm_at_step_130(self, action):
        ended = real_step(self, action)
        if self.p.env_steps == 130:
            self.cell_run.sigterm.requested = True  # what the SIGTERM handler sets
        return ended

    monkeypatch.setattr(SeedRun, "env_step", sigterm_at_step_130)
    outs = [tmp_path / "s0", tmp_path / "s3"]
    with pytest.raises(Preempted, match="online step 130"):
        run_cells(specs, outs, device="cpu", progress=False)
    monkeypatch.setattr(SeedRun, "env_step", real_step)
    lengths = [torch_load(o / "checkpoint.pt")["episode"]["length"] for o in outs]
    assert all(n > 0 for n in lengths) and lengths[0] != lengths[1], lengths  # inside episodes, not at their ends
    resumed = run_cells(specs, outs, device="cpu", progress=False)
    for out, ref, summary in zip(outs, ["r0", "r3"], resumed):
        assert summary["resumed"] is True
        assert curve(out).equals(curve(tmp_path / ref))


@pytest.mark.slow  # starts a subprocess
def test_a_seed_group_resumed_by_the_cli_after_sigkill_matches(tmp_path, hopper_random, base_config):
    """The command Snakemake runs for a seed group, killed once both seeds' checkpoints are online, then re-run."""
    import os
    import signal
    import time

    specs = group_specs(base_config, tmp_path, hopper_random, "td3", [0, 1], online_steps=1500, eval_every=100,
                        checkpoint_every=100, online_start_steps=200)
    run_cells(copy.deepcopy(specs), [tmp_path / "r0", tmp_path / "r1"], device="cpu", progress=False)
    outs = [tmp_path / "k0", tmp_path / "k1"]
    cmd = [sys.executable, "-m", "wmaug.cli", "cell", "--spec-json", json.dumps(specs), "--out", *map(str, outs),
           "--device", "cpu", "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if all((o / "checkpoint.pt").exists() for o in outs):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the group finished before it could be killed: " + proc.stderr.read()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not any((o / "summary.json").exists() for o in outs)
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from" in again.stderr
    for out, ref in zip(outs, ["r0", "r1"]):
        assert curve(out).equals(curve(tmp_path / ref))


def typed(*specs):
    return [cell_spec_from_json(spec, "test") for spec in specs]


def test_a_seed_group_must_be_one_cell(tmp_path, base_config):
    a, b = tiny_spec(base_config, tmp_path, "td3bc_td3", seed=0), tiny_spec(base_config, tmp_path, "td3", seed=1)
    with pytest.raises(InputError, match=r"seeds 0 and 1 of a seed group are not one cell: .*'recipe'"):
        check_seed_group(typed(a, b))
    with pytest.raises(InputError, match=r"lists a seed twice: \[0, 0\]"):
        check_seed_group(typed(a, copy.deepcopy(a)))
    c = tiny_spec(base_config, tmp_path, "td3bc_td3", seed=1)
    c["budget"]["online_steps"] += 1
    with pytest.raises(InputError, match=r"differ in \['budget'\]"):
        check_seed_group(typed(a, c))


@pytest.mark.slow  # starts a subprocess
def test_snakemake_plans_paper_a_cells_in_seed_groups_with_a_folder_per_seed():
    """The paper-scale plan with 5 seeds per job: paper A's 675 cells become 135 jobs, each writing its five seeds'
    folders; paper B's cells stay one per job; the aggregation's inputs (the seeds' summaries) are unchanged."""
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "figures", "--config", "seeds_per_job=5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    stats = dict(re.findall(r"^(\S+)\s+(\d+)$", out.stdout, re.M))
    assert stats["cell_wmaug_seeds0_4"] == "135"
    plain = subprocess.run([sys.executable, "-m", "snakemake", "-n", "figures"], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    plain_stats = dict(re.findall(r"^(\S+)\s+(\d+)$", plain.stdout, re.M))
    assert int(plain_stats["cell"]) - int(stats["cell"]) == 675  # paper B's cells alone stay in `cell`
    for name in ("report_wmaug", "claims", "figures"):
        assert stats[name] == plain_stats[name]
    job = out.stdout[out.stdout.index("rule cell_wmaug_seeds0_4:"):]
    job = job[: job.index("\n\n")]
    outputs = re.search(r"output: (.*)", job).group(1).split(", ")
    seeds = sorted({re.search(r"/seed(\d+)/", o).group(1) for o in outputs})
    assert seeds == ["0", "1", "2", "3", "4"] and len(outputs) == 15


def _preempt_at_online_step(monkeypatch, step: int) -> None:
    real_step = SeedRun.env_step

    def sigterm_at(self, action):
        ended = real_step(self, action)
        if self.p.env_steps == step:
            self.cell_run.sigterm.requested = True  # what the SIGTERM handler sets
        return ended

    monkeypatch.setattr(SeedRun, "env_step", sigterm_at)


def test_seeds_whose_checkpoints_are_at_different_points_start_over(tmp_path, hopper_random, base_config,
                                                                     monkeypatch, caplog):
    """A group whose seeds' checkpoints disagree (here one seed's is gone, as after a crash between two
    renames or a hand clean-up) cannot resume one seed without the other: every seed starts over, with a
    warning, and ends on the uninterrupted curves."""
    specs = group_specs(base_config, tmp_path, hopper_random, "td3bc_td3", [0, 3], online_steps=300,
                        checkpoint_every=1000)
    reference = [tmp_path / "r0", tmp_path / "r3"]
    run_cells(copy.deepcopy(specs), reference, device="cpu", progress=False)
    outs = [tmp_path / "s0", tmp_path / "s3"]
    _preempt_at_online_step(monkeypatch, 130)
    with pytest.raises(Preempted):
        run_cells(copy.deepcopy(specs), outs, device="cpu", progress=False)
    monkeypatch.undo()
    (outs[1] / "checkpoint.pt").unlink()
    summaries = run_cells(specs, outs, device="cpu", progress=False)
    assert "checkpoints are from different points" in caplog.text
    for out, ref, summary in zip(outs, reference, summaries):
        assert summary["resumed"] is False
        assert curve(out).equals(curve(ref))


def test_a_cells_checkpoint_from_another_configuration_is_ignored(tmp_path, hopper_random, base_config,
                                                                  monkeypatch, caplog):
    """A checkpoint left in a cell's folder by a run of other settings (here another TD3 learning rate, so another
    config hash, the checkpoint's key) is not resumed from: the cell warns, starts over and ends on its own
    uninterrupted curve."""
    specs = group_specs(base_config, tmp_path, hopper_random, "td3bc_td3", [0], online_steps=300,
                        checkpoint_every=1000)
    other = copy.deepcopy(specs)
    other[0]["td3"]["actor_lr"] *= 3
    other[0]["config_hash"] = "0123456789abcdef"  # what the config of those settings hashes to (not this one's)
    out = tmp_path / "cell"
    _preempt_at_online_step(monkeypatch, 130)
    with pytest.raises(Preempted):
        run_cells(copy.deepcopy(other), [out], device="cpu", progress=False)
    monkeypatch.undo()
    assert (out / "checkpoint.pt").exists()
    run_cells(copy.deepcopy(specs), [tmp_path / "reference"], device="cpu", progress=False)
    [summary] = run_cells(specs, [out], device="cpu", progress=False)
    assert "from another configuration: starting over" in caplog.text
    assert summary["resumed"] is False
    assert curve(out).equals(curve(tmp_path / "reference"))
