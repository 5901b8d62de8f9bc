"""The study config: schema and name checks before any compute, and the fully resolved spec of each job.

Both the Snakefile and the `wmaug` CLI go through `validate` and `cell_spec`, so a cell run by hand and
a cell run by the DAG see the same numbers.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import jsonschema
import yaml

from wmaug.core.envs import DATASET_KINDS
from wmaug.core.presets import PRESETS as DATASET_PRESETS, apply_preset
from wmaug.core.envs import ENV_SPECS, unknown_name_message
from wmaug.core.errors import InputError
from wmaug.core.papers import DEFAULT_PIPELINE, PAPERS, paper, study_paper
from wmaug.core.methods import METHODS
from wmaug.core.tracking import BACKENDS as TRACKING_BACKENDS
from wmaug.core.spec import (CellSpec, FinetuneCellSpec, PaperACellSpec, PretrainSpec, cell_spec_from_json,
                             config_hash)

SCALE_KEYS_INT = [
    "seeds", "behaviour_steps", "behaviour_start_steps", "behaviour_eval_every", "behaviour_eval_episodes",
    "dataset_transitions", "offline_samples", "world_model_epochs", "offline_iterations", "online_steps",
    "online_long_steps", "online_start_steps", "eval_every", "eval_episodes", "checkpoint_every", "bootstrap_reps",
    "holdout_samples",  # held-out transitions per world-model error estimate
    # paper B
    "pretrain_iterations", "awac_pretrain_iterations", "fqe_iterations", "finetune_steps", "finetune_long_steps",
    "finetune_eval_every", "eval_steps",
]
SCALE_KEYS_STR = ["results_dir", "figures_dir"]
MINARI_ROOT = "resources/minari"  # the datasets the harness builds (ids wmaug-<scale>/...)
# A Minari id the user names is looked up where Minari itself looks: $MINARI_DATASETS_PATH as the user set it,
# else Minari's default. Read at import, before the CLI points the variable at MINARI_ROOT for minari's own API.
USER_MINARI_ROOT = os.environ.get("MINARI_DATASETS_PATH") or str(Path.home() / ".minari" / "datasets")
CHECKED_SOURCES_DIR = ".snakemake/wmaug/checked_sources"  # finiteness passes already done, per file version
MAX_EPISODE_STEPS = 1000  # the MuJoCo tasks' time limit

_pos_int = {"type": "integer", "minimum": 1}
_pos_num = {"type": "number", "exclusiveMinimum": 0}
_name_list = {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True}
_hidden = {"type": "array", "items": _pos_int, "minItems": 1}
_subset_props = {"envs": _name_list, "datasets": _name_list, "methods": _name_list}
_gamma = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}


def _section(**props) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": props}


# Paper B's algorithm sections. awac and bcq take any field of their dataclasses (checked when a cell is planned).
_free_numbers = {"type": "object", "additionalProperties": {"anyOf": [{"type": "number"}, _hidden]}}
PAPER_B_ALGORITHMS = {
    "cql": _section(hidden=_hidden, actor_lr=_pos_num, critic_lr=_pos_num, min_q_weight={"type": "number", "minimum": 0},
                    n_actions=_pos_int, batch_size=_pos_int, gamma=_gamma, tau=_pos_num,
                    precision={"enum": ["fp32", "bf16"]},
                    # "env/dataset" -> its own networks (paper B: 3-layer MLPs for halfcheetah-medium-expert)
                    task_overrides={"type": "object", "additionalProperties": _section(hidden=_hidden)}),
    "finetune": _section(actor_lr=_pos_num, critic_lr=_pos_num, init_alpha=_pos_num, batch_size=_pos_int,
                         first_updates_after=_pos_int, first_updates={"type": "integer", "minimum": 0},
                         update_every=_pos_int, online_buffer=_pos_int),
    "balanced_replay": _section(hidden=_hidden, lr=_pos_num, batch_size=_pos_int, temperature=_pos_num,
                                online_share={"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                                default_samples=_pos_int),
    "fqe": _section(lr=_pos_num, batch_size=_pos_int),
    "analysis": _section(auroc_states=_pos_int, auroc_random_actions=_pos_int, sa_vae_epochs=_pos_int),
    "awac": _free_numbers,
    "bcq": _free_numbers,
}

SCHEMA = {
    "type": "object",
    "required": ["scale", "studies", "scales", "algorithms"],
    "properties": {
        "scale": {"type": "string"},
        # paper A: seeds of one cell trained together in one job (one batched TD3); 1 = a job per seed
        "seeds_per_job": _pos_int,
        # `--config claims=[A2,B3]`: the figures target makes only these claims (snakemake claim_<ID> each)
        "claims": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "studies": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["envs", "datasets", "methods"],
                "additionalProperties": False,
                "properties": {
                    "pipeline": {"enum": list(PAPERS)},
                    "envs": _name_list, "datasets": _name_list, "methods": _name_list,
                    "ablations": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object", "required": ["methods"], "additionalProperties": False,
                            "properties": {"envs": _name_list, "datasets": _name_list, "methods": _name_list},
                        },
                    },
                },
            },
        },
        # a logging backend each running cell also sends its rows to (wmaug.core.tracking); no part of any spec
        "tracking": _section(backend={"enum": list(TRACKING_BACKENDS)}, dir={"type": "string", "minLength": 1}),
        "dataset_sources": {
            "type": ["object", "null"],
            "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        # `--config datasets=minari`: Minari's published sets where they exist (wmaug/core/presets.py)
        "datasets": {"enum": list(DATASET_PRESETS)},
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
                    # the behaviour SAC's seeds, one run each; the datasets come from the strongest (docs/datasets.md)
                    "behaviour_seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1,
                                        "uniqueItems": True},
                    # per-study seed counts (paper A runs 5 seeds, paper B 4)
                    "study_seeds": {"type": "object", "additionalProperties": _pos_int},
                    # a sub-grid per study: envs/datasets/methods kept in every block, and `blocks` (if given):
                    # the only blocks run (main = the main grid), each with its own envs/datasets/methods kept
                    "grid_subset": {"type": "object", "additionalProperties": {
                        "type": "object", "additionalProperties": False,
                        "properties": {**_subset_props, "blocks": {
                            "type": "object", "minProperties": 1, "additionalProperties": {
                                "type": "object", "additionalProperties": False, "properties": _subset_props}}}}},
                    # algorithm settings this scale changes (toy widths at smoke), checked like `algorithms`
                    "algorithm_overrides": {"type": "object", "additionalProperties": {"type": "object"}},
                },
            },
        },
        "algorithms": {
            "type": "object",
            "required": ["td3", "sac", "world_model", "augmentation", "cql", "finetune", "balanced_replay", "fqe", "analysis"],
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
                        "latent_target": {"enum": ["stop_gradient", "end_to_end"]},
                    },
                },
                "augmentation": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"rate": {"type": "number", "minimum": 0, "maximum": 1}},
                },
                # the converged-model control (docs/methods.md, "Controls"): early stopping on a held-out split
                "world_model_converged": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"holdout_share": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
                                   "patience": _pos_int, "max_epochs": _pos_int, "check_every": _pos_int},
                },
                **PAPER_B_ALGORITHMS,
            },
        },
    },
}


# JSON Schema counts 2.0 as an integer; the code then fails on range(2.0). Counts must be ints here.
_Validator = jsonschema.validators.extend(jsonschema.Draft7Validator, type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)))


class ConfigError(InputError):
    """A bad config value; the message names the key, the value and where it came from."""


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def read_yaml(path: str | Path, error: type[Exception], what: str):
    """A YAML file's content, or `error` naming the file (missing, or not YAML)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def load_config(path: str | Path, scale: str | None = None) -> dict:
    config = read_yaml(path, ConfigError, "config file")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys (scale, studies, scales, algorithms), "
                          f"got {'an empty file' if config is None else type(config).__name__}")
    if scale is not None:
        config["scale"] = scale
    return validate(config, where=str(path))


