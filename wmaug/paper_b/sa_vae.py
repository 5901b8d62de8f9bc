"""Paper B's Fig 1a: a VAE density model of (s, a), to show online samples are off the offline distribution.

Lee et al. 2021, sec. 3.1 and appendix C: a VAE (Kingma & Welling 2014) trained with Adam on the
training split of halfcheetah-random's concatenated (s, a); the log-likelihood of online samples from a CQL
agent is compared with that of the held-out validation split, each estimated with the importance-weighted
estimator of Burda et al. 2016. The paper gives neither the architecture nor the likelihood model; ours:

    x = standardise([s, a])                       mean / std of the TRAINING split
    q(z | x) = N(mu(x), diag(exp(logvar(x))))     encoder, MLP
    p(z)     = N(0, I)
    p(x | z) = N(m(z), diag(sigma^2))             decoder mean an MLP; log sigma one learned number per dim

    ELBO(x)      = E_q[log p(x | z)] - KL(q(z | x) || p(z))                      (training: maximise, beta = 1)
    log p_k(x)   = logsumexp_j [log p(x | z_j) + log p(z_j) - log q(z_j | x)] - log k,   z_j ~ q(z | x)

E[log p_k(x)] <= log p(x) and grows with k towards it (Burda et al. 2016, theorem 1); k = 1 is the ELBO.

Likelihoods are densities of the STANDARDISED x. Standardising is x -> (x - m) / s, so
log p_raw(x) = log p_std(x) - sum(log s): the same constant for every x, offline or online. Fig 1a
compares the two sets, which the constant does not change; `log_jacobian` gives it for raw-space values.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmaug.core.io import torch_load, torch_save
from wmaug.core.nets import make_adam, mlp

LOG_2PI = math.log(2 * math.pi)
# Floor / ceiling on the decoder's log sigma (standardised units): a dimension that is (nearly) constant in the
# training split would otherwise drive sigma to 0 and its likelihood to +inf.
DEC_LOG_STD_MIN, DEC_LOG_STD_MAX = math.log(1e-3), math.log(10.0)
STD_FLOOR = 1e-6  # a training column with a smaller std is left unscaled (std 1)


def _gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(2 log_std))), summed over the last axis."""
    return (-0.5 * ((x - mean) * torch.exp(-log_std)).pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)


