"""D4RL's dataset protocol (Fu et al. 2020) rebuilt on Gymnasium MuJoCo v5 (docs/protocol.md, common ground).

A behaviour SAC is trained with periodic evaluation checkpoints (`wmaug.behaviour`: a training job, so it lives
above the data layer). `expert` rolls out the final policy,
`medium` the first checkpoint whose return reaches a third of the expert's, `medium-replay` is every
transition the SAC replay buffer held up to that checkpoint, `random` takes uniform random actions and
`medium-expert` concatenates medium and expert. Policies act stochastically, as in D4RL.
"""

from __future__ import annotations

import sys
from typing import Callable

import numpy as np
from tqdm import tqdm

from wmaug.core.envs import get_spec, make_env, normalized_score

# Published D4RL v2 dataset means (mean episode return; docs/datasets.md, "The harness's datasets beside D4RL's"):
# recorded beside each dataset the harness builds, where D4RL's counterpart is known.
D4RL_V2_MEAN_RETURN = {("hopper", "medium"): 1422.0, ("hopper", "expert"): 3511.0, ("halfcheetah", "medium"): 4770.0,
                       ("walker2d", "medium"): 2852.0}
# An `expert` dataset whose mean normalised score is under this at paper scale is far below D4RL's (whose expert
# datasets sit near 100 by construction of the reference returns): the behaviour SAC fell short (docs/datasets.md)
EXPERT_WARNING_SCORE = 60.0


class EpisodeRecorder:
    """Collects transitions into D4RL/Minari-style episodes (T+1 observations, T of everything else)."""

    def __init__(self):
        self.episodes: list[dict] = []
        self._reset_current()

    def _reset_current(self) -> None:
        self.obs, self.actions, self.rewards, self.terms, self.truncs = [], [], [], [], []

    def start(self, obs: np.ndarray) -> None:
        self._reset_current()
        self.obs.append(obs)

    def step(self, action, reward, next_obs, terminated: bool, truncated: bool) -> None:
        self.actions.append(action)
        self.rewards.append(reward)
        self.obs.append(next_obs)
        self.terms.append(terminated)
        self.truncs.append(truncated)
        if terminated or truncated:
            self.close()

    def close(self, cut: bool = False) -> None:
        """Ends the current episode; `cut` marks a budget cut as a truncation."""
        if not self.actions:
            return
        if cut:
            self.truncs[-1] = True
        self.episodes.append({
            "observations": np.asarray(self.obs, np.float32),
            "actions": np.asarray(self.actions, np.float32),
            "rewards": np.asarray(self.rewards, np.float32),
            "terminations": np.asarray(self.terms, bool),
            "truncations": np.asarray(self.truncs, bool),
        })
        self._reset_current()


def rollout_episodes(env_name: str, policy: Callable[[np.ndarray], np.ndarray], n_transitions: int, seed: int,
                     progress: bool = False, desc: str = "rollout") -> list[dict]:
    """Exactly n_transitions steps of `policy` on a named environment."""
    return rollout_on_env(make_env(env_name, seed), policy, n_transitions, seed, progress, desc)


