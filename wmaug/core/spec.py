"""Typed job specs: everything the config resolves for one cell (paper A's or paper B's) or one pre-training block.

A spec travels as JSON (Snakemake's `params`, `wmaug cell --spec-json`, the `spec` of a cell's summary.json), so
`to_json()` gives exactly the dict the harness has always written: the same keys and values, hence the same
`config_hash` and the same Snakemake parameters (changing any number of a cell still re-runs exactly that cell).
`from_json` is the one way back: it names what is missing, unknown or ill-typed, and where the spec came from.

Algorithm settings (`td3`, `augmentation`, paper B's `algorithms`, a pre-training's `algorithm`) stay mappings:
each learner's own config dataclass checks them (`wmaug.algos`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

from wmaug.core.errors import InputError
from wmaug.core.methods import FinetuneRecipe, Recipe


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def config_hash(spec: dict) -> str:
    """What all cells of one study table must share: scale, budgets and algorithm settings (the method and
    seed are keys of the table, the paths follow from them)."""
    return spec_hash({k: v for k, v in spec.items() if k not in ("cell", "paths", "recipe", "config_hash")})


@dataclass(frozen=True)
class CellId:
    study: str
    env: str
    dataset: str
    method: str
    seed: int


@dataclass(frozen=True)
class PaperABudget:
    offline_samples: int
    offline_iterations: int
    online_steps: int
    online_long_steps: int
    online_start_steps: int
    eval_every: int
    eval_episodes: int
    checkpoint_every: int


@dataclass(frozen=True)
class PaperAPaths:
    sample: str | None  # the cell's offline sample (None: no offline phase)
    world_model: str | None  # its world model (None: no augmentation)
    # the noise control's per-dimension error: its world model's held-out error table (by_dimension.csv)
    noise_sd: str | None = None
    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = ("noise_sd",)

    def as_json(self) -> dict:
        out = asdict(self)
        if out["noise_sd"] is None:  # absent unless used: every other cell's spec stays what it was
            del out["noise_sd"]
        return out


@dataclass(frozen=True)
class FinetuneBudget:
    finetune_steps: int
    finetune_long_steps: int
    finetune_eval_every: int
    eval_steps: int
    checkpoint_every: int


@dataclass(frozen=True)
class FinetunePaths:
    dataset: str  # the full offline dataset's source
    pretrained: str | None  # the block of pre-trained agents (None: from scratch)


def _section(cls, obj: Any, where: str):
    """One nested part of a spec from its JSON object, every field present and nothing else."""
    names = [f.name for f in fields(cls)]
    if not isinstance(obj, dict):
        raise InputError(f"{where}: must be a JSON object with {names}, got {type(obj).__name__}")
    optional = getattr(cls, "OPTIONAL_FIELDS", ())  # written only where they differ from their default
    missing, unknown = [k for k in names if k not in obj and k not in optional], sorted(set(obj) - set(names))
    if missing or unknown:
        raise InputError(f"{where}: " + "; ".join(
            part for part in (f"lacks {missing}" if missing else "", f"has unknown keys {unknown}" if unknown else "")
            if part) + f" (a {cls.__name__} has {names})")
    return cls(**{k: obj[k] for k in names if k in obj})


def _recipe(cls, obj: Any, where: str):
    body = {k: v for k, v in obj.items() if k != "pipeline"} if isinstance(obj, dict) else obj
    try:
        return _section(cls, body, where)
    except (TypeError, AssertionError) as exc:  # a recipe checks its own combination of settings
        raise InputError(f"{where}: not a valid {cls.__name__}: {exc}") from exc


@dataclass(frozen=True)
class CellSpec:
    """What every cell's spec holds; its pipeline's subclass adds budget, recipe, settings and input paths."""

    cell: CellId
    scale: str
    config_hash: str

    settings_keys: ClassVar[tuple[str, ...]] = ()  # a subclass's settings mappings, as JSON keys

    @property
    def pipeline(self) -> str:
        return self.recipe.pipeline

    def to_json(self) -> dict:
        out = {"cell": asdict(self.cell), "scale": self.scale, "budget": asdict(self.budget),
               "recipe": self.recipe.as_dict(), **{k: getattr(self, k) for k in self.settings_keys},
               "paths": self.paths.as_json() if hasattr(self.paths, "as_json") else asdict(self.paths),
               "config_hash": self.config_hash}
        return json.loads(json.dumps(out))  # plain JSON values: tuples as lists, a fresh copy of the settings

    def rehashed(self) -> "CellSpec":
        """The same spec with its config_hash recomputed (after changing a budget or setting by hand, as tests do)."""
        return replace(self, config_hash=config_hash(self.to_json()))

    def without_seed(self) -> dict:
        """What seeds trained as one group must share: all but the seed and the seed's input files."""
        out = self.to_json()
        out["cell"].pop("seed")
        out["paths"] = None
        return out


