"""MuJoCo environment steps per second of every task, as the planner's `env_steps_per_s` (config/rates.yaml).

    python benchmarks/env_speed.py [--seconds 5] [--out benchmarks/results/env_speed.json]

Each task is stepped with uniformly random actions for `--seconds` after a short warm-up, resetting when an episode
ends (a reset is part of what a cell pays), in this process alone on one thread. Run it on an idle machine: the
rates fall with every other process sharing the cores. Prints the YAML line for config/rates.yaml.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from wmaug.core.envs import ENV_SPECS, make_env
from wmaug.core.provenance import package_versions


def steps_per_second(name: str, seconds: float, seed: int = 0) -> tuple[float, int]:
    """Random-action steps per second of `name`, and the episodes it started."""
    env = make_env(name, seed=seed)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high

    def run(budget: float) -> tuple[int, int]:
        steps, episodes, t0 = 0, 0, time.perf_counter()
        while time.perf_counter() - t0 < budget:
            for _ in range(200):  # check the clock every 200 steps
                _, _, terminated, truncated, _ = env.step(rng.uniform(low, high).astype(np.float32))
                steps += 1
                if terminated or truncated:
                    env.reset()
                    episodes += 1
        return steps, episodes

    run(min(0.5, seconds / 5))  # warm-up
    t0 = time.perf_counter()
    steps, episodes = run(seconds)
    return steps / (time.perf_counter() - t0), episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", default="benchmarks/results/env_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = {}
    for name in ENV_SPECS:
        rate, episodes = steps_per_second(name, args.seconds)
        rows[name] = {"steps_per_s": rate, "episodes": episodes}
        print(f"{name:<14} {rate:>10,.0f} steps/s  ({episodes} episodes)", flush=True)
    line = "env_steps_per_s: {" + ", ".join(f"{k}: {round(v['steps_per_s'])}" for k, v in rows.items()) + "}"
    print(line)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"processor": platform.processor() or platform.machine(), "seconds": args.seconds,
                               "packages": package_versions(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
