"""Every named method as a short recipe over the one offline -> hand-off -> online pipeline (pipeline.py).

Kept free of torch so that the Snakefile can import it to expand and check the grid quickly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    offline: bool  # TD3+BC pre-training on the cell's offline sample
    augment: bool = False  # world-model augmentation of next states during pre-training
    # What the hand-off carries into online TD3 (paper A's Fig 4 varies these).
    keep_actor: bool = True
    keep_critic: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


METHODS: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe("wm_td3bc_td3", "TD3+BC pre-trained with world-model augmentation, then online TD3 (paper A)",
               offline=True, augment=True),
        Recipe("td3bc_td3", "TD3+BC pre-trained on the offline sample alone, then online TD3", offline=True),
        Recipe("td3", "online TD3 from scratch (25K uniform-random start steps at paper scale)", offline=False),
    ]
}

# Display names and a fixed colour per method so every figure reads the same.
METHOD_LABELS = {"wm_td3bc_td3": "WM-TD3+BC -> TD3 (ours)", "td3bc_td3": "TD3+BC -> TD3", "td3": "TD3 (scratch)"}
