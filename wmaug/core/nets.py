"""Network building blocks shared by every algorithm.

Ensembles (twin critics, Q-ensembles, batched agents) are one weight tensor per layer with a leading
member axis, so E members cost one batched matmul rather than E small ones.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks


def mlp(in_dim: int, hidden: list[int] | tuple[int, ...], out_dim: int, activation=nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    dims = [in_dim, *hidden]
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), activation()]
    layers.append(nn.Linear(dims[-1], out_dim))
    return nn.Sequential(*layers)


ALL = slice(None)


class EnsembleLinear(nn.Module):
    """E independent linear layers: (E, B, in) -> (E, B, out)."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim))
        # Same distribution as nn.Linear's default init, drawn per member.
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, members: slice = slice(None)) -> torch.Tensor:
        """`members`: a subset of the layers (views of their weights, no copy), e.g. every other one."""
        if members == ALL:
            # no view: the backward of even a full slice allocates and zero-fills a gradient (~7% of a TD3 update)
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[members], x, self.weight[members])


class EnsembleMLP(nn.Module):
    def __init__(self, members: int, in_dim: int, hidden: list[int] | tuple[int, ...], out_dim: int):
        super().__init__()
        self.members = members
        dims = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in zip(dims[:-1], dims[1:]))

    @classmethod
    def stacked(cls, mlps: list[nn.Sequential]) -> "EnsembleMLP":
        """Trained `mlp`s of one shape as one ensemble, member k = mlps[k] (a copy, frozen, on their device)."""
        if any(not isinstance(m, (nn.Linear, nn.ReLU)) for seq in mlps for m in seq):
            raise ValueError("EnsembleMLP.stacked takes mlp()s of Linear and ReLU layers only")
        linears = [[m for m in seq if isinstance(m, nn.Linear)] for seq in mlps]
        shapes = {tuple((m.in_features, m.out_features) for m in layers) for layers in linears}
        if len(shapes) != 1:
            raise ValueError(f"EnsembleMLP.stacked: the mlps differ in shape: {sorted(shapes)}")
        dims = [m.in_features for m in linears[0]] + [linears[0][-1].out_features]
        ensemble = cls(len(mlps), dims[0], dims[1:-1], dims[-1]).to(linears[0][0].weight.device)
        with torch.no_grad():
            for layer, same_layer in zip(ensemble.layers, zip(*linears)):
                layer.weight.copy_(torch.stack([m.weight.T for m in same_layer]))
                layer.bias.copy_(torch.stack([m.bias for m in same_layer])[:, None])
        return ensemble.requires_grad_(False)

    def forward(self, x: torch.Tensor, members: slice = slice(None)) -> torch.Tensor:
        """x: (B, in) shared by all members, or (E, B, in) one batch per member; `members` runs a subset only."""
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(len(range(self.members)[members]), -1, -1)
        for layer in self.layers[:-1]:
            x = F.relu(layer(x, members), inplace=True)  # in place: baddbmm's backward does not read its output
        return self.layers[-1](x, members)


