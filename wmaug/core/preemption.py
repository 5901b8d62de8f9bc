"""SIGTERM, what SLURM sends before it kills a job (time limit, preemption), as a flag that long loops read at their
checkpointable points: they save a checkpoint and raise :class:`wmaug.core.errors.Preempted`; the CLI exits 143 and a
re-run resumes from that checkpoint."""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager

from wmaug.core.errors import Preempted

log = logging.getLogger("wmaug")


class SigtermFlag:
    def __init__(self, what: str):
        self.requested = False
        self.what = what  # where the loop will stop, for the log line
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            signal.signal(signal.SIGTERM, self._set)

    def _set(self, signum, frame) -> None:
        log.warning("SIGTERM: saving a checkpoint at the next %s, then stopping", self.what)
        self.requested = True

    def stop_if_requested(self, where: str, checkpoint) -> None:
        """Called right after a checkpoint: leave with Preempted if SIGTERM came (the CLI exits 143)."""
        if self.requested:
            raise Preempted(f"stopped by SIGTERM at {where}; checkpoint {checkpoint} saved: run the same command "
                            f"again to resume")


@contextmanager
def sigterm_handler_restored():
    """A run's SIGTERM flags do not outlive it: the handler is put back as it was when the run ends, so a script that
    runs several (the benchmark) is stopped by SIGTERM between runs as usual, not by a flag nobody reads."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
