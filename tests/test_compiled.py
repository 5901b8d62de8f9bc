"""The compiled path (`--compile on`: losses as torch.compile graphs, CUDA graphs on a GPU) computes what the eager
path computes: the same losses on the same batches, the same weights after, the same draws, and a cell's curve.
On the CPU (inductor's C++ kernels) always; on a GPU, where there is one, with the CUDA-graph capture on top."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from wmaug.algos.cql import CQL, CQLConfig
from wmaug.algos.ensemble_sac import EnsembleSAC, EnsembleSACConfig
from wmaug.algos.td3 import TD3, TD3Config
from wmaug.cell import pick_compile, run_cell, run_cells
from wmaug.data.buffer import Batch
from wmaug.core.errors import InputError
from wmaug.core.io import torch_load
from torch._dynamo.utils import counters

from conftest import tiny_spec, write_sample


# bf16 CQL, compiled vs eager after 4 updates, seen here: losses 1.3e-5 apart at most, weights 6e-4 (a 3x margin)
BF16_TOLERANCE = {"rtol": 1e-3, "atol": 2e-3}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


def batches(members: int | None, n: int, steps: int, device="cpu", obs_dim: int = 5, act_dim: int = 2) -> list[Batch]:
    """Random batches, (members, n, ...) each, or (n, ...) with members None."""
    g = torch.Generator().manual_seed(7)
    lead = (n,) if members is None else (members, n)
    out = [Batch(torch.randn(*lead, obs_dim, generator=g), torch.rand(*lead, act_dim, generator=g) * 2 - 1,
                 torch.randn(*lead, generator=g), torch.randn(*lead, obs_dim, generator=g),
                 (torch.rand(*lead, generator=g) < 0.1).float()) for _ in range(steps)]
    return [Batch(*(t.to(device) for t in (b.observations, b.actions, b.rewards, b.next_observations, b.terminals)))
            for b in out]


@pytest.fixture(autouse=True)
def fresh_compiler():
    """Each test compiles its own graphs (none reused from an earlier test), so it can check that they ran."""
    torch._dynamo.reset()
    counters.clear()
    yield


def assert_compiled_graphs_ran(device: str) -> None:
    """Inductor compiled the losses, and on a GPU captured them as CUDA graphs (none skipped, e.g. for an op that a
    graph cannot hold), rather than a silent fallback to eager."""
    assert counters["stats"]["unique_graphs"] > 0, dict(counters["stats"])
    if device == "cuda":
        assert counters["inductor"]["cudagraph_skips"] == 0, dict(counters["inductor"])


def eager_and_compiled(make):
    """Two agents with the same weights, the second compiled, each run with torch's stream seeded the same."""
    agents = []
    for compile in (False, True):
        torch.manual_seed(0)
        agent = make()
        if compile:
            agent.compile()
        agents.append(agent)
    return agents


def run_updates(agent, data: list[Batch], seed: int = 1) -> list[dict]:
    """Each update's metrics as returned, read only after all updates: a metric that a later captured graph's
    replay overwrote would show."""
    torch.manual_seed(seed)  # also seeds the CUDA generator
    return [agent.update(b) for b in data]


def assert_same_losses_and_weights(eager, compiled, data: list[Batch], modules: list[str], rtol: float = 1e-4,
                                   atol: float = 1e-5) -> None:
    """Float tolerance: relative 1e-4 (seen here: 2e-7 at most in float32, fused kernels summing in another order)."""
    for step, (ours, theirs) in enumerate(zip(run_updates(compiled, data), run_updates(eager, data))):
        assert ours.keys() == theirs.keys()
        for key in ours:
            torch.testing.assert_close(ours[key], theirs[key], rtol=rtol, atol=atol, msg=f"update {step}: {key}")
    for name in modules:
        for (pname, a), b in zip(getattr(compiled, name).named_parameters(), getattr(eager, name).parameters()):
            torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=f"{name}.{pname} after {len(data)} updates")


