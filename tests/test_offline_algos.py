"""Paper B's offline learners (CQL, AWAC, BCQ) and FQE: they learn, their ensembles are E independent agents (so
are paper A's batched TD3+BC seeds), and the two mechanisms the paper leans on do what they claim (CQL's
conservatism, FQE's neutral evaluation).

Learning task: Pendulum (see conftest), data of the trained TD3 of test_learning plus Gaussian noise, no
interaction. Small networks (64-64) and higher learning rates than the paper's keep each learner to seconds; the
update rules are the code the harness runs at full width.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from wmaug.algos.awac import AWAC, AWACConfig
from wmaug.algos.bcq import BCQ, BCQConfig
from wmaug.algos.cql import CQL, CQLConfig
from wmaug.algos.fqe import FQE, FQEConfig
from wmaug.algos.td3 import TD3, TD3Config
from wmaug.data.buffer import Batch, ReplayBuffer
from wmaug.core.evaluation import evaluate
from wmaug.core.nets import select_members

from conftest import HIDDEN, greedy, pendulum

RANDOM_RETURN = -1200.0  # uniform-random actions on Pendulum (200 steps)


def native_bf16() -> bool:
    """Whether the CPU multiplies bf16 in hardware (Linux's flags; elsewhere assume it does, and run the test)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return True
    return any(f in flags.split() for f in ("amx_bf16", "avx512_bf16"))


def make_agent(algo: str, members: int, hidden=HIDDEN, **overrides):
    """The offline learners at test size: 64-64 everywhere, learning rates 1e-3."""
    if algo in ("cql", "cql_bf16"):
        cfg = CQLConfig(hidden=hidden, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, **overrides)
        return CQL(3, 1, cfg, members=members)
    if algo == "awac":
        return AWAC(3, 1, AWACConfig(hidden=hidden, policy_hidden=hidden, actor_lr=1e-3, critic_lr=1e-3, **overrides),
                    members=members)
    if algo == "bcq":
        return BCQ(3, 1, BCQConfig(hidden=hidden, vae_hidden=hidden, **overrides), members=members)
    if algo == "fqe":
        return FQE(3, 1, FQEConfig(hidden=hidden, lr=1e-3, **overrides), members=members)
    if algo == "td3bc":  # paper A's learner: members are the seeds of one cell trained as one batch
        return TD3(3, 1, TD3Config(hidden=hidden, actor_lr=1e-3, critic_lr=1e-3, bc_alpha=2.5, **overrides),
                   members=members)
    raise ValueError(algo)


# ---- learning from a noisy expert's data -------------------------------------------------------------

# Budgets: 3000 updates of batch 128 each (CQL: 4000). CQL at test size: 4 sampled actions per kind (1-D actions)
# and min-Q weight 10 (the paper's 5 learns more slowly here).
# Return: mean over 10 evaluation episodes.
# Bars: -700 for CQL, i.e. 500 above uniform-random actions (-1200): most evaluation episodes swing up and balance,
# where a policy that never swings up scores -1200 or worse. The data's policy scores about -240, and behaviour
# cloning of the data reaches it, so for AWAC and BCQ, whose policies are constrained to the data's actions, the bar
# is set nearer the data's level: AWAC -400 and BCQ -600 (seed 0 gives -197 and -503 below; the margin is for other
# machines' float rounding). A bar cannot pin a loss: the losses' equations are pinned on fixed batches in
# tests/test_loss_equations.py and tests/test_recipe_losses.py.
# Seen here over seeds 0-2 (torch 2.13 CPU, one thread): CQL after 3000 updates -666, -413, -1008 and after 4000
# -569, -532, -603; CQL in bf16 after 3000 -747, -447, -716 and after 4000 -524, -523, -453 (so bf16 learns as
# float32 does at this budget); AWAC -197, -444, -369; BCQ -503, -239, -509 (3000 updates).
OFFLINE = {
    "cql": dict(updates=4000, overrides=dict(n_actions=4, min_q_weight=10.0), bar=-700.0),
    # the opt-in bfloat16 matmuls (paper B's pre-training at ~2x the speed on an AMX CPU) must learn as well
    "cql_bf16": dict(updates=4000, overrides=dict(n_actions=4, min_q_weight=10.0, precision="bf16"), bar=-700.0),
    "awac": dict(updates=3000, overrides={}, bar=-400.0),
    "bcq": dict(updates=3000, overrides={}, bar=-600.0),
}


@pytest.mark.slow
@pytest.mark.parametrize("algo", list(OFFLINE))
def test_offline_learner_learns_from_a_noisy_expert(algo, noisy_expert):
    """Trained offline only, each learner's greedy policy (members=1) scores above its bar, far above random."""
    if algo == "cql_bf16" and not native_bf16():
        pytest.skip("this CPU has no bf16 matmul units (AMX, AVX512-BF16): emulated bf16 CQL takes minutes here, and "
                    "`precision: bf16` is for CPUs with them or GPUs (benchmarks/README.md); its losses are checked on "
                    "every machine by test_learner_contracts.py and test_compiled.py")
    data, behaviour_return = noisy_expert
    budget = OFFLINE[algo]
    buffer = ReplayBuffer.of(data)
    torch.manual_seed(0)
    agent = make_agent(algo, members=1, **budget["overrides"])
    batches = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(budget["updates"]):
        agent.update(buffer.sample(128, batches, members=1))
    train_s = time.perf_counter() - t0
    offline_return = evaluate(pendulum(200), greedy(agent), episodes=10, seed=200).mean()
    print(f"{algo.upper()} offline after {budget['updates']} updates ({train_s:.1f} s): {offline_return:.0f}; "
          f"the data's policy {behaviour_return:.0f}; random about {RANDOM_RETURN:.0f}")
    bar = budget["bar"]
    assert offline_return > bar, f"{algo}: {offline_return:.0f} <= {bar:.0f} (data's policy {behaviour_return:.0f})"


# ---- batched members are independent agents ----------------------------------------------------------

ALGOS = ("cql", "awac", "bcq", "fqe", "td3bc")
SMALL = (32, 32)


def random_batch(members: int, n: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(members, n, 3, generator=g), torch.rand(members, n, 1, generator=g) * 2 - 1,
                 torch.randn(members, n, generator=g), torch.randn(members, n, 3, generator=g),
                 (torch.rand(members, n, generator=g) < 0.1).float())


def network_tensors(state: dict) -> dict[str, torch.Tensor]:
    """The networks' tensors of an agent's state dict (optimisers and counters left out)."""
    return {f"{part}.{k}": v for part, sd in state.items() if isinstance(sd, dict) and "state" not in sd
            for k, v in sd.items()}


def outputs(agent, obs: torch.Tensor, act: torch.Tensor, member: int) -> dict[str, torch.Tensor]:
    """Everything one member computes that involves no random draw."""
    out = {"q": agent.q_value(obs, act, member)}
    if isinstance(agent, BCQ):
        g = torch.Generator().manual_seed(3)  # the same latent draws for member 0 of both agents
        z = torch.randn(1, agent.cfg.n_act * len(obs), 2, generator=g).expand(agent.members, -1, -1)
        out["act"] = agent.act_members(obs, True, z=z)[member]
        out["vae_mean"] = agent.vae.encoder(torch.cat([obs, act], -1))[member]
    else:
        out["act"] = agent.act_members(obs, True)[member]
    return out


@pytest.mark.parametrize("algo", ALGOS)
def test_member_of_an_ensemble_equals_the_agent_cut_from_it(algo):
    """Member 0 of a trained 2-member learner and the 1-member learner `select_members` cuts from it compute the
    same Q and the same actions (float32 rounding of a batched vs single matmul: atol 1e-5), and the cut state,
    optimiser included, trains on."""
    torch.manual_seed(0)
    two = make_agent(algo, 2, SMALL)
    for i in range(3):
        two.update(random_batch(2, 32, seed=i))
    one = make_agent(algo, 1, SMALL)
    one.load_state_dict(select_members(two.state_dict(), 2, [0]))
    obs, act = torch.randn(16, 3), torch.rand(16, 1) * 2 - 1
    a, b = outputs(two, obs, act, 0), outputs(one, obs, act, 0)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), f"{algo} {key}: member 0 of 2 != the cut agent"
    # A 1-member ensemble acts as its member (BCQ: the pooled-candidate rule reduces to BCQ's own argmax).
    z = {"z": torch.randn(1, one.cfg.n_act * len(obs), 2)} if algo == "bcq" else {}
    assert torch.allclose(one.act(obs, True, **z), one.act_members(obs, True, **z)[0], atol=1e-6)
    one.update(random_batch(1, 32, seed=9))  # optimiser state has the right shapes


