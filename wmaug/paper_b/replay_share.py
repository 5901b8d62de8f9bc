"""Paper B's Fig 4a: the share of offline samples in the balanced-replay batches over time.

Claim B5: offline samples fade quickly from the batches on random data and stay on medium-expert. The
trainer feeds each replay batch's is-offline mask to `add`; the logger calls `pop` once per logging
interval (paper: every 1,000 environment steps) for one point of the curve.
"""

from __future__ import annotations

import numpy as np


class OfflineShare:
    """Mean over batches of (offline samples / batch size), since the last `pop`.

    Every batch weighs the same (each is one gradient update); with a fixed batch size this equals the
    pooled fraction of offline samples.
    """

    def __init__(self):
        self._sum = 0.0
        self._batches = 0

    def add(self, is_offline: np.ndarray) -> None:
        """One replay batch's mask: True where the sampled transition came from the offline dataset."""
        mask = np.asarray(is_offline)
        if mask.dtype != np.bool_:
            raise TypeError(f"OfflineShare.add: need a boolean mask, got dtype {mask.dtype}")
        if mask.size == 0:
            raise ValueError("OfflineShare.add: an empty batch has no offline share")
        self._sum += float(mask.mean())
        self._batches += 1

    def __len__(self) -> int:
        """Batches added since the last pop."""
        return self._batches

    def pop(self) -> float:
        """The mean share since the last pop (nan if no batch was added), and start a new interval."""
        share = self._sum / self._batches if self._batches else float("nan")
        self._sum, self._batches = 0.0, 0
        return share
