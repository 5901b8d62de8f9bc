"""Dataset presets: which of a grid's datasets come from published sets and which the harness builds
(docs/datasets.md, "The `minari` preset").

`--config datasets=minari` takes Minari's MuJoCo datasets where they exist: `mujoco/<env>/{simple,medium,expert}-v0`,
collected on the v5 environments the harness runs (Minari's dataset pages; `minari list remote`). Minari publishes no
`random`, `medium-replay` or `medium-expert`: the harness builds them as D4RL did (Fu et al. 2020): `random` from
uniform random actions, `medium-replay` from its own behaviour SAC's replay buffer (Minari publishes no replay
buffer), and `medium-expert` by concatenating the `medium` and `expert` episodes, here Minari's.
"""

from __future__ import annotations

PRESETS = ("built", "minari")  # built: every dataset from the harness's own behaviour SAC (the default)
MINARI_KINDS = ("simple", "medium", "expert")
# The harness's environments with a Minari MuJoCo counterpart. hopper_noisy has none: Minari's Hopper data comes from
# the noiseless task, so it keeps the harness's own datasets.
MINARI_ENVS = {"halfcheetah": "halfcheetah", "hopper": "hopper", "walker2d": "walker2d", "ant": "ant"}


def minari_id(env: str, kind: str) -> str:
    return f"mujoco/{MINARI_ENVS[env]}/{kind}-v0"


def preset_sources(preset: str, tasks: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """The dataset_sources a preset adds for the grid's (env, dataset) tasks: the Minari sets those tasks read, and
    `medium` and `expert` where `medium-expert` is built from them."""
    if preset == "built":
        return {}
    out: dict[str, dict[str, str]] = {}
    for env, kind in tasks:
        kinds = ("medium", "expert") if kind == "medium-expert" else (kind,)
        for k in kinds:
            if env in MINARI_ENVS and k in MINARI_KINDS:
                out.setdefault(env, {})[k] = f"minari:{minari_id(env, k)}"
    return out


def apply_preset(config: dict) -> None:
    """Fills `dataset_sources` from the config's `datasets` preset for every task of its studies (a source the user
    names in dataset_sources wins)."""
    tasks = [(e, d) for grid in config["studies"].values()
             for block in [grid, *grid.get("ablations", {}).values()]
             for e in block.get("envs", grid["envs"]) for d in block.get("datasets", grid["datasets"])]
    for env, kinds in preset_sources(config.get("datasets", "built"), tasks).items():
        for kind, source in kinds.items():
            config["dataset_sources"].setdefault(env, {}).setdefault(kind, source)
