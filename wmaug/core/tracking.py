"""What a cell shows while it runs: its evaluation rows as they happen, in the cell folder's `curve.partial.csv` and,
if chosen, in a logging backend (TensorBoard, or Weights & Biases in offline mode); and `wmaug export`, which replays
finished cells into either backend.

`curve.partial.csv` has curve.csv's columns and header and grows by one flushed line per evaluation. It always holds
exactly the rows of the run so far: a run that resumes from a checkpoint rewrites it from the checkpoint's rows first
(the rows a killed run logged after its last checkpoint are dropped; the resumed run logs them again). So when the
cell ends it equals curve.csv byte for byte, and it is deleted once summary.json is written: a finished folder holds
its results only. Nothing reads it as a result: the aggregation reads the curve.csv of folders with summary.json.

A backend's run is named after the cell folder (`results/<scale>/<study>/<env>/<dataset>/<method>/seed<k>`), grouped
by study/env/dataset/method, and carries the resolved cell spec as its config. Its x axis is the run's position: the
offline iteration, then the offline iterations plus the online step. Neither backend is a dependency of the harness
(`pip install -e .[tracking]`): each is imported when chosen, and checked before any compute. The choice is no part of
a cell's spec: switching it re-runs no cell.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from wmaug.core.envs import unknown_name_message
from wmaug.core.errors import InputError

log = logging.getLogger("wmaug.tracking")

PARTIAL_CURVE = "curve.partial.csv"
BACKENDS = ("none", "tensorboard", "wandb")
# Where `wmaug cell` finds the backend when no flag names it: the Snakefile sets both from the config's `tracking`.
TRACKING_ENV, TRACKING_DIR_ENV = "WMAUG_TRACKING", "WMAUG_TRACKING_DIR"
DEFAULT_TRACKING_DIR = "logs/tracking"
WANDB_PROJECT = "wmaug"
_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}  # the package each backend imports


def curve_csv(rows: list[dict], header: bool = True, columns: list[str] | None = None) -> str:
    """Rows as CSV lines in `columns` (default: the first row's), after a header line if `header`: the text of
    curve.csv, and of each line appended to curve.partial.csv (in the columns of the file's first row)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or list(rows[0]), lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# ---- the backend choice -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tracking:
    """A logging backend and the folder its runs go to (each run in <dir>/<cell folder>)."""

    backend: str = "none"
    dir: str = DEFAULT_TRACKING_DIR


def check_backend(backend: str, where: str) -> str:
    """The backend's name if it is one; InputError naming the value and where it came from if not, or if the backend's
    package is not installed (before any compute)."""
    if backend not in BACKENDS:
        raise InputError(unknown_name_message("tracking backend", backend, list(BACKENDS), where))
    if backend != "none":
        import importlib.util

        if importlib.util.find_spec(_PACKAGES[backend]) is None:
            raise InputError(f"{where}: tracking backend {backend!r} needs the {_PACKAGES[backend]} package, which is "
                             f"not installed: pip install -e '.[tracking]' (or pip install {_PACKAGES[backend]})")
    return backend


def config_tracking(config: dict) -> Tracking:
    """The config's `tracking` alone, checked: the Snakefile's choice for its jobs, whatever its environment says."""
    settings = config.get("tracking") or {}
    return Tracking(check_backend(settings.get("backend", "none"), "config key 'tracking.backend'"),
                    settings.get("dir") or DEFAULT_TRACKING_DIR)


def pick_tracking(backend: str | None = None, directory: str | None = None, config: dict | None = None) -> Tracking:
    """The `--tracking` flag, else the environment variable WMAUG_TRACKING (how the Snakefile passes the config's
    choice to its jobs without touching their specs or commands), else the config's `tracking` when the command read
    one, else none; the folder likewise (`--tracking-dir`, WMAUG_TRACKING_DIR, the config, logs/tracking)."""
    settings = (config or {}).get("tracking") or {}
    if backend is not None:
        source = "--tracking"
    elif os.environ.get(TRACKING_ENV):
        backend, source = os.environ[TRACKING_ENV], f"environment variable {TRACKING_ENV}"
    else:
        backend, source = settings.get("backend", "none"), "config key 'tracking.backend'"
    directory = directory or os.environ.get(TRACKING_DIR_ENV) or settings.get("dir") or DEFAULT_TRACKING_DIR
    return Tracking(check_backend(backend, source), directory)


# ---- naming and rows ----------------------------------------------------------------------------------------------

def run_name(cell_dir: str | Path) -> str:
    """A cell folder as a run name: its path from the working directory (the Snakefile's `results/...`), else its
    absolute path."""
    path = Path(cell_dir).resolve()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def run_group(cell: dict) -> str:
    """A cell's seeds share a group: study/env/dataset/method."""
    return "/".join(str(cell[k]) for k in ("study", "env", "dataset", "method"))


def global_steps(rows: list[dict]) -> list[int]:
    """Each row's position in its run: an offline row's iteration; an online row's step after all offline iterations
    (the last offline row is at the phase's last iteration: the loop always evaluates there)."""
    offline = max((int(r["step"]) for r in rows if r["phase"] == "offline"), default=0)
    return [int(r["step"]) + (offline if r["phase"] != "offline" else 0) for r in rows]


def scalars(row: dict) -> dict[str, float]:
    """A row's numeric columns as floats; its phase is left out (the x axis shows it: offline iterations first)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, bool) or key == "phase":
            continue
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


# ---- backends -----------------------------------------------------------------------------------------------------

class Tracker:
    """One cell's run in a backend. `restart(rows)` makes its run anew holding exactly `rows` (a fresh start, or a
    resume from a checkpoint's rows); `log(rows)` adds the last row. Its files live in one folder per cell, so that
    starting over removes the killed attempt's rows with it."""

    def __init__(self, folder: Path, name: str, group: str, config: dict):
        self.folder, self.name, self.group, self.config = folder, name, group, config

    def restart(self, rows: list[dict]) -> None:
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.open()
        for row, step in zip(rows, global_steps(rows)):
            self.write(row, step)
        self.flush()

    def log(self, rows: list[dict]) -> None:
        self.write(rows[-1], global_steps(rows)[-1])
        self.flush()

    def open(self) -> None:
        raise NotImplementedError

    def write(self, row: dict, step: int) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def close(self) -> None:
        raise NotImplementedError


class TensorBoardTracker(Tracker):
    """Event files in <dir>/<cell folder>: `tensorboard --logdir <dir>` lists the cells by path (filter runs by a
    study/env/dataset/method prefix for a group); the spec is the run's `spec` text."""

    writer = None

    def open(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.folder))
        self.writer.add_text("spec", "```\n" + json.dumps(self.config, indent=2, sort_keys=True) + "\n```")
        self.writer.add_text("group", self.group)

    def write(self, row: dict, step: int) -> None:
        for key, value in scalars(row).items():
            self.writer.add_scalar(key, value, step)

    def flush(self) -> None:
        self.writer.flush()  # a reader sees each row at once, not after TensorBoard's 2-minute flush

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WandbTracker(Tracker):
    """An offline W&B run under <dir>/<cell folder>/wandb (compute nodes have no internet; `wandb sync` uploads it
    later), in project `wmaug`, named after the cell folder, grouped by study/env/dataset/method, tagged with the
    scale and study."""

    run = None

    def open(self) -> None:
        import wandb

        cell = self.config.get("cell", {})
        settings = wandb.Settings(console="off", silent=True, x_disable_stats=True, save_code=False, disable_git=True,
                                  disable_job_creation=True)  # the job's log stays the cell's own; no extra threads
        self.run = wandb.init(mode="offline", dir=str(self.folder), project=WANDB_PROJECT, name=self.name,
                              group=self.group, config=self.config, reinit="create_new", settings=settings,
                              tags=[t for t in (self.config.get("scale"), cell.get("study")) if t])

    def write(self, row: dict, step: int) -> None:
        # NaN (no update logged since the last row) is dropped: W&B plots a missing point where TensorBoard plots NaN
        self.run.log({k: v for k, v in scalars(row).items() if not math.isnan(v)}, step=step)

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


TRACKERS = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker}


