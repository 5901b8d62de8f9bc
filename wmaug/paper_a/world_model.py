"""Paper A's world model: a VAE over states with a transition model in its latent space.

Numbers are from docs/protocol.md, section "Paper A"; the architecture and loss follow the
paper's "World Model" section (encoder, decoder, transition model; ELBO + two reconstruction losses).

    q(z | s) = N(mu(s), diag(exp(logvar(s))))        encoder
    s_hat    = D(z)                                   decoder
    z'_pred  = z + T(z, a)      (paper text)          transition; residual=False: z'_pred = T(z, a) (authors' code)

    L = MSE(D(z), s) + beta * KL(q(z|s) || N(0, I))                    ELBO, beta = 1 / (batches per epoch)
        + w_next   * MSE(D(z'_pred), s')                               w_next = 10
        + w_latent * MSE(z'_pred, sg(z'_enc)),  z'_enc ~ q(z | s')     w_latent = 1

Everything inside the model works on z-scored states; the public sampling API (`sample_next`,
`predict_next`) takes and returns raw states.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from wmaug.data.transitions import Transitions
from wmaug.core.io import torch_save
from wmaug.core.nets import EnsembleMLP, make_adam, mlp

log = logging.getLogger(__name__)


LATENT_TARGETS = ("stop_gradient", "end_to_end")


@dataclass
class WorldModelConfig:
    """Defaults are the paper text's; `authors_code()` gives the authors' implementation's choices."""

    hidden: int = 512  # paper: "four layer MLP, hidden layer size 512"
    layers: int = 3  # hidden layers per MLP; four layers = 3 hidden + the output layer
    latent_dim: int = 12  # docs/protocol.md (authors' code); the paper text gives none
    transition_hidden: tuple[int, ...] | None = None  # None -> (hidden,) * layers, like encoder/decoder
    residual: bool = True  # paper text: T predicts dz, z' = z + dz; authors' code: z' = T(z, a)
    kl_weight: float | None = None  # None -> 1 / (batches per epoch) (docs/protocol.md)
    next_state_weight: float = 10.0
    latent_weight: float = 1.0
    # the latent loss's target z' ~ q(z | s'): "end_to_end" (the paper: the model is "trained end-to-end"; 7-10%
    # lower held-out error, benchmarks/parity/README.md) or "stop_gradient" (no gradient into the encoder through
    # the target, the harness's choice before 2026-12-07); docs/protocol.md
    latent_target: str = "end_to_end"
    lr: float = 1e-4
    batch_size: int = 4096
    epochs: int = 300
    std_eps: float = 1e-5  # z-scoring divides by std + eps

    def __post_init__(self) -> None:
        if self.transition_hidden is not None:
            # lists come back from saved configs; keep one type so configs compare equal
            self.transition_hidden = tuple(int(h) for h in self.transition_hidden)
        if self.hidden <= 0 or self.layers <= 0 or self.latent_dim <= 0:
            raise ValueError(f"WorldModelConfig: hidden, layers and latent_dim must be positive, got {self}")
        if self.batch_size <= 0 or self.epochs < 0:
            raise ValueError(f"WorldModelConfig: batch_size must be positive and epochs >= 0, got {self}")
        if self.latent_target not in LATENT_TARGETS:
            raise ValueError(f"WorldModelConfig: latent_target must be one of {LATENT_TARGETS}, got "
                             f"{self.latent_target!r}")

    @classmethod
    def authors_code(cls, **overrides) -> "WorldModelConfig":
        """The authors' implementation: 500 hidden, transition head 300-600-300, predicts z' directly."""
        return cls(**{"hidden": 500, "transition_hidden": (300, 600, 300), "residual": False, **overrides})

    @property
    def transition_layers(self) -> tuple[int, ...]:
        return self.transition_hidden if self.transition_hidden is not None else (self.hidden,) * self.layers


