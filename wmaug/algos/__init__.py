"""One module per update rule; `build_agent` makes the batched E-member learner a config section names."""

from __future__ import annotations

import logging
from dataclasses import fields

from wmaug.core.errors import InputError

LOOP_KEYS = ("batch_size",)  # settings the training loop reads, not the update rule


AGENTS = {"cql": ("wmaug.algos.cql", "CQL"), "awac": ("wmaug.algos.awac", "AWAC"), "bcq": ("wmaug.algos.bcq", "BCQ")}


def agent_class(rule: str) -> tuple[type, type]:
    """The learner and its config dataclass; imported on demand."""
    import importlib

    module_name, cls_name = AGENTS[rule]
    module = importlib.import_module(module_name)
    return getattr(module, cls_name), getattr(module, f"{cls_name}Config")


def check_settings(rule: str, settings: dict, where: str) -> None:
    """Unknown keys of an algorithm section get the list of valid ones, before any compute."""
    from wmaug.core.envs import unknown_name_message

    cfg_cls = agent_class(rule)[1]
    valid = [f.name for f in fields(cfg_cls)] + list(LOOP_KEYS)
    for key in settings:
        if key not in valid:
            raise InputError(unknown_name_message(f"{rule} setting", key, valid, where))


def build_agent(rule: str, obs_dim: int, act_dim: int, settings: dict, members: int, device):
    check_settings(rule, settings, f"algorithms.{rule}")
    cls, cfg_cls = agent_class(rule)
    names = {f.name for f in fields(cfg_cls)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items() if k in names}
    return cls(obs_dim, act_dim, cfg_cls(**kwargs), members=members, device=device)


def compile_agent(agent, compile: bool) -> bool:
    """Compile `agent`'s losses when asked and the learner supports it; whether it was compiled."""
    if not compile:
        return False
    if not hasattr(agent, "compile"):
        logging.getLogger("wmaug").warning("--compile: %s has no compiled path; it runs eagerly", type(agent).__name__)
        return False
    agent.compile()
    return True