def open_tracker(tracking: Tracking, cell_dir: str | Path, spec_json: dict) -> Tracker | None:
    """The cell's run in the chosen backend (None for `none`); nothing is written before its first rows."""
    if tracking.backend == "none":
        return None
    name = run_name(cell_dir)
    folder = Path(tracking.dir) / name.lstrip("/")
    if Path(cell_dir).resolve().is_relative_to(folder.resolve()):  # a restart empties the run's folder
        raise InputError(f"tracking dir {tracking.dir!r} puts the run of {cell_dir} at the cell folder itself: "
                         f"choose another folder (default {DEFAULT_TRACKING_DIR})")
    return TRACKERS[tracking.backend](folder, name, run_group(spec_json["cell"]), spec_json)


# ---- a running cell's rows ----------------------------------------------------------------------------------------

class LiveCurve:
    """One running cell's rows as they happen: curve.partial.csv in its folder, and its tracker if one is chosen.
    A tracker that fails is dropped with a warning: watching a run must never cost its result."""

    def __init__(self, out_dir: str | Path, tracker: Tracker | None = None):
        self.path = Path(out_dir) / PARTIAL_CURVE
        self.tracker = tracker
        self.started = False  # whether the file (and the tracker) hold this process's rows so far

    def rewrite(self, rows: list[dict]) -> None:
        """Start over holding exactly `rows`: none at a fresh start, a checkpoint's at a resume."""
        from wmaug.core.io import write_text  # torch: not when the config module reads BACKENDS

        if rows:
            write_text(self.path, curve_csv(rows))
        else:
            self.path.unlink(missing_ok=True)
        self._track("restart", rows)
        self.started = True

    def append(self, rows: list[dict]) -> None:
        """rows[-1] is new; the rows before it are logged already (or are rewritten now, at this process's first)."""
        if not self.started:
            self.rewrite(rows)
            return
        try:
            with open(self.path, "a") as f:
                f.write(curve_csv(rows[-1:], header=len(rows) == 1, columns=list(rows[0])))
        except OSError as exc:
            from wmaug.core.io import storage_error

            raise storage_error(self.path, exc) from exc
        self._track("log", rows)

    def finish(self) -> None:
        """The cell's results are written: the partial file has served."""
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        self._track("close")

    def _track(self, method: str, *args) -> None:
        if self.tracker is None:
            return
        try:
            getattr(self.tracker, method)(*args)
        except Exception as exc:
            log.warning("tracking: %s %s failed (%s: %s); the run goes on without it", type(self.tracker).__name__,
                        method, type(exc).__name__, exc)
            self.tracker = None


