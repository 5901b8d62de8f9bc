"""Memory allocator settings for training processes.

glibc's malloc serves each allocation above its mmap threshold (128 KB, raised dynamically up to 32 MB) with fresh
pages from the kernel and hands them back on free, so a learner that allocates the same multi-megabyte activations
every update pays page faults on every one of them (and trims the heap top after each free, which faults again).
CQL's 31 critic rows per state make such activations (16 MB per layer for B = 256, 80 MB for a 5-agent block):
serving them from the heap and keeping freed memory there made a 5-agent CQL block 1.35x and one CQL agent 1.13x
faster on one core here (measured in one run, the same code with and without). The cost: a process keeps its peak
heap instead of returning it to the system. `wmaug`'s commands and benchmarks/speed.py apply it at start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Serve every allocation from the heap (no mmap) and keep freed memory there (glibc only); True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): leave the allocator as it is
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
