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
