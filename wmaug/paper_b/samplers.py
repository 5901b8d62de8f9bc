"""Where paper B's fine-tuning batches come from: online samples only, offline + online uniformly, or
balanced replay (density-ratio priorities over offline + online, Lee et al. 2021 sec. 4.1).

Each sampler stores new online transitions, draws a batch and says which of its rows are offline; balanced
replay also trains its density-ratio network and re-prioritises the rows it drew. Only online state goes into
checkpoints: the offline part is the dataset, reloaded on resume.
"""

from __future__ import annotations

import numpy as np

from wmaug.data.buffer import Batch, ReplayBuffer, UnionReplay, concat_batches
from wmaug.data.transitions import Transitions


class OnlineOnly:
    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device):
        self.online = ReplayBuffer(obs_dim, act_dim, capacity, device)

    def add(self, obs, action, reward, next_obs, terminal) -> None:
        self.online.add(obs, action, reward, next_obs, terminal)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[Batch, np.ndarray]:
        return self.online.sample(batch_size, rng), np.zeros(batch_size, bool)

    def after_sample(self, rng: np.random.Generator) -> dict[str, float]:
        return {}

    def recent_online(self, n: int) -> Batch:
        """The last n online transitions, newest first (the AUROC analysis's real pairs)."""
        idx = (self.online.pos - 1 - np.arange(min(n, len(self.online)))) % self.online.capacity
        return self.online.gather(idx)

    def state_dict(self) -> dict:
        return {"online": self.online.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.online.load_state_dict(state["online"])


class Uniform(OnlineOnly):
    """One buffer of offline and online samples, drawn uniformly at random (Fig 1b's and 4c's "Uniform")."""

    def __init__(self, offline: Transitions, capacity: int, device):
        super().__init__(offline.obs_dim, offline.act_dim, capacity, device)
        self.union = UnionReplay(ReplayBuffer.of(offline, device), self.online)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[Batch, np.ndarray]:
        return self.union.sample(batch_size, rng)


class Balanced(OnlineOnly):
    """Balanced replay. Priority of a drawn transition: w(s, a)^(1/T) / mean over an offline batch of
    w_off^(1/T); offline transitions enter at 1, online ones at the running max (docs/protocol.md, paper B).

    `alternative`: the appendix's scheme, w estimating d_on / d_(off+on) (the reference batch comes from the
    whole buffer instead of the offline data alone)."""

    def __init__(self, offline: Transitions, capacity: int, settings: dict, device, alternative: bool = False):
        from wmaug.paper_b.prioritized import BalancedReplay
        from wmaug.paper_b.density_ratio import DensityRatio

        super().__init__(offline.obs_dim, offline.act_dim, 1, device)  # the online ring lives in the replay
        self.replay = BalancedReplay(offline, offline.obs_dim, offline.act_dim, capacity, device,
                                     f=settings["online_share"], n_default=settings["default_samples"])
        self.ratio = DensityRatio(offline.obs_dim, offline.act_dim, tuple(settings["hidden"]), settings["lr"],
                                  settings["temperature"], device=device)
        self.ratio_batch = settings["batch_size"]
        self.alternative = alternative
        self.drawn: np.ndarray | None = None
        self.drawn_batch: Batch | None = None

    def add(self, obs, action, reward, next_obs, terminal) -> None:
        self.replay.add(obs, action, reward, next_obs, terminal)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[Batch, np.ndarray]:
        batch, self.drawn, is_offline = self.replay.sample(batch_size, rng)
        self.drawn_batch = batch
        return batch, is_offline

    def reference_batch(self, rng: np.random.Generator) -> Batch:
        """Samples of the denominator distribution: the offline data, or (alternative) offline + online."""
        n = self.ratio_batch
        if not self.alternative:
            return self.replay.sample_uniform_offline(n, rng)
        m, k = self.replay.offline_size, self.replay.online_size
        n_online = rng.binomial(n, k / (m + k))
        parts = [self.replay.sample_uniform_offline(n - n_online, rng)]
        if n_online:
            parts.append(self.replay.sample_uniform_online(n_online, rng))
        return concat_batches(parts)

    def after_sample(self, rng: np.random.Generator) -> dict[str, float]:
        """One density-ratio step on 256 online + 256 reference samples, then the drawn rows' new priorities."""
        online = self.replay.sample_uniform_online(self.ratio_batch, rng)
        reference = self.reference_batch(rng)
        metrics = self.ratio.update(online, reference)
        b = self.drawn_batch
        priorities = self.ratio.priorities(b.observations, b.actions, reference.observations, reference.actions)
        self.replay.update_priorities(self.drawn, priorities.detach().cpu().numpy())
        return metrics  # density_loss, w_online, w_offline

    def recent_online(self, n: int) -> Batch:
        return self.replay.recent_online(n)

    def state_dict(self) -> dict:
        return {"replay": self.replay.state_dict(), "ratio": self.ratio.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.replay.load_state_dict(state["replay"])
        self.ratio.load_state_dict(state["ratio"])


def make_sampler(sampling: str, offline: Transitions | None, obs_dim: int, act_dim: int, capacity: int,
                 settings: dict, device):
    if sampling == "online_only":
        return OnlineOnly(obs_dim, act_dim, capacity, device)
    if sampling == "uniform":
        return Uniform(offline, capacity, device)
    return Balanced(offline, capacity, settings, device, alternative=sampling == "balanced_alt")
