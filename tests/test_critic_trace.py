"""Paper A's Fig 5 analysis: critic values along one real MuJoCo episode beside its return-to-go."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from wmaug.paper_a.critic_trace import (
    CriticTraceError,
    SUMMARY_COLUMNS,
    TRACE_COLUMNS,
    critic_trace,
    critic_values,
    discounted_return_to_go,
    load_cell_critic,
    pick_episode,
    trace_summary,
)
from wmaug.data.d4rl_protocol import rollout_episodes, rollout_on_env, uniform_policy
from wmaug.data.sample import ObsNormalizer
from wmaug.core.envs import get_spec
from wmaug.core.io import torch_load, torch_save
from wmaug.core.nets import EnsembleDeterministicActor, QEnsemble
from wmaug.paper_a.critic_trace_figure import CRITIC_PLOT_COLUMNS, plot_critic_trace

GAMMA = 0.99
HIDDEN = [8, 6]


@pytest.fixture(scope="module")
def cheetah_episode() -> dict:
    """One real 1000-step HalfCheetah-v5 episode (uniform random actions), ended by the time limit."""
    (ep,) = rollout_episodes("halfcheetah", uniform_policy("halfcheetah", 0), 1000, seed=0)
    assert len(ep["rewards"]) == 1000 and ep["truncations"][-1] and not ep["terminations"].any()
    return ep


@pytest.fixture(scope="module")
def hopper_episodes() -> list[dict]:
    """Real Hopper-v5 episodes: two long ones that fall over (zero actions, 141 and 155 steps), then
    uniform-random ones under a 30-step time limit (most fall over first, some reach the limit)."""
    still = rollout_episodes("hopper", lambda obs: np.zeros(3, np.float32), 296, seed=0)[:2]
    env = gym.make(get_spec("hopper").gym_id, max_episode_steps=30)
    env.action_space.seed(1)
    short = rollout_on_env(env, uniform_policy("hopper", 1), 200, seed=1)[:-1]  # drop the budget-cut one
    return still + short


def direct_return_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """sum_k gamma^k r_{t+k} for every t, as one explicit sum per step (no recursion)."""
    r = np.asarray(rewards, dtype=np.float64)
    T = len(r)
    k = np.arange(T)
    return np.array([np.sum(gamma ** k[: T - t] * r[t:]) for t in range(T)])


# ------------------------------------------------------------------------------------ return-to-go
def test_return_to_go_equals_direct_sum_on_real_episode(cheetah_episode):
    r = cheetah_episode["rewards"]
    g = discounted_return_to_go(r, GAMMA)
    assert g.dtype == np.float64 and g.shape == (1000,)
    # the recursion and the direct sum agree to float64 rounding: |diff| <= 1e-10 (rel.) and 1e-9 (abs.)
    np.testing.assert_allclose(g, direct_return_to_go(r, GAMMA), rtol=1e-10, atol=1e-9)
    assert g[-1] == pytest.approx(float(r[-1]), abs=1e-12)  # nothing after the last recorded step
    # a random cheetah loses reward every step: the return-to-go is far from zero and not constant
    assert abs(g[0]) > 1.0 and np.ptp(g) > 1.0


def test_return_to_go_edge_gammas(cheetah_episode):
    r = cheetah_episode["rewards"].astype(np.float64)
    np.testing.assert_array_equal(discounted_return_to_go(r, 0.0), r)
    np.testing.assert_allclose(discounted_return_to_go(r, 1.0), np.cumsum(r[::-1])[::-1], rtol=1e-12, atol=1e-9)
    with pytest.raises(ValueError, match="gamma"):
        discounted_return_to_go(r, 1.5)


# ------------------------------------------------------------------------------------ pick_episode
def test_pick_episode_draws_a_full_length_episode_with_its_seed(hopper_episodes):
    """Paper A's Fig 5 shows an episode "sampled randomly from the expert D4RL dataset": a seeded draw among the
    episodes that ran to their time limit, the same for the same seed."""
    eps = hopper_episodes
    limited = [i for i, e in enumerate(eps) if e["truncations"][-1] and not e["terminations"].any()]
    assert limited, "the fixture must have a time-limit episode"
    longest = int(np.argmax([len(e["rewards"]) for e in eps]))
    assert eps[longest]["terminations"][-1], "the longest episode must be one that fell over"
    for seed in range(5):
        i, ep = pick_episode(eps, seed=seed)
        assert i in limited and ep is eps[i] and pick_episode(eps, seed=seed)[0] == i
        assert ep["truncations"][-1] and not ep["terminations"].any()
    many = [dict(e) for e in eps if e["truncations"][-1] and not e["terminations"].any()] * 8
    assert len({pick_episode(many, seed=s)[0] for s in range(40)}) > 1  # a draw, not the first one


def test_pick_episode_falls_back_to_longest_and_takes_index(hopper_episodes):
    fell = [e for e in hopper_episodes if e["terminations"].any()]
    i, ep = pick_episode(fell)
    assert len(ep["rewards"]) == max(len(e["rewards"]) for e in fell) == 155 and ep is fell[i]
    i, ep = pick_episode(hopper_episodes, 3)
    assert i == 3 and ep is hopper_episodes[3]
    assert pick_episode(hopper_episodes, -1)[0] == len(hopper_episodes) - 1
    n = len(hopper_episodes)
    with pytest.raises(IndexError, match=f"{n} episodes"):
        pick_episode(hopper_episodes, n)
    with pytest.raises(ValueError, match="0 episodes"):
        pick_episode([])


# ------------------------------------------------------------------------------------ critics
def make_model(obs: np.ndarray, act_dim: int, seed: int, offline: bool = True, q_scale: float = 1.0) -> dict:
    """A model.pt dict of random tiny networks; the offline normaliser differs from the final one."""
    torch.manual_seed(seed)
    obs_dim = obs.shape[1]

    def part(shift: float) -> dict:
        critic = QEnsemble(obs_dim, act_dim, HIDDEN, members=2)
        with torch.no_grad():
            critic.net.layers[-1].weight.mul_(q_scale)
            critic.net.layers[-1].bias.mul_(q_scale)
        norm = ObsNormalizer.fit(obs[:-1] + shift)
        return {"actor": EnsembleDeterministicActor(1, obs_dim, act_dim, HIDDEN).state_dict(),
                "critic": critic.state_dict(), "normalizer": norm.state_dict()}

    model = part(0.0)
    if offline:
        model["offline"] = part(0.5)
    return model


def by_hand(critic_state: dict, norm_state: dict, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    """(2, T): each member's ReLU MLP in float64 numpy, on (s - mean) / std concatenated with a."""
    mean, std = norm_state["mean"].double().numpy(), norm_state["std"].double().numpy()
    x = np.concatenate([(obs.astype(np.float64) - mean) / std, act.astype(np.float64)], axis=1)
    n_layers = len({k.split(".")[2] for k in critic_state})
    out = []
    for m in range(2):
        h = x
        for i in range(n_layers):
            w = critic_state[f"net.layers.{i}.weight"][m].double().numpy()
            b = critic_state[f"net.layers.{i}.bias"][m, 0].double().numpy()
            h = h @ w + b
            if i < n_layers - 1:
                h = np.maximum(h, 0.0)
        out.append(h[:, 0])
    return np.stack(out)


