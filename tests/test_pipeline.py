"""The cell pipeline: augmentation, scores, seeding, atomic results, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from wmaug.paper_a.augment import WorldModelAugmenter
from wmaug.cell import run_cell
from wmaug.data.buffer import ReplayBuffer
from wmaug.data.sample import subsample
from wmaug.core.envs import ENV_SPECS, normalized_score
from wmaug.paper_a.world_model import WorldModel, WorldModelConfig, save_world_model

from conftest import ROOT, critic_loss_turns_nan, tiny_spec, write_sample


# D4RL's reference returns, copied from d4rl/infos.py (REF_MIN_SCORE / REF_MAX_SCORE, the v2 locomotion sets).
D4RL_REF = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
    "hopper_noisy": (-20.272305, 3234.3),  # hopper with action noise: the same task, the same references
}


def test_normalized_scores_use_d4rl_constants():
    assert set(ENV_SPECS) == set(D4RL_REF)
    for env, (lo, hi) in D4RL_REF.items():
        assert normalized_score(env, lo) == pytest.approx(0.0, abs=1e-9)
        assert normalized_score(env, hi) == pytest.approx(100.0)
        assert normalized_score(env, lo + 0.37 * (hi - lo)) == pytest.approx(37.0)
    # hopper: a return of 1617.0 is (1617 + 20.272305) / 3254.572305 * 100
    assert normalized_score("hopper", 1617.0) == pytest.approx(50.3067, abs=1e-3)


def small_world_model(data, seed=0) -> WorldModel:
    torch.manual_seed(seed)
    cfg = WorldModelConfig(hidden=32, layers=2, epochs=0)
    return WorldModel(data.obs_dim, data.act_dim, cfg, data.observations.mean(0), data.observations.std(0))


def test_augmentation_replaces_exactly_half_with_fresh_samples_and_stores_none(hopper_random):
    data = subsample(hopper_random, 1000, seed=0)
    buffer = ReplayBuffer(data.obs_dim, data.act_dim, len(data))
    buffer.add_transitions(data)
    stored = {k: v.clone() for k, v in buffer.storage.items()}
    augment = WorldModelAugmenter(small_world_model(data), rate=0.5)
    rng = np.random.default_rng(0)
    batch = buffer.sample(256, rng)
    replaced_sets = []
    for _ in range(3):
        out = augment(batch)
        changed = (out.next_observations != batch.next_observations).any(1)
        assert int(changed.sum()) == 128  # exactly half of the batch
        replaced_sets.append(set(torch.nonzero(changed).flatten().tolist()))
        for key in ("observations", "actions", "rewards", "terminals"):
            assert torch.equal(getattr(out, key), getattr(batch, key))  # reward and done stay from the data
    assert replaced_sets[0] != replaced_sets[1]  # a fresh random half each batch
    # the same batch augmented twice draws fresh world-model samples
    a, b = augment(batch), augment(batch)
    both = (a.next_observations != batch.next_observations).any(1) & (b.next_observations != batch.next_observations).any(1)
    assert not torch.equal(a.next_observations[both], b.next_observations[both])
    for key, value in buffer.storage.items():
        assert torch.equal(value, stored[key]), f"augmentation wrote into the buffer ({key})"
    assert len(buffer) == len(data)


def test_augmentation_rate_zero_draws_nothing(hopper_random):
    data = subsample(hopper_random, 500, seed=1)
    buffer = ReplayBuffer(data.obs_dim, data.act_dim, len(data))
    buffer.add_transitions(data)
    batch = buffer.sample(64, np.random.default_rng(0))
    augment = WorldModelAugmenter(small_world_model(data), rate=0.0)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    out = augment(batch)
    assert out is batch and torch.equal(torch.get_rng_state(), state)


def test_same_seed_same_subsample(hopper_random):
    a, b = subsample(hopper_random, 500, seed=7), subsample(hopper_random, 500, seed=7)
    c = subsample(hopper_random, 500, seed=8)
    assert a.checksum() == b.checksum() and a.checksum() != c.checksum()
    with pytest.raises(ValueError, match="only 3000"):
        subsample(hopper_random, 5000, seed=0)


def _prepare(tmp_path, hopper_random, spec):
    write_sample(tmp_path / "sample.npz", hopper_random, 500, spec["cell"]["seed"])
    if spec["recipe"]["augment"]:
        save_world_model(small_world_model(hopper_random), tmp_path / "wm.pt")


def _curve(path):
    import pandas as pd

    return pd.read_csv(path / "curve.csv")


@pytest.mark.parametrize("method", ["wm_td3bc_td3", "td3"])
def test_same_seed_same_cpu_curve(tmp_path, hopper_random, base_config, method):
    spec = tiny_spec(base_config, tmp_path, method, seed=3)
    _prepare(tmp_path, hopper_random, spec)
    handler = signal.getsignal(signal.SIGTERM)
    run_cell(spec, tmp_path / "a", device="cpu", progress=False)
    assert signal.getsignal(signal.SIGTERM) == handler  # the run's SIGTERM flag ended with it
    run_cell(spec, tmp_path / "b", device="cpu", progress=False)
    a, b = _curve(tmp_path / "a"), _curve(tmp_path / "b")
    online_rows = 1 + 400 // 50  # steps 0, 50, ..., 400
    offline_rows = 3  # iterations 0, 50 and the last, 60
    assert len(a) == online_rows + (offline_rows if method != "td3" else 0)
    if method != "td3":  # online step 0 is the hand-off policy: the final offline evaluation
        final_offline = a[a.phase == "offline"].iloc[-1]
        first_online = a[a.phase == "online"].iloc[0]
        assert first_online.step == 0 and first_online.raw_return == final_offline.raw_return
    assert a.equals(b)
    other = tiny_spec(base_config, tmp_path, method, seed=4)
    run_cell(other, tmp_path / "c", device="cpu", progress=False)
    assert not a["raw_return"].equals(_curve(tmp_path / "c")["raw_return"])
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["finished"] and summary["scale"] == "smoke" and summary["cell"]["method"] == method
    assert summary["provenance"]["packages"]["torch"] and summary["provenance"]["code"]["source_sha256"]
    assert not (tmp_path / "a" / "checkpoint.pt").exists()


def test_missing_input_fails_before_compute(tmp_path, base_config):
    spec = tiny_spec(base_config, tmp_path, "wm_td3bc_td3")
    with pytest.raises(FileNotFoundError, match="offline sample .* not found"):
        run_cell(spec, tmp_path / "out", device="cpu", progress=False)
    assert not (tmp_path / "out").exists()


def _killable_cell(tmp_path, hopper_random, base_config):
    """A cell long enough to be stopped mid-way (reference run done), and the command that runs it."""
    spec = tiny_spec(base_config, tmp_path, "td3bc_td3", seed=1, offline_iterations=300, online_steps=1500,
                     online_start_steps=200, eval_every=100, checkpoint_every=100)
    _prepare(tmp_path, hopper_random, spec)
    reference = tmp_path / "reference"
    run_cell(spec, reference, device="cpu", progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "wmaug.cli", "cell", "--spec-json", json.dumps(spec), "--out", str(out),
           "--device", "cpu", "--threads", "1", "--no-progress"]
    return reference, out, cmd


def _resume_and_compare(cmd, out, reference) -> None:
    resumed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] is True
    assert _curve(out).equals(_curve(reference))


@pytest.mark.slow  # starts a subprocess
def test_killed_cell_leaves_no_result_and_resumes_to_the_same_curve(tmp_path, hopper_random, base_config):
    reference, out, cmd = _killable_cell(tmp_path, hopper_random, base_config)
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        ckpt = out / "checkpoint.pt"
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["progress"]["phase"] == "online":
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the cell finished before it could be killed: " + proc.stderr.read()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists(), "a killed cell must not look finished"
    assert not (out / "curve.csv").exists()
    _resume_and_compare(cmd, out, reference)


@pytest.mark.slow  # starts a subprocess
def test_sigterm_saves_a_checkpoint_exits_nonzero_and_resumes_to_the_same_curve(tmp_path, hopper_random,
                                                                                  base_config):
    """SIGTERM (SLURM's warning before a kill) at a random point of the run: the cell checkpoints at once
    (offline) or at the next episode end (online), exits 143, and the re-run resumes to the uninterrupted curve.
    The point comes from a seeded draw ($WMAUG_TEST_SEED, printed); the property must hold wherever it falls."""
    from conftest import drawn_moment

    reference, out, cmd = _killable_cell(tmp_path, hopper_random, base_config)
    ref_time = json.loads((reference / "summary.json").read_text())["time_s"]["wall_this_run"]
    delay = drawn_moment("SIGTERM delay").uniform(0.05, 0.8) * ref_time
    print(f"SIGTERM {delay:.2f} s after the first evaluation (the run takes about {ref_time:.1f} s)")
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:  # the run has started (signal handler set) once it logs its first evaluation
        lines.append(line)
        if "offline step 0:" in line:
            break
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    err = "".join(lines) + err
    if proc.returncode == 0:
        pytest.skip(f"the cell finished before SIGTERM at {delay:.2f} s arrived")
    assert proc.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM at" in err and "run the same command again to resume" in err
    assert (out / "checkpoint.pt").exists() and not (out / "summary.json").exists()
    _resume_and_compare(cmd, out, reference)


def test_nan_loss_stops_the_cell_naming_loss_and_step_and_keeps_the_last_good_checkpoint(
        tmp_path, hopper_random, base_config, monkeypatch):
    """The critic loss turns NaN at update 40 (injected: a real divergence takes unpredictably long). The checkpoint
    of iteration 30 stays; the one due at 60 is refused (it would hold NaN losses) and the run stops there, before
    the evaluation at 70, naming the loss and the step; no result is written."""
    from wmaug.algos.td3 import TD3
    from wmaug.core.errors import NonFiniteLoss

    spec = tiny_spec(base_config, tmp_path, "td3bc_td3", seed=2, offline_iterations=100, eval_every=70,
                     checkpoint_every=30)
    _prepare(tmp_path, hopper_random, spec)
    critic_loss_turns_nan(TD3, 40, monkeypatch)
    out = tmp_path / "cell"
    with pytest.raises(NonFiniteLoss, match=r"critic_loss became nan before offline step 60 .* last good checkpoint"):
        run_cell(spec, out, device="cpu", progress=False)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["progress"]["step"] == 30
    assert not (out / "summary.json").exists() and not (out / "curve.csv").exists()


def test_a_checkpoint_of_the_previous_format_resumes_to_the_same_curve(tmp_path, hopper_random, base_config,
                                                                         monkeypatch):
    """Version-1 checkpoints (online ones taken at an episode end, before the reset, with the env generator's state
    and no episode record) still resume: made here by stopping right after an episode end and rewriting the
    checkpoint into that format."""
    from wmaug.core.errors import Preempted
    from wmaug.paper_a.pipeline import SeedRun

    spec = tiny_spec(base_config, tmp_path, "td3bc_td3", seed=1, online_steps=300)
    _prepare(tmp_path, hopper_random, spec)
    run_cell(spec, tmp_path / "reference", device="cpu", progress=False)
    real_start = SeedRun.start_episode

    def stop_after_second_episode(self, seed=None):
        real_start(self, seed)
        if self.p.episodes == 2:
            self.cell_run.sigterm.requested = True

    monkeypatch.setattr(SeedRun, "start_episode", stop_after_second_episode)
    out = tmp_path / "old"
    with pytest.raises(Preempted):
        run_cell(spec, out, device="cpu", progress=False)
    monkeypatch.setattr(SeedRun, "start_episode", real_start)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["episode"]["length"] == 0 and state["episode"]["start"]["seed"] is None
    state["env_rng"] = state.pop("episode")["start"]["env_rng"]  # what version 1 stored
    state["torch_rng"] = state.pop("streams")["init"]  # version 1 drew from torch's default stream
    state["version"] = 1
    del state["cuda_rng"]
    torch.save(state, out / "checkpoint.pt")
    summary = run_cell(spec, out, device="cpu", progress=False)
    assert summary["resumed"] is True
    assert _curve(out).equals(_curve(tmp_path / "reference"))
