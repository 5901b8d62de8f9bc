"""Lockstep check: is the harness's update rule d3rlpy's, step for step?

The parity runs compare learning curves, which carry seed noise; this compares the update rules themselves. The
harness's learner and d3rlpy's start from the same weights (the harness's, copied into d3rlpy's modules), then take
the same minibatches with torch's random generator reseeded identically before each update, so that both draw the
same exploration and target-smoothing noise. If the rules are the same, their weights stay equal up to float
rounding; a different rule shows as a difference from the first updates on.

Both sides run in float64. In float32 the rounding of two implementations that order their sums differently grows
chaotically (a ReLU that flips on one side, Adam dividing by a near-zero second moment): after 200 updates it stayed at
5e-7 on one machine and reached 2e-3 on another, and changed with the thread count. In float64 it stays near 1e-15
for hundreds of updates, far below any difference of rule, on any machine.

    python benchmarks/parity.py lockstep --updates 200   # every pair with a lockstep map -> <results>/lockstep.csv

Pairs: sac (as configured, with its temperature fixed, and with d3rlpy's temperature rule: the harness's differs,
see the README), td3, td3bc. d3rlpy's TD3 updates its actor on its 1st, 3rd, ... update and the harness (as Fujimoto et
al.'s reference code) on its 2nd, 4th, ...: the check starts d3rlpy's step counter at 1 to compare the rules, not
that phase (benchmarks/parity/README.md).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from wmaug.data.buffer import Batch
from wmaug.core.nets import EnsembleMLP

LOCKSTEP_PAIRS = ("sac", "td3", "td3bc")


def _linears(encoder_owner: nn.Module, head: nn.Linear) -> list[nn.Linear]:
    """A d3rlpy MLP's linear layers in order: its encoder's (Linear, ReLU, Linear, ReLU), then the head."""
    return [m for m in encoder_owner._encoder._layers if isinstance(m, nn.Linear)] + [head]


def _pairs_of_layers(ensemble: EnsembleMLP, member: int, linears: list[nn.Linear]):
    """(harness weight (in, out), harness bias (1, out), d3rlpy Linear) for each layer of one member."""
    if len(ensemble.layers) != len(linears):
        raise ValueError(f"{len(ensemble.layers)} harness layers against {len(linears)} d3rlpy layers")
    return [(layer.weight[member], layer.bias[member], lin) for layer, lin in zip(ensemble.layers, linears)]


class _Map:
    """Which harness tensor is which d3rlpy tensor, for one pair: copy one way, measure the largest difference."""

    def __init__(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]):
        self.pairs = pairs  # (harness view, d3rlpy tensor), same shape

    def copy_into_d3rlpy(self) -> None:
        with torch.no_grad():
            for ours, theirs in self.pairs:
                theirs.copy_(ours)

    def max_difference(self) -> float:
        with torch.no_grad():
            return max(float((ours - theirs).abs().max()) for ours, theirs in self.pairs)


def _mlp_pairs(ensemble: EnsembleMLP, member: int, linears: list[nn.Linear]) -> list:
    out = []
    for w, b, lin in _pairs_of_layers(ensemble, member, linears):
        out += [(w.T, lin.weight), (b[0], lin.bias)]
    return out


def sac_map(agent, modules) -> _Map:
    pairs = []
    for k in range(2):
        pairs += _mlp_pairs(agent.critic.net, k, _linears(modules.q_funcs[k], modules.q_funcs[k]._fc))
        pairs += _mlp_pairs(agent.critic_target.net, k, _linears(modules.targ_q_funcs[k], modules.targ_q_funcs[k]._fc))
    actor, policy, act_dim = agent.actor, modules.policy, agent.actor.head.out_features // 2
    trunk = [m for m in actor.trunk if isinstance(m, nn.Linear)]
    for ours, theirs in zip(trunk, _linears(policy, policy._mu)[:-1]):
        pairs += [(ours.weight, theirs.weight), (ours.bias, theirs.bias)]
    # one head of 2|A| outputs here (mean, log std), two heads of |A| there
    pairs += [(actor.head.weight[:act_dim], policy._mu.weight), (actor.head.bias[:act_dim], policy._mu.bias),
              (actor.head.weight[act_dim:], policy._logstd.weight), (actor.head.bias[act_dim:], policy._logstd.bias),
              (agent.log_alpha.reshape(1, 1), modules.log_temp._parameter)]
    return _Map(pairs)


def td3_map(agent, modules) -> _Map:
    pairs = _mlp_pairs(agent.actor.net, 0, _linears(modules.policy, modules.policy._fc))
    pairs += _mlp_pairs(agent.actor_target.net, 0, _linears(modules.targ_policy, modules.targ_policy._fc))
    for k in range(2):  # the harness's twin critic is members (0, 1) of one ensemble
        pairs += _mlp_pairs(agent.critic.net, k, _linears(modules.q_funcs[k], modules.q_funcs[k]._fc))
        pairs += _mlp_pairs(agent.critic_target.net, k, _linears(modules.targ_q_funcs[k], modules.targ_q_funcs[k]._fc))
    return _Map(pairs)


def harness_learner(pair: str, obs_dim: int, act_dim: int, cfg: dict):
    """The harness's learner of `pair` with the settings of config/config.yaml."""
    if pair == "sac":
        from wmaug.algos.sac import SAC, SACConfig

        s = cfg["sac"]
        return SAC(obs_dim, act_dim, SACConfig(**{k: v for k, v in s.items() if k in SACConfig.__dataclass_fields__}
                                               | {"hidden": tuple(s["hidden"])}))
    if pair in ("td3", "td3bc"):
        from wmaug.algos.td3 import TD3, TD3Config

        t = cfg["td3"]
        c = TD3Config(**{k: v for k, v in t.items() if k in TD3Config.__dataclass_fields__} | {"hidden": tuple(t["hidden"])})
        c.bc_alpha = t["bc_alpha"] if pair == "td3bc" else None
        return TD3(obs_dim, act_dim, c)
    raise ValueError(f"no lockstep check for {pair!r}: pairs with one are {LOCKSTEP_PAIRS}")