def test_critic_values_match_hand_evaluation_after_save_load(cheetah_episode, tmp_path):
    obs, act = cheetah_episode["observations"], cheetah_episode["actions"]
    torch_save(make_model(obs, act.shape[1], seed=0), tmp_path / "model.pt")
    model = torch_load(tmp_path / "model.pt", "cell model")
    for part, nets in (("final", model), ("offline", model["offline"])):
        q = critic_values(model, part, obs[:-1], act, HIDDEN)
        assert q.shape == (2, 1000) and q.dtype == np.float64
        expected = by_hand(nets["critic"], nets["normalizer"], obs[:-1], act)
        np.testing.assert_allclose(q, expected, rtol=1e-4, atol=1e-5)  # float32 network vs float64 by hand
        assert np.abs(q[0] - q[1]).max() > 1e-3  # two distinct twins
    # the parts are different networks and normalisers: reading the wrong one would show
    assert np.abs(critic_values(model, "final", obs[:-1], act, HIDDEN)
                  - critic_values(model, "offline", obs[:-1], act, HIDDEN)).max() > 1e-3
    # raw (unnormalised) states give different values: the normaliser is applied
    raw = by_hand(model["critic"], {"mean": torch.zeros(obs.shape[1]), "std": torch.ones(obs.shape[1])},
                  obs[:-1], act)
    assert np.abs(raw - critic_values(model, "final", obs[:-1], act, HIDDEN)).max() > 1e-3
    with pytest.raises(ValueError, match="observations"):
        critic_values(model, "final", obs, act, HIDDEN)  # T + 1 observations
    with pytest.raises(ValueError, match="does not fit"):
        critic_values(model, "final", obs[:-1], act, [16, 16])