class LatentDynamics(nn.Module):
    """The rollout building blocks (z-scored space), shared by one world model and a group of them."""

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / (self.obs_std + self.cfg.std_eps)

    def denormalize(self, obs_n: torch.Tensor) -> torch.Tensor:
        return obs_n * (self.obs_std + self.cfg.std_eps) + self.obs_mean

    def encode(self, obs_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z-scored state -> (mu, logvar) of q(z | s)."""
        mu, logvar = self.encoder(obs_n).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latent -> z-scored state."""
        return self.decoder(z)

    def step_latent(self, z: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        out = self.transition(torch.cat([z, act], dim=-1))
        return z + out if self.cfg.residual else out


class WorldModel(LatentDynamics):
    def __init__(self, obs_dim: int, act_dim: int, cfg: WorldModelConfig, obs_mean, obs_std):
        """obs_mean, obs_std: the training states' statistics (numpy or tensors); obs_std WITHOUT the eps,
        which is added here (cfg.std_eps)."""
        super().__init__()
        self.obs_dim, self.act_dim, self.cfg = obs_dim, act_dim, cfg
        hidden = [cfg.hidden] * cfg.layers
        self.encoder = mlp(obs_dim, hidden, 2 * cfg.latent_dim)  # -> (mu, logvar)
        self.decoder = mlp(cfg.latent_dim, hidden, obs_dim)
        self.transition = mlp(cfg.latent_dim + act_dim, list(cfg.transition_layers), cfg.latent_dim)
        mean = torch.as_tensor(np.asarray(obs_mean, dtype=np.float32) if not torch.is_tensor(obs_mean) else obs_mean)
        std = torch.as_tensor(np.asarray(obs_std, dtype=np.float32) if not torch.is_tensor(obs_std) else obs_std)
        if mean.shape != (obs_dim,) or std.shape != (obs_dim,):
            raise ValueError(f"WorldModel: obs_mean/obs_std must have shape ({obs_dim},), got {mean.shape}, {std.shape}")
        # buffers, so they travel with state_dict and .to(device)
        self.register_buffer("obs_mean", mean.float().clone())
        self.register_buffer("obs_std", std.float().clone())

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None):
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def _as_tensor(self, x) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32, device=self.obs_mean.device)

    # -- training objective ---------------------------------------------------------------------------
    def loss(self, obs, act, next_obs, kl_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
        """The paper's objective on a batch of raw-scale (s, a, s'). Returns (loss, metrics)."""
        s, s_next = self.normalize(self._as_tensor(obs)), self.normalize(self._as_tensor(next_obs))
        act = self._as_tensor(act)

        mu, logvar = self.encode(s)
        z = self.reparameterize(mu, logvar)
        # ELBO: Gaussian decoder -> MSE averaged over elements; KL(N(mu, sigma^2) || N(0, I)) in closed form,
        # summed over latent dims and averaged over the batch. A KL weight of 1/(batches per epoch) is the
        # widely copied PyTorch-VAE convention (kld_weight "M_N" = batch / N with exactly these two
        # reductions), so we take its reductions too; the paper does not state them.
        recon = F.mse_loss(self.decode(z), s)
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean()

        z_next_pred = self.step_latent(z, act)
        next_state = F.mse_loss(self.decode(z_next_pred), s_next)
        # Target: a SAMPLE of q(z | s'), as the paper's text says ("the one sampled by the encoder using the
        # actual next state"). End to end (the default) its gradient also reaches the encoder; with the
        # stop-gradient the sample is an unbiased, noisier stand-in for the mean:
        # E||z'_pred - (mu' + sigma' eps)||^2 = ||z'_pred - mu'||^2 + const, so the transition's expected
        # gradient is the same either way.
        with torch.set_grad_enabled(self.cfg.latent_target == "end_to_end" and torch.is_grad_enabled()):
            mu_n, logvar_n = self.encode(s_next)
            z_next_enc = self.reparameterize(mu_n, logvar_n)
        latent = F.mse_loss(z_next_pred, z_next_enc)

        total = (recon + kl_weight * kl) + self.cfg.next_state_weight * next_state + self.cfg.latent_weight * latent
        metrics = {
            "loss": total.item(),
            "recon": recon.item(),
            "kl": kl.item(),
            "next_state": next_state.item(),
            "latent": latent.item(),
        }
        return total, metrics

    # -- sampling API (raw scale) ---------------------------------------------------------------------
    @torch.no_grad()
    def sample_next(
        self,
        obs,
        act,
        steps: int = 1,
        actions_after=None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """A stochastic next state: z ~ q(z | s), `steps` latent transitions, decode. Raw scale, (B, obs_dim).

        steps > 1 rolls the latent forward without decoding in between. Actions: `act` is used for the
        first step; `actions_after` gives the rest, either (steps - 1, B, act_dim) (the actions after `act`)
        or (steps, B, act_dim) (the whole sequence; its first row must equal `act`). Without
        `actions_after`, `act` is repeated. Noise comes from `generator` or torch's global RNG.
        """
        if steps < 1:
            raise ValueError(f"sample_next: steps must be >= 1, got {steps}")
        obs, act = self._as_tensor(obs), self._as_tensor(act)
        seq = self._action_sequence(act, steps, actions_after)
        mu, logvar = self.encode(self.normalize(obs))
        z = self.reparameterize(mu, logvar, generator)
        for a in seq:
            z = self.step_latent(z, a)
        return self.denormalize(self.decode(z))

    def _action_sequence(self, act: torch.Tensor, steps: int, actions_after) -> list[torch.Tensor]:
        if actions_after is None:
            return [act] * steps
        after = self._as_tensor(actions_after)
        if after.dim() != 3 or after.shape[1:] != act.shape:
            raise ValueError(f"sample_next: actions_after must be (steps[-1], {tuple(act.shape)}), got {tuple(after.shape)}")
        if after.shape[0] == steps - 1:
            return [act, *after.unbind(0)]
        if after.shape[0] == steps:
            if not torch.equal(after[0], act):
                raise ValueError("sample_next: actions_after has `steps` rows but its first row is not `act`")
            return list(after.unbind(0))
        raise ValueError(f"sample_next: actions_after has {after.shape[0]} steps, need {steps - 1} or {steps}")

    @torch.no_grad()
    def predict_next(self, obs, act) -> torch.Tensor:
        """The deterministic one-step prediction (z = mu), raw scale: for measuring model error."""
        mu, _ = self.encode(self.normalize(self._as_tensor(obs)))
        return self.denormalize(self.decode(self.step_latent(mu, self._as_tensor(act))))


class WorldModelGroup(LatentDynamics):
    """The world models of K seeds trained as one batched agent, as one model: each network's K weight sets
    stacked (nets.EnsembleMLP), so one batched pass rolls every seed's rows through its own model, on (K, N, .)
    tensors. Frozen: augmentation only samples. Latent noise comes from one generator per member, each drawing
    what its model alone draws."""

    def __init__(self, models: list[WorldModel], where: list[str] | None = None):
        super().__init__()
        first = models[0]
        for i, m in enumerate(models[1:], 1):
            if (m.obs_dim, m.act_dim, m.cfg) != (first.obs_dim, first.act_dim, first.cfg):
                names = where or [f"model {j}" for j in range(len(models))]
                raise ValueError(f"world models of one seed group differ: {names[i]} has {m.obs_dim}/{m.act_dim} "
                                 f"dims and {m.cfg}, {names[0]} {first.obs_dim}/{first.act_dim} and {first.cfg}")
        self.obs_dim, self.act_dim, self.cfg = first.obs_dim, first.act_dim, first.cfg
        self.encoder = EnsembleMLP.stacked([m.encoder for m in models])
        self.decoder = EnsembleMLP.stacked([m.decoder for m in models])
        self.transition = EnsembleMLP.stacked([m.transition for m in models])
        self.register_buffer("obs_mean", torch.stack([m.obs_mean for m in models])[:, None])  # (K, 1, obs_dim)
        self.register_buffer("obs_std", torch.stack([m.obs_std for m in models])[:, None])
        rewards = [getattr(m, "reward_model", None) for m in models]
        self.reward_model = None if any(r is None for r in rewards) else RewardModel.stacked(rewards)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generators: list[torch.Generator | None]):
        eps = torch.stack([torch.randn(mu.shape[1:], generator=g, device=mu.device, dtype=mu.dtype) for g in generators])
        return mu + torch.exp(0.5 * logvar) * eps


class RewardModel(nn.Module):
    """r_hat(s, a, s') for the k-step rollouts (the paper's one-step augmentation keeps the data's reward and
    needs none). Inputs z-scored with the world model's statistics; trained apart from the VAE, so adding it
    changed no world model."""

    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), net: nn.Module | None = None):
        super().__init__()
        self.net = mlp(2 * obs_dim + act_dim, list(hidden), 1) if net is None else net

    def forward(self, obs_n: torch.Tensor, act: torch.Tensor, next_obs_n: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs_n, act, next_obs_n], dim=-1)).squeeze(-1)

    @staticmethod
    def stacked(models: list["RewardModel"]) -> "RewardModel":
        """K reward models as one on (K, N, .) inputs (a WorldModelGroup's)."""
        return RewardModel(0, 0, net=EnsembleMLP.stacked([m.net for m in models]))


