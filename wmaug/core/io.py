"""Atomic file writes: a killed job leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

from wmaug.core.errors import StorageError

_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EFBIG)
# What torch.save raises when a write fails (it hides the OSError): "[enforce fail at inline_container.cc] ...
# unexpected pos", "PytorchStreamWriter failed writing file".
_TORCH_WRITE_FAILURES = ("inline_container", "PytorchStreamWriter", "unexpected pos", "file write failed")


def storage_error(path: Path, exc: BaseException, written: int | None = None) -> StorageError:
    """One line naming the path, the cause and, when the device is full, how much the write needed."""
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("/"))
    free = shutil.disk_usage(folder).free
    needed = f"; {written:,} bytes written before it failed" if written else ""
    if getattr(exc, "errno", None) == errno.ENOSPC or (written is not None and free < max(written, 1 << 20)):
        return StorageError(errno.ENOSPC, f"cannot write {path}: no space left on the device holding {folder} "
                                          f"({free:,} bytes free{needed}); the previous file, if any, is kept")
    if isinstance(exc, PermissionError):
        return StorageError(errno.EACCES, f"cannot write {path}: no permission to write in {folder}")
    return StorageError(getattr(exc, "errno", None) or errno.EIO,
                        f"cannot write {path}: {exc} ({free:,} bytes free on its device{needed})")


@contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path in the target's folder; renamed onto `path` only if the block succeeds. A failed
    write (full disk, no permission) raises StorageError naming the path; the old file stays."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise storage_error(path, exc) from exc
    os.close(fd)
    try:
        try:
            yield Path(tmp)
        except OSError as exc:
            if isinstance(exc, StorageError) or exc.errno not in _WRITE_ERRNOS:
                raise
            raise storage_error(path, exc, os.path.getsize(tmp)) from exc
        except RuntimeError as exc:
            if not any(s in str(exc) for s in _TORCH_WRITE_FAILURES):
                raise
            raise storage_error(path, exc, os.path.getsize(tmp)) from exc
        # mkstemp makes the file private (0600); give it the mode a plain open() would, so results on a
        # shared filesystem stay readable by the group.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | Path, what: str = "file"):
    """A JSON file, with an error that names the file and what it is."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise RuntimeError(f"{what} {path} is not valid JSON: {exc}") from exc


def torch_save(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def torch_load(path: str | Path, what: str = "file"):
    """Safe load (weights_only) with an error that names the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise RuntimeError(f"{what} {path} is corrupt or not a wmaug file: {exc}") from exc
