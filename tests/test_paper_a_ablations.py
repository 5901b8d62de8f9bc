"""Paper A's ablations and open questions: rate 0 is TD3+BC, k-step rollouts reduce to one step at k = 1,
the hand-off variants, nested samples, the noisy-action environment and the imagined-terminal rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from wmaug.algos.td3 import TD3, TD3Config
from wmaug.paper_a.augment import WorldModelAugmenter, latent_rollout
from wmaug.cell import run_cell
from wmaug.data.buffer import Batch, ReplayBuffer
from wmaug.data.d4rl_protocol import rollout_episodes, uniform_policy
from wmaug.data.sample import subsample, subsample_indices
from wmaug.core.envs import make_env, terminal_fn
from wmaug.core.io import torch_load
from wmaug.paper_a.world_model import WorldModel, WorldModelConfig, save_world_model, train_reward_model

from conftest import episodes_to_transitions, tiny_spec, write_sample


def small_world_model(data, seed=0, reward=False) -> WorldModel:
    torch.manual_seed(seed)
    cfg = WorldModelConfig(hidden=32, layers=2, epochs=0)
    wm = WorldModel(data.obs_dim, data.act_dim, cfg, data.observations.mean(0), data.observations.std(0))
    if reward:
        wm.reward_model, _ = train_reward_model(data, wm, seed, epochs=2, hidden=(32,))
    return wm


def _batch(data, n=64, seed=0) -> Batch:
    buffer = ReplayBuffer.of(data)
    return buffer.sample(n, np.random.default_rng(seed))


def _prepare(tmp_path, data, spec, reward=False):
    write_sample(tmp_path / "sample.npz", data, 500, spec["cell"]["seed"])
    if spec["recipe"]["augment"]:
        wm = small_world_model(data, reward=reward)
        save_world_model(wm, tmp_path / "wm.pt", reward_model=getattr(wm, "reward_model", None))


def _record_batches(monkeypatch) -> list[tuple]:
    """Every batch TD3 updates on, as exact byte strings, and the loss it reported."""
    seen = []
    real = TD3.update

    def spy(self, b):
        metrics = real(self, b)
        seen.append((tuple(getattr(b, k).numpy().tobytes() for k in ("observations", "actions", "rewards",
                                                                       "next_observations", "terminals")),
                     metrics["critic_loss"], metrics.get("actor_loss")))
        return metrics

    monkeypatch.setattr(TD3, "update", spy)
    return seen


# ---- rate 0 is TD3+BC -----------------------------------------------------------------------------------
def test_rate_zero_method_is_exactly_td3bc(tmp_path, hopper_random, base_config, monkeypatch):
    """Same seed: the same batches, the same losses at every update, the same curve and the same networks."""
    specs = {m: tiny_spec(base_config, tmp_path, m, seed=2, online_steps=200,
                          online_start_steps=100) for m in ("td3bc_td3", "wm_rate0")}
    assert specs["td3bc_td3"]["config_hash"] == specs["wm_rate0"]["config_hash"]
    _prepare(tmp_path, hopper_random, specs["wm_rate0"])
    runs = {}
    for method, spec in specs.items():
        seen = _record_batches(monkeypatch)
        run_cell(spec, tmp_path / method, device="cpu", progress=False)
        runs[method] = seen
        monkeypatch.undo()
    a, b = runs["td3bc_td3"], runs["wm_rate0"]
    assert len(a) == len(b) == 60 + 100  # offline iterations + online updates after the start steps
    assert all(x == y for x, y in zip(a, b)), "rate 0 saw other batches or losses than TD3+BC"
    ca, cb = (pd.read_csv(tmp_path / m / "curve.csv") for m in specs)
    assert ca.equals(cb)
    ma, mb = (torch_load(tmp_path / m / "model.pt") for m in specs)
    for part in ("actor", "critic"):
        assert all(torch.equal(ma[part][k], mb[part][k]) for k in ma[part])
    # and a rate above 0 does change the batches (the check above can fail)
    spec = tiny_spec(base_config, tmp_path, "wm_rate25", seed=2, online_steps=200,
                     online_start_steps=100)
    seen = _record_batches(monkeypatch)
    run_cell(spec, tmp_path / "rate25", device="cpu", progress=False)
    assert seen[0][0][3] != a[0][0][3] and seen[0][0][0] == a[0][0][0]  # same states, other next states


# ---- k-step rollouts ------------------------------------------------------------------------------------
def test_k1_rollout_is_the_one_step_sample(hopper_random):
    data = subsample(hopper_random, 500, seed=0)
    wm = small_world_model(data)
    batch = _batch(data)
    torch.manual_seed(11)
    one_step = wm.sample_next(batch.observations, batch.actions)
    torch.manual_seed(11)
    out = latent_rollout(wm, batch, steps=1, gamma=0.99)
    assert torch.equal(out.next_observations, one_step)
    assert torch.equal(out.rewards, batch.rewards) and torch.equal(out.terminals, batch.terminals)
    # the augmenter with k = 1 leaves reward, terminal and discount the data's
    torch.manual_seed(5)
    k1 = WorldModelAugmenter(wm, rate=0.5, steps=1)(batch)
    torch.manual_seed(5)
    idx = torch.randperm(len(batch.observations))[:32]
    expected = batch.next_observations.clone()
    expected[idx] = wm.sample_next(batch.observations[idx], batch.actions[idx])
    assert torch.equal(k1.next_observations, expected) and k1.discounts is None
    assert torch.equal(k1.rewards, batch.rewards) and torch.equal(k1.terminals, batch.terminals)


def test_k_step_rollout_is_model_based_value_expansion(hopper_random):
    """k = 3 with the mean prediction: rewards r + g r1 + g^2 r2 of the imagined steps, bootstrap g^3 at s3,
    and a row whose imagined state ends the episode stops accumulating."""
    data = subsample(hopper_random, 500, seed=0)
    wm = small_world_model(data, reward=True)
    batch = _batch(data, n=32)
    policy = lambda obs: torch.tanh(obs[:, :3])  # any deterministic policy on raw states
    ends_after_one = torch.zeros(32, dtype=torch.bool)
    ends_after_one[:4] = True
    calls = []

    def terminal(obs):  # rows 0-3 end at the first imagined state, others never
        calls.append(len(calls))
        return ends_after_one.clone() if len(calls) == 1 else torch.zeros(32, dtype=torch.bool)

    g = 0.9
    out = latent_rollout(wm, batch, steps=3, gamma=g, stochastic=False, policy=policy, terminal=terminal)
    with torch.no_grad():
        z = wm.encode(wm.normalize(batch.observations))[0]
        rewards = []
        z = wm.step_latent(z, batch.actions)
        s = wm.denormalize(wm.decode(z))
        for _ in range(2):
            a = policy(s)
            z = wm.step_latent(z, a)
            s2 = wm.denormalize(wm.decode(z))
            rewards.append(wm.reward_model(wm.normalize(s), a, wm.normalize(s2)))
            s = s2
        alive0 = 1 - batch.terminals
    expected = batch.rewards + g * alive0 * rewards[0] + g * g * alive0 * (~ends_after_one).float() * rewards[1]
    assert torch.allclose(out.rewards, expected, atol=1e-6)
    assert torch.allclose(out.next_observations, s)
    assert torch.allclose(out.discounts, torch.full((32,), g ** 3))
    assert torch.equal(out.terminals[:4], torch.ones(4)) and torch.equal(out.terminals[4:], batch.terminals[4:])


@pytest.mark.parametrize("steps", [1, 3])
def test_a_seed_groups_world_models_augment_as_each_alone(hopper_random, steps):
    """Three seeds' world models (and reward models) as one WorldModelGroup on a (3, B) batch, each seed drawing
    rows and latent samples from its own generator, give what each model's own augmenter gives its seed's batch
    (float rounding of batched vs single matmuls: tolerance 1e-5)."""
    from wmaug.data.buffer import stack_batches
    from wmaug.paper_a.world_model import WorldModelGroup

    data = subsample(hopper_random, 500, seed=0)
    models = [small_world_model(subsample(hopper_random, 500, seed=k), seed=k, reward=steps > 1) for k in range(3)]
    batches = [_batch(data, n=48, seed=k) for k in range(3)]
    gen = lambda k: torch.Generator().manual_seed(100 + k)
    policy = lambda obs: torch.tanh(obs[..., :3])  # any deterministic policy on raw states, per row
    settings = dict(rate=0.5, steps=steps, gamma=0.9, policy=policy, terminal=terminal_fn("hopper"))
    group = WorldModelAugmenter(WorldModelGroup(models), generator=[gen(k) for k in range(3)], **settings)(
        stack_batches(batches))
    for k, (wm, batch) in enumerate(zip(models, batches)):
        alone = WorldModelAugmenter(wm, generator=gen(k), **settings)(batch)
        for name in ("next_observations", "rewards", "terminals", "discounts"):
            if steps == 1 and name == "discounts":
                assert group.discounts is None and alone.discounts is None
                continue
            torch.testing.assert_close(getattr(group, name)[k], getattr(alone, name), rtol=1e-5, atol=1e-5)
        assert not torch.equal(alone.next_observations, batch.next_observations)  # it did replace rows


def test_k_step_without_reward_model_is_refused(hopper_random):
    data = subsample(hopper_random, 200, seed=0)
    with pytest.raises(ValueError, match="reward model"):
        latent_rollout(small_world_model(data), _batch(data), steps=2, gamma=0.99, policy=lambda o: o[:, :3],
                       terminal=terminal_fn("hopper"))


def test_td3_uses_per_row_discounts(hopper_random):
    """A batch whose discounts are all gamma gives the same update as one without them; gamma^2 does not."""
    data = subsample(hopper_random, 300, seed=0)
    batch = _batch(data)
    losses = []
    for discounts in (None, torch.full((64,), 0.99), torch.full((64,), 0.99 ** 2)):
        torch.manual_seed(0)
        agent = TD3(data.obs_dim, data.act_dim, TD3Config(hidden=(32,)))
        losses.append(agent.update(batch.replace(discounts=discounts))["critic_loss"])
    assert losses[0] == losses[1] and losses[2] != losses[0]


# ---- Fig 4 hand-offs and Fig 5's saved critics -------------------------------------------------------------
@pytest.mark.parametrize("method,kept", [("wm_actor_only", "actor"), ("wm_critic_only", "critic")])
def test_hand_off_keeps_only_one_part_and_the_offline_networks_are_saved(tmp_path, hopper_random, base_config,
                                                                         method, kept, monkeypatch):
    from wmaug.paper_a import pipeline

    spec = tiny_spec(base_config, tmp_path, method, seed=1, online_steps=150,
                     online_start_steps=100)
    _prepare(tmp_path, hopper_random, spec)
    at_hand_off = {}
    real = pipeline.CellRun.hand_off

    def spy(self):
        real(self)
        at_hand_off.update({k: {n: t.clone() for n, t in v.items()} for k, v in self.agent.state_dict().items()
                            if k in ("actor", "critic")})

    monkeypatch.setattr(pipeline.CellRun, "hand_off", spy)
    run_cell(spec, tmp_path / "out", device="cpu", progress=False)
    model = torch_load(tmp_path / "out" / "model.pt")
    offline = model["offline"]
    dropped = "critic" if kept == "actor" else "actor"
    # what online TD3 started from: the kept part is the pre-trained one, the other is fresh
    assert all(torch.equal(at_hand_off[kept][k], offline[kept][k]) for k in offline[kept])
    assert not all(torch.equal(at_hand_off[dropped][k], offline[dropped][k]) for k in offline[dropped])
    # the saved offline networks are a snapshot, not the trained-on final ones
    assert not all(torch.equal(model["critic"][k], offline["critic"][k]) for k in offline["critic"])
    assert torch.equal(offline["normalizer"]["mean"], model["normalizer"]["mean"])


def test_long_online_method_runs_its_own_budget(tmp_path, base_config):
    spec = tiny_spec(base_config, tmp_path, "td3_long", online_steps=120,
                     online_long_steps=240, online_start_steps=100, eval_every=60)
    run_cell(spec, tmp_path / "out", device="cpu", progress=False)
    curve = pd.read_csv(tmp_path / "out" / "curve.csv")
    assert curve["step"].max() == 240 and "offline" not in torch_load(tmp_path / "out" / "model.pt")


# ---- data --------------------------------------------------------------------------------------------------
def test_samples_of_one_seed_are_nested(hopper_random):
    small, large = subsample_indices(3000, 100, seed=4), subsample_indices(3000, 1000, seed=4)
    assert set(small) <= set(large) and len(set(large)) == 1000
    assert not set(subsample_indices(3000, 100, seed=5)) <= set(large)


def test_noisy_hopper_is_stochastic_and_reproducible():
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 3)).astype(np.float32)

    def run(name, seed):
        env = make_env(name)
        env.reset(seed=seed)
        return np.array([env.step(a)[0] for a in actions])

    assert np.array_equal(run("hopper_noisy", 1), run("hopper_noisy", 1))
    assert not np.allclose(run("hopper_noisy", 1), run("hopper_noisy", 2))
    assert np.abs(run("hopper_noisy", 1) - run("hopper", 1)).max() > 1e-3


@pytest.mark.parametrize("env", ["hopper", "walker2d", "ant", "halfcheetah"])
def test_terminal_rule_matches_the_environment(env):
    """The imagined-terminal rule says 'ended' exactly where the real environment terminated."""
    data = episodes_to_transitions(rollout_episodes(env, uniform_policy(env, 0), 400, seed=0))
    predicted = terminal_fn(env)(torch.as_tensor(data.next_observations)).numpy()
    assert np.array_equal(predicted, data.terminals > 0.5)
    if env != "halfcheetah":
        assert data.terminals.sum() > 0  # random actions do fall: the check above sees both outcomes


# ---- Fig 5 through the CLI: a real episode of the expert dataset source ----------------------------------
def test_critic_trace_command_uses_an_expert_episode_and_its_return_to_go(tmp_path, base_config, monkeypatch):
    """`wmaug critic-trace` reads the env's expert source (here a D4RL file of real hopper rollouts), traces the
    pre-trained critic at its hand-off and the long online run's final one, beside the episode's true
    discounted return-to-go."""
    import copy
    import json

    import h5py

    from wmaug.cli import main

    episodes = rollout_episodes("hopper", uniform_policy("hopper", 3), 2500, seed=3)
    data = episodes_to_transitions(episodes)
    expert = tmp_path / "hopper_expert.hdf5"
    with h5py.File(expert, "w") as f:
        for key in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts"):
            f[key] = getattr(data, key)
    cfg = copy.deepcopy(base_config)
    cfg["scale"] = "smoke"
    cfg["dataset_sources"] = {"hopper": {"expert": f"d4rl:{expert}"}}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(cfg))
    cells = []
    for method in ("td3bc_td3", "td3_long"):
        spec = tiny_spec(base_config, tmp_path, method, online_steps=120, online_long_steps=150,
                         online_start_steps=100)
        _prepare(tmp_path, data, spec)
        run_cell(spec, tmp_path / method, device="cpu", progress=False)
        cells.append(str(tmp_path / method))
    out = tmp_path / "trace.csv"
    main(["critic-trace", "--config", str(config_path), "--env", "hopper", "--cells", *cells, "--episode", "1",
          "--out", str(out)])
    trace = pd.read_csv(out)
    episode = episodes[1]
    rewards = np.asarray(episode["rewards"], dtype=np.float64)
    assert set(trace["label"]) == {"td3bc_td3", "td3_long"} and set(trace["episode"]) == {1}
    for label, rows in trace.groupby("label"):
        assert len(rows) == len(rewards)
        g = np.array([np.sum(0.99 ** np.arange(len(rewards) - t) * rewards[t:]) for t in range(len(rewards))])
        np.testing.assert_allclose(rows["return_to_go"], g, rtol=1e-5)  # float32 rewards in the file
        np.testing.assert_allclose(rows["reward"], rewards, rtol=1e-6)
        assert np.isfinite(rows["q_min"]).all() and (rows["q_min"] <= rows[["q1", "q2"]].min(axis=1) + 1e-9).all()
    # the offline critic was read at the hand-off: it differs from the cell's final critic
    offline_q = trace[trace["label"] == "td3bc_td3"]["q_min"].to_numpy()
    final = torch_load(tmp_path / "td3bc_td3" / "model.pt")
    assert not all(torch.equal(final["critic"][k], final["offline"]["critic"][k]) for k in final["critic"])
    assert offline_q.std() > 0


def test_the_k_step_augmenter_replaces_its_drawn_rows_with_the_rollouts_outcome(hopper_random):
    """k = 3: the rows are randperm's first half from the augmenter's own generator; in those rows the next state,
    the accumulated reward, the terminal and the discount are the rollout's, elsewhere the data's."""
    data = subsample(hopper_random, 500, seed=0)
    wm = small_world_model(data, reward=True)
    batch = _batch(data, n=48)
    policy = lambda obs: torch.tanh(obs[..., :3])  # noqa: E731
    # a rule of the state alone that ends about half the imagined states (hopper's own ends none of this model's)
    terminal = lambda obs: (obs[..., 0] * 1e4).long() % 2 == 1  # noqa: E731
    settings = dict(steps=3, gamma=0.9, stochastic=False, policy=policy, terminal=terminal)
    out = WorldModelAugmenter(wm, rate=0.5, generator=torch.Generator().manual_seed(7), **settings)(batch)
    idx = torch.randperm(48, generator=torch.Generator().manual_seed(7))[:24]
    part = Batch(*(getattr(batch, k)[idx] for k in ("observations", "actions", "rewards", "next_observations",
                                                     "terminals")))
    want = latent_rollout(wm, part, **settings)
    rest = torch.ones(48, dtype=torch.bool)
    rest[idx] = False
    for name in ("next_observations", "rewards", "terminals"):
        torch.testing.assert_close(getattr(out, name)[idx], getattr(want, name))
        assert torch.equal(getattr(out, name)[rest], getattr(batch, name)[rest])
    assert not torch.equal(out.rewards[idx], batch.rewards[idx])
    assert not torch.equal(out.terminals[idx], batch.terminals[idx])  # imagined states that end the episode
    torch.testing.assert_close(out.discounts[idx], want.discounts)
    assert torch.equal(out.discounts[rest], torch.full((24,), 0.9))


def test_the_augmenters_settings_and_generators_are_checked(hopper_random):
    data = subsample(hopper_random, 200, seed=0)
    wm = small_world_model(data)
    for rate in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"augmentation rate must lie in \\[0, 1\\], got {rate}"):
            WorldModelAugmenter(wm, rate=rate)
    batch = _batch(data, n=16).for_members(2)
    with pytest.raises(ValueError, match="augmenting 2 members' batches needs a generator per member, got 1"):
        WorldModelAugmenter(wm, rate=0.5, generator=[torch.Generator()])(batch)
