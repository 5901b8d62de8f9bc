"""The study config: schema and name checks before any compute, and the fully resolved spec of each job.

Both the Snakefile and the `wmaug` CLI go through `validate` and `cell_spec`, so a cell run by hand and
a cell run by the DAG see the same numbers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import jsonschema
import yaml

from wmaug.data import DATASET_KINDS
from wmaug.envs import ENV_SPECS, unknown_name_message
from wmaug.errors import InputError
from wmaug.methods import METHODS

SCALE_KEYS_INT = [
    "seeds", "behaviour_steps", "behaviour_start_steps", "behaviour_eval_every", "behaviour_eval_episodes",
    "dataset_transitions", "offline_samples", "world_model_epochs", "offline_iterations", "online_steps",
    "online_start_steps", "eval_every", "eval_episodes", "checkpoint_every", "bootstrap_reps",
]
SCALE_KEYS_STR = ["results_dir", "figures_dir"]
MINARI_ROOT = "resources/minari"

_pos_int = {"type": "integer", "minimum": 1}
_pos_num = {"type": "number", "exclusiveMinimum": 0}
_name_list = {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True}

SCHEMA = {
    "type": "object",
    "required": ["scale", "studies", "scales", "algorithms"],
    "properties": {
        "scale": {"type": "string"},
        "studies": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["envs", "datasets", "methods"],
                "additionalProperties": False,
                "properties": {"envs": _name_list, "datasets": _name_list, "methods": _name_list},
            },
        },
        "dataset_sources": {
            "type": ["object", "null"],
            "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "scales": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": SCALE_KEYS_INT + SCALE_KEYS_STR,
                "additionalProperties": False,
                "properties": {
                    **{k: _pos_int for k in SCALE_KEYS_INT},
                    **{k: {"type": "string", "minLength": 1} for k in SCALE_KEYS_STR},
                },
            },
        },
        "algorithms": {
            "type": "object",
            "required": ["td3", "sac", "world_model", "augmentation"],
            "properties": {
                "td3": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "hidden": {"type": "array", "items": _pos_int, "minItems": 1},
                        "actor_lr": _pos_num, "critic_lr": _pos_num, "tau": _pos_num,
                        "gamma": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                        "policy_noise": {"type": "number", "minimum": 0},
                        "noise_clip": {"type": "number", "minimum": 0},
                        "policy_delay": _pos_int, "bc_alpha": _pos_num,
                        "exploration_noise": {"type": "number", "minimum": 0}, "batch_size": _pos_int,
                    },
                },
                "sac": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "hidden": {"type": "array", "items": _pos_int, "minItems": 1},
                        "actor_lr": _pos_num, "critic_lr": _pos_num, "alpha_lr": _pos_num, "init_alpha": _pos_num,
                        "gamma": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                        "tau": _pos_num, "batch_size": _pos_int,
                    },
                },
                "world_model": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "variant": {"enum": ["paper", "authors_code"]},
                        "latent_dim": _pos_int, "lr": _pos_num, "batch_size": _pos_int,
                        "next_state_weight": {"type": "number", "minimum": 0},
                        "latent_weight": {"type": "number", "minimum": 0},
                    },
                },
                "augmentation": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"rate": {"type": "number", "minimum": 0, "maximum": 1}},
                },
            },
        },
    },
}


class ConfigError(InputError):
    """A bad config value; the message names the key, the value and where it came from."""


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def load_config(path: str | Path, scale: str | None = None) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if scale is not None:
        config["scale"] = scale
    return validate(config, where=str(path))


def validate(config: dict, where: str = "config", check_sources: bool = True) -> dict:
    """Checks structure and names; returns the config with defaults filled. Raises ConfigError."""
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: the config must be a mapping, got {type(config).__name__}")
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        value = e.instance if not isinstance(e.instance, dict) else "{...}"
        raise ConfigError(f"{where}: config key '{_key(e.absolute_path)}' = {value!r}: {e.message}")
    config = copy.deepcopy(config)
    config["dataset_sources"] = config.get("dataset_sources") or {}

    if config["scale"] not in config["scales"]:
        raise ConfigError(unknown_name_message("scale", config["scale"], list(config["scales"]), f"{where}: key 'scale'"))
    for name in config["scales"]:
        s = config["scales"][name]
        k = f"{where}: scales.{name}"
        if s["online_start_steps"] >= s["online_steps"]:
            raise ConfigError(f"{k}.online_start_steps = {s['online_start_steps']} must be below online_steps = {s['online_steps']}")
        if s["behaviour_start_steps"] >= s["behaviour_steps"]:
            raise ConfigError(f"{k}.behaviour_start_steps = {s['behaviour_start_steps']} must be below behaviour_steps = {s['behaviour_steps']}")
        if s["offline_samples"] > s["behaviour_start_steps"]:
            # medium-replay holds at least the behaviour's random start steps, and may hold no more
            raise ConfigError(f"{k}.offline_samples = {s['offline_samples']} exceeds behaviour_start_steps = "
                              f"{s['behaviour_start_steps']}, the smallest medium-replay dataset can hold")
        if s["offline_samples"] > s["dataset_transitions"]:
            raise ConfigError(f"{k}.offline_samples = {s['offline_samples']} exceeds dataset_transitions = {s['dataset_transitions']}")
    for study, grid in config["studies"].items():
        if study in config["scales"]:
            raise ConfigError(f"{where}: study name '{study}' clashes with a scale name")
        for key, valid in (("envs", list(ENV_SPECS)), ("datasets", DATASET_KINDS), ("methods", list(METHODS))):
            for i, value in enumerate(grid[key]):
                if value not in valid:
                    kind = key[:-1] if key != "datasets" else "dataset"
                    raise ConfigError(unknown_name_message(kind, value, valid, f"{where}: key 'studies.{study}.{key}[{i}]'"))
    for env, kinds in config["dataset_sources"].items():
        if env not in ENV_SPECS:
            raise ConfigError(unknown_name_message("environment", env, list(ENV_SPECS), f"{where}: key 'dataset_sources'"))
        for kind, source in kinds.items():
            if kind not in DATASET_KINDS:
                raise ConfigError(unknown_name_message("dataset", kind, DATASET_KINDS, f"{where}: key 'dataset_sources.{env}'"))
            if check_sources:
                from wmaug.data.minari_io import check_source  # h5py/minari only when a source is given

                try:
                    check_source(source, env, MINARI_ROOT)
                except Exception as exc:
                    raise ConfigError(f"{where}: key 'dataset_sources.{env}.{kind}' = {source!r}: {exc}") from exc
    return config


# ---- paths: one place, used by the Snakefile and the CLI -------------------------------------------

def scale_cfg(config: dict) -> dict:
    return config["scales"][config["scale"]]


def resources_dir(config: dict) -> str:
    return f"resources/{config['scale']}"


def built_minari_id(scale: str, env: str, kind: str) -> str:
    return f"wmaug-{scale}/{env}/{kind}-v0"


def behaviour_path(config: dict, env: str) -> str:
    return f"{resources_dir(config)}/behaviour/{env}/behaviour.pt"


def dataset_marker(config: dict, env: str, kind: str) -> str:
    """Written last by the dataset rule: the Minari dataset it names is complete."""
    return f"{resources_dir(config)}/datasets/{env}/{kind}.json"


def dataset_source(config: dict, env: str, kind: str) -> str | None:
    """A user-provided source for (env, kind), or None when the harness builds it."""
    return config["dataset_sources"].get(env, {}).get(kind)


def sample_path(config: dict, env: str, kind: str, seed: int) -> str:
    return f"{resources_dir(config)}/samples/{env}/{kind}/seed{seed}.npz"


def world_model_path(config: dict, env: str, kind: str, seed: int) -> str:
    return f"{resources_dir(config)}/world_models/{env}/{kind}/seed{seed}.pt"


def cell_dir(config: dict, study: str, env: str, dataset: str, method: str, seed: int) -> str:
    return f"{scale_cfg(config)['results_dir']}/{study}/{env}/{dataset}/{method}/seed{seed}"


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def cell_spec(config: dict, study: str, env: str, dataset: str, method: str, seed: int) -> dict:
    """Everything a cell needs, resolved; its hash without the seed identifies the cell's configuration."""
    grid = config["studies"][study]
    for key, value in (("envs", env), ("datasets", dataset), ("methods", method)):
        if value not in grid[key]:
            raise ConfigError(unknown_name_message(key[:-1], value, grid[key], f"study '{study}'"))
    s = scale_cfg(config)
    recipe = METHODS[method]
    spec = {
        "cell": {"study": study, "env": env, "dataset": dataset, "method": method, "seed": seed},
        "scale": config["scale"],
        "budget": {k: s[k] for k in (
            "offline_samples", "offline_iterations", "online_steps", "online_start_steps",
            "eval_every", "eval_episodes", "checkpoint_every")},
        "recipe": recipe.as_dict(),
        "td3": config["algorithms"]["td3"],
        "augmentation": config["algorithms"]["augmentation"],
        "paths": {
            "sample": sample_path(config, env, dataset, seed),
            "world_model": world_model_path(config, env, dataset, seed) if recipe.augment else None,
        },
    }
    spec["config_hash"] = config_hash(spec)
    return spec


def config_hash(spec: dict) -> str:
    """What all cells of one study table must share: scale, budgets and algorithm settings (the method and
    seed are keys of the table, the paths follow from them)."""
    return spec_hash({k: v for k, v in spec.items() if k not in ("cell", "paths", "recipe", "config_hash")})


def world_model_spec(config: dict) -> dict:
    s = scale_cfg(config)
    return {**config["algorithms"]["world_model"], "epochs": s["world_model_epochs"]}


def grid_cells(config: dict, study: str) -> list[dict]:
    grid = config["studies"][study]
    return [
        {"study": study, "env": e, "dataset": d, "method": m, "seed": seed}
        for e in grid["envs"] for d in grid["datasets"] for m in grid["methods"]
        for seed in range(scale_cfg(config)["seeds"])
    ]


def minari_env() -> dict:
    """Environment for subprocesses so Minari reads and writes the project's local datasets."""
    return {**os.environ, "MINARI_DATASETS_PATH": os.path.abspath(MINARI_ROOT)}
