"""The reference returns of the normalised score, per dataset source (docs/datasets.md, "Reference scores").

score = 100 x (R - ref_min) / (ref_max - ref_min). D4RL (Fu et al. 2020) fixes one pair per environment
(`d4rl/infos.py`: a random policy's return and an expert SAC's; `wmaug/core/envs.py` holds them). Minari records a
pair per dataset in its metadata: `ref_min_score` and `ref_max_score`, the mean returns of a random policy and of the
dataset's expert policy over `num_episodes_average_score` episodes of its evaluation environment (minari 0.5.4,
`minari.create_dataset_from_buffers`). Minari's Hopper `medium-v0` policy scores about 108 on D4RL's scale: scores
taken against different pairs are not comparable, so each result records its pair, and a figure that mixes pairs
says so.
"""

from __future__ import annotations

import math

from wmaug.core.envs import get_spec

D4RL_TABLE = "D4RL table (d4rl/infos.py)"


def d4rl_reference(env: str, why: str = "") -> dict:
    spec = get_spec(env)
    return {"ref_min": spec.ref_min, "ref_max": spec.ref_max, "from": D4RL_TABLE + (f": {why}" if why else "")}


def metadata_reference(meta: dict, env: str, where: str) -> dict:
    """A Minari dataset's own pair when its metadata has both numbers, else D4RL's (saying why)."""
    low, high = meta.get("ref_min_score"), meta.get("ref_max_score")
    numbers = [v for v in (low, high) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(numbers) < 2:
        return d4rl_reference(env, f"{where} records no ref_min_score/ref_max_score")
    if not high > low:
        raise ValueError(f"{where}: ref_max_score {high} is not above ref_min_score {low}")
    return {"ref_min": float(low), "ref_max": float(high), "from": f"dataset metadata ({where})"}


def reference_score(reference: dict, raw_return):
    """The normalised score against `reference` (the same expression as `wmaug.core.envs.normalized_score`, so that
    D4RL's pair gives bit-identical scores)."""
    return 100.0 * (raw_return - reference["ref_min"]) / (reference["ref_max"] - reference["ref_min"])


def same_pair(a: dict, b: dict) -> bool:
    return (a["ref_min"], a["ref_max"]) == (b["ref_min"], b["ref_max"])


def describe(reference: dict) -> str:
    return f"{reference['ref_min']:g} / {reference['ref_max']:g} ({reference['from']})"


def mixed_reference_note(references: dict[str, list]) -> str:
    """'' when every env's cells were scored against one pair; else a figure's label naming each env's pairs and the
    datasets scored with each. `references`: "study/env/dataset/method/seedN" -> [ref_min, ref_max, from] (the
    `references` attribute of `wmaug.report.aggregate.collect_scores`' table)."""
    by_env: dict[str, dict[tuple, set]] = {}
    for key, (low, high, _) in references.items():
        env, dataset = key.split("/")[1:3]
        by_env.setdefault(env, {}).setdefault((low, high), set()).add(dataset)
    mixed = [f"{env}: " + "; ".join(f"{low:g}/{high:g} for {', '.join(sorted(datasets))}"
                                    for (low, high), datasets in sorted(pairs.items()))
             for env, pairs in sorted(by_env.items()) if len(pairs) > 1]
    return ("mixed reference returns, scores not on one scale (ref min/max): " + " | ".join(mixed)) if mixed else ""
