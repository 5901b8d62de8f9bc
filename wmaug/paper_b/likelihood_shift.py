"""Paper B's Fig 1a: the distribution shift between offline and online (s, a).

A VAE over (s, a) is trained on 90% of the dataset (halfcheetah-random in the paper); the importance-weighted
log-likelihood of the held-out 10% is compared with that of (s, a) the first pre-trained CQL agent of block 0
collects online (its stochastic policy, as during fine-tuning), as many samples of each.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from wmaug.core import config as C
from wmaug.data.d4rl_protocol import rollout_episodes
from wmaug.core.io import write_text
from wmaug.paper_b.sa_vae import importance_weighted_log_likelihood, train_sa_vae
from wmaug.paper_b.pretrain import load_block, load_full_dataset

log = logging.getLogger("wmaug.analysis")

MAX_SAMPLES = 10_000  # per source; plenty for a histogram, keeps the k=100 estimate to seconds


def likelihood_shift(cfg: dict, env: str, dataset: str, agents_path: str, out: str | Path, device: torch.device,
                     seed: int = 0) -> pd.DataFrame:
    data, meta = load_full_dataset(C.full_dataset_source(cfg, env, dataset), env)
    x = np.concatenate([data.observations, data.actions], axis=1)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, len(x) // 10)
    x_val, x_train = x[order[:n_val]], x[order[n_val:]]
    model, stats = train_sa_vae(x_train, epochs=cfg["algorithms"]["analysis"]["sa_vae_epochs"], seed=seed, device=device)

    from wmaug.algos import build_agent
    from wmaug.algos.cql import CQLConfig

    block = load_block(agents_path, members=1)
    settings = cfg["algorithms"]["cql"]
    agent = build_agent("cql", data.obs_dim, data.act_dim, CQLConfig(hidden=tuple(settings["hidden"])), 1, device)
    agent.actor.load_state_dict(block["state"]["actor"])
    torch.manual_seed(seed)

    def policy(obs: np.ndarray) -> np.ndarray:
        return agent.act_members(torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0))[0, 0].cpu().numpy()

    n = min(len(x_val), MAX_SAMPLES)
    episodes = rollout_episodes(env, policy, n, seed=seed)
    x_online = np.concatenate([np.concatenate([e["observations"][:-1], e["actions"]], axis=1) for e in episodes])
    x_offline = x_val[:n]
    g = torch.Generator(device=device).manual_seed(seed)
    ll = {name: importance_weighted_log_likelihood(model, xs, k=100, generator=g)
          for name, xs in (("offline", x_offline), ("online", x_online))}
    table = pd.concat([pd.DataFrame({"source": name, "log_likelihood": v}) for name, v in ll.items()], ignore_index=True)
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    write_text(out, buf.getvalue())
    log.info("Fig 1a on %s-%s: mean log-likelihood offline (held out) %.1f, online (CQL agent) %.1f; "
             "VAE trained %d epochs on %d samples", env, dataset, ll["offline"].mean(), ll["online"].mean(),
             len(stats["history"]), len(x_train))
    return table