def validate(config: dict, where: str = "config", check_sources: bool = True) -> dict:
    """Checks structure and names; returns the config with defaults filled. Raises ConfigError."""
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: the config must be a mapping, got {type(config).__name__}")
    _check_known_keys(config, where)
    errors = sorted(_Validator(SCHEMA).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        value = e.instance if not isinstance(e.instance, dict) else "{...}"
        hint = ""
        if e.validator == "type" and isinstance(e.instance, float) and e.instance.is_integer():
            hint = f" (write {int(e.instance)}: counts are whole numbers without a decimal point)"
        raise ConfigError(f"{where}: config key '{_key(e.absolute_path)}' = {value!r}: {e.message}{hint}")
    config = copy.deepcopy(config)
    config["dataset_sources"] = config.get("dataset_sources") or {}
    apply_preset(config)
    _apply_algorithm_overrides(config, where)

    if config["scale"] not in config["scales"]:
        raise ConfigError(unknown_name_message("scale", config["scale"], list(config["scales"]), f"{where}: key 'scale'"))
    for name in config["scales"]:
        s = config["scales"][name]
        k = f"{where}: scales.{name}"
        s.setdefault("behaviour_seeds", [0])  # one run, seed 0: what a config written before the key ran
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
        if s["online_long_steps"] < s["online_steps"]:
            raise ConfigError(f"{k}.online_long_steps = {s['online_long_steps']} must be at least online_steps = "
                              f"{s['online_steps']}")
        if s["eval_steps"] < MAX_EPISODE_STEPS:
            raise ConfigError(f"{k}.eval_steps = {s['eval_steps']} must be at least one whole episode "
                              f"({MAX_EPISODE_STEPS} steps): incomplete evaluation episodes are dropped")
        for study in [*s.get("study_seeds", {}), *s.get("grid_subset", {})]:
            if study not in config["studies"]:
                raise ConfigError(unknown_name_message("study", study, list(config["studies"]), f"{k}.study_seeds"))
    for task in config["algorithms"]["cql"].get("task_overrides", {}):
        env, _, kind = task.partition("/")
        where_task = f"{where}: key 'algorithms.cql.task_overrides.{task}'"
        if env not in ENV_SPECS:
            raise ConfigError(unknown_name_message("env", env, list(ENV_SPECS), where_task + " (write env/dataset)"))
        if kind not in dataset_kinds(config):
            raise ConfigError(unknown_name_message("dataset", kind, dataset_kinds(config),
                                                   where_task + " (write env/dataset)"))
    for rule in ("awac", "bcq"):
        if config["algorithms"].get(rule):
            from wmaug.algos import check_settings  # torch only when these sections change a default

            try:
                check_settings(rule, config["algorithms"][rule], f"{where}: key 'algorithms.{rule}'")
            except InputError as exc:
                raise ConfigError(str(exc)) from exc
    for study, grid in config["studies"].items():
        if study in config["scales"]:
            raise ConfigError(f"{where}: study name '{study}' clashes with a scale name")
        pipeline = grid.setdefault("pipeline", DEFAULT_PIPELINE)
        blocks = [(f"studies.{study}", grid)] + [
            (f"studies.{study}.ablations.{name}", block) for name, block in grid.get("ablations", {}).items()]
        for prefix, block in blocks:
            names = (("envs", list(ENV_SPECS)), ("datasets", dataset_kinds(config)), ("methods", list(METHODS)))
            for key, valid in names:
                for i, value in enumerate(block.get(key, [])):
                    if value not in valid:
                        kind = key[:-1] if key != "datasets" else "dataset"
                        raise ConfigError(unknown_name_message(kind, value, valid, f"{where}: key '{prefix}.{key}[{i}]'"))
            _check_source_only_kinds(config, block.get("envs", grid["envs"]), block.get("datasets", []), prefix, where)
            for i, method in enumerate(block["methods"]):
                if METHODS[method].pipeline != pipeline:
                    raise ConfigError(f"{where}: key '{prefix}.methods[{i}]' = {method!r} is a method of the "
                                      f"'{METHODS[method].pipeline}' pipeline; study '{study}' runs '{pipeline}'")
    _check_grid_subsets(config, where)
    _check_sample_sizes(config, where)
    for env, kinds in config["dataset_sources"].items():
        if env not in ENV_SPECS:
            raise ConfigError(unknown_name_message("environment", env, list(ENV_SPECS), f"{where}: key 'dataset_sources'"))
        for kind, source in kinds.items():
            if not DATASET_NAME.fullmatch(kind):
                raise ConfigError(f"{where}: key 'dataset_sources.{env}.{kind}': a dataset name is lower-case letters, "
                                  f"digits, '_' and '-' (it names folders and Snakemake wildcards)")
            if check_sources:
                from wmaug.data.minari_io import check_finite_streaming, check_source  # h5py only when needed

                try:
                    check_source(source, env, minari_root_of(source))
                    check_finite_streaming(source, minari_root_of(source), CHECKED_SOURCES_DIR)
                except Exception as exc:
                    raise ConfigError(f"{where}: key 'dataset_sources.{env}.{kind}' = {source!r}: {exc}") from exc
    return config


DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9_]*(-[a-z0-9_]+)*")


