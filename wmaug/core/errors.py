"""Errors the CLI prints as one message, not a traceback: bad input (naming the value and its origin), preemption."""


class InputError(ValueError):
    """Bad input: a config value, a dataset file or id."""


class Preempted(RuntimeError):
    """SIGTERM (what SLURM sends before it kills a job) arrived: a checkpoint was saved; run again to resume."""


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite: the run stops, naming the loss and the step; its last checkpoint stays."""


class StorageError(OSError):
    """A result or checkpoint could not be written (no space, no permission): names the path and the cause; the
    file it would have replaced is kept."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class ReportInputError(ValueError):
    """Cells a report cannot aggregate (unfinished, mixed scales or configs): one line, no traceback, exit 1."""
