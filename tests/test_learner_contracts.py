"""What every learner promises the loops around it, beyond its loss: the metric names the curves read, an update
counter and a temperature that survive a checkpoint, settings that reach the networks, the temperature's direction,
and per-member random streams. Each test here kills mutants that the equation tests let through
(docs/testing.md, "Mutation scores")."""

from __future__ import annotations

import math

import pytest
import torch

from test_loss_equations import ACT, B, OBS, fixed_batch
from wmaug.algos.awac import AWAC, AWACConfig, tanh_gaussian_log_prob
from wmaug.algos.bcq import BCQ, BCQConfig
from wmaug.algos.cql import CQL, CQLConfig
from wmaug.algos.ensemble_sac import EnsembleSAC, EnsembleSACConfig
from wmaug.algos.fqe import FQE, FQEConfig
from wmaug.algos.sac import SAC, SACConfig
from wmaug.algos.td3 import TD3, TD3Config
from wmaug.core.runner import Run
from wmaug.paper_b.finetune import FinetuneRun

H = (16, 16)
LEARNERS = {  # name: (a small learner, members of its batch or None for one shared batch, metric names it reports)
    "td3": (lambda: TD3(OBS, ACT, TD3Config(hidden=H), members=2), 2, {"critic_loss", "q_mean", "actor_loss"}),
    "sac": (lambda: SAC(OBS, ACT, SACConfig(hidden=H)), None, {"critic_loss", "actor_loss", "q_mean", "alpha"}),
    "ensemble_sac": (lambda: EnsembleSAC(OBS, ACT, EnsembleSACConfig(hidden=H), members=2), None,
                     {"critic_loss", "actor_loss", "q_mean", "alpha"}),
    "cql": (lambda: CQL(OBS, ACT, CQLConfig(hidden=H), members=2), 2,
            {"critic_loss", "actor_loss", "q_mean", "alpha", "cql_penalty"}),
    "awac": (lambda: AWAC(OBS, ACT, AWACConfig(hidden=H, policy_hidden=H), members=2), 2,
             {"critic_loss", "actor_loss", "q_mean", "advantage", "weight_max"}),
    "bcq": (lambda: BCQ(OBS, ACT, BCQConfig(hidden=H, vae_hidden=H, n_act=4, n_target=4), members=2), 2,
            {"critic_loss", "actor_loss", "q_mean", "vae_loss"}),
    "fqe": (lambda: FQE(OBS, ACT, FQEConfig(hidden=H), members=2), 2, {"critic_loss", "actor_loss", "q_mean"}),
}


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_every_learner_reports_the_metrics_the_curves_read_and_counts_its_updates(name):
    """The curves' columns are read by name (wmaug/core/runner.py, wmaug/paper_b/finetune.py): a renamed key would
    leave a column empty without an error. Two updates (TD3's actor steps every second one)."""
    make, members, expected = LEARNERS[name]
    torch.manual_seed(0)
    agent = make()
    keys = set()
    for seed in (1, 2):
        keys |= set(agent.update(fixed_batch(members, seed)))
    assert keys == expected
    assert agent.updates == 2
    read = set(Run.metric_columns) | set(FinetuneRun.metric_columns)
    assert {"critic_loss", "q_mean"} <= keys & read


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_a_checkpoint_restores_the_update_counter_and_the_temperature(name):
    make, members, _ = LEARNERS[name]
    torch.manual_seed(0)
    agent = make()
    for seed in (1, 2, 3):
        agent.update(fixed_batch(members, seed))
    if hasattr(agent, "log_alpha"):
        with torch.no_grad():
            agent.log_alpha.fill_(-1.234)  # far from the fresh agent's log(init_alpha) = 0
    fresh = make()
    fresh.load_state_dict(agent.state_dict())
    assert fresh.updates == 3
    if hasattr(agent, "log_alpha"):
        assert torch.equal(fresh.log_alpha, agent.log_alpha)


@pytest.mark.parametrize("temperature_update", ["log_alpha_after_actor", "alpha_before_actor"])
@pytest.mark.parametrize("target_entropy, rises", [(100.0, True), (-100.0, False)])
def test_sacs_temperature_rises_when_the_policy_is_less_random_than_its_target(temperature_update, target_entropy,
                                                                              rises):
    """J_alpha = E[-alpha (log pi + target_entropy)]: with log pi + target_entropy > 0 everywhere (the policy's
    entropy below its target) alpha must grow, and shrink when it is < 0 everywhere; both of SAC's temperature rules
    (the config's target entropy is used, not -|A|)."""
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, SACConfig(hidden=H, target_entropy=target_entropy, temperature_update=temperature_update))
    assert agent.target_entropy == target_entropy
    before = agent.log_alpha.item()
    agent.update(fixed_batch(None))
    assert (agent.log_alpha.item() > before) == rises


@pytest.mark.parametrize("target_entropy, rises", [(100.0, True), (-100.0, False)])
def test_the_ensembles_temperatures_move_the_same_way(target_entropy, rises):
    torch.manual_seed(0)
    agent = EnsembleSAC(OBS, ACT, EnsembleSACConfig(hidden=H), members=2)
    agent.target_entropy = target_entropy
    before = agent.log_alpha.detach().clone()
    agent.update(fixed_batch(None))
    assert bool(((agent.log_alpha > before) == rises).all())