def dataset_kinds(config: dict) -> list[str]:
    """The dataset names a grid may use: the kinds the harness builds, then every other a source provides (Minari's
    `simple`, say)."""
    extra = (k for kinds in config["dataset_sources"].values() for k in kinds if k not in DATASET_KINDS)
    return DATASET_KINDS + list(dict.fromkeys(extra))


def _check_source_only_kinds(config: dict, envs: list[str], datasets: list[str], prefix: str, where: str) -> None:
    """A dataset the harness cannot build needs a source for every env of its block."""
    for i, kind in enumerate(datasets):
        missing = [e for e in envs if kind not in DATASET_KINDS and not dataset_source(config, e, kind)]
        if missing:
            raise ConfigError(f"{where}: key '{prefix}.datasets[{i}]' = {kind!r}: the harness builds only "
                              f"{', '.join(DATASET_KINDS)}; {kind!r} must come from dataset_sources, which names none "
                              f"for {', '.join(missing)}")


def _check_known_keys(config: dict, where: str) -> None:
    """A misspelled top-level key or algorithm section would otherwise be ignored and its default used."""
    for section, keys, known in ((None, config, SCHEMA["properties"]),
                                 ("algorithms", config.get("algorithms") or {}, SCHEMA["properties"]["algorithms"]["properties"])):
        if not isinstance(keys, dict):
            continue
        for key in keys:
            if key not in known:
                at = f"{where}: key '{section}.{key}'" if section else f"{where}: top-level key '{key}'"
                raise ConfigError(unknown_name_message("key", key, list(known), at))


