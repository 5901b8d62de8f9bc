"""What every learner shares: saving and restoring its networks, optimisers and counters; the soft actor-critic step
of CQL and the ensemble SAC; the switch to compiled losses."""

from __future__ import annotations

import torch

from wmaug.data.buffer import Batch
from wmaug.core.nets import compile_loss, frozen, soft_update


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


class CompilableLosses:
    """A learner whose update computes its losses through `_critic_loss` and `_actor_loss`: the eager `critic_loss`
    and `actor_loss`, or after :meth:`compile` their compiled graphs (`wmaug.core.nets.compile_loss`; random draws,
    optimiser and target steps stay outside, so a compiled learner draws what an eager one does)."""

    compiled = False

    def _critic_loss(self, *args):
        return self.critic_loss(*args)

    def _actor_loss(self, *args):
        return self.actor_loss(*args)

    def compile(self) -> None:
        self._critic_loss = compile_loss(self.critic_loss, self.device)
        self._actor_loss = compile_loss(self.actor_loss, self.device)
        self.compiled = True

    def kept(self, metrics: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outputs of a loss to keep: copies when compiled (a captured graph's outputs die at the next compiled call,
        `wmaug.core.nets.compile_loss`)."""
        return {key: value.clone() for key, value in metrics.items()} if self.compiled else metrics


def optimiser_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


class SoftActorCritic(CompilableLosses):
    """The step CQL and the ensemble SAC share (Haarnoja et al. 2018, with E members): the critics' step, the policy's
    step with the critics frozen, the temperature's step, then the critics' Polyak average. Subclasses define
    `critic_loss(b, alpha) -> (loss, metrics)` and `actor_loss(b, alpha) -> (loss, log pi(a|s))`; `log_alpha` is one
    temperature per member, (E,), or one shared, (). `independent_policies`: the actor loss is the sum of E
    policies' losses (logged per policy), else that of the one ensemble policy.

        J_alpha = E[-alpha (log pi(a|s) + target_entropy)], in log alpha, per temperature
    """

    independent_policies = True

    def update(self, b: Batch) -> dict[str, torch.Tensor]:
        """One step; returns 0-dim tensors left on the device (the caller decides when to wait for them)."""
        self.updates += 1
        alpha = self.log_alpha.exp().detach().unsqueeze(-1)  # (E, 1) or (1,): broadcasts over the batch
        critic_loss, metrics = self._critic_loss(b, alpha)
        optimiser_step(self.critic_opt, critic_loss)
        metrics = self.kept(metrics)  # before the next compiled call ends the critic graph's outputs' life
        with frozen(self.critic):  # the policy step needs dQ/da, not the critics' weight gradients
            actor_loss, log_prob = self._actor_loss(b, alpha)
        optimiser_step(self.actor_opt, actor_loss)
        alpha_loss = -(self.log_alpha.unsqueeze(-1) * (log_prob.detach() + self.target_entropy)).mean(-1).sum()
        optimiser_step(self.alpha_opt, alpha_loss)
        soft_update(self.critic_target, self.critic, self.cfg.tau)
        policies = self.members if self.independent_policies else 1
        return {**metrics, **self.kept({"actor_loss": actor_loss.detach() / policies}), "alpha": alpha.mean()}