@pytest.mark.parametrize("algo", ALGOS)
def test_members_start_different_and_learn_only_from_their_own_batch(algo):
    """Members draw their own initial weights; and one update of member 0 is the same whatever member 1's
    minibatch holds (same random stream), while member 1's own result changes: no loss or normalisation mixes
    members (e.g. AWAC's softmax over the batch, BCQ's max over sampled actions)."""
    torch.manual_seed(0)
    agent = make_agent(algo, 2, SMALL)
    start = agent.state_dict()
    members = [network_tensors(select_members(start, 2, [i])) for i in (0, 1)]
    for key, v in members[0].items():
        if v.numel() > 1:
            assert not torch.equal(v, members[1][key]), f"{algo} {key}: members start with the same weights"

    other = make_agent(algo, 2, SMALL)
    other.load_state_dict(start)
    for step in range(3):  # several steps: Adam's first step is blind to a per-member gradient scale
        mine, theirs = random_batch(2, 32, seed=10 + step), random_batch(2, 32, seed=20 + step)
        mixed = Batch(*(torch.stack([x[0], y[1]]) for x, y in zip(
            (mine.observations, mine.actions, mine.rewards, mine.next_observations, mine.terminals),
            (theirs.observations, theirs.actions, theirs.rewards, theirs.next_observations, theirs.terminals))))
        torch.manual_seed(5 + step)
        agent.update(mine)
        torch.manual_seed(5 + step)
        other.update(mixed)
    after = [select_members(x.state_dict(), 2, [0]) for x in (agent, other)]
    after1 = [select_members(x.state_dict(), 2, [1]) for x in (agent, other)]
    for key, v in network_tensors(after[0]).items():
        assert torch.allclose(v, network_tensors(after[1])[key], atol=1e-6), f"{algo} {key}: member 1's data moved member 0"
    changed = [not torch.allclose(v, network_tensors(after1[1])[key]) for key, v in network_tensors(after1[0]).items()
               if not key.startswith("policy.")]
    assert any(changed), f"{algo}: member 1 did not learn from its own batch"