def lockstep(pair: str, updates: int, cfg: dict, d3rlpy_learner, d3rlpy_batch, obs_dim: int = 11, act_dim: int = 3,
             seed: int = 0, fixed_temperature: bool = False, temperature_update: str | None = None) -> list[float]:
    """The largest absolute difference between any harness weight and its d3rlpy counterpart after each of
    `updates` updates on the same random batches (states, actions, rewards ~ N(0, 1) / U(-1, 1), 5% terminals).
    `fixed_temperature` (SAC): both sides keep alpha at its initial value (temperature learning rate 0), which
    compares the critic and actor rules alone. `temperature_update` (SAC): the harness's rule for it (SACConfig)."""
    with float64_on_both_sides():
        return _lockstep(pair, updates, cfg, d3rlpy_learner, d3rlpy_batch, obs_dim, act_dim, seed, fixed_temperature,
                         temperature_update)


@contextlib.contextmanager
def float64_on_both_sides():
    """Modules built in float64 (torch's default dtype), and d3rlpy's minibatches converted to float64: d3rlpy
    casts every array to float32 on the way in (torch_utility.convert_to_torch), which would round the harness's
    float64 activations' inputs on its side only. The batch values themselves are float32 numbers on both sides."""
    import d3rlpy.torch_utility as tu

    default, convert = torch.get_default_dtype(), tu.convert_to_torch
    torch.set_default_dtype(torch.float64)
    tu.convert_to_torch = lambda array, device: torch.tensor(array, dtype=torch.float64, device=device)
    try:
        yield
    finally:
        torch.set_default_dtype(default)
        tu.convert_to_torch = convert


def _lockstep(pair, updates, cfg, d3rlpy_learner, d3rlpy_batch, obs_dim, act_dim, seed, fixed_temperature,
              temperature_update) -> list[float]:
    if fixed_temperature:
        cfg = {**cfg, "sac": {**cfg["sac"], "alpha_lr": 0.0}}
    if temperature_update:
        cfg = {**cfg, "sac": {**cfg["sac"], "temperature_update": temperature_update}}
    torch.manual_seed(seed)
    ours = harness_learner(pair, obs_dim, act_dim, cfg)
    theirs, batch_size = d3rlpy_learner(pair, obs_dim, act_dim, seed, cfg)
    for module in theirs.impl.modules.get_torch_modules().values():
        for p in module.parameters():  # d3rlpy makes its temperature float32 whatever the default dtype
            p.data = p.data.double()
    m = (sac_map if pair == "sac" else td3_map)(ours, theirs.impl.modules)
    m.copy_into_d3rlpy()
    if pair != "sac":
        theirs._grad_step = 1  # align the delayed actor updates (module docstring)
    rng = np.random.default_rng(seed)
    n = 4096
    data = [rng.normal(size=(n, obs_dim)), rng.uniform(-1, 1, (n, act_dim)), rng.normal(size=n),
            rng.normal(size=(n, obs_dim)), (rng.uniform(size=n) < 0.05)]
    # float32 numbers (d3rlpy's minibatch takes nothing else), held in float64 on the harness's side
    data = [torch.as_tensor(x, dtype=torch.float32).double() for x in data]
    out = []
    for step in range(1, updates + 1):
        idx = torch.as_tensor(rng.integers(0, n, batch_size))
        batch = Batch(*(x[idx] for x in data))
        torch.manual_seed(seed * 1_000_003 + step)
        ours.update(batch)
        torch.manual_seed(seed * 1_000_003 + step)
        theirs.update(d3rlpy_batch(batch))
        out.append(m.max_difference())
    return out
