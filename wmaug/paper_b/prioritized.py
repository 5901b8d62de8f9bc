"""Paper B's balanced replay (Lee et al. 2021): one prioritised buffer over offline and online transitions.

Numbers are from docs/protocol.md, section "Paper B". A transition i is drawn with probability

    P(i) = p_i / sum_j p_j,        p_i = w(s_i, a_i)^(1/T) / mean_offline_batch(w_off^(1/T)),  clamped to [1e-3, 1e3]

with w the density ratio d_online / d_offline (wmaug.paper_b.density_ratio); no importance weights. Offline
transitions enter with p = 1; online ones with the running-max priority, which starts at p0 = M f / ((1 - f) N),
so that once N online transitions are in, their share of the draws is N p0 / (M + N p0) = f.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from wmaug.data.buffer import FIELDS, Batch, RowLayout
from wmaug.data.transitions import Transitions

PRIORITY_MIN, PRIORITY_MAX = 1e-3, 1e3  # docs/protocol.md: priorities clamped to [0.001, 1000]


class SumTree:
    """Binary sum tree in one float64 array, heap order: node k has children 2k, 2k + 1, the root is node 1 and
    leaf i is node L + i, with L the capacity rounded up to a power of two (the padding leaves stay 0).

    Every operation works on a whole vector of indices or queries at once, one tree level per numpy step, so
    a batch of 256 costs ~log2(L) small numpy calls rather than 256 x log2(L) Python steps. Parents are always
    recomputed from their children (never patched with +delta), so rounding cannot drift over millions of
    updates and a parent is exactly fl(left + right), which the descent in `sample` relies on.
    """

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError(f"SumTree capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.leaf0 = 1 << max(0, (capacity - 1).bit_length())  # L: first leaf node
        self.depth = self.leaf0.bit_length() - 1  # levels between the root and the leaves
        self.tree = np.zeros(2 * self.leaf0, dtype=np.float64)

    def total(self) -> float:
        return float(self.tree[1])

    def get(self, indices) -> np.ndarray:
        return self.tree[self.leaf0 + np.asarray(indices, dtype=np.int64)]

    def leaves(self) -> np.ndarray:
        return self.tree[self.leaf0 : self.leaf0 + self.capacity].copy()

    def build(self, priorities: np.ndarray) -> None:
        """Set all capacity leaves at once and rebuild every level with slice sums: O(n), no Python loop."""
        priorities = self._check(np.asarray(priorities, dtype=np.float64))
        if priorities.shape != (self.capacity,):
            raise ValueError(f"SumTree.build needs {self.capacity} priorities, got shape {priorities.shape}")
        self.tree[:] = 0.0
        self.tree[self.leaf0 : self.leaf0 + self.capacity] = priorities
        lo = self.leaf0
        while lo > 1:
            lo //= 2
            self.tree[lo : 2 * lo] = self.tree[2 * lo : 4 * lo : 2] + self.tree[2 * lo + 1 : 4 * lo : 2]

    def set(self, index: int, priority: float) -> None:
        """One leaf, in plain Python: the per-environment-step path, ~10x cheaper than a length-1 `update`."""
        if not 0 <= index < self.capacity:
            raise IndexError(f"SumTree index {index} outside [0, {self.capacity})")
        if not (math.isfinite(priority) and priority >= 0):
            raise ValueError(f"SumTree priorities must be finite and >= 0, got {priority}")
        tree, node = self.tree, self.leaf0 + int(index)
        tree[node] = priority
        while node > 1:
            node //= 2
            tree[node] = tree[2 * node] + tree[2 * node + 1]

    def update(self, indices, priorities) -> None:
        """Set leaves[indices] = priorities. With repeated indices the last write wins (made explicit: numpy
        leaves the order of repeated fancy-index writes unspecified)."""
        indices = np.asarray(indices, dtype=np.int64).ravel()
        priorities = self._check(np.broadcast_to(np.asarray(priorities, dtype=np.float64), indices.shape))
        if indices.size == 0:
            return
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"SumTree indices outside [0, {self.capacity})")
        uniq, first_from_end = np.unique(indices[::-1], return_index=True)
        nodes, tree = self.leaf0 + uniq, self.tree
        tree[nodes] = priorities[indices.size - 1 - first_from_end]
        # Repeated parents are harmless: each write stores the same fl(left + right) of already final children.
        for _ in range(self.depth):
            nodes >>= 1
            left = nodes << 1
            tree[nodes] = tree[left] + tree[left + 1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n i.i.d. leaf indices, P(i) = leaf_i / total, by descending all n queries together.

        A query u in [0, node) goes left if u < left, else right with u - left. Rounding can leave u at or past
        the end of a subtree (u = total, or u - left >= right) and so walk into a zero child; the few queries
        that end on a zero leaf (padding, an unfilled slot) are redone by `_descend_guarded`, which never steps
        into a zero child. Two passes keep the common path at five numpy calls per level.
        """
        total = self.tree[1]
        if not total > 0:
            raise ValueError("SumTree.sample: all priorities are zero")
        u0 = rng.random(n) * total
        u, node, tree = u0.copy(), np.ones(n, dtype=np.int64), self.tree
        for _ in range(self.depth):
            node <<= 1
            left = tree[node]
            go_right = u >= left
            np.subtract(u, left, out=u, where=go_right)
            node += go_right
        bad = tree[node] == 0
        if bad.any():
            node[bad] = self._descend_guarded(u0[bad])
        return node - self.leaf0

    def _descend_guarded(self, u: np.ndarray) -> np.ndarray:
        """The descent that never enters a zero child: every node it visits is positive (induction from a
        positive root: it goes right only onto a positive child, left only when u < left or right = 0)."""
        node, tree = np.ones(len(u), dtype=np.int64), self.tree
        for _ in range(self.depth):
            node <<= 1
            left = tree[node]
            go_right = (u >= left) & (tree[node + 1] > 0)
            np.subtract(u, left, out=u, where=go_right)
            node += go_right
        return node

    @staticmethod
    def _check(priorities: np.ndarray) -> np.ndarray:
        if priorities.size and not (np.isfinite(priorities).all() and priorities.min() >= 0):
            raise ValueError("SumTree priorities must be finite and >= 0")
        return priorities