# ---- export -------------------------------------------------------------------------------------------------------

def finished_cells(results_dir: str | Path) -> list[Path]:
    """The finished cell folders under `results_dir` (summary.json with "finished": true, and curve.csv), sorted."""
    cells = []
    for summary in sorted(Path(results_dir).rglob("summary.json")):
        try:
            finished = json.loads(summary.read_text()).get("finished") is True
        except (ValueError, OSError):
            finished = False
        if finished and (summary.parent / "curve.csv").is_file():
            cells.append(summary.parent)
    return cells


def read_curve(path: str | Path) -> list[dict]:
    """curve.csv's rows, numbers as numbers."""
    def value(text: str):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def export(results_dir: str | Path, tracking: Tracking) -> list[Path]:
    """Replay each finished cell under `results_dir` (its curve.csv, its summary's spec) into the backend, as the run
    would have logged it live; a cell's earlier run there is replaced. Returns the cells exported."""
    if tracking.backend == "none":
        raise InputError("wmaug export: choose a backend (--backend tensorboard or wandb)")
    cells = finished_cells(results_dir)
    if not cells:
        raise InputError(f"wmaug export: no finished cell (summary.json and curve.csv) under {results_dir}")
    for cell_dir in cells:
        summary = json.loads((cell_dir / "summary.json").read_text())
        spec = summary.get("spec") or {"cell": summary["cell"], "scale": summary.get("scale")}
        tracker = open_tracker(tracking, cell_dir, spec)
        try:
            tracker.restart(read_curve(cell_dir / "curve.csv"))
        finally:
            tracker.close()
        log.info("exported %s to %s", cell_dir, tracker.folder)
    return cells
