"""What every learner shares: saving and restoring its networks, optimisers and counters."""

from __future__ import annotations

import torch


class StatefulAgent:
    """state_dict/load_state_dict over the modules and optimisers named in `state_parts`, plus the
    temperature `log_alpha` when the agent has one, and the update counter."""

    state_parts: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        state = {name: getattr(self, name).state_dict() for name in self.state_parts}
        if hasattr(self, "log_alpha"):
            state["log_alpha"] = self.log_alpha.detach().clone()
        return {**state, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        for name in self.state_parts:
            getattr(self, name).load_state_dict(state[name])
        if hasattr(self, "log_alpha"):
            with torch.no_grad():
                self.log_alpha.copy_(state["log_alpha"])
        self.updates = state["updates"]


class GaussianMembers:
    """Acting and Q lookups of E batched agents with squashed-Gaussian actors (`actor`, an
    EnsembleTanhGaussianActor) and twin critics (`critic`, a TwinCriticEnsemble)."""

    @torch.no_grad()
    def act_members(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Each agent's own action: obs (N, d) shared or (E, N, d) -> (E, N, A)."""
        return self.actor(obs, deterministic)[0]

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """The agents as one ensemble policy, the moment-matched mixture; deterministic = tanh(mixture mean)."""
        return self.actor.mixture(obs, deterministic)[0]

    @torch.no_grad()
    def q_value(self, obs: torch.Tensor, act: torch.Tensor, member: int | None = None) -> torch.Tensor:
        """mean_i min_j Q_ij(s, a), or one member's min_j Q_ij (the AUROC analysis compares the two): (N,)."""
        q = self.critic(obs, act).min(1).values
        return q.mean(0) if member is None else q[member]