@dataclass(frozen=True)
class PaperACellSpec(CellSpec):
    budget: PaperABudget
    recipe: Recipe
    td3: dict
    augmentation: dict
    paths: PaperAPaths
    settings_keys: ClassVar[tuple[str, ...]] = ("td3", "augmentation")


@dataclass(frozen=True)
class FinetuneCellSpec(CellSpec):
    budget: FinetuneBudget
    recipe: FinetuneRecipe
    algorithms: dict
    paths: FinetunePaths
    settings_keys: ClassVar[tuple[str, ...]] = ("algorithms",)


CELL_SPECS = {"wmaug": (PaperACellSpec, PaperABudget, Recipe, PaperAPaths),
              "balanced_replay": (FinetuneCellSpec, FinetuneBudget, FinetuneRecipe, FinetunePaths)}
CELL_KEYS = tuple(f.name for f in fields(CellId))


def cell_spec_from_json(obj: Any, where: str) -> CellSpec:
    """A cell spec handed over as JSON (what Snakemake passes): every part present and typed, a usable seed."""
    if isinstance(obj, CellSpec):
        return obj
    if not isinstance(obj, dict):
        raise InputError(f"{where}: a cell spec must be a JSON object, got {type(obj).__name__}")
    common = ["cell", "scale", "budget", "recipe", "paths", "config_hash"]
    missing = [k for k in common if k not in obj]
    if missing:
        raise InputError(f"{where}: the cell spec lacks {missing} (a spec has {common} and its pipeline's "
                         f"settings; `wmaug cell --study ... --seed ...` resolves one from the config)")
    pipeline = obj["recipe"].get("pipeline") if isinstance(obj["recipe"], dict) else None
    if pipeline not in CELL_SPECS:
        raise InputError(f"{where}: the cell spec's recipe names pipeline {pipeline!r}, not one of "
                         f"{sorted(CELL_SPECS)} (`wmaug cell --study ... --seed ...` resolves a spec from the config)")
    cls, budget, recipe, paths = CELL_SPECS[pipeline]
    keys = ["cell", "scale", "budget", "recipe", *cls.settings_keys, "paths", "config_hash"]
    missing = [k for k in keys if k not in obj]
    if missing:
        raise InputError(f"{where}: the cell spec lacks {missing} (a spec has {keys}; "
                         f"`wmaug cell --study ... --seed ...` resolves one from the config)")
    unknown = sorted(set(obj) - set(keys))
    if unknown:
        raise InputError(f"{where}: the cell spec has unknown keys {unknown} (a spec has {keys})")
    cell = _section(CellId, obj["cell"], f"{where}: the cell spec's 'cell'")
    if isinstance(cell.seed, bool) or not isinstance(cell.seed, int) or cell.seed < 0:
        raise InputError(f"{where}: seed {cell.seed!r} must be a whole number from 0")
    for k in cls.settings_keys:
        if not isinstance(obj[k], dict):
            raise InputError(f"{where}: the cell spec's {k!r} must be a JSON object, got {type(obj[k]).__name__}")
    return cls(cell=cell, scale=obj["scale"], config_hash=obj["config_hash"],
               budget=_section(budget, obj["budget"], f"{where}: the cell spec's 'budget'"),
               recipe=_recipe(recipe, obj["recipe"], f"{where}: the cell spec's 'recipe'"),
               paths=_section(paths, obj["paths"], f"{where}: the cell spec's 'paths'"),
               **{k: obj[k] for k in cls.settings_keys})


# ---- paper B's pre-training blocks ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PretrainJob:
    algo: str
    env: str
    dataset: str
    block: int
    agent_seeds: tuple[int, ...]


@dataclass(frozen=True)
class PretrainPaths:
    dataset: str
    cql: str | None  # FQE's: the CQL agents whose policies it evaluates


@dataclass(frozen=True)
class PretrainSpec:
    job: PretrainJob
    scale: str
    iterations: int
    eval_episodes: int
    algorithm: dict
    cql: dict  # FQE evaluates the CQL agents' policies: their network settings
    paths: PretrainPaths

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, obj: Any, where: str) -> "PretrainSpec":
        if isinstance(obj, cls):
            return obj
        names = [f.name for f in fields(cls)]
        if not isinstance(obj, dict) or any(k not in obj for k in names):
            missing = names if not isinstance(obj, dict) else [k for k in names if k not in obj]
            raise InputError(f"{where}: the pre-training spec lacks {missing} (`wmaug pretrain --algo ... --block ...` "
                             f"resolves one from the config)")
        job = obj["job"]
        if isinstance(job, dict) and isinstance(job.get("agent_seeds"), list):
            job = {**job, "agent_seeds": tuple(job["agent_seeds"])}
        return cls(job=_section(PretrainJob, job, f"{where}: the pre-training spec's 'job'"),
                   paths=_section(PretrainPaths, obj["paths"], f"{where}: the pre-training spec's 'paths'"),
                   **{k: obj[k] for k in names if k not in ("job", "paths")})
