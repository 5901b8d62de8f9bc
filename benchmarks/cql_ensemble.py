"""Updates per second of paper B's learners beside a plain single-agent CQL loop measured in the same run.

    python benchmarks/cql_ensemble.py [--seconds 5] [--threads 1] [--out benchmarks/results/cql_ensemble.json]

Rows: the plain reference (CORL-style: one actor, two separate critic MLPs, the same CQL(H) loss); wmaug's CQL
with 1 and with 5 agents batched (paper B pre-trains blocks of 5); SAC on the 5-member Q-ensemble (the
fine-tuning update). "agent-updates/s" counts each agent of a batched block; the ratio column divides it by the
reference's updates/s. Absolute rates depend on the machine and its load; compare ratios.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from wmaug.algos.cql import CQL, CQLConfig
from wmaug.algos.ensemble_sac import EnsembleSAC, EnsembleSACConfig
from wmaug.data.buffer import Batch
from wmaug.provenance import package_versions

from timing import rate  # benchmarks/ is the script's own folder, first on sys.path


def rate_on(update, b: Batch, seconds: float) -> float:
    """Updates per second of `update` on one fixed batch (built once, outside the timing)."""
    return rate(lambda: update(b), seconds, warmup=3)

OBS, ACT, BATCH, N_ACTIONS = 17, 6, 256, 10


class PlainCQL:
    """The reference, written the way single-file implementations write it."""

    def __init__(self, hidden: int):
        def net(i, o):
            return nn.Sequential(nn.Linear(i, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, o))

        self.actor = net(OBS, 2 * ACT)
        self.q1, self.q2 = net(OBS + ACT, 1), net(OBS + ACT, 1)
        self.q1_t, self.q2_t = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.log_alpha = torch.zeros((), requires_grad=True)
        self.a_opt = torch.optim.Adam(self.actor.parameters(), lr=1e-4)
        self.q_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=3e-4)
        self.al_opt = torch.optim.Adam([self.log_alpha], lr=1e-4)

    def pi(self, obs):
        mean, log_std = self.actor(obs).chunk(2, -1)
        std = log_std.clamp(-20, 2).exp()
        u = mean + std * torch.randn_like(mean)
        logp = torch.distributions.Normal(mean, std).log_prob(u).sum(-1) - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), logp

    def update(self, b: Batch):
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = self.pi(b.next_observations)
            x2 = torch.cat([b.next_observations, a2], -1)
            y = b.rewards + 0.99 * (1 - b.terminals) * (torch.min(self.q1_t(x2), self.q2_t(x2)).squeeze(-1) - alpha * logp2)
        x = torch.cat([b.observations, b.actions], -1)
        loss = 0.0
        obs_rep = b.observations.repeat(N_ACTIONS, 1)
        next_rep = b.next_observations.repeat(N_ACTIONS, 1)
        with torch.no_grad():
            a_cur, lp_cur = self.pi(obs_rep)
            a_next, lp_next = self.pi(next_rep)
        a_rand = torch.empty_like(a_cur).uniform_(-1, 1)
        for q in (self.q1, self.q2):
            q_data = q(x).squeeze(-1)
            cat = torch.cat([
                (q(torch.cat([obs_rep, a_rand], -1)).squeeze(-1) - ACT * math.log(0.5)).view(N_ACTIONS, -1),
                (q(torch.cat([obs_rep, a_next], -1)).squeeze(-1) - lp_next).view(N_ACTIONS, -1),
                (q(torch.cat([obs_rep, a_cur], -1)).squeeze(-1) - lp_cur).view(N_ACTIONS, -1),
            ], 0)
            loss = loss + F.mse_loss(q_data, y) + 5.0 * (torch.logsumexp(cat, 0).mean() - q_data.mean())
        self.q_opt.zero_grad()
        loss.backward()
        self.q_opt.step()
        a, logp = self.pi(b.observations)
        xa = torch.cat([b.observations, a], -1)
        actor_loss = (alpha * logp - torch.min(self.q1(xa), self.q2(xa)).squeeze(-1)).mean()
        self.a_opt.zero_grad()
        actor_loss.backward()
        self.a_opt.step()
        alpha_loss = -(self.log_alpha * (logp.detach() - ACT)).mean()
        self.al_opt.zero_grad()
        alpha_loss.backward()
        self.al_opt.step()
        with torch.no_grad():
            for t, s in ((self.q1_t, self.q1), (self.q2_t, self.q2)):
                for pt, ps in zip(t.parameters(), s.parameters()):
                    pt.lerp_(ps, 5e-3)


def batch(members: int | None) -> Batch:
    shape = (BATCH,) if members is None else (members, BATCH)
    return Batch(torch.randn(*shape, OBS), torch.rand(*shape, ACT) * 2 - 1, torch.randn(*shape), torch.randn(*shape, OBS),
                 torch.zeros(*shape))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results/cql_ensemble.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h = (args.hidden, args.hidden)
    rows = []
    reference = rate_on(PlainCQL(args.hidden).update, batch(None), args.seconds)
    rows.append(("plain CQL, 1 agent (reference)", 1, reference))
    for members in (1, 5):
        agent = CQL(OBS, ACT, CQLConfig(hidden=h), members=members)
        rows.append((f"wmaug CQL, {members} agent(s) batched", members, rate_on(agent.update, batch(members), args.seconds)))
    ens = EnsembleSAC(OBS, ACT, EnsembleSACConfig(hidden=h), members=5)
    rows.append(("wmaug SAC on a 5-member Q-ensemble (fine-tuning)", 1, rate_on(ens.update, batch(None), args.seconds)))
    again = rate_on(PlainCQL(args.hidden).update, batch(None), args.seconds)
    rows.append(("plain CQL, 1 agent (reference, measured again)", 1, again))

    print(f"{'learner':<52} {'updates/s':>10} {'agent-upd/s':>12} {'x reference':>12}")
    table = []
    for name, agents, r in rows:
        print(f"{name:<52} {r:>10.1f} {r * agents:>12.1f} {r * agents / reference:>12.2f}")
        table.append({"learner": name, "agents": agents, "updates_per_s": r, "agent_updates_per_s": r * agents,
                      "ratio_to_reference": r * agents / reference})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": table, "threads": args.threads, "hidden": args.hidden, "batch": BATCH,
                               "machine": platform.platform(), "processor": platform.processor(),
                               "packages": package_versions()}, indent=2))


if __name__ == "__main__":
    main()