def _check_grid_subsets(config: dict, where: str) -> None:
    """A scale's grid_subset may only name blocks, envs, datasets and methods its study runs (a block's own names:
    those of that block): a typo would shrink the grid."""
    kinds = {"envs": "environment", "datasets": "dataset", "methods": "method"}
    for name, s in config["scales"].items():
        for study, subset in s.get("grid_subset", {}).items():
            grid = config["studies"][study]
            blocks = {"main": grid, **grid.get("ablations", {})}
            at = f"{where}: key 'scales.{name}.grid_subset.{study}"

            def check(sub: dict, among: list[dict], prefix: str) -> None:
                for key, kind in kinds.items():
                    valid = list(dict.fromkeys(v for b in among for v in b.get(key, grid[key])))
                    for i, value in enumerate(sub.get(key, [])):
                        if value not in valid:
                            raise ConfigError(unknown_name_message(kind, value, valid, f"{prefix}.{key}[{i}]'"))

            check(subset, list(blocks.values()), at)
            for block, sub in subset.get("blocks", {}).items():
                if block not in blocks:
                    raise ConfigError(unknown_name_message("block", block, list(blocks), f"{at}.blocks'"))
                check(sub, [blocks[block]], f"{at}.blocks.{block}")


def _check_sample_sizes(config: dict, where: str) -> None:
    """Every paper-A method's offline sample (a multiple of `offline_samples`) fits the scale's datasets.
    medium-replay's size is only known once its behaviour policy has run; its check is the subsample's."""
    for name, s in config["scales"].items():
        for study, grid in config["studies"].items():
            if not paper(grid["pipeline"]).sized_samples:
                continue
            methods = {m for b in [grid, *grid.get("ablations", {}).values()] for m in b["methods"]}
            for method in sorted(methods):
                n = sample_size(s, METHODS[method])
                if n > s["dataset_transitions"]:
                    raise ConfigError(
                        f"{where}: method '{method}' of study '{study}' samples {METHODS[method].data_scale:g} x "
                        f"offline_samples = {n} transitions, more than scales.{name}.dataset_transitions = "
                        f"{s['dataset_transitions']}")
                if n < 1:
                    raise ConfigError(f"{where}: method '{method}' samples {n} transitions at scale '{name}'")


def sample_size(scale: dict, recipe) -> int:
    """A paper-A cell's offline sample: the recipe's multiple of the scale's `offline_samples`."""
    return int(round(recipe.data_scale * scale["offline_samples"]))


def _apply_algorithm_overrides(config: dict, where: str) -> None:
    """Check every scale's `algorithm_overrides` merged into `algorithms`, then apply the active scale's."""
    merged = {}
    for scale_name, scale in config["scales"].items():
        algorithms = copy.deepcopy(config["algorithms"])
        for name, changes in (scale.get("algorithm_overrides") or {}).items():
            key = f"{where}: key 'scales.{scale_name}.algorithm_overrides.{name}'"
            if name not in algorithms:
                raise ConfigError(unknown_name_message("algorithm", name, list(algorithms), key))
            algorithms[name] = {**algorithms[name], **changes}
        errors = list(jsonschema.Draft7Validator(SCHEMA["properties"]["algorithms"]).iter_errors(algorithms))
        if errors:
            e = errors[0]
            raise ConfigError(f"{where}: 'algorithms.{_key(e.absolute_path)}' = {e.instance!r} (after the overrides of "
                              f"scale '{scale_name}'): {e.message}")
        merged[scale_name] = algorithms
    if config["scale"] in merged:
        config["algorithms"] = merged[config["scale"]]


# ---- paths: one place, used by the Snakefile and the CLI -------------------------------------------

def scale_cfg(config: dict) -> dict:
    return config["scales"][config["scale"]]


def resources_dir(config: dict) -> str:
    return f"resources/{config['scale']}"


def minari_root_of(source: str) -> str:
    """Where a source's Minari dataset lives: the harness's own (wmaug-<scale>/...) under MINARI_ROOT, a user's
    under USER_MINARI_ROOT. D4RL sources are paths and ignore it."""
    return MINARI_ROOT if source.startswith("minari:wmaug-") else USER_MINARI_ROOT


