"""What the benchmark scripts share: a rate measured over wall time after a warm-up."""

from __future__ import annotations

import time
from typing import Callable

import torch


def rate(step: Callable[[], object], seconds: float, warmup: int = 20) -> float:
    """Calls per second of `step`, timed for about `seconds` after `warmup` untimed calls."""
    for _ in range(warmup):
        step()
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    sync()  # a GPU's queued work is part of the time
    return n / (time.perf_counter() - t0)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
