"""Replay storage: one packed row per transition, and the seeds of a cell sharing one tensor (ReplayGroup)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmaug.data.buffer import FIELDS, ReplayBuffer, ReplayGroup
from wmaug.data.transitions import Transitions

OBS, ACT = 5, 2


def random_transitions(n: int, seed: int) -> Transitions:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return Transitions(observations=rng.normal(size=(n, OBS)).astype(f32),
                       actions=rng.uniform(-1, 1, (n, ACT)).astype(f32), rewards=rng.normal(size=n).astype(f32),
                       next_observations=rng.normal(size=(n, OBS)).astype(f32),
                       terminals=(rng.random(n) < 0.1).astype(f32), timeouts=np.zeros(n, f32))


def steps(data: Transitions):
    """The transitions as `add` receives them from an environment: float64 states, a bool terminal."""
    for i in range(len(data)):
        yield (data.observations[i], data.actions[i], float(data.rewards[i]), data.next_observations[i],
               bool(data.terminals[i]))


def assert_same_batch(a, b):
    for key in FIELDS:
        torch.testing.assert_close(getattr(a, key), getattr(b, key), rtol=0, atol=0)


def test_a_row_holds_each_field_as_float32():
    data = random_transitions(4, 0)
    buffer = ReplayBuffer(OBS, ACT, 8)
    for transition in steps(data):
        buffer.add(*transition)
    batch = buffer.gather(np.array([3, 0]))
    for key in FIELDS:
        expected = torch.as_tensor(np.asarray(getattr(data, key))[[3, 0]], dtype=torch.float32)
        torch.testing.assert_close(getattr(batch, key), expected, rtol=0, atol=0)
    assert batch.rewards.shape == (2,) and batch.terminals.shape == (2,) and batch.actions.shape == (2, ACT)


def test_a_group_draws_each_members_batches_as_its_own_buffer_would():
    """Offline parts of different sizes, then online rows added in step past the capacity (the ring wraps): member
    k's (K, B) batch from stream k is exactly what a buffer of its own gives from the same stream."""
    offline = [random_transitions(n, seed) for seed, n in enumerate([30, 25, 30])]
    group = ReplayGroup(3, OBS, ACT, 30)
    alone = [ReplayBuffer.of(d) for d in offline]
    for buffer, d in zip(group.buffers, offline):
        buffer.add_transitions(d)
    streams_group = [np.random.default_rng(10 + k) for k in range(3)]
    streams_alone = [np.random.default_rng(10 + k) for k in range(3)]
    for _ in range(3):
        batch = group.sample(16, streams_group)
        assert batch.observations.shape == (3, 16, OBS)
        for k, buffer in enumerate(alone):
            assert_same_batch(batch.member(k), buffer.sample(16, streams_alone[k]))

    online = ReplayGroup(3, OBS, ACT, 7)
    alone = [ReplayBuffer(OBS, ACT, 7) for _ in range(3)]
    per_member = [list(steps(random_transitions(11, 20 + k))) for k in range(3)]
    for t in range(11):
        online.add([per_member[k][t] for k in range(3)])
        for k, buffer in enumerate(alone):
            buffer.add(*per_member[k][t])
    for k, buffer in enumerate(alone):
        assert (online.buffers[k].size, online.buffers[k].pos) == (buffer.size, buffer.pos) == (7, 4)
        torch.testing.assert_close(online.rows[k], buffer.rows, rtol=0, atol=0)
        assert_same_batch(online.sample(9, [np.random.default_rng(j) for j in range(3)]).member(k),
                          buffer.sample(9, np.random.default_rng(k)))


def test_a_members_view_checkpoints_and_restores_its_own_rows():
    group = ReplayGroup(2, OBS, ACT, 6)
    per_member = [list(steps(random_transitions(4, k))) for k in range(2)]
    for t in range(4):
        group.add([per_member[0][t], per_member[1][t]])
    state = group.buffers[1].state_dict()
    other = ReplayGroup(2, OBS, ACT, 6)
    other.buffers[1].load_state_dict(state)
    torch.testing.assert_close(other.rows[1], group.rows[1], rtol=0, atol=0)
    assert other.rows[0].abs().sum() == 0  # member 0 untouched
    assert state["observations"].shape == (4, OBS) and state["rewards"].shape == (4,)


def test_members_out_of_step_are_refused():
    group = ReplayGroup(2, OBS, ACT, 6)
    transition = next(steps(random_transitions(1, 0)))
    group.buffers[0].add(*transition)  # one member alone moves on
    with pytest.raises(ValueError, match=r"positions \[0, 1\]"):
        group.add([transition, transition])
    with pytest.raises(ValueError, match="rows of shape"):
        ReplayBuffer(OBS, ACT, 6, rows=torch.zeros(6, 3))