@pytest.mark.slow  # trains for seconds
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_td3_computes_the_eager_losses_and_steps(device):
    """Two TD3+BC members, 12 updates (6 delayed actor steps), each member's target noise from its own generator,
    then 4 more as plain TD3 (the online hand-off switches the BC term off: a second actor graph)."""
    eager, compiled = eager_and_compiled(lambda: TD3(5, 2, TD3Config(hidden=(32, 32), bc_alpha=2.5), members=2,
                                                     device=device))
    for agent in (eager, compiled):
        agent.noise_generators = [torch.Generator(device).manual_seed(s) for s in (11, 12)]
    data = batches(2, 64, 12, device)
    assert_same_losses_and_weights(eager, compiled, data, ["actor", "critic", "actor_target", "critic_target"])
    for agent in (eager, compiled):
        agent.bc_alpha = None
    assert_same_losses_and_weights(eager, compiled, batches(2, 64, 4, device), ["actor", "critic"])
    assert compiled.compiled and not eager.compiled
    assert_compiled_graphs_ran(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_compiled_cql_computes_the_eager_losses_and_steps(precision, device):
    """Two CQL agents, 4 updates: the policy's samples, the uniform actions of the penalty and the temperature step
    are the eager path's draws (inductor runs torch's own random kernels). bf16 compares two bf16 runs."""
    cfg = CQLConfig(hidden=(32, 32), n_actions=3, precision=precision)
    eager, compiled = eager_and_compiled(lambda: CQL(5, 2, cfg, members=2, device=device))
    # bf16: both runs round their matmuls to bf16, but the compiled one rounds at other points of its fused kernels
    tolerance = BF16_TOLERANCE if precision == "bf16" else {}
    assert_same_losses_and_weights(eager, compiled, batches(2, 32, 4, device), ["actor", "critic", "critic_target"],
                                   **tolerance)
    torch.testing.assert_close(compiled.log_alpha, eager.log_alpha, **(tolerance or {"rtol": 1e-4, "atol": 1e-5}))
    assert_compiled_graphs_ran(device)


@pytest.mark.slow  # trains for seconds
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_ensemble_sac_computes_the_eager_losses_and_steps(device):
    """Paper B's fine-tuning rule: a 3-member Q-ensemble with the mixture policy, one shared batch, 4 updates."""
    eager, compiled = eager_and_compiled(lambda: EnsembleSAC(5, 2, EnsembleSACConfig(hidden=(32, 32)), members=3,
                                                             device=device))
    assert_same_losses_and_weights(eager, compiled, batches(None, 32, 4, device), ["actor", "critic", "critic_target"])
    torch.testing.assert_close(compiled.log_alpha, eager.log_alpha)
    assert_compiled_graphs_ran(device)


@pytest.mark.slow  # trains for seconds
def test_a_cell_run_compiled_follows_the_eager_curve(tmp_path, hopper_random, base_config):
    """wm-free TD3+BC -> TD3 on hopper, 60 offline iterations and 200 online steps, compiled and eager: the same
    curve to float tolerance (relative 1e-4), and the summary says which path ran."""
    spec = tiny_spec(base_config, tmp_path, "td3bc_td3", online_steps=200)
    write_sample(tmp_path / "sample.npz", hopper_random, 500, 0)
    compiled = run_cell(spec, tmp_path / "compiled", device="cpu", progress=False, compile=True)
    eager = run_cell(spec, tmp_path / "eager", device="cpu", progress=False)
    assert_compiled_graphs_ran("cpu")
    assert compiled["provenance"]["compiled"] and not eager["provenance"]["compiled"]
    assert json.loads((tmp_path / "compiled" / "summary.json").read_text())["provenance"]["compiled"]
    assert compiled["counts"] == eager["counts"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "compiled" / "curve.csv"),
                                  pd.read_csv(tmp_path / "eager" / "curve.csv"), check_exact=False, rtol=1e-4)


def test_the_compile_switch_names_a_bad_value_and_where_it_came_from(monkeypatch):
    monkeypatch.delenv("WMAUG_COMPILE", raising=False)
    assert pick_compile() is False and pick_compile("on") is True
    monkeypatch.setenv("WMAUG_COMPILE", "on")
    assert pick_compile() is True and pick_compile("off") is False  # the flag wins over the environment
    monkeypatch.setenv("WMAUG_COMPILE", "yes")
    with pytest.raises(InputError, match="environment variable WMAUG_COMPILE.*'yes'"):
        pick_compile()
    with pytest.raises(InputError, match="--compile.*'1'"):
        pick_compile("1")


@pytest.mark.slow  # trains for seconds
@pytest.mark.parametrize("device", DEVICES)
def test_a_seed_group_with_k_step_augmentation_runs_compiled_as_eager(tmp_path, hopper_random, base_config, device):
    """The device path end to end: seeds 1 and 2 of wm_k3 (TD3+BC on batches augmented by both seeds' world models as
    one batched model, 3-step latent rollouts acting with the target actors, then online TD3) as one job on `device`,
    eager and compiled (on a GPU: CUDA graphs, buffers and rollouts on the GPU). The same counts and curves (relative
    1e-4), finite returns, and result files that load on a CPU. Last in this file: the GPU check runs it last."""
    from test_seed_groups import curve, group_specs

    specs = group_specs(base_config, tmp_path, hopper_random, "wm_k3", [1, 2], online_steps=150)
    eager = run_cells(specs, [tmp_path / "e1", tmp_path / "e2"], device=device, progress=False)
    compiled = run_cells(specs, [tmp_path / "c1", tmp_path / "c2"], device=device, progress=False, compile=True)
    assert_compiled_graphs_ran(device)
    for seed, e, c in zip([1, 2], eager, compiled):
        assert c["provenance"]["compiled"] and not e["provenance"]["compiled"] and c["counts"] == e["counts"]
        eager_curve, compiled_curve = curve(tmp_path / f"e{seed}"), curve(tmp_path / f"c{seed}")
        assert eager_curve.raw_return.notna().all() and (eager_curve.phase == "online").any()
        pd.testing.assert_frame_equal(compiled_curve, eager_curve, check_exact=False, rtol=1e-4)
        model = torch_load(tmp_path / f"c{seed}" / "model.pt")
        assert model["actor"]["net.layers.0.weight"].device.type == "cpu"
