"""The behaviour SAC of the D4RL protocol resumes exactly: SIGTERM at a random update, a checkpoint at the next
episode end, Preempted (the CLI exits 143), and the re-run ends with the uninterrupted run's evaluation checkpoints
(returns and actor weights) and recorded episodes, so with the same datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmaug.algos.sac import SAC
from wmaug.behaviour import train_behaviour
from wmaug.core.errors import Preempted

from conftest import drawn_moment

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
    update = drawn_moment("SIGTERM update").randint(1, STEPS - START_STEPS - 60)
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


def _candidate(seed: int, returns: list[float], env: str = "hopper") -> dict:
    """What `wmaug behaviour` writes, with the fields selection reads; the actors are left out."""
    return {"env": env, "seed": seed, "steps": 30, "start_steps": 10, "sac": SAC_SETTINGS, "wall_time_s": 1.0,
            "checkpoints": [{"step": 10 * (i + 1), "return": r, "actor": {}} for i, r in enumerate(returns)],
            "episodes": []}


def test_the_behaviour_run_with_the_strongest_final_policy_is_selected_ties_to_the_lowest_seed():
    """docs/datasets.md's rule: the highest final evaluation return wins, whatever the run's best checkpoint was
    (seed 1 peaked at 2,826 and ended at 1,526, the hopper case of the issue); a tie goes to the lowest seed."""
    from wmaug.data.d4rl_protocol import select_behaviour

    runs = [_candidate(0, [300, 2013]), _candidate(1, [400, 2826, 1526]), _candidate(2, [200, 3014])]
    assert select_behaviour(runs)["seed"] == 2
    assert select_behaviour(runs[:2])["seed"] == 0
    assert select_behaviour([_candidate(5, [10, 900]), _candidate(3, [10, 900])])["seed"] == 3
    with pytest.raises(ValueError, match="behaviour_seeds is empty"):
        select_behaviour([])


def test_behaviour_select_records_every_candidate_and_the_dataset_reads_the_chosen_run(tmp_path, capsys):
    from wmaug.cli import _load_behaviour, main
    from wmaug.core.io import read_json, torch_save

    paths = []
    for seed, returns in ((0, [5.0, 40.0]), (1, [5.0, 90.0]), (2, [5.0, 60.0])):
        paths.append(str(tmp_path / f"seed{seed}.pt"))
        torch_save(_candidate(seed, returns), paths[-1])
    out = tmp_path / "behaviour.json"
    main(["behaviour-select", "--env", "hopper", "--candidates", *paths, "--out", str(out)])
    record = read_json(out)
    assert record["selected_seed"] == 1 and record["selected_path"] == paths[1]
    assert [(c["seed"], c["final_return"], c["final_step"]) for c in record["candidates"]] == [
        (0, 40.0, 20), (1, 90.0, 20), (2, 60.0, 20)]
    assert "highest evaluation return" in record["rule"]
    run, _ = _load_behaviour(str(out))
    assert run["seed"] == 1 and run["checkpoints"][-1]["return"] == 90.0
    # a candidate of another environment is refused, naming the file
    torch_save(_candidate(3, [1.0, 2.0], env="walker2d"), tmp_path / "seed3.pt")
    with pytest.raises(SystemExit) as exc:
        main(["behaviour-select", "--env", "hopper", "--candidates", paths[0], str(tmp_path / "seed3.pt"),
              "--out", str(tmp_path / "other.json")])
    assert exc.value.code == 2
    assert "seed3.pt: a behaviour run of 'walker2d', not of --env 'hopper'" in capsys.readouterr().err
