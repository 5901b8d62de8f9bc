"""Paper B's pieces around the update rules: the mixture policy, cutting ensembles into members, the
pre-training job and the fine-tuning cell (samplers, analysis columns, resume)."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from wmaug.core import config as C
from wmaug.algos.cql import CQL, CQLConfig
from wmaug.algos.ensemble_sac import EnsembleSAC, EnsembleSACConfig
from wmaug.cell import run_cell
from wmaug.paper_b.finetune import FinetuneRun
from wmaug.core.methods import PAPER_B
from wmaug.core.nets import EnsembleTanhGaussianActor, moment_matched, select_members
from wmaug.paper_b.pretrain import run_pretrain

from conftest import ROOT as C_ROOT
from conftest import critic_loss_turns_nan


# ---- the ensemble policy -----------------------------------------------------------------------

def test_moment_matched_mixture_matches_the_formula_and_samples():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(5, 3, 2, generator=g)
    stds = torch.rand(5, 3, 2, generator=g) + 0.1
    mean, std = moment_matched(means, stds)
    assert torch.allclose(mean, means.mean(0))
    assert torch.allclose(std.pow(2), (means.pow(2) + stds.pow(2)).mean(0) - means.mean(0).pow(2), atol=1e-6)
    # Against the mixture itself: 200K draws, pick a member uniformly then its Gaussian. The standard error
    # of a mean is at most ~3 / sqrt(200K) = 0.007 here; tolerance 0.03 (4 SE).
    n = 200_000
    member = torch.randint(0, 5, (n,), generator=g)
    x = means[member, 0] + stds[member, 0] * torch.randn(n, 2, generator=g)
    assert torch.allclose(x.mean(0), mean[0], atol=0.03)
    assert torch.allclose(x.std(0), std[0], atol=0.03)
    # One member: the mixture is that member.
    m1, s1 = moment_matched(means[:1], stds[:1])
    assert torch.allclose(m1, means[0]) and torch.allclose(s1, stds[0], atol=1e-6)


def test_mixture_policy_acts_with_tanh_of_the_mixture_mean():
    torch.manual_seed(0)
    actor = EnsembleTanhGaussianActor(4, 5, 2, hidden=(16,))
    obs = torch.randn(7, 5)
    action, _ = actor.mixture(obs, deterministic=True)
    mean, _ = moment_matched(*actor.distribution_params(obs))
    assert torch.allclose(action, torch.tanh(mean))


def test_selected_members_behave_exactly_like_the_originals():
    torch.manual_seed(0)
    cql = CQL(5, 2, CQLConfig(hidden=(16, 16)), members=3)
    state = cql.state_dict()
    one = CQL(5, 2, CQLConfig(hidden=(16, 16)), members=1)
    one.load_state_dict(select_members(state, 3, [2]))
    obs, act = torch.randn(9, 5), torch.rand(9, 2) * 2 - 1
    assert torch.equal(one.act_members(obs, True)[0], cql.act_members(obs, True)[2])
    assert torch.equal(one.critic(obs, act)[0], cql.critic(obs, act)[2])
    # members of one batched learner start from different weights
    w = cql.critic.net.layers[0].weight
    assert not torch.equal(w[0], w[2]) and not torch.equal(w[0], w[1])
    # and an ensemble SAC built from two of them starts with exactly their critics
    sac = EnsembleSAC(5, 2, EnsembleSACConfig(hidden=(16, 16)), members=2)
    sac.load_pretrained(select_members({k: state[k] for k in ("actor", "critic", "critic_target")}, 3, [0, 2]))
    assert torch.equal(sac.critic(obs, act), cql.critic(obs, act)[[0, 2]])


# ---- pre-training and fine-tuning cells ---------------------------------------------------------

@pytest.fixture(scope="module")
def hopper_d4rl_file(tmp_path_factory, hopper_random):
    path = tmp_path_factory.mktemp("data") / "hopper_random.hdf5"
    with h5py.File(path, "w") as f:
        for key in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts"):
            f[key] = getattr(hopper_random, key)
    return path


def small_config(base_config: dict) -> dict:
    cfg = copy.deepcopy(base_config)
    cfg["scale"] = "smoke"
    cfg["scales"]["smoke"].pop("grid_subset", None)
    cfg["studies"]["balanced_replay"]["methods"] = [r.name for r in PAPER_B]  # every recipe on hopper/random
    cfg = C.validate(cfg)
    cfg["algorithms"]["cql"].update(hidden=[32, 32], batch_size=32)
    cfg["algorithms"]["balanced_replay"].update(hidden=[32, 32], batch_size=32)
    cfg["algorithms"]["finetune"].update(batch_size=32, first_updates_after=100, first_updates=30, update_every=20)
    cfg["algorithms"]["analysis"].update(auroc_states=100)
    return cfg


@pytest.fixture(scope="module")
def cql_block(tmp_path_factory, hopper_d4rl_file):
    import yaml

    cfg = small_config(yaml.safe_load((C_ROOT / "config" / "config.yaml").read_text()))
    spec = C.pretrain_spec(cfg, "cql", "hopper", "random", 0).to_json()
    spec["paths"]["dataset"] = f"d4rl:{hopper_d4rl_file}"
    spec["iterations"] = 30
    out = tmp_path_factory.mktemp("pretrained") / "block0.pt"
    result = run_pretrain(spec, out, torch.device("cpu"), progress=False)
    assert result["members"] == 5 and result["agent_seeds"] == [0, 1, 2, 3, 4]
    assert len(result["agent_scores"]) == 5 and all(np.isfinite(result["agent_scores"]))
    return out


def finetune_spec(base_config, method, data_file, block, seed=0, **budget):
    cfg = small_config(base_config)
    spec = C.cell_spec(cfg, "balanced_replay", "hopper", "random", method, seed).to_json()
    spec["paths"]["dataset"] = f"d4rl:{data_file}"
    if spec["paths"]["pretrained"]:
        spec["paths"]["pretrained"] = str(block)
    spec["budget"].update({"finetune_steps": 300, "finetune_eval_every": 100, "eval_steps": 1000,
                           "checkpoint_every": 100, **budget})
    return spec


def curve(path) -> pd.DataFrame:
    return pd.read_csv(path / "curve.csv")


@pytest.mark.parametrize("method", ["ours", "sac_ft_online_only", "ours_uniform", "ours_alt_ratio"])
def test_finetune_cell_runs_and_logs_its_analysis(tmp_path, base_config, hopper_d4rl_file, cql_block, method):
    spec = finetune_spec(base_config, method, hopper_d4rl_file, cql_block)
    summary = run_cell(spec, tmp_path / method, device="cpu", progress=False)
    c = curve(tmp_path / method)
    assert list(c["step"]) == [0, 100, 200, 300]
    # at step 100 the first block (30 for paper B's method, the usual 20 for the Fig 1b baseline), then 20 every 20
    first = 20 if method == "sac_ft_online_only" else 30
    assert summary["counts"]["updates"] == first + 20 * (200 // 20) and summary["counts"]["env_steps"] == 300
    share = c["offline_share"].iloc[1:]
    if method == "sac_ft_online_only":
        assert (share == 0).all()
    elif method == "ours_uniform":
        # uniform over 3000 offline + <= 300 online transitions: at least 3000 / 3300 offline
        assert (share > 0.85).all() and (share < 1).all()
    else:
        assert ((share > 0) & (share < 1)).all() and c["density_loss"].iloc[1:].notna().all()
    assert c["auroc_ensemble"].iloc[1:].between(0, 1).all()
    if spec["recipe"]["members"] == 1:
        assert np.allclose(c["auroc_ensemble"].iloc[1:], c["auroc_single"].iloc[1:])


@pytest.mark.slow  # trains for seconds
def test_interrupted_finetune_resumes_to_the_same_curve(tmp_path, base_config, hopper_d4rl_file, cql_block, monkeypatch):
    spec = finetune_spec(base_config, "ours", hopper_d4rl_file, cql_block, seed=1, finetune_steps=400)
    run_cell(spec, tmp_path / "reference", device="cpu", progress=False)

    save = FinetuneRun.save_checkpoint

    def save_then_die(self):
        save(self)
        raise KeyboardInterrupt("killed after the first checkpoint")

    monkeypatch.setattr(FinetuneRun, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_cell(spec, tmp_path / "killed", device="cpu", progress=False)
    assert (tmp_path / "killed" / "checkpoint.pt").exists()
    assert not (tmp_path / "killed" / "summary.json").exists()
    monkeypatch.setattr(FinetuneRun, "save_checkpoint", save)
    summary = run_cell(spec, tmp_path / "killed", device="cpu", progress=False)
    assert summary["resumed"] is True
    pd.testing.assert_frame_equal(curve(tmp_path / "killed"), curve(tmp_path / "reference"))


def test_a_finetune_checkpoint_carries_the_learner_and_the_sampler(tmp_path, base_config, hopper_d4rl_file,
                                                                   cql_block):
    """The fast tier's check of what the slow resume test above relies on: extra_state holds both the ensemble and
    balanced replay (its priorities and density ratio), and load_extra_state puts both back."""
    from wmaug.core.spec import cell_spec_from_json

    spec = cell_spec_from_json(finetune_spec(base_config, "ours", hopper_d4rl_file, cql_block, seed=1), "test")
    a = FinetuneRun(spec, tmp_path / "a", torch.device("cpu"), progress=False)
    rng = np.random.default_rng(0)
    obs_dim, act_dim = 11, 3  # Hopper
    for _ in range(5):
        a.sampler.add(rng.normal(size=obs_dim), rng.uniform(-1, 1, act_dim), 1.0, rng.normal(size=obs_dim), False)
    with torch.no_grad():
        a.agent.log_alpha.fill_(-2.0)
    b = FinetuneRun(spec, tmp_path / "b", torch.device("cpu"), progress=False)
    b.load_extra_state(a.extra_state())
    assert torch.equal(b.agent.log_alpha, a.agent.log_alpha)
    assert b.sampler.replay.online_size == a.sampler.replay.online_size == 5


@pytest.mark.parametrize("after, fails", [(400, True), (399, False)])
def test_first_updates_after_must_leave_an_update(tmp_path, base_config, hopper_d4rl_file, cql_block, after, fails):
    from wmaug.core.spec import cell_spec_from_json

    raw = finetune_spec(base_config, "ours", hopper_d4rl_file, cql_block, finetune_steps=400)
    raw["algorithms"]["finetune"]["first_updates_after"] = after
    make = lambda: FinetuneRun(cell_spec_from_json(raw, "test"), tmp_path, torch.device("cpu"), progress=False)  # noqa: E731
    if fails:
        with pytest.raises(ValueError, match="first_updates_after = 400 leaves no update in 400"):
            make()
    else:
        assert make().first_updates_after == 399


def test_finetune_cell_without_its_agents_fails_before_compute(tmp_path, base_config, hopper_d4rl_file):
    spec = finetune_spec(base_config, "ours", hopper_d4rl_file, tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="pre-trained agents .* not found"):
        run_cell(spec, tmp_path / "out", device="cpu", progress=False)
    assert not (tmp_path / "out").exists()


def _sigterm_self_at(cls, method: str, count: int, monkeypatch) -> None:
    """Patch cls.method to send this process SIGTERM on its count-th call (what SLURM does to a job)."""
    import os
    import signal

    real, calls = getattr(cls, method), {"n": 0}

    def wrapped(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == count:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, wrapped)


def test_sigterm_stops_pretraining_with_a_checkpoint_and_the_rerun_matches(tmp_path, base_config, hopper_d4rl_file,
                                                                         monkeypatch):
    """SIGTERM during update 12 of 30: the block checkpoints at that iteration (losses since the last log row
    included) and raises Preempted; the re-run resumes to the uninterrupted block's weights and loss history."""
    from wmaug.core.errors import Preempted

    cfg = small_config(base_config)
    spec = C.pretrain_spec(cfg, "cql", "hopper", "random", 0).to_json()
    spec["paths"]["dataset"] = f"d4rl:{hopper_d4rl_file}"
    spec["iterations"] = 30
    reference = run_pretrain(spec, tmp_path / "reference.pt", torch.device("cpu"), progress=False)
    _sigterm_self_at(CQL, "update", 12, monkeypatch)
    out = tmp_path / "block0.pt"
    with pytest.raises(Preempted, match="stopped by SIGTERM at iteration 12"):
        run_pretrain(spec, out, torch.device("cpu"), progress=False)
    assert not out.exists() and out.with_suffix(".checkpoint.pt").exists()
    monkeypatch.undo()
    resumed = run_pretrain(spec, out, torch.device("cpu"), progress=False)
    assert resumed["history"] == reference["history"]
    for key, value in reference["state"]["critic"].items():
        assert torch.equal(value, resumed["state"]["critic"][key]), key