def built_minari_id(scale: str, env: str, kind: str) -> str:
    return f"wmaug-{scale}/{env}/{kind}-v0"


def behaviour_candidate_path(config: dict, env: str, seed) -> str:
    """One behaviour SAC run (`wmaug behaviour --seed`): a candidate for the env's datasets."""
    return f"{resources_dir(config)}/behaviour/{env}/seed{seed}.pt"


def behaviour_path(config: dict, env: str) -> str:
    """The selection record (`wmaug behaviour-select`): which candidate the env's datasets come from, and why."""
    return f"{resources_dir(config)}/behaviour/{env}/behaviour.json"


def dataset_marker(config: dict, env: str, kind: str) -> str:
    """Written last by the dataset rule: the Minari dataset it names is complete."""
    return f"{resources_dir(config)}/datasets/{env}/{kind}.json"


def dataset_source(config: dict, env: str, kind: str) -> str | None:
    """A user-provided source for (env, kind), or None when the harness builds it."""
    return config["dataset_sources"].get(env, {}).get(kind)


def sample_path(config: dict, env: str, kind: str, seed: int, n: int | str | None = None) -> str:
    """The seeded sample of n transitions (default: the scale's `offline_samples`)."""
    n = scale_cfg(config)["offline_samples"] if n is None else n
    return f"{resources_dir(config)}/samples/{env}/{kind}/n{n}/seed{seed}.npz"


def sample_source(path: str | Path) -> str:
    """The dataset source a sample file records it was drawn from."""
    import numpy as np

    with np.load(path) as f:
        return str(f["source"])


def check_sample_source(config: dict, env: str, kind: str, path: str | Path) -> None:
    """A sample drawn from another source than the one configured now (dataset_sources changed since) is stale:
    training on it would silently use the old data."""
    drawn, wanted = sample_source(path), full_dataset_source(config, env, kind)
    if drawn != wanted:
        folder = f"{resources_dir(config)}/samples/{env}/{kind}"
        raise ConfigError(f"{path} was drawn from {drawn!r}, but the config now names {wanted!r} for {env}/{kind} "
                          f"(dataset_sources): delete {folder} and {resources_dir(config)}/world_models/{env}/{kind} "
                          f"so that they are drawn again")


def check_samples_current(config: dict) -> None:
    """Every sample already on disk for this scale comes from its configured source (a cheap read of one field
    per file). Run before a DAG is planned: Snakemake cannot see that a source changed once its metadata is gone."""
    root = Path(resources_dir(config)) / "samples"
    for path in sorted(root.glob("*/*/n*/seed*.npz")):
        env, kind = path.parts[-4], path.parts[-3]
        if env in ENV_SPECS and kind in dataset_kinds(config):
            check_sample_source(config, env, kind, path)
    for marker in sorted(Path(resources_dir(config)).glob("datasets/*/medium-expert.json")):
        check_built_parts(config, marker.parent.name, marker)


def check_built_parts(config: dict, env: str, marker: Path) -> None:
    """A built medium-expert concatenates the medium and expert datasets configured when it was built (recorded as
    `parts` in its marker; a marker without them predates sources for parts: both were the harness's own). After
    dataset_sources or the `datasets` preset changes them, the concatenation is stale."""
    import json

    if env not in ENV_SPECS or dataset_source(config, env, "medium-expert"):
        return  # a user's own medium-expert replaces the built one
    built = json.loads(marker.read_text()).get("parts") or {
        part: f"minari:{built_minari_id(config['scale'], env, part)}" for part in ("medium", "expert")}
    wanted = {part: full_dataset_source(config, env, part) for part in ("medium", "expert")}
    if built != wanted:
        raise ConfigError(f"{marker} concatenates {built}, but the config now names {wanted} for {env}'s medium and "
                          f"expert: delete {marker} so that medium-expert is built again (its samples and world models "
                          f"follow)")


def world_model_path(config: dict, env: str, kind: str, seed: int, n: int | str | None = None,
                     converged: bool = False) -> str:
    """A cell's world model; `converged`: the one trained until its held-out error stops falling (the control)."""
    n = scale_cfg(config)["offline_samples"] if n is None else n
    return f"{resources_dir(config)}/world_models/{env}/{kind}/n{n}/seed{seed}{'_converged' if converged else ''}.pt"


def world_model_error_paths(config: dict, study: str, env: str, kind: str, seed: int | str,
                            converged: bool = False) -> dict[str, str]:
    """The held-out error tables of one world model (the main grid's sample size; `converged`: the control's)."""
    folder = "world_model_error_converged" if converged else "world_model_error"
    base = f"{scale_cfg(config)['results_dir']}/{study}/analysis/{folder}/{env}/{kind}/seed{seed}"
    return {t: f"{base}/{t}.csv" for t in ("summary", "by_distance", "by_dimension")}