def test_missing_offline_part_is_named(cheetah_episode):
    obs, act = cheetah_episode["observations"], cheetah_episode["actions"]
    scratch = make_model(obs, act.shape[1], seed=1, offline=False)
    with pytest.raises(CriticTraceError, match="no 'offline' part"):
        critic_values(scratch, "offline", obs[:-1], act, HIDDEN)
    with pytest.raises(CriticTraceError, match="online only.*seed 3.*'offline'"):
        critic_trace([{"label": "online only", "seed": 3, "model": scratch, "part": "offline",
                       "hidden": HIDDEN}], cheetah_episode, GAMMA)
    with pytest.raises(ValueError, match="part must be"):
        critic_values(scratch, "handoff", obs[:-1], act, HIDDEN)


def test_critic_trace_table_and_summary(cheetah_episode):
    ep = cheetah_episode
    obs, act = ep["observations"], ep["actions"]
    critics = [{"label": lab, "seed": s, "model": make_model(obs, act.shape[1], seed=10 * k + s, q_scale=scale),
                "part": part, "hidden": HIDDEN}
               for k, (lab, part, scale) in enumerate([("aug10k", "offline", 1.0), ("noaug10k", "offline", 500.0)])
               for s in (0, 1)]
    table = critic_trace(critics, ep, GAMMA)
    assert list(table.columns) == TRACE_COLUMNS and len(table) == 4 * 1000
    g = direct_return_to_go(ep["rewards"], GAMMA)
    for c in critics:
        rows = table[(table["label"] == c["label"]) & (table["seed"] == c["seed"])]
        np.testing.assert_array_equal(rows["t"], np.arange(1000))
        q = critic_values(c["model"], c["part"], obs[:-1], act, HIDDEN)
        np.testing.assert_allclose(rows[["q1", "q2"]].to_numpy().T, q)
        np.testing.assert_allclose(rows["q_min"], q.min(0))
        np.testing.assert_allclose(rows["return_to_go"], g, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(rows["reward"], ep["rewards"].astype(np.float64))

    summary = trace_summary(table)
    assert list(summary.columns) == SUMMARY_COLUMNS and list(summary["label"]) == ["aug10k", "noaug10k"]
    for lab, rows in table.groupby("label"):
        s = summary.set_index("label").loc[lab]
        assert s["n_seeds"] == 2 and s["n_steps"] == 1000
        assert s["q_min_mean"] == pytest.approx(rows["q_min"].mean())
        assert s["return_to_go_mean"] == pytest.approx(g.mean())
        assert s["mean_abs_error"] == pytest.approx(np.abs(rows["q_min"] - g[rows["t"]]).mean())
        assert s["scale_ratio"] == pytest.approx(rows["q_min"].mean() / g.mean())
        assert s["q_abs_max"] == pytest.approx(rows["q_min"].abs().max())
    # the blown-up critic is far off the reward scale, which the summary shows
    s = summary.set_index("label")
    assert s.loc["noaug10k", "q_abs_max"] > 20 * s.loc["aug10k", "q_abs_max"]
    assert s.loc["noaug10k", "mean_abs_error"] > s.loc["aug10k", "mean_abs_error"]
    # tail: the last 400 steps of each seed left out
    cut = trace_summary(table, tail=400)
    assert (cut["n_steps"] == 600).all()
    assert cut.set_index("label").loc["aug10k", "return_to_go_mean"] == pytest.approx(g[:600].mean())
    with pytest.raises(ValueError, match="two critics"):
        critic_trace(critics + critics[:1], ep, GAMMA)


def test_load_cell_critic(cheetah_episode, tmp_path):
    obs, act = cheetah_episode["observations"], cheetah_episode["actions"]
    cell = tmp_path / "wmaug_ant_medium-replay_td3_s4_smoke_cfg0"
    cell.mkdir()
    torch_save(make_model(obs, act.shape[1], seed=2, offline=False), cell / "model.pt")
    (cell / "summary.json").write_text(json.dumps({"cell": {"method": "td3", "seed": 4},
                                                   "spec": {"td3": {"hidden": HIDDEN}}}))
    entry = load_cell_critic(cell, "online", "final")
    assert entry["seed"] == 4 and entry["hidden"] == HIDDEN and entry["part"] == "final"
    assert critic_trace([entry], cheetah_episode, GAMMA)["seed"].eq(4).all()
    with pytest.raises(CriticTraceError, match="'offline'"):
        load_cell_critic(cell, "online", "offline")


# ------------------------------------------------------------------------------------ figure
def test_plot_critic_trace_writes_files(cheetah_episode, tmp_path):
    ep = {k: v[:201] if k == "observations" else v[:200] for k, v in cheetah_episode.items()}
    obs, act = ep["observations"], ep["actions"]
    critics = [{"label": lab, "seed": s, "model": make_model(obs, act.shape[1], seed=5 * k + s, q_scale=sc),
                "part": "offline" if lab != "online" else "final", "hidden": HIDDEN}
               for k, (lab, sc) in enumerate([("aug10k", 1.0), ("noaug10k", 300.0), ("online", 1.0)])
               for s in (0, 1, 2)]
    table = critic_trace(critics, ep, GAMMA)
    order = ["aug10k", "noaug10k", "noaug50k", "online"]  # noaug50k has no cells
    labels = {"aug10k": "10K, with augmentation", "noaug10k": "10K, without", "noaug50k": "50K, without",
              "online": "online only"}
    out = plot_critic_trace(table, tmp_path / "fig5", labels=labels, order=order, title="Fig 5 (test)",
                            scale="smoke")
    for suffix in (".png", ".pdf", ".csv"):
        assert (tmp_path / f"fig5{suffix}").stat().st_size > 0
    csv = pd.read_csv(tmp_path / "fig5.csv")
    assert list(csv.columns) == CRITIC_PLOT_COLUMNS and len(csv) == 3 * 200 == len(out)
    assert set(csv["label"]) == {"aug10k", "noaug10k", "online"}
    assert csv.loc[csv["label"] == "online", "panel"].iloc[0] == "(d) online only"
    want = table.groupby(["label", "t"])["q_min"].agg(["mean", "min", "max"])
    got = csv.set_index(["label", "t"]).loc[want.index]
    np.testing.assert_allclose(got["q_min_mean"], want["mean"], rtol=1e-6)
    np.testing.assert_allclose(got["q_min_lo"], want["min"], rtol=1e-6)
    np.testing.assert_allclose(got["q_min_hi"], want["max"], rtol=1e-6)
    assert (csv["n_seeds"] == 3).all()
    mae = trace_summary(table).set_index("label")["mean_abs_error"]
    np.testing.assert_allclose(csv.groupby("label")["mean_abs_error"].first().loc[mae.index], mae, rtol=1e-9)

    # nothing to draw: a note figure with a header-only CSV
    plot_critic_trace(table.iloc[:0], tmp_path / "empty", labels=labels, order=order, title="Fig 5 (test)",
                      scale="smoke")
    assert (tmp_path / "empty.png").stat().st_size > 0 and (tmp_path / "empty.pdf").stat().st_size > 0
    assert list(pd.read_csv(tmp_path / "empty.csv").columns) == CRITIC_PLOT_COLUMNS