def test_a_non_finite_loss_stops_pretraining_naming_the_loss_and_iteration(tmp_path, base_config, hopper_d4rl_file,
                                                                          monkeypatch):
    """The critic loss turns NaN at update 7 (injected): the block stops at its next log row with the shared
    runner's NonFiniteLoss, names the loss and the iteration, keeps the checkpoint of iteration 5 and writes no
    result."""
    from wmaug.core.errors import NonFiniteLoss

    cfg = small_config(base_config)
    spec = C.pretrain_spec(cfg, "cql", "hopper", "random", 0).to_json()
    spec["paths"]["dataset"] = f"d4rl:{hopper_d4rl_file}"
    spec["iterations"] = 20  # a log row every iteration
    critic_loss_turns_nan(CQL, 7, monkeypatch)
    out = tmp_path / "block0.pt"
    with pytest.raises(NonFiniteLoss, match=r"critic_loss became nan before iteration 7 .*last good checkpoint .* kept"):
        run_pretrain(spec, out, torch.device("cpu"), progress=False)
    assert not out.exists()
    assert torch.load(out.with_suffix(".checkpoint.pt"), weights_only=True)["iteration"] == 5  # a checkpoint every 5


@pytest.mark.slow  # trains for seconds
def test_sigterm_stops_a_finetune_cell_at_an_episode_end_and_the_rerun_matches(tmp_path, base_config,
                                                                             hopper_d4rl_file, cql_block, monkeypatch):
    from wmaug.core.errors import Preempted

    spec = finetune_spec(base_config, "ours", hopper_d4rl_file, cql_block, seed=2, finetune_steps=400)
    run_cell(spec, tmp_path / "reference", device="cpu", progress=False)
    _sigterm_self_at(FinetuneRun, "update", 150, monkeypatch)
    with pytest.raises(Preempted, match="stopped by SIGTERM at online step"):
        run_cell(spec, tmp_path / "stopped", device="cpu", progress=False)
    assert (tmp_path / "stopped" / "checkpoint.pt").exists()
    assert not (tmp_path / "stopped" / "summary.json").exists()
    monkeypatch.undo()
    summary = run_cell(spec, tmp_path / "stopped", device="cpu", progress=False)
    assert summary["resumed"] is True
    pd.testing.assert_frame_equal(curve(tmp_path / "stopped"), curve(tmp_path / "reference"))