def critic_trace_path(config: dict, study: str, env: str, kind: str) -> str:
    return f"{scale_cfg(config)['results_dir']}/{study}/analysis/critic_trace/{env}/{kind}.csv"


def cell_dir(config: dict, study: str, env: str, dataset: str, method: str, seed: int) -> str:
    return f"{scale_cfg(config)['results_dir']}/{study}/{env}/{dataset}/{method}/seed{seed}"


def cell_spec(config: dict, study: str, env: str, dataset: str, method: str, seed: int) -> CellSpec:
    """Everything a cell needs, resolved (a typed spec, `wmaug.core.spec`); its hash without the seed identifies the
    cell's configuration."""
    if study not in config["studies"]:
        raise ConfigError(unknown_name_message("study", study, list(config["studies"]), "cell"))
    cells = {(c["env"], c["dataset"], c["method"]) for c in grid_cells(config, study)}
    for i, (key, value) in enumerate((("envs", env), ("datasets", dataset), ("methods", method))):
        valid = sorted({c[i] for c in cells})
        if value not in valid:
            raise ConfigError(unknown_name_message(key[:-1], value, valid, f"study '{study}'"))
    if (env, dataset, method) not in cells:
        raise ConfigError(f"study '{study}' has no cell {env}/{dataset}/{method} in its grid or ablations")
    recipe = METHODS[method]
    cell = {"study": study, "env": env, "dataset": dataset, "method": method, "seed": seed}
    return paper(recipe.pipeline).load("cell_spec")(config, cell, recipe)


def paper_a_cell_spec(config: dict, cell: dict, recipe) -> CellSpec:
    s = scale_cfg(config)
    env, dataset, seed = cell["env"], cell["dataset"], cell["seed"]
    spec = {
        "cell": cell,
        "scale": config["scale"],
        "budget": {k: s[k] for k in (
            "offline_samples", "offline_iterations", "online_steps", "online_long_steps", "online_start_steps",
            "eval_every", "eval_episodes", "checkpoint_every")},
        "recipe": recipe.as_dict(),
        "td3": config["algorithms"]["td3"],
        "augmentation": config["algorithms"]["augmentation"],
        "paths": {
            "sample": sample_path(config, env, dataset, seed, sample_size(s, recipe)) if recipe.offline else None,
            "world_model": world_model_path(config, env, dataset, seed, sample_size(s, recipe), recipe.converged)
            if recipe.augment else None,
        },
    }
    if recipe.next_state == "noise":  # the model's own held-out error, per state dimension
        spec["paths"]["noise_sd"] = world_model_error_paths(config, cell["study"], env, dataset, seed)["by_dimension"]
    spec["config_hash"] = config_hash(spec)
    return cell_spec_from_json(spec, "config")


def world_model_spec(config: dict) -> dict:
    s = scale_cfg(config)
    return {**config["algorithms"]["world_model"], "epochs": s["world_model_epochs"]}


CONVERGED_DEFAULTS = {"holdout_share": 0.1, "patience": 50, "max_epochs": 3000, "check_every": 5}


def converged_world_model_spec(config: dict) -> dict:
    """The converged-model control's training: the world model's settings, early stopping's instead of epochs."""
    spec = {k: v for k, v in world_model_spec(config).items() if k != "epochs"}
    return {**spec, "early_stopping": {**CONVERGED_DEFAULTS, **config["algorithms"].get("world_model_converged", {})}}


def converged_world_model_jobs(config: dict, study: str) -> list[dict]:
    """(env, dataset, seed, n) of every converged world model the study's cells use."""
    s = scale_cfg(config)
    jobs = {(c["env"], c["dataset"], c["seed"], sample_size(s, METHODS[c["method"]])): None
            for c in grid_cells(config, study) if getattr(METHODS[c["method"]], "converged", False)}
    return [{"env": e, "dataset": d, "seed": seed, "n": n} for e, d, seed, n in jobs]


def study_seeds(config: dict, study: str) -> int:
    s = scale_cfg(config)
    return s.get("study_seeds", {}).get(study, s["seeds"])


def grid_blocks(config: dict, study: str) -> dict[str, dict]:
    """The study's main grid and each ablation block, envs/datasets filled in from the study's."""
    grid = config["studies"][study]
    blocks = {"main": {k: grid[k] for k in ("envs", "datasets", "methods")}}
    for name, block in grid.get("ablations", {}).items():
        blocks[name] = {"envs": block.get("envs", grid["envs"]), "datasets": block.get("datasets", grid["datasets"]),
                        "methods": block["methods"]}
    # A scale may run a sub-grid (smoke: a few tasks of each figure, so the whole DAG stays minutes; evidence: the
    # blocks a few claims read).
    subset = scale_cfg(config).get("grid_subset", {}).get(study)
    if subset:
        kept = subset.get("blocks", {name: {} for name in blocks})
        none = {"envs": [], "datasets": [], "methods": []}  # a block left out stays, empty (figures say "not run")
        blocks = {name: _keep(_keep(b, subset), kept[name]) if name in kept else dict(none)
                  for name, b in blocks.items()}
    return blocks