class QEnsemble(nn.Module):
    """E state-action critics Q_i(s, a); TD3/SAC's twin critic is E = 2."""

    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), members: int = 2):
        super().__init__()
        self.net = EnsembleMLP(members, obs_dim + act_dim, hidden, 1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Returns (E, B)."""
        return self.net(torch.cat([obs, act], dim=-1)).squeeze(-1)


class TwinCriticEnsemble(nn.Module):
    """E agents' twin critics (Q1_i, Q2_i) as one batched 2E-member network, laid out member-major so that
    E single agents' critics concatenate into it. Inputs (B, d) shared or (E, B, d) per agent; output (E, 2, B)."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden=(256, 256)):
        super().__init__()
        self.members = members
        self.net = EnsembleMLP(2 * members, obs_dim + act_dim, hidden, 1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, act], dim=-1)
        if x.dim() == 3:
            x = x.repeat_interleave(2, dim=0)
        return self.net(x).squeeze(-1).unflatten(0, (self.members, 2))

    def first(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Each agent's Q1 only, (E, B): what actor losses read, at half the cost of both twins."""
        return self.net(torch.cat([obs, act], dim=-1), slice(0, None, 2)).squeeze(-1)


class EnsembleDeterministicActor(nn.Module):
    """E independent deterministic policies max_action * tanh(MLP_i(s)) in one batched network: obs (B, d)
    shared or (E, B, d) per member -> (E, B, A)."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden=(256, 256), max_action: float = 1.0):
        super().__init__()
        self.members = members
        self.net = EnsembleMLP(members, obs_dim, hidden, act_dim)
        self.max_action = max_action

    def forward(self, obs: torch.Tensor, members: slice = slice(None)) -> torch.Tensor:
        return self.max_action * torch.tanh(self.net(obs, members))


LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


def tanh_gaussian_sample(mean: torch.Tensor, std: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A squashed action tanh(u), u ~ N(mean, std), and its log-probability (change of variables through tanh)."""
    u = mean if deterministic else mean + std * torch.randn_like(mean)
    log_prob = torch.distributions.Normal(mean, std).log_prob(u).sum(-1)
    # log|d tanh(u)/du| = 2 (log 2 - u - softplus(-2u)), the numerically stable form
    log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
    return torch.tanh(u), log_prob


class TanhGaussianActor(nn.Module):
    """SAC's squashed Gaussian policy."""

    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), max_action: float = 1.0):
        super().__init__()
        self.trunk = mlp(obs_dim, hidden[:-1], hidden[-1])
        self.head = nn.Linear(hidden[-1], 2 * act_dim)
        self.max_action = max_action

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of the pre-tanh Gaussian."""
        mean, log_std = self.head(F.relu(self.trunk(obs))).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        action, log_prob = tanh_gaussian_sample(*self.distribution_params(obs), deterministic)
        return self.max_action * action, log_prob

    def act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        return self(obs, deterministic)[0]


class EnsembleTanhGaussianActor(nn.Module):
    """E independent squashed Gaussian policies in one batched network: obs (B, d) or (E, B, d) -> (E, B, A)."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden=(256, 256)):
        super().__init__()
        self.members = members
        self.net = EnsembleMLP(members, obs_dim, hidden, 2 * act_dim)

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # float32 from here on, also under bf16 autocast: log-probabilities are sums of small terms
        mean, log_std = self.net(obs).float().chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()

    def forward(self, obs: torch.Tensor, deterministic: bool = False, samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's own action and log-probability: (E, B, A), (E, B); with `samples` = n, n independent
        actions per state, sample-major: (E, n B, A), (E, n B). The network runs once per state either way."""
        mean, std = self.distribution_params(obs)
        if samples > 1:
            mean, std = mean.repeat(1, samples, 1), std.repeat(1, samples, 1)
        return tanh_gaussian_sample(mean, std, deterministic)

    def mixture(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The ensemble policy: one squashed Gaussian moment-matched to the members' pre-tanh Gaussians."""
        return tanh_gaussian_sample(*moment_matched(*self.distribution_params(obs)), deterministic)


def moment_matched(means: torch.Tensor, stds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian with the first two moments of the equal-weight mixture of N(means[i], stds[i]^2) (member
    axis first): mean = mean_i mu_i, var = mean_i (mu_i^2 + sigma_i^2) - mean^2 (Lee et al. 2021, sec. 4.2),
    std clamped to [e^-20, e^2] like each member's."""
    mean = means.mean(0)
    var = (means.pow(2) + stds.pow(2)).mean(0) - mean.pow(2)
    std = var.clamp_min(0.0).sqrt().clamp(math.exp(LOG_STD_MIN), math.exp(LOG_STD_MAX))
    return mean, std


class frozen:
    """Context in which a module's parameters take no gradient: the actor step backpropagates through the
    critic to the action but needs no critic weight gradients (about a third of that backward pass)."""

    def __init__(self, module: nn.Module):
        self.params = list(module.parameters())

    def __enter__(self):
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p in self.params:
            p.requires_grad_(True)


class FusedAdam(torch.optim.Adam):
    """torch's fused Adam (one kernel for every parameter's step), stepped without Optimizer.step's per-call
    bookkeeping (hooks, profiler ranges, regrouping tensors by device and dtype), which at these sizes takes as long
    as the kernel itself (0.30 vs 0.17 ms per twin-critic step, measured here): about 3% of a TD3 update. The same
    kernel, state and state_dict; the first step (which creates the state) and any setting this path does not cover
    go through torch's own step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # torch wraps the class's `step` in a profiling hook at construction; the instance's own bypasses it
        self.step = self.lean_step

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.step = self.lean_step  # also after a deepcopy or unpickling

    def _lean(self) -> bool:
        if (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks or _global_optimizer_pre_hooks
                or _global_optimizer_post_hooks or getattr(self, "grad_scale", None) is not None
                or getattr(self, "found_inf", None) is not None):  # hooks, GradScaler: torch's step handles them
            return False
        for group in self.param_groups:
            if (group["amsgrad"] or group["maximize"] or group["weight_decay"] or group.get("decoupled_weight_decay")
                    or isinstance(group["lr"], torch.Tensor) or not group["params"]):
                return False
            if any(p.grad is None or p not in self.state for p in group["params"]):
                return False
        return True

    def lean_step(self, closure=None):
        if closure is not None or not self._lean():
            return type(self).step(self, closure)
        for group in self.param_groups:
            params = group["params"]
            states = [self.state[p] for p in params]
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                               [s["exp_avg_sq"] for s in states], [], steps, amsgrad=False, lr=group["lr"],
                               beta1=group["betas"][0], beta2=group["betas"][1], weight_decay=0.0, eps=group["eps"],
                               maximize=False, grad_scale=None, found_inf=None)
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            return super().zero_grad(set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None


def make_adam(params, lr: float, **kwargs) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for every parameter's step: about 3.5x faster than the per-tensor loop
    on a CPU at these sizes, measured here); same update rule, float rounding aside."""
    return FusedAdam(params, lr=lr, fused=True, **kwargs)


def compile_loss(fn, device: torch.device):
    """`fn`, a loss computation, as a compiled graph (torch.compile, inductor): its forward and, through
    AOTAutograd, its backward each become one graph with the elementwise work fused into few kernels. On a GPU the
    graphs are also captured as CUDA graphs (what mode "reduce-overhead" sets: one launch per graph instead of one per
    op). A captured graph's outputs live until the next call of any compiled function (torch's CUDA-graph trees start
    a new iteration there once no backward is pending), so callers copy what they keep before that. Random ops inside
    run torch's own kernels (inductor's `fallback_random`, for these graphs only), so a compiled loss draws exactly
    what the eager one draws. The whole function is one graph (`fullgraph`): anything that would split it is an
    error, not a silent slow path."""
    import torch._dynamo.config as dynamo_config

    # One graph per (shape, precision, BC on or off, k-step discounts or not) of each loss; torch's default limit of 8
    # is an error under fullgraph, and several learners of different shapes in one process (tests, benchmarks) pass it
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
    options = {"fallback_random": True, "triton.cudagraphs": torch.device(device).type == "cuda"}
    return torch.compile(fn, options=options, dynamic=False, fullgraph=True)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging: target <- (1 - tau) target + tau source."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


# ---- members of batched ensembles: every tensor's leading axis is (member, k) flattened -----------------

def _member_map(obj, members: int, fn):
    if isinstance(obj, torch.Tensor):
        if obj.dim() == 0:
            return obj.clone()  # optimiser step counts and other scalars: the same value, not the same tensor
        if obj.shape[0] % members:
            raise ValueError(f"tensor of shape {tuple(obj.shape)} has no leading member axis of {members}")
        k = obj.shape[0] // members
        return fn(obj.reshape(members, k, *obj.shape[1:])).flatten(0, 1)
    if isinstance(obj, dict):
        return {key: _member_map(v, members, fn) for key, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_member_map(v, members, fn) for v in obj)
    return obj


def select_members(state: dict, members: int, index: list[int]) -> dict:
    """A state dict of `members` batched agents cut down to the agents in `index` (in that order).
    Works on network and Adam state alike: each tensor's leading axis is members x k (k = 2 for twin critics)."""
    idx = torch.as_tensor(index, dtype=torch.long)
    return _member_map(state, members, lambda t: t.index_select(0, idx.to(t.device)))


def join_members(states: list[dict]) -> dict:
    """The inverse of :func:`select_members`: state dicts of separately held agents (networks or Adam states, one
    member each or more) joined into one batched state, in list order. Scalars (Adam's step count) are shared by
    agents trained in lockstep and taken from the first; so are non-tensor entries (optimiser settings)."""
    first = states[0]
    if isinstance(first, torch.Tensor):
        return first.clone() if first.dim() == 0 else torch.cat(states)
    if isinstance(first, dict):
        if any(set(s) != set(first) for s in states):
            keys = [set(s) for s in states]
            raise ValueError(f"agents' states to join differ in the entries {sorted(set.union(*keys) - set.intersection(*keys))}")
        return {key: join_members([s[key] for s in states]) for key in first}
    if isinstance(first, (list, tuple)):
        return type(first)(join_members(list(parts)) for parts in zip(*states))
    return first
