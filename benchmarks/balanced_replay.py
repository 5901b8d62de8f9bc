"""Cost of paper B's balanced replay at full scale, beside plain uniform replay measured in the same run.

    python benchmarks/balanced_replay.py [--seconds 2] [--threads 1] [--out benchmarks/results/balanced_replay.json]

Sizes are the protocol's largest: 2,000,000 offline + 250,000 online transitions, 17-dim states, 6-dim actions,
batch 256 (random data: the costs do not depend on the values). Rows:
  reference         ReplayBuffer.sample(256) over 2.25M rows (uniform)
  balanced step     BalancedReplay.sample(256) + update_priorities(256)
  online add        BalancedReplay.add (one transition, at the running-max priority)
  density step      DensityRatio.update (256 online + 256 offline) + priorities for the 256 sampled rows
The ratio column is rate / reference rate; absolute rates depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from wmaug.data.buffer import ReplayBuffer
from wmaug.paper_b.prioritized import BalancedReplay
from wmaug.data.transitions import Transitions
from wmaug.paper_b.density_ratio import DensityRatio
from wmaug.core.provenance import package_versions

from timing import rate  # benchmarks/ is the script's own folder, first on sys.path

OBS, ACT, BATCH = 17, 6, 256
OFFLINE, ONLINE = 2_000_000, 250_000


def random_transitions(n: int, rng: np.random.Generator) -> Transitions:
    return Transitions(rng.standard_normal((n, OBS), dtype=np.float32), rng.uniform(-1, 1, (n, ACT)).astype("f4"),
                       rng.standard_normal(n, dtype=np.float32), rng.standard_normal((n, OBS), dtype=np.float32),
                       np.zeros(n, "f4"), np.zeros(n, "f4"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/balanced_replay.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    offline = random_transitions(OFFLINE, rng)
    online = random_transitions(ONLINE, rng)
    setup = {}
    t0 = time.perf_counter()
    reference = ReplayBuffer(OBS, ACT, OFFLINE + ONLINE)
    reference.add_transitions(Transitions.concatenate([offline, online]))
    setup["reference buffer fill (s)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    buf = BalancedReplay(offline, OBS, ACT, online_capacity=ONLINE)  # builds the 2.25M-leaf tree
    setup["balanced replay construct, 2M offline (s)"] = time.perf_counter() - t0
    del offline
    t0 = time.perf_counter()
    buf.add_batch(online.observations, online.actions, online.rewards, online.next_observations, online.terminals)
    setup["balanced replay add_batch, 250K online (s)"] = time.perf_counter() - t0
    obs, act = online.observations[0], online.actions[0]
    density = DensityRatio(OBS, ACT)

    def balanced_step():
        _, idx, _ = buf.sample(BATCH, rng)
        buf.update_priorities(idx, rng.uniform(0.01, 10.0, BATCH))

    def density_step():
        density.update(buf.sample_uniform_online(BATCH, rng), buf.sample_uniform_offline(BATCH, rng))
        b, idx, _ = buf.sample(BATCH, rng)
        off = buf.sample_uniform_offline(BATCH, rng)
        return density.priorities(b.observations, b.actions, off.observations, off.actions)

    rows = {}
    # The reference is measured first and last; its mean is the denominator, its spread a noise indicator.
    ref_before = rate(lambda: reference.sample(BATCH, rng), args.seconds)
    rows["balanced sample(256)"] = rate(lambda: buf.sample(BATCH, rng), args.seconds)
    rows["balanced sample(256) + update_priorities(256)"] = rate(balanced_step, args.seconds)
    rows["balanced add (1 transition)"] = rate(lambda: buf.add(obs, act, 0.0, obs, False), args.seconds)
    rows["density update (256+256) + priorities(256)"] = rate(density_step, args.seconds)
    ref_after = rate(lambda: reference.sample(BATCH, rng), args.seconds)
    ref = (ref_before + ref_after) / 2
    assert buf.online_size == ONLINE and len(buf) == OFFLINE + ONLINE

    print(f"reference: ReplayBuffer.sample(256) over {OFFLINE + ONLINE:,} rows, {ref:.0f}/s "
          f"(first {ref_before:.0f}, last {ref_after:.0f}); {args.threads} thread(s)")
    print(f"{'operation':48s} {'per second':>11s} {'us each':>9s} {'x reference':>12s}")
    for name, value in rows.items():
        print(f"{name:48s} {value:11.0f} {1e6 / value:9.1f} {value / ref:12.3f}")
    for name, value in setup.items():
        print(f"{name:48s} {value:11.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "reference_per_s": {"before": ref_before, "after": ref_after},
        "per_s": rows,
        "ratio_to_reference": {k: v / ref for k, v in rows.items()},
        "setup_s": setup,
        "threads": args.threads, "batch": BATCH, "obs_dim": OBS, "act_dim": ACT,
        "offline": OFFLINE, "online": ONLINE, "seconds_per_row": args.seconds,
        "machine": platform.platform(), "packages": package_versions(),
    }, indent=2))


if __name__ == "__main__":
    main()