def _offline_check(data: Transitions) -> str:
    """A cheap fingerprint of the offline set (its size, and up to 1,024 evenly spaced rows of every field):
    enough to refuse a checkpoint resumed against a different dataset without hashing ~400 MB."""
    rows = np.linspace(0, len(data) - 1, num=min(len(data), 1024)).astype(np.int64)
    h = hashlib.sha256(str((len(data), data.obs_dim, data.act_dim)).encode())
    for key in FIELDS:
        h.update(np.ascontiguousarray(getattr(data, key)[rows], dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


class BalancedReplay:
    """Offline rows [0, M) followed by an online ring [M, M + online_capacity), one sum tree over both."""

    def __init__(self, offline: Transitions, obs_dim: int, act_dim: int, online_capacity: int, device="cpu",
                 f: float = 0.5, n_default: int = 1000):
        m = len(offline)
        if m == 0 or online_capacity <= 0:
            raise ValueError(f"BalancedReplay needs offline rows and online capacity, got {m}, {online_capacity}")
        if (offline.obs_dim, offline.act_dim) != (obs_dim, act_dim):
            raise ValueError(f"offline data is {offline.obs_dim}/{offline.act_dim}-dim, expected {obs_dim}/{act_dim}")
        if not 0 < f < 1 or n_default <= 0:
            raise ValueError(f"BalancedReplay needs 0 < f < 1 and n_default > 0, got f={f}, n_default={n_default}")
        self.offline_size, self.online_capacity = m, online_capacity
        self.device = torch.device(device)
        self.f, self.n_default = f, n_default
        self.layout = RowLayout(obs_dim, act_dim)  # one row per transition, as in ReplayBuffer
        self.rows = torch.zeros((m + online_capacity, self.layout.width), dtype=torch.float32, device=self.device)
        self.storage = self.layout.views(self.rows)
        for key in FIELDS:
            self.storage[key][:m] = torch.as_tensor(getattr(offline, key), dtype=torch.float32).to(self.device)
        self.offline_check = _offline_check(offline)
        self.tree = SumTree(m + online_capacity)
        self.tree.build(np.concatenate([np.ones(m), np.zeros(online_capacity)]))
        # p0 = M f / ((1 - f) N): N online entries at p0 carry mass M f / (1 - f), a share f of the total.
        # The offline entry value 1 is not a "set" priority and does not count towards the running max.
        self.max_priority = m * f / ((1 - f) * n_default)
        self.online_size = 0
        self.pos = 0  # next online slot, relative to M

    def __len__(self) -> int:
        return self.offline_size + self.online_size

    def add(self, obs, action, reward: float, next_obs, terminal: bool) -> None:
        """One online transition, at the running-max priority (also when it overwrites an old slot)."""
        row = self.offline_size + self.pos
        self.rows[row] = torch.from_numpy(self.layout.pack(obs, action, reward, next_obs, terminal))
        self.tree.set(row, self.max_priority)
        self.pos = (self.pos + 1) % self.online_capacity
        self.online_size = min(self.online_size + 1, self.online_capacity)

    def add_batch(self, observations, actions, rewards, next_observations, terminals) -> None:
        """Many online transitions in order, as if `add` were called on each (only the last capacity survive)."""
        values = dict(zip(FIELDS, (observations, actions, rewards, next_observations, terminals)))
        values = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in values.items()}
        n = len(values["observations"])
        keep = min(n, self.online_capacity)
        slots = (self.pos + np.arange(n - keep, n)) % self.online_capacity
        rows = self.offline_size + slots
        rows_t = torch.from_numpy(rows).to(self.device)
        for key, value in values.items():
            self.storage[key][rows_t] = value[n - keep :].to(self.device)
        self.tree.update(rows, self.max_priority)
        self.pos = (self.pos + n) % self.online_capacity
        self.online_size = min(self.online_size + n, self.online_capacity)

    def _gather(self, idx: np.ndarray) -> Batch:
        rows = torch.from_numpy(idx).to(self.device)
        return self.layout.batch(self.rows.index_select(0, rows))

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[Batch, np.ndarray, np.ndarray]:
        """Proportional to priority, no importance weights. Returns the batch, its row indices (to pass back to
        `update_priorities`) and which rows are offline."""
        idx = self.tree.sample(batch_size, rng)
        return self._gather(idx), idx, idx < self.offline_size

    def update_priorities(self, indices, priorities) -> None:
        if torch.is_tensor(priorities):
            priorities = priorities.detach().cpu().numpy()
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"priority update for rows outside the {len(self)} filled ones")
        p = np.clip(np.asarray(priorities, dtype=np.float64), PRIORITY_MIN, PRIORITY_MAX)
        self.tree.update(indices, p)
        if p.size:
            self.max_priority = max(self.max_priority, float(p.max()))

    def sample_uniform_offline(self, n: int, rng: np.random.Generator) -> Batch:
        """Uniform over the offline rows: the density-ratio network's Q samples, independent of priorities."""
        return self._gather(rng.integers(0, self.offline_size, size=n))

    def sample_uniform_online(self, n: int, rng: np.random.Generator) -> Batch:
        if self.online_size == 0:
            raise ValueError("sample_uniform_online: no online transitions yet")
        return self._gather(self.offline_size + rng.integers(0, self.online_size, size=n))

    def recent_online(self, n: int) -> Batch:
        """The last n online transitions, newest first."""
        k = min(n, self.online_size)
        return self._gather(self.offline_size + (self.pos - 1 - np.arange(k)) % self.online_capacity)

    def state_dict(self) -> dict:
        """Online rows, every priority and the running max; the offline rows are re-loaded from the dataset, so
        only their count and fingerprint are kept."""
        m, n = self.offline_size, self.online_size
        return {
            "offline_size": m, "offline_check": self.offline_check,
            "online_capacity": self.online_capacity, "online_size": n, "pos": self.pos,
            "f": self.f, "n_default": self.n_default, "max_priority": self.max_priority,
            "priorities": torch.from_numpy(self.tree.leaves()[: m + n]),
            **{key: self.storage[key][m : m + n].cpu().clone() for key in FIELDS},
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("offline_size", "offline_check", "online_capacity"):
            if state[key] != getattr(self, key):
                raise ValueError(f"BalancedReplay checkpoint has {key}={state[key]!r}, buffer {getattr(self, key)!r}")
        m, n = self.offline_size, state["online_size"]
        for key in FIELDS:
            self.storage[key][m : m + n] = state[key].to(self.device)
        leaves = np.zeros(self.tree.capacity)
        leaves[: m + n] = torch.as_tensor(state["priorities"]).numpy()
        self.tree.build(leaves)
        self.online_size, self.pos = n, state["pos"]
        self.f, self.n_default, self.max_priority = state["f"], state["n_default"], state["max_priority"]