def test_bcq_ensemble_takes_the_pooled_candidate_with_the_best_mean_q1():
    """BCQ's ensemble action, checked against a plain loop: every member's candidates pooled, each scored by the
    mean over members of Q_i1, the best one taken."""
    torch.manual_seed(0)
    agent = make_agent("bcq", 3, SMALL, n_act=5)
    obs = torch.randn(4, 3)
    z = torch.randn(3, 5 * 4, 2)
    cand = agent.candidates(obs, 5, z)  # (E, n, N, A)
    chosen = agent.act(obs, True, z=z)
    for s in range(len(obs)):
        pool = cand[:, :, s].reshape(-1, 1)  # E n candidates
        score = agent.critic(obs[s].expand(len(pool), -1), pool)[:, 0].mean(0)
        assert torch.allclose(chosen[s], pool[score.argmax()]), f"state {s}"


# ---- CQL's conservatism -----------------------------------------------------------------------------

def bandit_batch(n: int, rng: np.random.Generator, a_star: float = -0.5) -> Batch:
    """One-step episodes (d = 1): random states, actions a* + N(0, 0.05), reward r = a. The true Q is r = a, so
    uniform actions (mean 0) are truly worth more than the dataset's (mean -0.5); only a pessimistic critic
    ranks them below."""
    obs = torch.as_tensor(rng.normal(size=(1, n, 3)), dtype=torch.float32)
    act = torch.as_tensor(np.clip(a_star + 0.05 * rng.normal(size=(1, n, 1)), -1, 1), dtype=torch.float32)
    return Batch(obs, act, act[..., 0].clone(), obs.clone(), torch.ones(1, n))


def test_cql_pushes_out_of_distribution_actions_below_the_data():
    """Mean Q at dataset actions minus mean Q at uniform actions, same states: clearly positive (OOD pessimism)
    with CQL's min-Q weight 5, and the regulariser is what makes it so (weight 0: plain regression of r = a)."""
    gaps = {}
    for weight in (5.0, 0.0):
        torch.manual_seed(0)
        agent = make_agent("cql", 1, min_q_weight=weight, n_actions=4)
        rng = np.random.default_rng(0)
        for _ in range(200):
            agent.update(bandit_batch(128, rng))
        test = bandit_batch(1000, np.random.default_rng(1))
        obs = test.observations[0]
        q_data = agent.q_value(obs, test.actions[0]).mean().item()
        q_uniform = agent.q_value(obs, torch.rand(len(obs), 1) * 2 - 1).mean().item()
        gaps[weight] = q_data - q_uniform
        print(f"CQL min-Q weight {weight:g}: Q(data) {q_data:.2f}, Q(uniform) {q_uniform:.2f}, gap {gaps[weight]:.2f}")
    # The true gap is E[a*] - E[U(-1, 1)] = -0.5. Seen here: weight 5 about +12, weight 0 about -0.2.
    assert gaps[5.0] > 1.0, f"CQL(5) does not rank OOD actions below the data: gap {gaps[5.0]:.2f}"
    assert gaps[5.0] - gaps[0.0] > 1.0, f"the regulariser is not what ranks them: gaps {gaps}"