def train_reward_model(transitions: Transitions, model: "WorldModel", seed: int, epochs: int,
                       batch_size: int = 256, lr: float = 1e-3, hidden=(256, 256)) -> tuple[RewardModel, float]:
    """Fits r(s, a, s') on every row of `transitions` (terminal ones too: their reward is real).
    Returns (model in eval mode, its final training MSE)."""
    device = model.obs_mean.device
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.random.fork_rng(devices=[]):  # its init must not move the caller's global stream
        torch.manual_seed(seed + 1)
        reward = RewardModel(model.obs_dim, model.act_dim, hidden).to(device)
    opt = make_adam(reward.parameters(), lr)
    with torch.no_grad():
        s = model.normalize(model._as_tensor(transitions.observations))
        s2 = model.normalize(model._as_tensor(transitions.next_observations))
    a, r = model._as_tensor(transitions.actions), model._as_tensor(transitions.rewards)
    n = len(transitions)
    mse = float("nan")
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        for b in range(0, n, batch_size):
            idx = perm[b:b + batch_size]
            loss = F.mse_loss(reward(s[idx], a[idx], s2[idx]), r[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        mse = F.mse_loss(reward(s, a, s2), r).item()
    return reward.eval(), mse


# -- training ---------------------------------------------------------------------------------------------
def _non_terminal(transitions: Transitions) -> np.ndarray:
    """Rows that are neither terminal nor time-outs: their s' is a real successor that T can learn."""
    return (transitions.terminals < 0.5) & (transitions.timeouts < 0.5)


def train_world_model(
    transitions: Transitions,
    cfg: WorldModelConfig,
    seed: int,
    device: str | torch.device = "cpu",
    progress: bool = False,
    log_every: int | None = None,
    after_epoch=None,
) -> tuple[WorldModel, list[dict]]:
    """Train on `transitions` minus terminal/timeout rows (docs/protocol.md). Returns (model, per-epoch metrics).
    `after_epoch(epoch, model)`, when given, is called after every epoch (the model in train mode; it draws
    nothing from the training streams), e.g. to measure held-out error as training goes on.

    The model's `train_info` attribute records what was used (n_train, rows dropped, kl_weight, ...).
    """
    keep = _non_terminal(transitions)
    n = int(keep.sum())
    if n == 0:
        raise ValueError(
            f"train_world_model: all {len(transitions)} transitions are terminal or timeouts; nothing to train on"
        )
    data = transitions.take(np.flatnonzero(keep))
    # z-scoring statistics of the training states (float64 for the sums)
    obs_mean = data.observations.mean(0, dtype=np.float64).astype(np.float32)
    obs_std = data.observations.std(0, dtype=np.float64).astype(np.float32)
    # A dim constant over the sample (Ant's contact forces in a small one) gets scale 1, as scikit-learn's
    # StandardScaler does: dividing by std + 1e-5 = 1e-5 would blow any other value, e.g. of a terminal row the
    # model never saw, up by 1e5 and overflow the encoder.
    obs_std = np.where(obs_std < 1e-6, np.float32(1.0), obs_std).astype(np.float32)

    torch.manual_seed(seed)
    model = WorldModel(data.obs_dim, data.act_dim, cfg, obs_mean, obs_std).to(device)
    opt = make_adam(model.parameters(), cfg.lr)
    gen = torch.Generator().manual_seed(seed)  # epoch shuffles

    obs = torch.as_tensor(data.observations, device=device)
    act = torch.as_tensor(data.actions, device=device)
    next_obs = torch.as_tensor(data.next_observations, device=device)

    # the last, partial batch is kept, so every row is seen once per epoch
    batches = math.ceil(n / cfg.batch_size)
    kl_weight = cfg.kl_weight if cfg.kl_weight is not None else 1.0 / batches
    model.train_info = {
        "n_total": len(transitions),
        "n_train": n,
        "n_dropped_terminal": int((transitions.terminals >= 0.5).sum()),
        "n_dropped_timeout": int((transitions.timeouts >= 0.5).sum()),
        "batches_per_epoch": batches,
        "kl_weight": kl_weight,
        "updates": batches * cfg.epochs,
    }
    log.info("world model: training on %s", model.train_info)

    epochs = range(1, cfg.epochs + 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        epochs = bar = tqdm(epochs, desc="world model", unit="epoch")
    history: list[dict] = []
    model.train()
    for epoch in epochs:
        perm = torch.randperm(n, generator=gen).to(device)
        sums: dict[str, float] = {}
        for b in range(batches):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            loss, metrics = model.loss(obs[idx], act[idx], next_obs[idx], kl_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
        row = {"epoch": epoch, **{k: v / batches for k, v in sums.items()}}
        history.append(row)
        if bar is not None:
            bar.set_postfix(loss=f"{row['loss']:.4f}", next_state=f"{row['next_state']:.4f}")
        if log_every and epoch % log_every == 0:
            log.info("world model epoch %d: %s", epoch, {k: round(v, 5) for k, v in row.items() if k != "epoch"})
        if after_epoch is not None and after_epoch(epoch, model):
            break  # the caller's stopping rule (early stopping: `train_converged_world_model`)
    model.eval()
    return model, history


def train_converged_world_model(transitions: Transitions, cfg: WorldModelConfig, seed: int, holdout_share: float,
                                patience: int, max_epochs: int, check_every: int, device: str | torch.device = "cpu",
                                progress: bool = False) -> tuple[WorldModel, list[dict], dict]:
    """The converged-model control: train on a seeded (1 - holdout_share) of the sample, evaluate the deterministic
    one-step error on the rest every `check_every` epochs, stop once it has not fallen for `patience` epochs (or at
    `max_epochs`) and keep the best evaluation's weights. Returns (model, history, record): the record holds the
    epochs run, the best epoch and its held-out error against copying the state (z-scored with the model's
    statistics), and why training stopped."""
    import copy

    if not 0 < holdout_share < 0.5 or patience < 1 or max_epochs < 1 or check_every < 1:
        raise ValueError(f"early stopping: holdout_share in (0, 0.5), patience, max_epochs and check_every >= 1; got "
                         f"{holdout_share}, {patience}, {max_epochs}, {check_every}")
    order = np.random.default_rng([seed, 0xC0DE]).permutation(len(transitions))
    n_holdout = max(1, round(holdout_share * len(transitions)))
    held_out, train = transitions.take(np.sort(order[:n_holdout])), transitions.take(np.sort(order[n_holdout:]))
    best = {"epoch": 0, "heldout_mse_normalized": float("inf"), "state": None}
    checks: list[dict] = []

    def after_epoch(epoch: int, model: WorldModel) -> bool:
        if epoch % check_every and epoch != max_epochs:
            return False
        model.eval()
        err = one_step_error(model, held_out)
        model.train()
        checks.append({"epoch": epoch, "heldout_mse_normalized": err["model_mse_normalized"],
                       "copy_mse_normalized": err["copy_mse_normalized"]})
        if err["model_mse_normalized"] < best["heldout_mse_normalized"]:
            best.update(epoch=epoch, heldout_mse_normalized=err["model_mse_normalized"],
                        copy_mse_normalized=err["copy_mse_normalized"], state=copy.deepcopy(model.state_dict()))
        return epoch - best["epoch"] >= patience

    model, history = train_world_model(train, replace(cfg, epochs=max_epochs), seed, device, progress,
                                       after_epoch=after_epoch)
    model.load_state_dict(best["state"])
    model.eval()
    epochs = len(history)
    record = {"epochs": epochs, "best_epoch": best["epoch"], "max_epochs": max_epochs, "patience": patience,
              "check_every": check_every, "holdout_share": holdout_share, "n_holdout": n_holdout,
              "heldout_mse_normalized": best["heldout_mse_normalized"],
              "copy_mse_normalized": best["copy_mse_normalized"],
              "ratio_normalized": best["heldout_mse_normalized"] / best["copy_mse_normalized"],
              "stopped": "max_epochs" if epochs >= max_epochs and epochs - best["epoch"] < patience else "patience",
              "checks": checks}
    model.train_info = {**model.train_info, "early_stopping": {k: v for k, v in record.items() if k != "checks"}}
    return model, history, record


@torch.no_grad()
def one_step_error(model: WorldModel, transitions: Transitions, chunk: int = 65536) -> dict:
    """Deterministic one-step error of `model` on `transitions` (terminal/timeout rows excluded).

    model_mse / copy_mse / per_dim_model_mse: on RAW states, MSE averaged over rows and state dims;
    copy_mse is the copy-the-state baseline MSE(s, s'); ratio = model_mse / copy_mse.
    The *_normalized keys are the same on states z-scored with the model's (training data's) statistics,
    where each dim weighs the same (raw MSE is dominated by the large-scale velocity dims).
    """
    keep = np.flatnonzero(_non_terminal(transitions))
    if len(keep) == 0:
        raise ValueError("one_step_error: no non-terminal, non-timeout transitions to evaluate")
    data = transitions.take(keep)
    sq_model = torch.zeros(model.obs_dim, dtype=torch.float64)
    sq_copy = torch.zeros(model.obs_dim, dtype=torch.float64)
    sq_model_n = torch.zeros(model.obs_dim, dtype=torch.float64)
    sq_copy_n = torch.zeros(model.obs_dim, dtype=torch.float64)
    scale = (model.obs_std + model.cfg.std_eps).cpu().double()
    for start in range(0, len(data), chunk):
        s = model._as_tensor(data.observations[start : start + chunk])
        a = model._as_tensor(data.actions[start : start + chunk])
        s_next = model._as_tensor(data.next_observations[start : start + chunk])
        err_model = (model.predict_next(s, a) - s_next).cpu().double()
        err_copy = (s - s_next).cpu().double()
        sq_model += err_model.pow(2).sum(0)
        sq_copy += err_copy.pow(2).sum(0)
        sq_model_n += (err_model / scale).pow(2).sum(0)
        sq_copy_n += (err_copy / scale).pow(2).sum(0)
    n = len(data)
    per_dim = sq_model / n
    model_mse, copy_mse = per_dim.mean().item(), (sq_copy / n).mean().item()
    model_mse_n, copy_mse_n = (sq_model_n / n).mean().item(), (sq_copy_n / n).mean().item()
    return {
        "n": n,
        "model_mse": model_mse,
        "copy_mse": copy_mse,
        "ratio": model_mse / copy_mse if copy_mse > 0 else float("inf"),
        "per_dim_model_mse": per_dim.tolist(),
        "model_mse_normalized": model_mse_n,
        "copy_mse_normalized": copy_mse_n,
        "ratio_normalized": model_mse_n / copy_mse_n if copy_mse_n > 0 else float("inf"),
    }


# -- persistence ------------------------------------------------------------------------------------------
def save_world_model(model: WorldModel, path: str | Path, extra: dict | None = None,
                     reward_model: RewardModel | None = None) -> None:
    """Atomic torch.save. `extra` must hold only what torch.load(weights_only=True)
    accepts: Python scalars, strings, lists, dicts, tensors (no numpy arrays)."""
    payload = {
        "config": asdict(model.cfg),
        "obs_dim": model.obs_dim,
        "act_dim": model.act_dim,
        # a loaded model carries its reward model as a submodule: that is stored on its own, below
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith("reward_model.")},
        "extra": extra or {},
    }
    if reward_model is not None:
        payload["reward_model"] = {k: v.detach().cpu() for k, v in reward_model.state_dict().items()}
        payload["reward_hidden"] = [m.out_features for m in reward_model.net if isinstance(m, nn.Linear)][:-1]
    torch_save(payload, path)


def load_world_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[WorldModel, dict]:
    """Returns (model in eval mode on `device`, extra). Errors name the file."""
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"world model checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
        cfg = WorldModelConfig(**payload["config"])
        obs_dim, act_dim = int(payload["obs_dim"]), int(payload["act_dim"])
        model = WorldModel(obs_dim, act_dim, cfg, np.zeros(obs_dim), np.ones(obs_dim))
        model.load_state_dict(payload["state_dict"])
        model.reward_model = None  # set below when the file has one (k-step rollouts need it)
        if "reward_model" in payload:
            model.reward_model = RewardModel(obs_dim, act_dim, tuple(payload["reward_hidden"]))
            model.reward_model.load_state_dict(payload["reward_model"])
            model.reward_model.eval()
    except Exception as e:  # unpickling, missing keys, shape mismatch: all mean a bad checkpoint
        raise RuntimeError(f"could not load world model checkpoint {path}: {type(e).__name__}: {e}") from e
    return model.to(device).eval(), payload.get("extra", {})
