"""Every named method as a short recipe over the one offline -> hand-off -> online pipeline.

Paper A's recipes (`Recipe`) run in pipeline.py; paper B's (`FinetuneRecipe`) load agents pre-trained by
their own rule and fine-tune them in finetune.py. Which study uses which is the study's `pipeline`.

Kept free of torch so that the Snakefile can import it to expand and check the grid quickly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


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

    def as_dict(self) -> dict:
        return {"pipeline": self.pipeline, **asdict(self)}


PAPER_A = [
        Recipe("wm_td3bc_td3", "TD3+BC pre-trained with world-model augmentation, then online TD3 (paper A)",
               offline=True, augment=True),
        Recipe("td3bc_td3", "TD3+BC pre-trained on the offline sample alone, then online TD3", offline=True),
        Recipe("td3", "online TD3 from scratch (25K uniform-random start steps at paper scale)", offline=False),
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
                   pretrain="awac", members=5, sampling="uniform", online="awac"),
    FinetuneRecipe("bcq_ft", "BCQ offline, then BCQ on offline + online samples (5-member ensemble)",
                   pretrain="bcq", members=5, sampling="uniform", online="bcq"),
    _ours("sac_ft", "one CQL agent -> plain SAC, uniform over offline + online samples", members=1, sampling="uniform"),
    _ours("sac", "SAC from scratch on a 5-member ensemble, online samples only", pretrain=None, sampling="online_only"),
    # ablations
    _ours("sac_ft_online_only", "one CQL agent -> plain SAC on online samples only (Fig 1b)", members=1,
          sampling="online_only"),
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
    "sac": "SAC (scratch)", "sac_ft_online_only": "CQL -> SAC, online only", "ours_uniform": "Uniform",
    "ours_online_only": "Online only", "ours_e1": "Ensemble N=1", "ours_e2": "Ensemble N=2",
    "fqe_e1": "FQE-init (neutral Q)", "ours_keep_cql": "CQL regulariser kept", "ours_alt_ratio": "d_on / d_(off+on)",
    "ours_long": "Ours (CQL-init ensemble)", "fqe_long": "FQE-init ensemble",
}