@pytest.mark.parametrize("burst, update_every, expected", [
    # paper B's method: 1,000 steps collect, then 5,000 updates, then 1,000 every 1,000 steps (App. D.1)
    (True, 1000, {999: 0, 1000: 5000, 1001: 0, 1999: 0, 2000: 1000, 3000: 1000, 250000: 1000}),
    # a baseline: the usual block at step 1,000, no burst
    (False, 1000, {999: 0, 1000: 1000, 1500: 0, 2000: 1000}),
    # update_every 1: one update per step after the first block
    (True, 1, {999: 0, 1000: 5000, 1001: 1, 1002: 1}),
])
def test_the_fine_tuning_schedule_is_paper_bs(burst, update_every, expected):
    from types import SimpleNamespace

    from wmaug.paper_b.finetune import FinetuneRun

    run = SimpleNamespace(first_updates_after=1000, update_every=update_every,
                          first_updates=5000 if burst else update_every)
    assert {t: FinetuneRun.updates_after_step(run, t) for t in expected} == expected
    total = sum(FinetuneRun.updates_after_step(run, t) for t in range(1, 250_001))
    assert total == (5000 if burst else update_every) + update_every * ((250_000 - 1000) // update_every)


def test_only_paper_bs_method_and_its_ablations_take_the_burst():
    """App. D.1 gives the 5,000-update burst "for our method": ours and every ablation of it (FQE-init included), not
    the baselines (AWAC, BCQ-ft, SAC-ft, SAC, the Fig 1b concept runs)."""
    from wmaug.core.methods import PAPER_B

    no_burst = {r.name for r in PAPER_B if not r.burst}
    assert no_burst == {"awac", "bcq_ft", "sac_ft", "sac", "sac_single", "sac_ft_online_only"}

