"""The behaviour SAC of the D4RL protocol resumes exactly: SIGTERM at a random update, a checkpoint at the next
episode end, Preempted (the CLI exits 143), and the re-run ends with the uninterrupted run's evaluation checkpoints
(returns and actor weights) and recorded episodes, so with the same datasets."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from wmaug.algos.sac import SAC
from wmaug.behaviour import train_behaviour
from wmaug.core.errors import Preempted

SAC_SETTINGS = {"hidden": [32, 32], "actor_lr": 3e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4, "init_alpha": 1.0,
                "gamma": 0.99, "tau": 0.005, "batch_size": 64}
STEPS, START_STEPS = 900, 300  # 600 updates


def behaviour(**kw) -> dict:
    return train_behaviour("hopper", STEPS, START_STEPS, eval_every=300, eval_episodes=1, seed=3, sac=SAC_SETTINGS,
                           progress=False, **kw)


def assert_same_run(a: dict, b: dict) -> None:
    assert [(c["step"], c["return"]) for c in a["checkpoints"]] == [(c["step"], c["return"]) for c in b["checkpoints"]]
    for ca, cb in zip(a["checkpoints"], b["checkpoints"]):
        for key, value in ca["actor"].items():
            assert torch.equal(value, cb["actor"][key]), (ca["step"], key)
    assert len(a["episodes"]) == len(b["episodes"])
    for i, (ea, eb) in enumerate(zip(a["episodes"], b["episodes"])):
        for key in ea:
            assert np.array_equal(ea[key], eb[key]), (i, key)


def _sigterm_at_update(count: int, monkeypatch) -> None:
    import os
    import signal

    real, calls = SAC.update, {"n": 0}

    def wrapped(self, batch):
        calls["n"] += 1
        if calls["n"] == count:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, batch)

    monkeypatch.setattr(SAC, "update", wrapped)


@pytest.mark.slow  # trains for seconds
def test_sigterm_at_a_random_update_then_resume_gives_the_uninterrupted_run(tmp_path, monkeypatch):
    reference = behaviour()  # no checkpoint file at all: checkpointing must not change the run either
    update = random.Random().randint(1, STEPS - START_STEPS - 60)
    print(f"SIGTERM at update {update}")
    checkpoint = tmp_path / "behaviour.checkpoint.pt"
    _sigterm_at_update(update, monkeypatch)
    with pytest.raises(Preempted, match=r"stopped by SIGTERM at step \d+; checkpoint .* saved"):
        behaviour(checkpoint=checkpoint, checkpoint_every=10_000)
    assert checkpoint.exists()
    stopped_at = torch.load(checkpoint, weights_only=True)["step"]
    assert START_STEPS + update <= stopped_at < STEPS  # at the first episode end after the signal
    monkeypatch.undo()
    resumed = behaviour(checkpoint=checkpoint, checkpoint_every=10_000)
    assert_same_run(resumed, reference)
    assert not checkpoint.exists()  # the result is complete: its checkpoint has served


@pytest.mark.slow  # trains for seconds
def test_periodic_checkpoints_leave_the_run_unchanged_and_another_jobs_checkpoint_is_ignored(tmp_path, caplog):
    checkpoint = tmp_path / "behaviour.checkpoint.pt"
    other = train_behaviour("hopper", 400, 200, eval_every=200, eval_episodes=1, seed=4, sac=SAC_SETTINGS,
                            progress=False, checkpoint=checkpoint, checkpoint_every=100)
    assert not checkpoint.exists() and other["checkpoints"]
    # a checkpoint of another job (seed 4, 400 steps) left where this job looks: ignored with a warning
    from wmaug.core.io import torch_save

    torch_save({"job": {"seed": 4}, "step": 10}, checkpoint)
    run = behaviour(checkpoint=checkpoint, checkpoint_every=150)
    assert "from another configuration" in caplog.text
    assert_same_run(run, behaviour())


def test_a_dataset_records_its_returns_beside_d4rls_and_a_weak_expert_warns_at_paper_scale():
    """docs/datasets.md: each built dataset's mean return and normalised score beside D4RL v2's published mean; at
    paper scale an `expert` under 60 normalised is far below D4RL's and says so (not at smaller scales, whose
    behaviour budgets are small by design)."""
    from wmaug.core.envs import normalized_score
    from wmaug.data import d4rl_protocol as P

    episodes = [{"rewards": np.full(100, 5.0)}, {"rewards": np.full(50, 2.0)}, {"rewards": np.zeros(0)}]
    r = P.dataset_returns("hopper", "medium", episodes)
    assert r["mean_return"] == pytest.approx(300.0) and r["episodes"] == 2
    assert r["normalized_score"] == pytest.approx(normalized_score("hopper", 300.0))
    assert r["d4rl_v2_mean_return"] == 1422.0 and r["d4rl_v2_normalized_score"] == pytest.approx(44.3, abs=0.05)
    weak = P.dataset_returns("hopper", "expert", episodes)
    assert "far below D4RL" in P.strength_warning("hopper", "expert", "paper", weak)
    assert P.strength_warning("hopper", "expert", "quick", weak) is None
    assert P.strength_warning("hopper", "medium", "paper", r) is None
    strong = P.dataset_returns("hopper", "expert", [{"rewards": np.full(1000, 3.4)}])  # 3,400: about 105
    assert P.strength_warning("hopper", "expert", "paper", strong) is None
    assert "d4rl_v2_mean_return" not in P.dataset_returns("ant", "random", episodes)
