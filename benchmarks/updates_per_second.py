"""Updates per second of the harness's learners, beside a plain CleanRL-style TD3 loop measured in the same run.

    python benchmarks/updates_per_second.py [--seconds 5] [--threads 1] [--out benchmarks/results/ups.json]

Absolute rates depend on the machine and its load; the ratio column (ours / plain reference) is what to compare.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from wmaug.algos.sac import SAC, SACConfig
from wmaug.algos.td3 import TD3, TD3Config
from wmaug.data.buffer import ReplayBuffer
from wmaug.data.transitions import Transitions
from wmaug.models.world_model import WorldModel, WorldModelConfig
from wmaug.provenance import package_versions

from timing import rate  # benchmarks/ is the script's own folder, first on sys.path

OBS, ACT, BATCH = 17, 6, 256  # halfcheetah / walker2d shapes, the papers' batch


class PlainTD3BC:
    """The reference: TD3+BC as single-file implementations write it (two separate critic MLPs)."""

    def __init__(self):
        def q():
            return nn.Sequential(nn.Linear(OBS + ACT, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))

        self.actor = nn.Sequential(nn.Linear(OBS, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, ACT), nn.Tanh())
        self.q1, self.q2 = q(), q()
        self.actor_t, self.q1_t, self.q2_t = copy.deepcopy(self.actor), copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.a_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4)
        self.q_opt = torch.optim.Adam(list(self.q1.parameters()) + list(self.q2.parameters()), lr=3e-4)
        self.it = 0

    def update(self, b):
        self.it += 1
        with torch.no_grad():
            noise = (torch.randn_like(b.actions) * 0.2).clamp(-0.5, 0.5)
            a2 = (self.actor_t(b.next_observations) + noise).clamp(-1, 1)
            x2 = torch.cat([b.next_observations, a2], 1)
            y = b.rewards + 0.99 * (1 - b.terminals) * torch.min(self.q1_t(x2), self.q2_t(x2)).squeeze(1)
        x = torch.cat([b.observations, b.actions], 1)
        loss = F.mse_loss(self.q1(x).squeeze(1), y) + F.mse_loss(self.q2(x).squeeze(1), y)
        self.q_opt.zero_grad()
        loss.backward()
        self.q_opt.step()
        if self.it % 2 == 0:
            pi = self.actor(b.observations)
            q = self.q1(torch.cat([b.observations, pi], 1))
            a_loss = -2.5 / q.abs().mean().detach() * q.mean() + F.mse_loss(pi, b.actions)
            self.a_opt.zero_grad()
            a_loss.backward()
            self.a_opt.step()
            with torch.no_grad():
                for net, tgt in ((self.actor, self.actor_t), (self.q1, self.q1_t), (self.q2, self.q2_t)):
                    for p, pt in zip(net.parameters(), tgt.parameters()):
                        pt.mul_(0.995).add_(0.005 * p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/updates_per_second.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 10_000
    data = Transitions(rng.normal(size=(n, OBS)).astype("f4"), rng.uniform(-1, 1, (n, ACT)).astype("f4"),
                       rng.normal(size=n).astype("f4"), rng.normal(size=(n, OBS)).astype("f4"),
                       np.zeros(n, "f4"), np.zeros(n, "f4"))
    buffer = ReplayBuffer(OBS, ACT, n)
    buffer.add_transitions(data)

    plain = PlainTD3BC()
    td3bc = TD3(OBS, ACT, TD3Config(bc_alpha=2.5))
    sac = SAC(OBS, ACT, SACConfig())
    wm = WorldModel(OBS, ACT, WorldModelConfig(), data.observations.mean(0), data.observations.std(0))
    wm_opt = torch.optim.Adam(wm.parameters(), lr=1e-4)
    wm_batch = buffer.sample(4096, rng)

    def wm_step():
        loss, _ = wm.loss(wm_batch.observations, wm_batch.actions, wm_batch.next_observations, kl_weight=1 / 3)
        wm_opt.zero_grad()
        loss.backward()
        wm_opt.step()

    rows = {}
    # The reference is measured first and last; its mean is the denominator, its spread a noise indicator.
    ref_before = rate(lambda: plain.update(buffer.sample(BATCH, rng)), args.seconds)
    rows["td3bc (wmaug)"] = rate(lambda: td3bc.update(buffer.sample(BATCH, rng)), args.seconds)
    rows["sac (wmaug)"] = rate(lambda: sac.update(buffer.sample(BATCH, rng)), args.seconds)
    rows["world model, batch 4096 (wmaug)"] = rate(wm_step, args.seconds)
    ref_after = rate(lambda: plain.update(buffer.sample(BATCH, rng)), args.seconds)
    ref = (ref_before + ref_after) / 2
    print(f"reference: plain TD3+BC loop {ref:.1f} updates/s (first {ref_before:.1f}, last {ref_after:.1f})")
    print(f"{'learner':34s} {'updates/s':>10s} {'x reference':>12s}")
    for name, value in rows.items():
        print(f"{name:34s} {value:10.1f} {value / ref:12.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "reference_updates_per_s": {"before": ref_before, "after": ref_after},
        "updates_per_s": rows,
        "ratio_to_reference": {k: v / ref for k, v in rows.items()},
        "threads": args.threads, "batch": BATCH, "obs_dim": OBS, "act_dim": ACT,
        "machine": platform.platform(), "packages": package_versions(),
    }, indent=2))


if __name__ == "__main__":
    main()
