"""Which loss each phase of each method actually runs, checked against the loss's equation on the batches the run
itself draws. A loose learning bar cannot tell TD3 from TD3+BC (TD3 from scratch passed Pendulum for weeks while
running TD3+BC's actor loss); these tests name the loss of every phase of every recipe and recompute it.

Paper A (tiny hopper cells, run whole): offline TD3+BC, with or without the world model's augmentation, then plain
TD3 from what the hand-off keeps. Paper B: the fine-tuning rule each recipe builds, and the ensemble SAC's losses
recomputed from the equations in its module docstring.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmaug.algos.td3 import TD3
from wmaug.paper_a.augment import WorldModelAugmenter
from wmaug.cell import run_cell
from wmaug.data.buffer import Batch
from wmaug.core.methods import PAPER_A, PAPER_B
from wmaug.core.spec import cell_spec_from_json
from wmaug.paper_a.world_model import save_world_model

from conftest import tiny_spec, write_sample
from test_paper_a_ablations import small_world_model

# method: (offline loss, augmentation (rate, k, sampled z[, what replaces the rows: "model" unless named]) or None,
# online loss, what the hand-off keeps).
# Written out rather than derived from the recipes, so that a recipe that changes what it runs fails here.
TD3BC, TD3_PLAIN, NONE = "TD3+BC", "TD3", None
BOTH, ACTOR, CRITIC = ("actor", "critic"), ("actor",), ("critic",)
PAPER_A_PHASES = {
    "wm_td3bc_td3": (TD3BC, (0.5, 1, True), TD3_PLAIN, BOTH),
    "td3bc_td3": (TD3BC, None, TD3_PLAIN, BOTH),
    "td3": (NONE, None, TD3_PLAIN, ()),
    "wm_actor_only": (TD3BC, (0.5, 1, True), TD3_PLAIN, ACTOR),
    "wm_critic_only": (TD3BC, (0.5, 1, True), TD3_PLAIN, CRITIC),
    "td3bc_actor_only": (TD3BC, None, TD3_PLAIN, ACTOR),
    "td3bc_critic_only": (TD3BC, None, TD3_PLAIN, CRITIC),
    "td3bc_data_x5": (TD3BC, None, TD3_PLAIN, BOTH),
    "td3_long": (NONE, None, TD3_PLAIN, ()),
    "wm_rate0": (TD3BC, (0.0, 1, True), TD3_PLAIN, BOTH),
    "wm_rate25": (TD3BC, (0.25, 1, True), TD3_PLAIN, BOTH),
    "wm_rate75": (TD3BC, (0.75, 1, True), TD3_PLAIN, BOTH),
    "wm_rate100": (TD3BC, (1.0, 1, True), TD3_PLAIN, BOTH),
    "wm_k2": (TD3BC, (0.5, 2, True), TD3_PLAIN, BOTH),
    "wm_k3": (TD3BC, (0.5, 3, True), TD3_PLAIN, BOTH),
    "wm_k5": (TD3BC, (0.5, 5, True), TD3_PLAIN, BOTH),
    "wm_data_half": (TD3BC, (0.5, 1, True), TD3_PLAIN, BOTH),
    "wm_data_x5": (TD3BC, (0.5, 1, True), TD3_PLAIN, BOTH),
    "wm_data_x10": (TD3BC, (0.5, 1, True), TD3_PLAIN, BOTH),
    "td3bc_data_half": (TD3BC, None, TD3_PLAIN, BOTH),
    "td3bc_data_x10": (TD3BC, None, TD3_PLAIN, BOTH),
    "wm_mean_td3bc_td3": (TD3BC, (0.5, 1, False), TD3_PLAIN, BOTH),
    # the controls: the same rows replaced by s' + noise, by s, or by a converged model's sample
    "wm_noise_td3bc_td3": (TD3BC, (0.5, 1, True, "noise"), TD3_PLAIN, BOTH),
    "wm_copy_td3bc_td3": (TD3BC, (0.5, 1, True, "copy"), TD3_PLAIN, BOTH),
    "wm_converged_td3bc_td3": (TD3BC, (0.5, 1, True), TD3_PLAIN, BOTH),
}


def test_every_paper_a_recipe_has_its_phases_named():
    assert set(PAPER_A_PHASES) == {r.name for r in PAPER_A}


# ---- the equations, written out again ---------------------------------------------------------------------
@torch.no_grad()
def td3_actor_loss(agent: TD3, b: Batch) -> torch.Tensor:
    """TD3 (Fujimoto et al. 2018): J = -E[Q1(s, pi(s))], per member."""
    return -agent.critic.first(b.observations, agent.actor(b.observations)).mean(-1)


@torch.no_grad()
def td3bc_actor_loss(agent: TD3, b: Batch, alpha: float) -> torch.Tensor:
    """TD3+BC (Fujimoto & Gu 2021, eq. 3): J = -lambda E[Q1(s, pi(s))] + E[(pi(s) - a)^2],
    lambda = alpha / mean|Q1(s, pi(s))|, per member."""
    pi = agent.actor(b.observations)
    q = agent.critic.first(b.observations, pi)
    return -(alpha / q.abs().mean(-1)) * q.mean(-1) + (pi - b.actions).pow(2).mean((-2, -1))


@torch.no_grad()
def td3_critic_loss(agent: TD3, b: Batch, noise: torch.Tensor) -> torch.Tensor:
    """sum_i E[(Q_i(s, a) - y)^2], y = r + gamma (1 - d) min_i Q'_i(s', clip(pi'(s') + clip(0.2 eps, -0.5, 0.5))),
    gamma^k on k-step augmented rows."""
    cfg = agent.cfg
    a_next = (agent.actor_target(b.next_observations)
              + (cfg.policy_noise * noise).clamp(-cfg.noise_clip, cfg.noise_clip)).clamp(-1.0, 1.0)
    q_next = agent.critic_target(b.next_observations, a_next).min(1).values
    gamma = cfg.gamma if b.discounts is None else b.discounts
    y = b.rewards + gamma * (1.0 - b.terminals) * q_next
    return (agent.critic(b.observations, b.actions) - y.unsqueeze(1)).pow(2).mean(-1).sum(-1)


# ---- paper A: every recipe run whole, every update's losses recomputed -------------------------------------
@pytest.mark.parametrize("method", [r.name for r in PAPER_A])
def test_each_phase_of_a_paper_a_recipe_runs_the_loss_it_names(tmp_path, hopper_random, base_config, monkeypatch,
                                                             method):
    offline_loss, augmentation, online_loss, kept = PAPER_A_PHASES[method]
    spec = tiny_spec(base_config, tmp_path, method, seed=2, offline_iterations=20, online_steps=120,
                     online_long_steps=120, online_start_steps=100, eval_every=60, checkpoint_every=1000)
    write_sample(tmp_path / "sample.npz", hopper_random, 500, 2)
    if spec["recipe"]["augment"]:
        wm = small_world_model(hopper_random, reward=True)
        save_world_model(wm, tmp_path / "wm.pt", reward_model=wm.reward_model)
    if spec["recipe"].get("next_state") == "noise":  # its world model's held-out error per dimension
        import pandas as pd

        spec["paths"]["noise_sd"] = str(tmp_path / "by_dimension.csv")
        pd.DataFrame({"dim": range(11), "heldout_mse_raw": 0.01}).to_csv(spec["paths"]["noise_sd"], index=False)
    alpha = spec["td3"]["bc_alpha"]
    assert alpha == 2.5  # docs/protocol.md: TD3+BC's alpha
    seen = {"phase": None, "actor": [], "critic": [], "augmented": [], "first_online_actor": None, "first_online_critic": None}

    real_update, real_actor, real_critic = TD3.update, TD3.actor_loss, TD3.critic_loss
    real_augment = WorldModelAugmenter.__call__
    from wmaug.paper_a import pipeline

    real_batches = {name: getattr(pipeline.CellRun, name) for name in ("offline_batch", "online_batch")}

    def batch_of(name):
        def draw(self):
            seen["phase"], seen["cell"] = self.p.phase, self  # the phase whose loop draws (and then updates on) it
            return real_batches[name](self)
        return draw

    def actor_loss(self, b, bc_alpha):
        out = real_actor(self, b, bc_alpha)
        if seen["phase"] == "online" and seen["first_online_actor"] is None:  # no online actor step before it
            seen["first_online_actor"] = {k: v.clone() for k, v in self.actor.state_dict().items()}
        seen["actor"].append((seen["phase"], out.detach(), td3_actor_loss(self, b), td3bc_actor_loss(self, b, alpha)))
        return out

    def critic_loss(self, b, noise):
        if seen["phase"] == "online" and seen["first_online_critic"] is None:
            seen["first_online_critic"] = {k: v.clone() for k, v in self.critic.state_dict().items()}
        out = real_critic(self, b, noise)
        seen["critic"].append((seen["phase"], out[0].detach(), td3_critic_loss(self, b, noise)))
        return out

    def augment(self, batch):
        seen["augmented"].append((seen["phase"], self.rate, self.steps, self.stochastic, self.next_state))
        return real_augment(self, batch)

    monkeypatch.setattr(TD3, "actor_loss", actor_loss)
    monkeypatch.setattr(TD3, "critic_loss", critic_loss)
    monkeypatch.setattr(WorldModelAugmenter, "__call__", augment)
    for name in real_batches:
        monkeypatch.setattr(pipeline.CellRun, name, batch_of(name))
    run_cell(spec, tmp_path / "out", device="cpu", progress=False)
    assert TD3.update is real_update

    offline_updates = 20 if offline_loss else 0
    online_updates = 120 - 100
    phases = [p for p, *_ in seen["critic"]]
    assert phases == ["offline"] * offline_updates + ["online"] * online_updates
    # the critic: TD3's target-smoothed clipped double-Q regression in both phases
    for phase, got, expected in seen["critic"]:
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6, msg=f"{method} {phase} critic loss")
    # the actor: every policy_delay-th update, the loss named for its phase
    assert [p for p, *_ in seen["actor"]] == ["offline"] * (offline_updates // 2) + ["online"] * (online_updates // 2)
    for phase, got, plain, td3bc in seen["actor"]:
        name = offline_loss if phase == "offline" else online_loss
        expected, other = (td3bc, plain) if name == TD3BC else (plain, td3bc)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6, msg=f"{method} {phase}: not {name}'s loss")
        assert not torch.allclose(got, other, rtol=1e-3), f"{method} {phase}: both losses agree, the test tells nothing"
    # augmentation: every offline batch of an augmented recipe, at its rate, k and sampling; never online
    if augmentation is None:
        assert seen["augmented"] == []
    else:
        named = augmentation if len(augmentation) == 4 else (*augmentation, "model")
        assert seen["augmented"] == [("offline", *named)] * offline_updates
    # the hand-off: what online TD3 starts from
    if offline_loss:
        offline_model = seen["cell"].seeds[0].offline_model
        for part in ("actor", "critic"):
            same = all(torch.equal(seen[f"first_online_{part}"][k], offline_model[part][k]) for k in offline_model[part])
            assert same == (part in kept), f"{method}: online TD3 started {'from' if same else 'without'} the pre-trained {part}"


def test_a_td3_cell_is_plain_td3_from_its_construction(tmp_path, base_config):
    """The bug this file was written for: the config's TD3+BC alpha reached TD3 from scratch, which has no hand-off
    to drop it."""
    from wmaug.paper_a.pipeline import CellRun

    for method in ("td3", "td3_long"):
        spec = tiny_spec(base_config, tmp_path, method)
        cell = CellRun([cell_spec_from_json(spec, "test")], [tmp_path / method], torch.device("cpu"), progress=False)
        assert cell.agent.cfg.bc_alpha == 2.5 and cell.agent.bc_alpha is None
        b = Batch(*(torch.randn(1, 32, d) for d in (cell.obs_dim, cell.act_dim)), torch.randn(1, 32),
                  torch.randn(1, 32, cell.obs_dim), torch.zeros(1, 32))
        torch.testing.assert_close(cell.agent.actor_loss(b, cell.agent.bc_alpha), td3_actor_loss(cell.agent, b))


# ---- paper B: the fine-tuning rule of every recipe ---------------------------------------------------------
# method: (pre-training rule or None, fine-tuning rule, members, keeps CQL's regulariser, sampling)
PAPER_B_PHASES = {
    "ours": ("CQL", "EnsembleSAC", 5, False, "balanced"),
    "awac": ("AWAC", "AWAC", 5, False, "uniform"),
    "bcq_ft": ("BCQ", "BCQ", 5, False, "uniform"),
    "sac_ft": ("CQL", "EnsembleSAC", 1, False, "uniform"),
    "sac": (None, "EnsembleSAC", 5, False, "online_only"),
    "sac_single": (None, "EnsembleSAC", 1, False, "online_only"),
    "sac_ft_online_only": ("CQL", "EnsembleSAC", 1, False, "online_only"),
    "ours_uniform": ("CQL", "EnsembleSAC", 5, False, "uniform"),
    "ours_online_only": ("CQL", "EnsembleSAC", 5, False, "online_only"),
    "ours_e1": ("CQL", "EnsembleSAC", 1, False, "balanced"),
    "ours_e2": ("CQL", "EnsembleSAC", 2, False, "balanced"),
    "fqe_e1": ("FQE", "EnsembleSAC", 1, False, "balanced"),  # CQL's policy, FQE's critic
    "ours_keep_cql": ("CQL", "EnsembleSAC", 5, True, "balanced"),
    "ours_alt_ratio": ("CQL", "EnsembleSAC", 5, False, "balanced_alt"),
    "ours_long": ("CQL", "EnsembleSAC", 5, False, "balanced"),
    "fqe_long": ("FQE", "EnsembleSAC", 5, False, "balanced"),
}
PAPER_B_FINETUNE = {name: phases[1:] for name, phases in PAPER_B_PHASES.items()}


def test_every_paper_b_recipe_has_its_phases_named(base_config):
    from wmaug.algos import agent_class

    assert set(PAPER_B_PHASES) == {r.name for r in PAPER_B}
    for r in PAPER_B:
        pretrain, rule, members, keep_cql, sampling = PAPER_B_PHASES[r.name]
        built = {"EnsembleSAC": "ensemble_sac", "AWAC": "awac", "BCQ": "bcq"}[rule]
        assert (r.online, r.members, r.keep_cql, r.sampling) == (built, members, keep_cql, sampling), r.name
        assert r.pretrain == (pretrain.lower() if pretrain else None), r.name
        if pretrain in ("CQL", "AWAC", "BCQ"):  # the class the pre-training job builds for that rule
            assert agent_class(r.pretrain)[0].__name__ == pretrain


@pytest.mark.parametrize("method", [r.name for r in PAPER_B])
def test_a_paper_b_cell_builds_the_rule_its_recipe_names(tmp_path, base_config, method, monkeypatch):
    """FinetuneRun from each recipe's spec: the learner class, its members and whether CQL's term stays on."""
    from test_finetune import finetune_spec

    from wmaug.paper_b import finetune

    rule, members, keep_cql, sampling = PAPER_B_FINETUNE[method]
    obs_dim, act_dim = 11, 3
    spec = finetune_spec(base_config, method, tmp_path / "none.hdf5", tmp_path / "block.pt")
    lrs = {"actor_lr": 1.1e-4, "critic_lr": 2.3e-4}  # not the ensemble's defaults: the config's must reach it
    spec["algorithms"]["finetune"].update(lrs)
    monkeypatch.setattr(finetune, "load_full_dataset", lambda *a: (None, {}))  # the sampler is checked below
    built_samplers = []
    monkeypatch.setattr(finetune, "make_sampler", lambda kind, *a: built_samplers.append(kind))
    blocks = []

    def block(path, n):  # the block's own learner, freshly made: its weights do not matter here
        from wmaug.algos import build_agent

        algo = {"ensemble_sac": "cql"}.get(spec["recipe"]["online"], spec["recipe"]["online"])
        settings = {k: v for k, v in spec["algorithms"][algo].items() if k != "task_overrides"}
        agent = build_agent(algo, obs_dim, act_dim, settings, n, "cpu")
        blocks.append(n)
        return {"state": agent.state_dict(), "agent_seeds": list(range(n)), "agent_scores": [0.0] * n}

    monkeypatch.setattr(finetune, "load_block", block)
    run = finetune.FinetuneRun(cell_spec_from_json(spec, "test"), tmp_path / "out", torch.device("cpu"), progress=False)
    assert type(run.agent).__name__ == rule and run.agent.members == members
    if rule == "EnsembleSAC":  # AWAC and BCQ fine-tune with their own rule and learning rates
        assert run.agent.critic_opt.param_groups[0]["lr"] == lrs["critic_lr"]
        assert run.agent.actor_opt.param_groups[0]["lr"] == lrs["actor_lr"]
    assert built_samplers == [sampling]
    assert blocks == ([members] if spec["recipe"]["pretrain"] else [])
    if rule == "EnsembleSAC":
        cql_weight = spec["algorithms"]["cql"]["min_q_weight"] if keep_cql else 0.0
        assert run.agent.cfg.cql_weight == cql_weight and (cql_weight == 5.0 or not keep_cql)


def cql_h_by_hand(agent, obs: torch.Tensor, next_obs: torch.Tensor, q_data: torch.Tensor, n: int) -> torch.Tensor:
    """CQL(H)'s term per member and critic, (E, 2), state by state: log sum_k exp(Q_ij(s, a_k) - log mu(a_k|s)) over
    the 3n actions a_k (n uniform, mu = 2^-|A|; n from pi_i(.|s'); n from pi_i(.|s)), averaged over states, minus
    E[Q_ij(s, a)] (Kumar et al. 2020, appendix F). Draws in the code's order: pi(.|s), pi(.|s'), then uniform."""
    E, B, d = obs.shape
    with torch.no_grad():
        a_cur, logp_cur = agent.actor(obs, samples=n)  # sample-major: row k * B + i is state i's k-th
        a_nxt, logp_nxt = agent.actor(next_obs, samples=n)
        a_rnd = torch.empty_like(a_cur).uniform_(-1.0, 1.0)
    log_uniform = torch.full((n,), agent.act_dim * float(np.log(0.5)))
    penalty = torch.zeros(E, 2)
    for e in range(E):
        for i in range(B):
            s = obs[e, i].expand(n, d)
            rows = [k * B + i for k in range(n)]
            terms = [agent.critic(s, actions)[e] - log_mu  # (2, n)
                     for actions, log_mu in ((a_rnd[e, rows], log_uniform), (a_nxt[e, rows], logp_nxt[e, rows]),
                                             (a_cur[e, rows], logp_cur[e, rows]))]
            penalty[e] = penalty[e] + torch.logsumexp(torch.cat(terms, dim=1), dim=1) / B
    return penalty - q_data.mean(-1)


@pytest.mark.parametrize("cql_weight", [0.0, 5.0])
def test_ensemble_sac_losses_are_its_equations(cql_weight):
    """L_Q = sum_i sum_j E[(Q_ij(s, a) - y)^2] (+ CQL's term only when kept) and L_pi = E[alpha log pi(a|s) -
    mean_i min_j Q_ij(s, a)] with the moment-matched mixture policy; recomputed from the same draws."""
    from wmaug.algos.ensemble_sac import EnsembleSAC, EnsembleSACConfig

    torch.manual_seed(0)
    agent = EnsembleSAC(5, 2, EnsembleSACConfig(hidden=(16, 16), cql_weight=cql_weight, gamma=0.9), members=3)
    g = torch.Generator().manual_seed(1)
    b = Batch(torch.randn(64, 5, generator=g), torch.rand(64, 2, generator=g) * 2 - 1, torch.randn(64, generator=g),
              torch.randn(64, 5, generator=g), (torch.rand(64, generator=g) < 0.1).float())
    assert 0 < b.terminals.sum() < 64  # terminal rows: y = r there
    alpha = torch.tensor([0.3])
    state = torch.get_rng_state()
    got, _ = agent.critic_loss(b, alpha)
    torch.set_rng_state(state)
    with torch.no_grad():
        a2, logp2 = agent.actor.mixture(b.next_observations)  # one policy for every member's target
        y = b.rewards + 0.9 * (1 - b.terminals) * (agent.critic_target(b.next_observations, a2).min(1).values - 0.3 * logp2)
    q = agent.critic(b.observations, b.actions)
    expected = (q - y.unsqueeze(1)).pow(2).mean(-1).sum()
    if cql_weight:
        members = b.for_members(3)  # each member's own policy proposes the actions, on the shared batch
        expected = expected + cql_weight * cql_h_by_hand(agent, members.observations, members.next_observations, q,
                                                         10).sum()
    torch.testing.assert_close(got, expected)
    state = torch.get_rng_state()
    got, _ = agent.actor_loss(b, alpha)
    torch.set_rng_state(state)
    a, logp = agent.actor.mixture(b.observations)
    expected = (0.3 * logp - agent.critic(b.observations, a).min(1).values.mean(0)).mean()
    torch.testing.assert_close(got, expected)
    assert np.isfinite(got.item())


# ---- paper B's pre-training: CQL(H) on SAC, weight 5, no Lagrange ------------------------------------------
def test_paper_b_pretrains_cql_with_a_fixed_weight_of_five(base_config):
    from wmaug.algos import build_agent

    settings = base_config["algorithms"]["cql"]
    agent = build_agent("cql", 11, 3, {k: v for k, v in settings.items() if k not in ("batch_size", "task_overrides")},
                        5, "cpu")
    assert agent.cfg.min_q_weight == 5.0 and agent.cfg.n_actions == 10 and agent.cfg.temperature == 1.0
    assert not hasattr(agent, "alpha_prime") and not hasattr(agent, "log_alpha_prime")  # no Lagrange multiplier


def test_cql_critic_loss_is_bellman_plus_five_times_the_cql_h_term():
    """L = sum_j E[(Q_j(s, a) - y)^2] + 5 sum_j (E_s[log sum_k exp(Q_j(s, a_k) - log mu(a_k|s))] - E[Q_j(s, a)]),
    y = r + gamma (1 - d) (min_j Q'_j(s', a') - alpha log pi(a'|s')), the 3n = 30 actions a_k per state: n uniform
    (mu = 2^-|A|), n from pi(.|s), n from pi(.|s') (Kumar et al. 2020, appendix F), recomputed state by state."""
    from wmaug.algos.cql import CQL, CQLConfig

    torch.manual_seed(0)
    agent = CQL(4, 2, CQLConfig(hidden=(16, 16), gamma=0.9), members=1)
    g = torch.Generator().manual_seed(3)
    B, n = 6, 10
    b = Batch(torch.randn(1, B, 4, generator=g), torch.rand(1, B, 2, generator=g) * 2 - 1, torch.randn(1, B, generator=g),
              torch.randn(1, B, 4, generator=g), torch.tensor([[0.0, 1, 0, 0, 0, 0]]))
    alpha = torch.tensor([[0.2]])
    state = torch.get_rng_state()
    got, metrics = agent.critic_loss(b, alpha)
    torch.set_rng_state(state)  # the same draws, in the loss's order: target action, then the penalty's samples
    with torch.no_grad():
        a2, logp2 = agent.actor(b.next_observations)
        y = b.rewards + 0.9 * (1 - b.terminals) * (agent.critic_target(b.next_observations, a2).min(1).values - 0.2 * logp2)
    q_data = agent.critic(b.observations, b.actions)[0]  # (2, B)
    bellman = (q_data - y[0]).pow(2).mean(-1).sum()
    penalty = cql_h_by_hand(agent, b.observations, b.next_observations, q_data.unsqueeze(0), n).sum()
    torch.testing.assert_close(got, bellman + 5.0 * penalty, rtol=1e-5, atol=1e-5)