def test_sacs_default_target_entropy_is_minus_the_action_dimension():
    """Haarnoja et al. (2018b): target entropy -dim(A), for SAC, the ensemble SAC and CQL's SAC."""
    assert SAC(OBS, ACT, SACConfig(hidden=H)).target_entropy == -ACT
    assert EnsembleSAC(OBS, ACT, EnsembleSACConfig(hidden=H), members=2).target_entropy == -ACT
    assert CQL(OBS, ACT, CQLConfig(hidden=H), members=2).target_entropy == -ACT


def test_awacs_log_prob_of_a_dataset_action_on_the_bound_is_finite():
    """D4RL-style datasets hold actions of exactly +-1; atanh(1) is infinite, so log pi clips them inside."""
    mean, std = torch.zeros(3, ACT), torch.ones(3, ACT)
    action = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, 0.0]])
    assert torch.isfinite(tanh_gaussian_log_prob(mean, std, action)).all()


def test_awacs_policy_std_stays_in_the_configured_range():
    """rlkit's log-std range [-6, 0] (AWACConfig's option) is a hard clamp on both sides."""
    agent = AWAC(OBS, ACT, AWACConfig(hidden=H, policy_hidden=H, min_log_std=-6.0, max_log_std=0.0), members=1)
    for log_std in (-15.0, 3.0):
        agent.actor.distribution_params = lambda obs, s=log_std: (torch.zeros(1, B, ACT),
                                                                 torch.full((1, B, ACT), math.exp(s)))
        _, std = agent._policy_params(torch.zeros(1, B, OBS))
        assert std.min().item() >= math.exp(-6.0) * (1 - 1e-6) and std.max().item() <= 1.0 + 1e-6


def test_the_policy_widths_reach_awacs_and_fqes_policies():
    """AWAC's policy is 4 x 256 in rlkit's example, its critics 2 x 256; FQE's evaluated policy has the width of
    the policy it loads, not FQE's critics'."""
    def widths(actor) -> list[int]:
        return sorted({p.shape[-1] for n, p in actor.named_parameters() if n.endswith("bias")})

    awac = AWAC(OBS, ACT, AWACConfig(hidden=(8, 8), policy_hidden=(24, 24, 24)), members=1)
    assert 24 in widths(awac.actor) and 8 not in widths(awac.actor)
    assert sum(1 for n, _ in awac.actor.named_parameters() if n.endswith("bias")) >= 4  # 3 hidden + the head
    fqe = FQE(OBS, ACT, FQEConfig(hidden=(8, 8)), members=1, policy_hidden=(24, 24))
    assert 24 in widths(fqe.policy) and 8 not in widths(fqe.policy)


def test_ensemble_sac_keeps_cqls_term_at_any_positive_weight():
    """`cql_weight` > 0 keeps CQL's regulariser during fine-tuning, small weights too."""
    b = fixed_batch(None)
    losses = {}
    for weight in (0.0, 0.5):
        torch.manual_seed(1)
        agent = EnsembleSAC(OBS, ACT, EnsembleSACConfig(hidden=H, cql_weight=weight, n_actions=3), members=2)
        torch.manual_seed(2)
        losses[weight], _ = agent.critic_loss(b, agent.log_alpha.exp().detach().unsqueeze(-1))
    assert not torch.allclose(losses[0.0], losses[0.5])


def test_td3_draws_each_members_target_noise_from_its_own_generator():
    """Seeds trained together draw what they would alone (wmaug/algos/td3.py, `noise_generators`)."""
    agent = TD3(OBS, ACT, TD3Config(hidden=H), members=2)
    agent.noise_generators = [torch.Generator().manual_seed(s) for s in (11, 12)]
    torch.manual_seed(0)
    noise = agent.standard_normal(torch.zeros(2, B, ACT))
    expected = torch.stack([torch.randn(B, ACT, generator=torch.Generator().manual_seed(s)) for s in (11, 12)])
    assert torch.equal(noise, expected)


@pytest.mark.parametrize("name, policies", [("ensemble_sac", 1), ("cql", 2)])
def test_the_logged_actor_loss_is_per_policy(name, policies):
    """The ensemble SAC's one mixture policy logs its loss; CQL's E independent policies log their mean loss."""
    make, members, _ = LEARNERS[name]
    torch.manual_seed(0)
    agent = make()
    seen = []
    actor_loss = agent._actor_loss
    agent._actor_loss = lambda *args: seen.append(actor_loss(*args)) or seen[-1]
    metrics = agent.update(fixed_batch(members))
    torch.testing.assert_close(metrics["actor_loss"], seen[0][0].detach() / policies)


def test_cqls_bf16_precision_runs_its_losses_in_bf16():
    """`precision: bf16` (a GPU option) autocasts CQL's losses: the same agent and draws give a loss that differs
    from fp32's by bf16's rounding, not more."""
    import copy
    import dataclasses

    torch.manual_seed(0)
    fp32 = CQL(OBS, ACT, CQLConfig(hidden=H, n_actions=3), members=2)
    bf16 = copy.deepcopy(fp32)
    bf16.cfg = dataclasses.replace(fp32.cfg, precision="bf16")
    b = fixed_batch(2)
    alpha = fp32.log_alpha.exp().detach().unsqueeze(-1)
    losses = []
    for agent in (fp32, bf16):
        torch.manual_seed(1)
        losses.append((agent.critic_loss(b, alpha)[0].detach(), agent.actor_loss(b, alpha)[0].detach()))
    for a, b_ in zip(*losses):
        assert not torch.equal(a, b_)
        torch.testing.assert_close(a, b_, rtol=0.05, atol=0.05)
