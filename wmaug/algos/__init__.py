"""One module per update rule; `build_agent` makes any of them, as the batched E-member learner a config section (or
its config dataclass) describes. Every learner's `update(batch)` returns detached device tensors: a loop reads them
when it logs, so no update waits on a host copy."""

from __future__ import annotations

import logging
from dataclasses import fields, is_dataclass

from wmaug.core.errors import InputError

LOOP_KEYS = ("batch_size",)  # settings the training loop reads, not the update rule
# a rule whose loop reads more: TD3's exploration noise; AWAC's offline batch (rlkit's bc_batch_size in pre-training)
LOOP_KEYS_OF = {"td3": ("batch_size", "exploration_noise"), "awac": ("batch_size", "pretrain_batch_size")}

# rule -> (module, class); the config dataclass is the class's name + "Config"
AGENTS = {
    "td3": ("wmaug.algos.td3", "TD3"),  # TD3, and TD3+BC when its config sets bc_alpha
    "sac": ("wmaug.algos.sac", "SAC"),  # one agent only: the behaviour policy
    "ensemble_sac": ("wmaug.algos.ensemble_sac", "EnsembleSAC"),
    "cql": ("wmaug.algos.cql", "CQL"),
    "awac": ("wmaug.algos.awac", "AWAC"),
    "bcq": ("wmaug.algos.bcq", "BCQ"),
    "fqe": ("wmaug.algos.fqe", "FQE"),
}
SINGLE_AGENT = ("sac",)


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
    valid = [f.name for f in fields(cfg_cls)] + list(LOOP_KEYS_OF.get(rule, LOOP_KEYS))
    for key in settings:
        if key not in valid:
            raise InputError(unknown_name_message(f"{rule} setting", key, valid, where))


def agent_config(rule: str, settings: dict):
    """A rule's config dataclass from a config section: its own keys (lists as tuples), the loop's left out."""
    check_settings(rule, settings, f"algorithms.{rule}")
    cfg_cls = agent_class(rule)[1]
    names = {f.name for f in fields(cfg_cls)}
    return cfg_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items() if k in names})


def build_agent(rule: str, obs_dim: int, act_dim: int, settings, members: int = 1, device="cpu", **extra):
    """Any learner: `settings` is a config section (a dict, checked) or the rule's config dataclass; `extra` goes to
    the learner as is (FQE's `policy_hidden`)."""
    if rule not in AGENTS:
        from wmaug.core.envs import unknown_name_message

        raise InputError(unknown_name_message("update rule", rule, list(AGENTS), "build_agent"))
    cls, cfg_cls = agent_class(rule)
    cfg = settings if is_dataclass(settings) else agent_config(rule, settings)
    if not isinstance(cfg, cfg_cls):
        raise TypeError(f"{rule}: expected a {cfg_cls.__name__}, got a {type(cfg).__name__}")
    if rule in SINGLE_AGENT:
        if members != 1:
            raise ValueError(f"{rule} is a single agent; {members} members asked for")
        return cls(obs_dim, act_dim, cfg, device=device, **extra)
    return cls(obs_dim, act_dim, cfg, members=members, device=device, **extra)


def compile_agent(agent, compile: bool) -> bool:
    """Compile `agent`'s losses when asked and the learner supports it; whether it was compiled."""
    if not compile:
        return False
    if not hasattr(agent, "compile"):
        logging.getLogger("wmaug").warning("--compile: %s has no compiled path; it runs eagerly", type(agent).__name__)
        return False
    agent.compile()
    return True