# ---- FQE evaluates a fixed policy, neutrally --------------------------------------------------------

def fixed_policy(fqe: FQE, means: list[float], stds: list[float]) -> None:
    """State-independent squashed Gaussians: member i plays tanh(N(means[i], stds[i]))."""
    last = fqe.policy.net.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        for i, (m, s) in enumerate(zip(means, stds)):
            last.bias[i, 0] = torch.tensor([m, math.log(s)])


def test_fqe_recovers_the_value_of_a_fixed_policy():
    """Continuing task, next state independent of (s, a), reward r = a, gamma 0.9, data actions uniform: the true
    Q of policy i is Q_i(s, a) = a + gamma / (1 - gamma) E_{a' ~ pi_i}[a']. Each of the 4 critics (2 members x
    twins) must match its own policy's Q within RMSE 0.15 (values span about -7..5)."""
    gamma, means, stds = 0.9, [0.5, -1.0], [0.3, 0.5]
    torch.manual_seed(0)
    fqe = make_agent("fqe", 2, gamma=gamma, tau=0.05)
    fixed_policy(fqe, means, stds)
    rng = np.random.default_rng(0)

    def batch(n: int) -> Batch:
        obs = torch.as_tensor(rng.uniform(-1, 1, (2, n, 3)), dtype=torch.float32)
        act = torch.as_tensor(rng.uniform(-1, 1, (2, n, 1)), dtype=torch.float32)
        nxt = torch.as_tensor(rng.uniform(-1, 1, (2, n, 3)), dtype=torch.float32)
        return Batch(obs, act, act[..., 0].clone(), nxt, torch.zeros(2, n))

    for _ in range(2000):
        fqe.update(batch(128))
    eps = torch.randn(1_000_000, generator=torch.Generator().manual_seed(1))
    test = batch(1000)
    q = fqe.critic(test.observations, test.actions)  # (2, 2, N)
    for i, (m, s) in enumerate(zip(means, stds)):
        truth = test.actions[i, :, 0] + gamma / (1 - gamma) * torch.tanh(m + s * eps).mean()
        for j in range(2):
            rmse = (q[i, j] - truth).pow(2).mean().sqrt().item()
            print(f"FQE member {i} twin {j}: RMSE {rmse:.3f} (true Q mean {truth.mean():.2f})")
            assert rmse < 0.15, f"FQE member {i} twin {j}: RMSE {rmse:.3f} to its policy's true Q"


@pytest.mark.parametrize("rule", ["td3", "sac", "ensemble_sac", "cql", "awac", "bcq", "fqe"])
def test_build_agent_builds_every_learner_whose_update_returns_device_tensors(rule):
    """One constructor for all seven rules, from a config section; `update` hands back detached tensors on the
    learner's device (a float would mean a host sync on every update)."""
    from wmaug.algos import AGENTS, SINGLE_AGENT, build_agent
    from wmaug.data.transitions import Transitions

    assert rule in AGENTS
    rng = np.random.default_rng(0)
    n, obs_dim, act_dim = 64, 3, 2
    data = Transitions(rng.normal(size=(n, obs_dim)).astype(np.float32),
                       rng.uniform(-1, 1, (n, act_dim)).astype(np.float32), rng.normal(size=n).astype(np.float32),
                       rng.normal(size=(n, obs_dim)).astype(np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32))
    buffer = ReplayBuffer.of(data)
    members = 1 if rule in SINGLE_AGENT else 2
    agent = build_agent(rule, obs_dim, act_dim, {"hidden": [8, 8]}, members)
    shared = rule in ("sac", "ensemble_sac")  # one minibatch for the whole learner
    metrics = agent.update(buffer.sample(16, rng) if shared else buffer.sample(16, rng, members=members))
    assert metrics and all(isinstance(v, torch.Tensor) and not v.requires_grad and v.device == torch.device("cpu")
                           for v in metrics.values()), {k: type(v).__name__ for k, v in metrics.items()}
    if rule in SINGLE_AGENT:
        with pytest.raises(ValueError, match="single agent"):
            build_agent(rule, obs_dim, act_dim, {"hidden": [8, 8]}, 2)


def test_build_agent_names_an_unknown_rule_and_setting():
    from wmaug.algos import build_agent
    from wmaug.core.errors import InputError

    with pytest.raises(InputError, match="'cq1'.*cql"):
        build_agent("cq1", 3, 2, {})
    with pytest.raises(InputError, match="'hiden'.*hidden"):
        build_agent("awac", 3, 2, {"hiden": [8]})
