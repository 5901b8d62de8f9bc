"""What produced a result: code version, package versions, machine."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ["wmaug", "torch", "numpy", "gymnasium", "mujoco", "minari", "h5py", "snakemake", "rliable", "pandas", "matplotlib"]


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def source_hash() -> str:
    """sha256 over the package's own .py files: identifies the code even outside a git checkout."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def code_version() -> dict:
    root = Path(__file__).resolve().parent.parent
    info = {"source_sha256": source_hash(), "git_commit": None, "git_dirty": None}
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout
        info["git_dirty"] = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def device_info(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": platform.node(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def provenance(device: torch.device, compiled: bool = False) -> dict:
    """What produced a result: code, packages, machine, command line, and whether the learner ran compiled."""
    return {"code": code_version(), "packages": package_versions(), "machine": device_info(device), "argv": sys.argv,
            "compiled": compiled}
