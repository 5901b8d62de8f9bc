"""Paper B's density-ratio estimator w(s, a) ~ d_P(s, a) / d_Q(s, a), which sets balanced-replay priorities.

Numbers are from docs/protocol.md, section "Paper B". w is fitted by minimising the variational
(Jensen-Shannon) f-divergence bound of Sinha et al. 2020, as Lee et al. 2021 (appendix D) write it:

    L(w) = E_Q[ -log(2 / (w + 1)) ] - E_P[ log(2 w / (w + 1)) ]

Pointwise in (s, a) the integrand q log((w + 1) / 2) - p log(2 w / (w + 1)) has derivative
(p + q) / (w + 1) - p / w, zero at w = p / q: the minimiser is the true ratio.

The class is agnostic about P and Q: it estimates d_P / d_Q from samples of P (the `on` arguments) and Q
(the `off` arguments). The paper's scheme is P = online buffer, Q = offline dataset; the appendix's
alternative density-ratio scheme is obtained by passing other samples as P and Q, chosen by the caller.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from wmaug.data.buffer import Batch
from wmaug.core.nets import make_adam, mlp

LOG_EPS = 1e-10  # inside both logs, as in the paper's loss


def js_loss(w_on: torch.Tensor, w_off: torch.Tensor) -> torch.Tensor:
    # Lee et al. 2021, appendix D; Sinha et al. 2020: Jensen-Shannon variational bound, minimised at w = d_P / d_Q
    return torch.mean(-torch.log(2 / (w_off + 1) + LOG_EPS)) - torch.mean(torch.log(2 * w_on / (w_on + 1) + LOG_EPS))


class DensityRatio:
    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), lr: float = 3e-4, temperature: float = 5.0,
                 device="cpu", priority_clip: tuple[float, float] = (1e-3, 1e3)):
        self.device = torch.device(device)
        self.temperature = temperature
        self.priority_clip = priority_clip
        self.net = mlp(obs_dim + act_dim, hidden, 1)
        # Last bias 1.0: w starts near the ratio of identical distributions, and the output ReLU starts active
        # (a unit at w = 0 passes no gradient, so a zero start could never recover).
        nn.init.constant_(self.net[-1].bias, 1.0)
        self.net.to(self.device)
        self.opt = make_adam(self.net.parameters(), lr)
        self.updates = 0

    def __call__(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """w(s, a) >= 0 on raw (un-normalised) inputs, shape (B,)."""
        return F.relu(self.net(torch.cat([obs, act], dim=-1))).squeeze(-1)

    def loss(self, on_obs, on_act, off_obs, off_act) -> torch.Tensor:
        return js_loss(self(on_obs, on_act), self(off_obs, off_act))

    def update(self, online_batch: Batch, offline_batch: Batch) -> dict[str, float]:
        """One Adam step; online_batch are the P samples, offline_batch the Q samples."""
        w_on = self(online_batch.observations, online_batch.actions)
        w_off = self(offline_batch.observations, offline_batch.actions)
        loss = js_loss(w_on, w_off)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.updates += 1
        return {"density_loss": loss.item(), "w_online": w_on.mean().item(), "w_offline": w_off.mean().item()}

    @torch.no_grad()
    def priorities(self, obs, act, off_obs, off_act, clip: bool = True) -> torch.Tensor:
        """w(s, a)^(1/T) / mean_offline_batch(w_off^(1/T)), clamped to priority_clip (docs/protocol.md: [0.001, 1000]).

        Self-normalised by the offline batch so a typical offline transition keeps priority ~1, its entry value.
        """
        inv_t = 1.0 / self.temperature
        p = self(obs, act).pow(inv_t) / self(off_obs, off_act).pow(inv_t).mean()
        return p.clamp(*self.priority_clip) if clip else p

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.updates = state["updates"]