def _keep(block: dict, subset: dict) -> dict:
    """`block` with only the envs, datasets and methods `subset` names (all where it names none), in block order."""
    return {k: [v for v in block[k] if v in subset.get(k, block[k])] for k in ("envs", "datasets", "methods")}


def grid_cells(config: dict, study: str) -> list[dict]:
    """Every cell of the study once, main grid first, then the ablation blocks' new cells."""
    cells, seen = [], set()
    for block in grid_blocks(config, study).values():
        for e in block["envs"]:
            for d in block["datasets"]:
                for m in block["methods"]:
                    for seed in range(study_seeds(config, study)):
                        if (e, d, m, seed) not in seen:
                            seen.add((e, d, m, seed))
                            cells.append({"study": study, "env": e, "dataset": d, "method": m, "seed": seed})
    return cells


def seed_groups(config: dict) -> dict[str, list[list[int]]]:
    """Per paper A study, its seeds in groups of `seeds_per_job` (each group one job); empty when it is 1. Paper B's
    fine-tuning cells always run a seed per job (their five agents per seed are already one batched ensemble)."""
    size = config.get("seeds_per_job", 1)
    if size == 1:
        return {}
    groups = {}
    for study, grid in config["studies"].items():
        if not study_paper(config, study).seed_groups:  # paper B: five agents per seed are one job already
            continue
        seeds = list(range(study_seeds(config, study)))
        groups[study] = [seeds[i: i + size] for i in range(0, len(seeds), size)]
    return groups


def seed_group_rule(study: str, seeds: list[int]) -> str:
    return f"cell_{study}_seeds{seeds[0]}_{seeds[-1]}"


# ---- paper A's analyses: world-model error (main grid) and Fig 5's critic traces ----------------------

def world_model_error_jobs(config: dict, study: str) -> list[dict]:
    """One held-out error estimate per world model of the main grid (env, dataset, seed)."""
    b = grid_blocks(config, study)["main"]
    if not any(METHODS[m].augment for m in b["methods"]):
        return []
    return [{"env": e, "dataset": d, "seed": seed} for e in b["envs"] for d in b["datasets"]
            for seed in range(study_seeds(config, study))]


FIG5_BLOCK = "fig5_critics"


def critic_trace_jobs(config: dict, study: str) -> list[dict]:
    """The tasks of the study's Fig 5 block (at this scale), each with the cells whose critics it traces."""
    from wmaug.core.methods import FIG5_CRITICS

    block = grid_blocks(config, study).get(FIG5_BLOCK)
    if block is None:
        return []
    cells = {(c["env"], c["dataset"], c["method"]): c for c in grid_cells(config, study)}
    jobs = []
    for e in block["envs"]:
        for d in block["datasets"]:
            dirs = [cell_dir(config, study, e, d, m, seed) for m, _, _ in FIG5_CRITICS
                    for seed in range(study_seeds(config, study)) if (e, d, m) in cells]
            jobs.append({"env": e, "dataset": d, "cells": dirs})
    return jobs


# ---- paper B: pre-trained agents shared by its methods -------------------------------------------------

BLOCK_AGENTS = 5  # a block is the agents of one fine-tuning seed: seed s uses agents 5s .. 5s+4


def pretrained_path(config: dict, algo: str, env: str, kind: str, block: int) -> str:
    return f"{resources_dir(config)}/pretrained/{algo}/{env}/{kind}/block{block}.pt"


def dataset_input(config: dict, env: str, kind: str) -> list[str]:
    """What a job reading the full dataset waits for: the built dataset's marker, or nothing for a user's source."""
    return [] if dataset_source(config, env, kind) else [dataset_marker(config, env, kind)]


def full_dataset_source(config: dict, env: str, kind: str) -> str:
    return dataset_source(config, env, kind) or f"minari:{built_minari_id(config['scale'], env, kind)}"


def cql_for_task(cql: dict, env: str, kind: str) -> dict:
    """An `algorithms.cql` section for one task: its `task_overrides` entry applied (paper B, App. D.1: "2-layer MLPs
    [...] except for halfcheetah-medium-expert task where we found that 3-layer MLPs is more effective"). The CQL
    agents, their FQE critics and the SAC ensemble fine-tuned from them all read it, so their networks agree. A
    fine-tuning cell's spec keeps the whole section (its config hash is the study's, one for every task) and
    resolves it here when it runs."""
    own = {k: v for k, v in cql.items() if k != "task_overrides"}
    return {**own, **cql.get("task_overrides", {}).get(f"{env}/{kind}", {})}


