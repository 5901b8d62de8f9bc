"""Every named method as a short recipe over the one offline -> hand-off -> online pipeline.

Paper A's recipes (`Recipe`) run in pipeline.py; paper B's (`FinetuneRecipe`) load agents pre-trained by
their own rule and fine-tune them in finetune.py. Which study uses which is the study's `pipeline`.

Kept free of torch so that the Snakefile can import it to expand and check the grid quickly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Recipe:
    pipeline = "wmaug"
    name: str
    description: str
    offline: bool  # TD3+BC pre-training on the cell's offline sample
    augment: bool = False  # world-model augmentation of next states during pre-training
    # What the hand-off carries into online TD3 (paper A's Fig 4 varies these).
    keep_actor: bool = True
    keep_critic: bool = True
    # The open questions (docs/protocol.md): augmentation rate (None: algorithms.augmentation.rate), k-step
    # latent rollouts, the world model's sampling (False: its mean prediction), the offline sample's size
    # as a multiple of the scale's `offline_samples`, and online TD3 for `online_long_steps` (Fig 5d).
    rate: float | None = None
    rollout_steps: int = 1
    stochastic_model: bool = True
    data_scale: float = 1.0
    long: bool = False
    # The harness's controls for paper A (docs/methods.md, "Controls"): what replaces the drawn rows' next states
    # ("model": the world model's sample; "noise": s' + eps at the model's held-out per-dimension error; "copy": s),
    # and whether the world model is trained until its held-out error stops falling (`world_model_converged`).
    next_state: str = "model"
    converged: bool = False
    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = ("next_state", "converged")  # absent from a spec: the plain recipe

    def __post_init__(self):
        assert self.augment or (self.rate is None and self.rollout_steps == 1 and self.stochastic_model)
        assert self.offline or (self.data_scale == 1.0 and not self.augment)
        assert self.rollout_steps >= 1 and self.data_scale > 0 and (self.rate is None or 0 <= self.rate <= 1)
        assert self.next_state in NEXT_STATES and (self.augment or (self.next_state == "model" and not self.converged))
        assert self.next_state == "model" or (self.rollout_steps == 1 and self.stochastic_model and not self.converged)

    def as_dict(self) -> dict:
        out = {"pipeline": self.pipeline, **asdict(self)}
        # the controls' fields only where they differ from the plain recipe, so every other cell's spec (a rule
        # parameter: Snakemake re-runs a cell whose spec changed) is what it was before the controls existed
        for key, plain in CONTROL_DEFAULTS.items():
            if out[key] == plain:
                del out[key]
        return out


NEXT_STATES = ("model", "noise", "copy")
CONTROL_DEFAULTS = {"next_state": "model", "converged": False}


def _wm(name: str, description: str, **changes) -> Recipe:
    return Recipe(name, description, offline=True, augment=True, **changes)


def _td3bc(name: str, description: str, **changes) -> Recipe:
    return Recipe(name, description, offline=True, **changes)


PAPER_A = [
    _wm("wm_td3bc_td3", "TD3+BC pre-trained with world-model augmentation, then online TD3 (paper A)"),
    _td3bc("td3bc_td3", "TD3+BC pre-trained on the offline sample alone, then online TD3"),
    Recipe("td3", "online TD3 from scratch (25K uniform-random start steps at paper scale)", offline=False),
    # Fig 4: what the hand-off carries (both random = td3)
    _wm("wm_actor_only", "augmented pre-training, online TD3 from its actor and a fresh critic (Fig 4a)",
        keep_critic=False),
    _wm("wm_critic_only", "augmented pre-training, online TD3 from its critic and a fresh actor (Fig 4b)",
        keep_actor=False),
    _td3bc("td3bc_actor_only", "TD3+BC pre-training, online TD3 from its actor and a fresh critic (Fig 4a)",
           keep_critic=False),
    _td3bc("td3bc_critic_only", "TD3+BC pre-training, online TD3 from its critic and a fresh actor (Fig 4b)",
           keep_actor=False),
    # Fig 5: a critic from 5x the data without augmentation, and one trained online only for longer
    _td3bc("td3bc_data_x5", "TD3+BC on 5x the offline sample (50K at paper scale; Fig 5c), then online TD3",
           data_scale=5.0),
    Recipe("td3_long", "online TD3 from scratch for `online_long_steps` (1M at paper scale; Fig 5d)",
           offline=False, long=True),
    # open question: augmentation rate (0.5 is wm_td3bc_td3)
    _wm("wm_rate0", "augmentation rate 0: exactly TD3+BC, through the augmenting pipeline", rate=0.0),
    _wm("wm_rate25", "augmentation rate 0.25", rate=0.25),
    _wm("wm_rate75", "augmentation rate 0.75", rate=0.75),
    _wm("wm_rate100", "augmentation rate 1: every next state from the world model", rate=1.0),
    # open question: k-step latent rollouts (k = 1 is wm_td3bc_td3)
    _wm("wm_k2", "2-step latent rollouts: model-based value expansion over 2 steps", rollout_steps=2),
    _wm("wm_k3", "3-step latent rollouts", rollout_steps=3),
    _wm("wm_k5", "5-step latent rollouts", rollout_steps=5),
    # open question: offline sample size (5K / 10K / 50K / 100K at paper scale), with and without augmentation
    _wm("wm_data_half", "augmented, on half the offline sample (5K at paper scale)", data_scale=0.5),
    _wm("wm_data_x5", "augmented, on 5x the offline sample (50K at paper scale)", data_scale=5.0),
    _wm("wm_data_x10", "augmented, on 10x the offline sample (100K at paper scale)", data_scale=10.0),
    _td3bc("td3bc_data_half", "TD3+BC on half the offline sample (5K at paper scale)", data_scale=0.5),
    _td3bc("td3bc_data_x10", "TD3+BC on 10x the offline sample (100K at paper scale)", data_scale=10.0),
    # open question: does the world model's stochasticity help (run on a deterministic and a noisy env)
    _wm("wm_mean_td3bc_td3", "augmentation with the world model's mean prediction (z = mu), no sampling",
        stochastic_model=False),
    # the harness's controls: is augmentation's gain the model's knowledge of the dynamics, or noise on the targets?
    _wm("wm_noise_td3bc_td3", "noise control: the same rows' next states become s' + eps, eps ~ N(0, the world "
        "model's held-out error per dimension)", next_state="noise"),
    _wm("wm_copy_td3bc_td3", "copy control: the same rows' next states become s (a model that knows nothing)",
        next_state="copy"),
    _wm("wm_converged_td3bc_td3", "augmentation from a world model trained until its held-out error stops falling",
        converged=True),
]


# ---- paper B ----------------------------------------------------------------------------------------
PRETRAINERS = ("cql", "awac", "bcq", "fqe")  # fqe: the CQL agents' policies with FQE-trained (neutral) critics
SAMPLINGS = ("balanced", "balanced_alt", "uniform", "online_only")
ONLINE_RULES = ("ensemble_sac", "awac", "bcq")


@dataclass(frozen=True)
class FinetuneRecipe:
    pipeline = "balanced_replay"
    name: str
    description: str
    pretrain: str | None  # which pre-trained agents it starts from (None: from scratch)
    members: int  # ensemble size: members 0..members-1 of the cell seed's block of pre-trained agents
    sampling: str  # balanced: density-ratio priorities; balanced_alt: the appendix's ratio; uniform; online_only
    online: str  # the fine-tuning update rule
    keep_cql: bool = False  # CQL's regulariser stays on during fine-tuning (appendix ablation)
    long: bool = False  # the appendix's long halfcheetah runs: `finetune_long_steps` instead of `finetune_steps`
    # the first block of updates is `finetune.first_updates` (5,000) instead of the usual one: paper B gives that burst
    # "for our method" (App. D.1), so its ablations keep it and the baselines do not
    burst: bool = True

    def __post_init__(self):
        assert self.pretrain in (None, *PRETRAINERS) and self.sampling in SAMPLINGS and self.online in ONLINE_RULES

    def as_dict(self) -> dict:
        return {"pipeline": self.pipeline, **asdict(self)}


def _ours(name: str, description: str, **changes) -> FinetuneRecipe:
    base = dict(pretrain="cql", members=5, sampling="balanced", online="ensemble_sac")
    return FinetuneRecipe(name, description, **{**base, **changes})


PAPER_B = [
    _ours("ours", "5 CQL agents -> SAC on their pessimistic Q-ensemble with balanced replay (paper B)"),
    FinetuneRecipe("awac", "AWAC offline, then AWAC online on offline + online samples (5-member ensemble)",
                   pretrain="awac", members=5, sampling="uniform", online="awac", burst=False),
    FinetuneRecipe("bcq_ft", "BCQ offline, then BCQ on offline + online samples (5-member ensemble)",
                   pretrain="bcq", members=5, sampling="uniform", online="bcq", burst=False),
    _ours("sac_ft", "one CQL agent -> plain SAC, uniform over offline + online samples", members=1, sampling="uniform",
          burst=False),
    # "we applied ensemble to all baselines except SAC-ft" (paper B, Sec. 6.1): SAC from scratch as a 5-member
    # ensemble; rlkit's single SAC ("default hyperparameters", App. D.1) beside it, since the text is ambiguous
    _ours("sac", "SAC from scratch on a 5-member ensemble, online samples only", pretrain=None, sampling="online_only",
          burst=False),
    _ours("sac_single", "SAC from scratch, one agent (rlkit's SAC), online samples only", pretrain=None, members=1,
          sampling="online_only", burst=False),
    # ablations
    _ours("sac_ft_online_only", "one CQL agent -> plain SAC on online samples only (Fig 1b)", members=1,
          sampling="online_only", burst=False),
    _ours("ours_uniform", "ours with uniform sampling over offline + online (Fig 4c)", sampling="uniform"),
    _ours("ours_online_only", "ours on online samples only (Fig 4c)", sampling="online_only"),
    _ours("ours_e1", "ours with one CQL agent (Fig 4d; CQL-init in Fig 1c)", members=1),
    _ours("ours_e2", "ours with two CQL agents (Fig 4d)", members=2),
    _ours("fqe_e1", "one CQL policy with an FQE-trained (neutral) Q, balanced replay (Fig 1c)", pretrain="fqe",
          members=1),
    _ours("ours_keep_cql", "ours with CQL's regulariser kept during fine-tuning (appendix)", keep_cql=True),
    _ours("ours_alt_ratio", "ours with the appendix's density ratio d_on / d_(off+on)", sampling="balanced_alt"),
    _ours("ours_long", "ours for the appendix's long halfcheetah runs", long=True),
    _ours("fqe_long", "5 CQL policies with FQE critics, balanced replay, long runs (appendix)", pretrain="fqe",
          long=True),
]

METHODS: dict[str, Recipe | FinetuneRecipe] = {r.name: r for r in PAPER_A + PAPER_B}

# Display names and a fixed colour per method so every figure reads the same.
METHOD_LABELS = {
    "wm_td3bc_td3": "WM-TD3+BC -> TD3 (ours)", "td3bc_td3": "TD3+BC -> TD3", "td3": "TD3 (scratch)",
    "ours": "Ours (balanced replay + Q-ensemble)", "awac": "AWAC", "bcq_ft": "BCQ-ft", "sac_ft": "SAC-ft",
    "sac": "SAC (scratch, 5-member ensemble)", "sac_single": "SAC (scratch, one agent)",
    "sac_ft_online_only": "CQL -> SAC, online only", "ours_uniform": "Uniform",
    "ours_online_only": "Online only", "ours_e1": "Ensemble N=1", "ours_e2": "Ensemble N=2",
    "fqe_e1": "FQE-init (neutral Q)", "ours_keep_cql": "CQL regulariser kept", "ours_alt_ratio": "d_on / d_(off+on)",
    "ours_long": "Ours (CQL-init ensemble)", "fqe_long": "FQE-init ensemble",
    "wm_actor_only": "actor only, with aug.", "wm_critic_only": "critic only, with aug.",
    "td3bc_actor_only": "actor only, w/o aug.", "td3bc_critic_only": "critic only, w/o aug.",
    "td3bc_data_x5": "TD3+BC, 5x data -> TD3", "td3_long": "TD3 (scratch, long)",
    "wm_rate0": "rate 0", "wm_rate25": "rate 0.25", "wm_rate75": "rate 0.75", "wm_rate100": "rate 1",
    "wm_k2": "k = 2", "wm_k3": "k = 3", "wm_k5": "k = 5",
    "wm_data_half": "WM, 0.5x data", "wm_data_x5": "WM, 5x data", "wm_data_x10": "WM, 10x data",
    "td3bc_data_half": "TD3+BC, 0.5x data", "td3bc_data_x10": "TD3+BC, 10x data",
    "wm_mean_td3bc_td3": "WM mean prediction (no sampling)",
}

# Paper A's Fig 5: which cell's critic each panel shows, at the hand-off ("offline") or at the end ("final").
FIG5_CRITICS = [
    ("wm_td3bc_td3", "offline", "offline sample, with augmentation"),
    ("td3bc_td3", "offline", "offline sample, without augmentation"),
    ("td3bc_data_x5", "offline", "5x the offline sample, without augmentation"),
    ("td3_long", "final", "online only (long run)"),
]