def rollout_on_env(env, policy: Callable[[np.ndarray], np.ndarray], n_transitions: int, seed: int,
                   progress: bool = False, desc: str = "rollout") -> list[dict]:
    """Exactly n_transitions steps of `policy`; the last episode is cut (truncated) at the budget."""
    rec = EpisodeRecorder()
    obs, _ = env.reset(seed=seed)
    rec.start(obs)
    for _ in tqdm(range(n_transitions), disable=not progress, desc=desc, file=sys.stderr, mininterval=5.0):
        action = policy(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rec.step(action, reward, next_obs, terminated, truncated)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
            rec.start(obs)
    rec.close(cut=True)
    return rec.episodes


def uniform_policy(env_name: str, seed: int) -> Callable:
    rng = np.random.default_rng(seed)
    act_dim = get_spec(env_name).act_dim
    return lambda obs: rng.uniform(-1.0, 1.0, act_dim).astype(np.float32)


def pick_medium(checkpoints: list[dict], learning_starts: int, fraction: float = 1.0 / 3.0) -> dict:
    """The first checkpoint of a trained policy (taken after `learning_starts`) whose return reaches
    `fraction` of the expert's (the final checkpoint's). Returns are measured from min(0, first return)
    so that environments with negative returns behave."""
    trained = [c for c in checkpoints if c["step"] > learning_starts]
    if not trained:
        raise ValueError(f"no behaviour checkpoint after the {learning_starts} random start steps: "
                         f"raise behaviour_steps or lower behaviour_eval_every")
    expert = trained[-1]["return"]
    base = min(0.0, checkpoints[0]["return"])
    threshold = base + fraction * (expert - base)
    for ckpt in trained:
        if ckpt["return"] >= threshold:
            return {**ckpt, "threshold": threshold}
    return {**trained[-1], "threshold": threshold}


SELECTION_RULE = ("the candidate whose final policy has the highest evaluation return (the mean over "
                  "behaviour_eval_episodes episodes); a tie goes to the lowest seed")


def select_behaviour(candidates: list[dict]) -> dict:
    """Which of several behaviour SAC runs (one per seed) the datasets of an environment come from: the one whose
    final policy, the `expert` of the D4RL protocol, evaluates highest. One seed decides every dataset of an
    environment, and the same code's seeds end 2,000 and 3,000 apart on hopper (docs/datasets.md); picking the
    strongest of several seeds is what keeps `expert` close to D4RL's fully trained SAC. `candidates` hold each
    run's `seed` and `checkpoints` (steps and returns)."""
    if not candidates:
        raise ValueError("no behaviour candidate to select from: behaviour_seeds is empty")
    ranked = sorted(candidates, key=lambda c: (-c["checkpoints"][-1]["return"], c["seed"]))
    return ranked[0]


def replay_episodes_until(behaviour: dict, step: int) -> list[dict]:
    """Every transition the behaviour SAC collected in its first `step` environment steps, as episodes."""
    out, total = [], 0
    for ep in behaviour["episodes"]:
        n = len(ep["actions"])
        if total + n <= step:
            out.append(ep)
            total += n
        else:
            keep = step - total
            if keep > 0:
                cut = {k: v[: keep + 1] if k == "observations" else v[:keep] for k, v in ep.items()}
                cut["truncations"] = cut["truncations"].copy()
                cut["truncations"][-1] = not cut["terminations"][-1]
                out.append(cut)
            break
    return out


def concatenated_parts(sources: dict[str, str], env: str, root_of: Callable[[str], str]) -> tuple[list, dict, dict]:
    """`medium-expert` as D4RL built it: the `medium` dataset's episodes, then the `expert`'s, each read from its
    configured source (the harness's own datasets, or Minari's under the `minari` preset; `root_of` gives a source's
    Minari root). Returns (episodes, the parts' sources, their shared reference pair)."""
    from wmaug.core.errors import InputError
    from wmaug.core.references import describe, same_pair
    from wmaug.data.minari_io import parse_source, read_minari_episodes, source_reference

    episodes, references = [], []
    for part, source in sources.items():
        scheme, rest = parse_source(source)
        if scheme != "minari":
            raise InputError(f"{env} medium-expert is built from the {part} dataset's episodes, but its source "
                             f"{source} is a D4RL file (a flat table, not episodes): name a source for {env}'s "
                             f"medium-expert too")
        episodes += read_minari_episodes(rest, root_of(source))
        references.append(source_reference(source, env, root_of(source)))
    if not all(same_pair(references[0], r) for r in references):
        raise InputError(f"{env} medium-expert: its parts' reference returns differ ("
                         + "; ".join(f"{part}: {describe(r)}" for part, r in zip(sources, references))
                         + "), so no one normalised score fits the concatenation")
    return episodes, dict(sources), references[0]


def dataset_returns(env: str, kind: str, episodes: list[dict], reference: dict | None = None) -> dict:
    """A dataset's mean and sd episode return and normalised score against `reference` (D4RL's pair by default), beside
    D4RL v2's published mean where known (scored against D4RL's pair, the one it was published with)."""
    from wmaug.core.references import d4rl_reference, reference_score

    reference = reference or d4rl_reference(env)
    returns = [float(np.sum(ep["rewards"])) for ep in episodes if len(ep["rewards"])]
    mean = float(np.mean(returns)) if returns else float("nan")
    out = {"mean_return": mean, "sd_return": float(np.std(returns)) if returns else float("nan"),
           "normalized_score": float(reference_score(reference, mean)), "episodes": len(returns),
           "reference": reference}
    published = D4RL_V2_MEAN_RETURN.get((env, kind))
    if published is not None:
        out.update(d4rl_v2_mean_return=published, d4rl_v2_normalized_score=float(normalized_score(env, published)))
    return out


def strength_warning(env: str, kind: str, scale: str, returns: dict) -> str | None:
    """At paper scale, a warning when an `expert` dataset is far weaker than D4RL's (under EXPERT_WARNING_SCORE
    normalised): every dataset of the env inherits that behaviour run's quality."""
    if scale != "paper" or kind != "expert" or not returns["normalized_score"] < EXPERT_WARNING_SCORE:
        return None
    return (f"{env} expert dataset averages {returns['mean_return']:.0f} return ({returns['normalized_score']:.1f} "
            f"normalised), far below D4RL's expert datasets (about 100; the warning fires under "
            f"{EXPERT_WARNING_SCORE:g}): the behaviour SAC fell short, and medium, medium-replay and medium-expert "
            f"inherit it. Compare with D4RL in docs/datasets.md before reading absolute thresholds.")