def cql_settings(config: dict, env: str, kind: str) -> dict:
    return cql_for_task(config["algorithms"]["cql"], env, kind)


def pretrain_iterations(scale: dict, algo: str) -> int:
    """A pre-training block's updates at a scale: FQE's own budget; AWAC's own (rlkit's example pre-trains for
    q_num_pretrain2_steps = 50,000 updates: paper B ran it "without any modification to hyperparameters"); CQL's
    1,000 epochs (and BCQ's, which d4rl_evaluations runs as long) otherwise."""
    key = {"fqe": "fqe_iterations", "awac": "awac_pretrain_iterations"}.get(algo, "pretrain_iterations")
    return scale[key]


def pretrain_spec(config: dict, algo: str, env: str, kind: str, block: int) -> PretrainSpec:
    """Everything a pre-training job needs: BLOCK_AGENTS independent agents trained as one batch."""
    from wmaug.core.methods import PRETRAINERS

    if algo not in PRETRAINERS:
        raise ConfigError(unknown_name_message("pre-training rule", algo, list(PRETRAINERS), "pretrain job"))
    s, algos = scale_cfg(config), config["algorithms"]
    return PretrainSpec.from_json({
        "job": {"algo": algo, "env": env, "dataset": kind, "block": block,
                "agent_seeds": list(range(BLOCK_AGENTS * block, BLOCK_AGENTS * (block + 1)))},
        "scale": config["scale"],
        "iterations": pretrain_iterations(s, algo),
        "eval_episodes": s["eval_episodes"],
        "algorithm": algos["fqe"] if algo == "fqe" else cql_settings(config, env, kind) if algo == "cql" else
        algos.get(algo, {}),
        "cql": cql_settings(config, env, kind),  # fqe evaluates the CQL agents' policies
        "paths": {
            "dataset": full_dataset_source(config, env, kind),
            "cql": pretrained_path(config, "cql", env, kind, block) if algo == "fqe" else None,
        },
    }, "config")


def finetune_cell_spec(config: dict, cell: dict, recipe) -> CellSpec:
    s, algos = scale_cfg(config), config["algorithms"]
    spec = {
        "cell": cell,
        "scale": config["scale"],
        "budget": {k: s[k] for k in ("finetune_steps", "finetune_long_steps", "finetune_eval_every", "eval_steps",
                                     "checkpoint_every")},
        "recipe": recipe.as_dict(),
        "algorithms": {k: algos.get(k, {}) for k in ("cql", "finetune", "balanced_replay", "analysis", "awac", "bcq")},
        "paths": {
            "dataset": full_dataset_source(config, cell["env"], cell["dataset"]),
            "pretrained": pretrained_path(config, recipe.pretrain, cell["env"], cell["dataset"], cell["seed"])
            if recipe.pretrain else None,
        },
    }
    spec["config_hash"] = config_hash(spec)
    return cell_spec_from_json(spec, "config")


# ---- what a cell's job reads and how long to ask for, per paper (the registry names these) -----------

def paper_a_cell_inputs(config: dict, spec: PaperACellSpec) -> list[str]:
    return [p for p in (spec.paths.sample, spec.paths.world_model, spec.paths.noise_sd) if p]


def finetune_cell_inputs(config: dict, spec: FinetuneCellSpec) -> list[str]:
    data = dataset_input(config, spec.cell.env, spec.cell.dataset) if spec.recipe.sampling != "online_only" else []
    return data + ([spec.paths.pretrained] if spec.paths.pretrained else [])


def paper_a_cell_minutes(config: dict, spec: PaperACellSpec) -> int:
    """Paper A's TD3 at about 100 steps/s."""
    s, recipe = scale_cfg(config), spec.recipe
    online = s["online_long_steps"] if recipe.long else s["online_steps"]
    offline = s["offline_iterations"] if recipe.offline else 0  # TD3 from scratch has no offline phase
    return max(10, (offline + online) // 6000)


def finetune_cell_minutes(config: dict, spec: FinetuneCellSpec) -> int:
    """Paper B's 5-member ensembles at about 17 steps/s."""
    s = scale_cfg(config)
    return max(10, s["finetune_long_steps" if spec.recipe.long else "finetune_steps"] // 1000)


def minari_env() -> dict:
    """Environment for subprocesses so Minari reads and writes the project's local datasets."""
    return {**os.environ, "MINARI_DATASETS_PATH": os.path.abspath(MINARI_ROOT)}
