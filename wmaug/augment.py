"""Paper A's augmentation: in every sampled batch a fresh random share of the next states is replaced by
world-model samples for (s, a). Rewards and terminals stay from the data; nothing augmented is stored."""

from __future__ import annotations

import torch

from wmaug.data.buffer import Batch


class WorldModelAugmenter:
    def __init__(self, world_model, rate: float):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"augmentation rate must lie in [0, 1], got {rate}")
        self.world_model = world_model
        self.rate = rate

    def __call__(self, batch: Batch) -> Batch:
        n = round(self.rate * len(batch.observations))
        if n == 0:
            # Draw nothing from the random stream, so rate 0 is exactly the un-augmented run.
            return batch
        idx = torch.randperm(len(batch.observations), device=batch.observations.device)[:n]
        next_obs = batch.next_observations.clone()
        next_obs[idx] = self.world_model.sample_next(batch.observations[idx], batch.actions[idx])
        return batch.replace(next_observations=next_obs)