class SAVAE(nn.Module):
    def __init__(self, x_dim: int, hidden=(256, 256), latent: int = 16,
                 x_mean: np.ndarray | None = None, x_std: np.ndarray | None = None):
        super().__init__()
        self.x_dim, self.hidden, self.latent = x_dim, tuple(hidden), latent
        self.encoder = mlp(x_dim, hidden, 2 * latent)
        self.decoder = mlp(latent, hidden, x_dim)
        self.dec_log_std = nn.Parameter(torch.zeros(x_dim))
        mean = np.zeros(x_dim) if x_mean is None else x_mean
        std = np.ones(x_dim) if x_std is None else x_std
        self.register_buffer("x_mean", torch.as_tensor(mean, dtype=torch.float32).reshape(x_dim))
        self.register_buffer("x_std", torch.as_tensor(std, dtype=torch.float32).reshape(x_dim))

    def standardise(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32, device=self.x_mean.device)
        return (x - self.x_mean) / self.x_std

    def log_jacobian(self) -> float:
        """Add to a standardised-space log-likelihood to get the raw-space one: -sum(log s)."""
        return -float(torch.log(self.x_std.double()).sum())

    def encode(self, x_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x_s).chunk(2, dim=-1)
        return mu, logvar

    def log_px_given_z(self, x_s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        log_std = self.dec_log_std.clamp(DEC_LOG_STD_MIN, DEC_LOG_STD_MAX)
        return _gaussian_log_prob(x_s, self.decoder(z), log_std)

    def elbo(self, x_s: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sample ELBO of standardised x: one reparameterised z for the reconstruction term, KL in closed form."""
        mu, logvar = self.encode(x_s)
        eps = _randn(mu.shape, generator, mu)
        z = mu + torch.exp(0.5 * logvar) * eps
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)  # KL(N(mu, sigma^2) || N(0, I))
        return self.log_px_given_z(x_s, z) - kl


def _randn(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Normal noise from `generator` (drawn on its device) or torch's global RNG, on `like`'s device."""
    if generator is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    return torch.randn(shape, generator=generator, device=generator.device).to(like.device, like.dtype)


def train_sa_vae(
    x_train: np.ndarray,
    epochs: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    *,
    hidden=(256, 256),
    latent: int = 16,
    x_val: np.ndarray | None = None,
) -> tuple[SAVAE, dict]:
    """Fit by maximising the ELBO with Adam; standardisation statistics from x_train (float64 sums).

    Returns (model in eval mode, stats): stats["history"] holds per-epoch mean train ELBO (and the held-out
    ELBO when x_val is given, one fixed noise draw per epoch); plus n_train, updates, x_mean, x_std lists.
    """
    x_train = np.asarray(x_train, dtype=np.float32)
    if x_train.ndim != 2 or len(x_train) == 0:
        raise ValueError(f"train_sa_vae: need a non-empty (N, x_dim) array, got shape {x_train.shape}")
    mean = x_train.mean(0, dtype=np.float64)
    std = x_train.std(0, dtype=np.float64)
    std = np.where(std > STD_FLOOR, std, 1.0)

    torch.manual_seed(seed)
    model = SAVAE(x_train.shape[1], hidden, latent, mean, std).to(device)
    opt = make_adam(model.parameters(), lr)
    gen = torch.Generator().manual_seed(seed)  # epoch shuffles
    x = model.standardise(x_train)
    xv = None if x_val is None else model.standardise(np.asarray(x_val, dtype=np.float32))
    n = len(x)
    batches = math.ceil(n / batch_size)  # the last, partial batch is kept
    history = []
    model.train()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen).to(x.device)
        total = 0.0
        for b in range(batches):
            xb = x[perm[b * batch_size : (b + 1) * batch_size]]
            loss = -model.elbo(xb).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += -loss.item() * len(xb)
        row = {"epoch": epoch, "elbo": total / n}
        if xv is not None:
            with torch.no_grad():
                row["val_elbo"] = model.elbo(xv, torch.Generator().manual_seed(seed)).mean().item()
        history.append(row)
    model.eval()
    stats = {"history": history, "n_train": n, "updates": batches * epochs,
             "x_mean": mean.tolist(), "x_std": std.tolist()}
    return model, stats


@torch.no_grad()
def importance_weighted_log_likelihood(
    model: SAVAE,
    x: np.ndarray,
    k: int = 100,
    generator: torch.Generator | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """Per-sample log p(x) estimate with k importance samples from q(z | x) (Burda et al. 2016), float64 (N,).

    x is RAW (s, a); the density is of the standardised x (see the module docstring). k = 1 is a one-sample
    ELBO estimate; the estimate's mean increases with k towards log p(x).
    """
    if k < 1:
        raise ValueError(f"importance_weighted_log_likelihood: k must be >= 1, got {k}")
    x_s = model.standardise(np.asarray(x, dtype=np.float32))
    out = []
    for start in range(0, len(x_s), chunk):
        xb = x_s[start : start + chunk]
        mu, logvar = model.encode(xb)
        log_std = 0.5 * logvar
        z = mu + torch.exp(log_std) * _randn((k, *mu.shape), generator, mu)  # (k, B, latent)
        log_q = _gaussian_log_prob(z, mu, log_std)
        log_prior = _gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))
        log_w = model.log_px_given_z(xb.expand(k, -1, -1), z) + log_prior - log_q  # (k, B)
        out.append((torch.logsumexp(log_w.double(), dim=0) - math.log(k)).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


# -- persistence ------------------------------------------------------------------------------------------
def save_sa_vae(model: SAVAE, path: str | Path, extra: dict | None = None) -> None:
    """Atomic save; `extra` must hold only what torch.load(weights_only=True) accepts (no numpy arrays)."""
    torch_save({"x_dim": model.x_dim, "hidden": list(model.hidden), "latent": model.latent,
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "extra": extra or {}}, path)


def load_sa_vae(path: str | Path, device: str | torch.device = "cpu") -> tuple[SAVAE, dict]:
    """Returns (model in eval mode on `device`, extra). Errors name the file."""
    payload = torch_load(path, "SA-VAE checkpoint")
    try:
        model = SAVAE(int(payload["x_dim"]), tuple(payload["hidden"]), int(payload["latent"]))
        model.load_state_dict(payload["state_dict"])
    except Exception as e:  # missing keys, shape mismatch
        raise RuntimeError(f"SA-VAE checkpoint {path} does not fit: {type(e).__name__}: {e}") from e
    return model.to(device).eval(), payload.get("extra", {})
