"""wmaug.data.minari_io against real minari 0.5.4, real MuJoCo rollouts and real HDF5 files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest

from wmaug.data import minari_io as mio
from wmaug.data.transitions import Transitions

DATASET_ID = "wmaug-test/hopper/random-mixed-v0"


# --------------------------------------------------------------------------- helpers


def rollout(env: gym.Env, seed: int, max_steps: int | None = None) -> dict:
    """One random-action episode in the builder's format; stops early after max_steps (no flag)."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    o, a, r, te, tr = [obs], [], [], [], []
    while True:
        act = env.action_space.sample()
        obs, rew, term, trunc, _ = env.step(act)
        o.append(obs)
        a.append(act)
        r.append(rew)
        te.append(term)
        tr.append(trunc)
        if term or trunc or (max_steps is not None and len(r) >= max_steps):
            break
    return {
        "observations": np.array(o),
        "actions": np.array(a),
        "rewards": np.array(r),
        "terminations": np.array(te, dtype=bool),
        "truncations": np.array(tr, dtype=bool),
        "seed": seed,
    }


@pytest.fixture(scope="module")
def hopper_episodes() -> list[dict]:
    env = gym.make("Hopper-v5")  # 1000-step limit: random actions fall over -> terminates
    short = gym.make("Hopper-v5", max_episode_steps=8)  # TimeLimit cuts it -> truncated
    try:
        eps = [rollout(env, 0), rollout(short, 1), rollout(env, 2), rollout(env, 3, max_steps=5)]
    finally:
        env.close()
        short.close()
    # the cases this test is about must really be there
    assert eps[0]["terminations"][-1] and not eps[0]["truncations"][-1]
    assert eps[1]["truncations"][-1] and not eps[1]["terminations"][-1] and len(eps[1]["rewards"]) == 8
    assert not eps[3]["terminations"][-1] and not eps[3]["truncations"][-1]
    return eps


def expected_transitions(episodes: list[dict]) -> Transitions:
    return Transitions.concatenate(
        [
            Transitions.from_mapping(
                {
                    "observations": ep["observations"][:-1],
                    "next_observations": ep["observations"][1:],
                    "actions": ep["actions"],
                    "rewards": ep["rewards"],
                    "terminals": ep["terminations"],
                    "timeouts": ep["truncations"],
                },
                where="expected",
            )
            for ep in episodes
        ]
    )


def assert_same(a: Transitions, b: Transitions) -> None:
    assert len(a) == len(b)
    for name, arr in a.as_dict().items():
        other = getattr(b, name)
        assert arr.dtype == np.float32 and other.dtype == np.float32, name
        np.testing.assert_array_equal(arr, other, err_msg=name)


def write(root: Path, episodes: list[dict], dataset_id: str = DATASET_ID, **kw) -> Path:
    return mio.write_minari_dataset(
        dataset_id, episodes, "hopper", root,
        description=kw.pop("description", "test data"), algorithm_name="random", **kw,
    )


def d4rl_reference(data: dict) -> dict:
    """A literal port of d4rl.qlearning_dataset's loop (terminate_on_end=False, with timeouts)."""
    n = data["rewards"].shape[0]
    out = {k: [] for k in ("observations", "next_observations", "actions", "rewards", "terminals")}
    for i in range(n - 1):
        if bool(data["timeouts"][i]):
            continue
        out["observations"].append(data["observations"][i])
        out["next_observations"].append(data["observations"][i + 1])
        out["actions"].append(data["actions"][i])
        out["rewards"].append(data["rewards"][i])
        out["terminals"].append(bool(data["terminals"][i]))
    return {k: np.array(v) for k, v in out.items()}


def d4rl_arrays(n: int = 10, obs_dim: int = 11, act_dim: int = 3, seed: int = 0) -> dict:
    """Rows 0-3: episode ending in a terminal; 4-7: ending in a timeout; 8-9: cut by the file end."""
    rng = np.random.default_rng(seed)
    terminals = np.zeros(n, np.bool_)
    timeouts = np.zeros(n, np.bool_)
    terminals[3] = True
    timeouts[7] = True
    return {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": terminals,
        "timeouts": timeouts,
    }


def write_h5(path: Path, arrays: dict) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
        f.create_dataset("infos/qpos", data=np.zeros((len(arrays["rewards"]), 2)))  # extra keys are ignored
    return path


def truncate(path: Path, keep_fraction: float = 0.5) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * keep_fraction))


# --------------------------------------------------------------------------- Minari round trip


def test_round_trip_real_rollouts(tmp_path, hopper_episodes):
    d = write(tmp_path, hopper_episodes, metadata={"builder_seed": 7})
    assert d == tmp_path / DATASET_ID
    assert (d / "data" / "main_data.hdf5").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no build leftovers

    expected = expected_transitions(hopper_episodes)
    got = mio.load_minari_transitions(DATASET_ID, tmp_path)
    assert_same(got, expected)
    # independent reader: minari's own episode iterator gives the same arrays
    assert_same(mio._load_minari_transitions_via_api(DATASET_ID, tmp_path), expected)
    # episode boundaries: terminal only at the end of episode 0, timeout only at the end of episode 1
    ends = np.cumsum([len(ep["rewards"]) for ep in hopper_episodes]) - 1
    assert np.flatnonzero(got.terminals).tolist() == [ends[0], ends[2]]
    assert np.flatnonzero(got.timeouts).tolist() == [ends[1]]

    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(tmp_path)
    try:
        ds = minari.load_dataset(DATASET_ID)
        assert ds.total_steps == len(expected) == sum(len(ep["rewards"]) for ep in hopper_episodes)
        assert ds.total_episodes == len(hopper_episodes)
        assert ds.env_spec.id == "Hopper-v5"
        meta = ds.storage.metadata
        assert meta["author"] == {"wmaug"}
        assert meta["algorithm_name"] == "random"
        assert meta["description"] == "test data"
        assert meta["builder_seed"] == 7
        assert meta["ref_min_score"] == pytest.approx(-20.272305)
        assert meta["ref_max_score"] == pytest.approx(3234.3)
        assert list(minari.list_local_datasets()) == [DATASET_ID]
        ep1 = next(ds.iterate_episodes([1]))
        np.testing.assert_array_equal(ep1.observations, hopper_episodes[1]["observations"])
        assert next(iter(ds.storage.get_episode_metadata([1])))["seed"] == 1
        # root None means minari's own default, i.e. the env var
        assert_same(mio.load_minari_transitions(DATASET_ID, None), expected)
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old

    mio.check_source(f"minari:{DATASET_ID}", "hopper", tmp_path)
    t, prov = mio.load_source(f"minari:{DATASET_ID}", "hopper", tmp_path)
    assert_same(t, expected)
    assert prov == {
        "source": f"minari:{DATASET_ID}",
        "checksum": mio.dataset_checksum(d / "data" / "main_data.hdf5"),
        "n_transitions": len(expected),
        # the harness writes D4RL's pair into its datasets' metadata, and reads it back from there
        "reference": {"ref_min": -20.272305, "ref_max": 3234.3,
                      "from": f"dataset metadata (minari:{DATASET_ID})"},
    }


def test_rewrite_replaces_dataset_and_checksum_tracks_data(tmp_path, hopper_episodes):
    d = write(tmp_path, hopper_episodes)
    c1 = mio.dataset_checksum(d)
    assert c1 == mio.dataset_checksum(d / "data" / "main_data.hdf5")
    # a rebuild from the same episodes gives the same bytes
    write(tmp_path, hopper_episodes)
    assert mio.dataset_checksum(d) == c1
    # different data under the same id replaces the old dataset
    changed = [dict(ep) for ep in hopper_episodes[:2]]
    changed[0]["rewards"] = changed[0]["rewards"] + 1.0
    write(tmp_path, changed)
    assert mio.dataset_checksum(d) != c1
    assert_same(mio.load_minari_transitions(DATASET_ID, tmp_path), expected_transitions(changed))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_write_leaves_old_dataset_and_nothing_half_written(tmp_path, hopper_episodes, monkeypatch):
    write(tmp_path, hopper_episodes[:1])
    before = mio.load_minari_transitions(DATASET_ID, tmp_path)
    from minari.dataset._storages.hdf5_storage import HDF5Storage

    def boom(self, episodes):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(HDF5Storage, "update_episodes", boom)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        write(tmp_path, hopper_episodes)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        write(tmp_path, hopper_episodes, dataset_id="wmaug-test/hopper/fresh-v0")
    monkeypatch.undo()
    assert_same(mio.load_minari_transitions(DATASET_ID, tmp_path), before)
    assert not (tmp_path / "wmaug-test/hopper/fresh-v0").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    # A hard kill would leave a hidden build root behind: minari does not see datasets there,
    # and the target id stays absent.
    hidden = tmp_path / ".wmaug-build-dead" / "wmaug-test/hopper/fresh-v0"
    shutil.copytree(tmp_path / DATASET_ID, hidden)
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(tmp_path)
    try:
        assert list(minari.list_local_datasets()) == [DATASET_ID]
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old
    with pytest.raises(FileNotFoundError):
        mio.load_minari_transitions("wmaug-test/hopper/fresh-v0", tmp_path)


def test_write_rejects_bad_input(tmp_path, hopper_episodes):
    bad = dict(hopper_episodes[0])
    bad["actions"] = bad["actions"][:-1]
    with pytest.raises(ValueError, match=r"episode 1: actions has shape"):
        write(tmp_path, [hopper_episodes[1], bad])
    early = dict(hopper_episodes[0])
    early["terminations"] = early["terminations"].copy()
    early["terminations"][0] = True
    with pytest.raises(ValueError, match="before its last step"):
        write(tmp_path, [early])
    with pytest.raises(ValueError, match="reserved"):
        write(tmp_path, hopper_episodes, metadata={"total_steps": 3})
    with pytest.raises(ValueError, match="malformed Minari dataset id"):
        write(tmp_path, hopper_episodes, dataset_id="wmaug-test/hopper/no-version")
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- Minari errors


def test_unknown_minari_id_names_id_root_and_download(tmp_path):
    dataset_id = "mujoco/hopper/medium-v0"
    for call in (
        lambda: mio.load_minari_transitions(dataset_id, tmp_path),
        lambda: mio.check_source(f"minari:{dataset_id}", "hopper", tmp_path),
        lambda: mio.load_source(f"minari:{dataset_id}", "hopper", tmp_path),
    ):
        with pytest.raises(FileNotFoundError) as err:
            call()
        msg = str(err.value)
        assert dataset_id in msg and str(tmp_path) in msg
        assert f"minari download {dataset_id}" in msg


def test_truncated_minari_data_file_is_named(tmp_path, hopper_episodes):
    d = write(tmp_path, hopper_episodes)
    data_file = d / "data" / "main_data.hdf5"
    truncate(data_file)
    for call in (
        lambda: mio.load_minari_transitions(DATASET_ID, tmp_path),
        lambda: mio.check_source(f"minari:{DATASET_ID}", "hopper", tmp_path),
    ):
        with pytest.raises(mio.DatasetError) as err:
            call()
        assert str(data_file) in str(err.value) and "truncated" in str(err.value)


@pytest.mark.parametrize("delta", [-1, 1])
def test_metadata_disagreeing_with_data_file(tmp_path, hopper_episodes, delta):
    import json

    d = write(tmp_path, hopper_episodes)
    meta_path = d / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["total_steps"] += delta
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(mio.DatasetError, match="metadata") as err:
        mio.load_minari_transitions(DATASET_ID, tmp_path)
    assert str(d / "data" / "main_data.hdf5") in str(err.value)


def test_minari_dataset_for_wrong_env(tmp_path, hopper_episodes):
    write(tmp_path, hopper_episodes)
    for call in (
        lambda: mio.check_source(f"minari:{DATASET_ID}", "halfcheetah", tmp_path),
        lambda: mio.load_source(f"minari:{DATASET_ID}", "halfcheetah", tmp_path),
    ):
        with pytest.raises(mio.DatasetError) as err:
            call()
        msg = str(err.value)
        assert DATASET_ID in msg and "11/3" in msg and "17/6" in msg and "halfcheetah" in msg


# --------------------------------------------------------------------------- D4RL files


def test_d4rl_without_next_observations_matches_qlearning_dataset(tmp_path):
    arrays = d4rl_arrays()
    path = write_h5(tmp_path / "hopper-medium.hdf5", arrays)
    t = mio.load_d4rl_hdf5(path, "hopper")
    ref = d4rl_reference(arrays)
    kept = [0, 1, 2, 3, 4, 5, 6, 8]  # row 7 ends in a timeout, row 9 is the last row
    assert len(t) == len(kept) == len(ref["rewards"])
    np.testing.assert_array_equal(t.observations, arrays["observations"][kept])
    np.testing.assert_array_equal(t.next_observations, arrays["observations"][[k + 1 for k in kept]])
    for name in ("observations", "next_observations", "actions", "rewards", "terminals"):
        np.testing.assert_array_equal(getattr(t, name), ref[name].astype(np.float32), err_msg=name)
    assert t.terminals.tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    assert not t.timeouts.any()

    mio.check_source(f"d4rl:{path}", "hopper", None)
    t2, prov = mio.load_source(f"d4rl:{path}", "hopper", None)
    assert_same(t2, t)
    assert prov == {"source": f"d4rl:{path}", "checksum": mio.dataset_checksum(path), "n_transitions": 8,
                    "reference": {"ref_min": -20.272305, "ref_max": 3234.3, "from": "D4RL table (d4rl/infos.py)"}}


def test_d4rl_with_next_observations_keeps_every_row(tmp_path):
    arrays = d4rl_arrays()
    arrays["next_observations"] = np.random.default_rng(1).normal(size=arrays["observations"].shape).astype(np.float32)
    path = write_h5(tmp_path / "with-next.hdf5", arrays)
    t = mio.load_d4rl_hdf5(path, "hopper")
    assert len(t) == 10
    for name in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(t, name), arrays[name].astype(np.float32), err_msg=name)
    assert t.timeouts.tolist() == [0] * 7 + [1, 0, 0]


@pytest.mark.parametrize("check", [False, True], ids=["load", "check_source"])
def test_d4rl_errors_name_path_and_problem(tmp_path, check):
    def attempt(path, env_name="hopper"):
        if check:
            mio.check_source(f"d4rl:{path}", env_name, None)
        else:
            mio.load_d4rl_hdf5(path, env_name)

    missing = tmp_path / "nope.hdf5"
    with pytest.raises(FileNotFoundError, match="no such file") as err:
        attempt(missing)
    assert str(missing) in str(err.value)

    not_h5 = tmp_path / "notes.hdf5"
    not_h5.write_text("this is not HDF5\n")
    with pytest.raises(mio.DatasetError, match="not a readable HDF5 file") as err:
        attempt(not_h5)
    assert str(not_h5) in str(err.value)

    truncated = write_h5(tmp_path / "truncated.hdf5", d4rl_arrays(n=2000))
    truncate(truncated)
    with pytest.raises(mio.DatasetError, match="truncated") as err:
        attempt(truncated)
    assert str(truncated) in str(err.value)

    no_timeouts = d4rl_arrays()
    del no_timeouts["timeouts"]
    p = write_h5(tmp_path / "no-timeouts.hdf5", no_timeouts)
    with pytest.raises(mio.DatasetError, match=r"missing key\(s\) \['timeouts'\]") as err:
        attempt(p)
    assert str(p) in str(err.value)

    hopper_file = write_h5(tmp_path / "hopper.hdf5", d4rl_arrays())
    with pytest.raises(mio.DatasetError) as err:
        attempt(hopper_file, env_name="halfcheetah")
    msg = str(err.value)
    assert str(hopper_file) in msg and "observations" in msg and "(N, 17)" in msg and "(10, 11)" in msg

    short = d4rl_arrays()
    short["rewards"] = short["rewards"][:-1]
    p = write_h5(tmp_path / "short.hdf5", short)
    with pytest.raises(mio.DatasetError, match="length mismatch") as err:
        attempt(p)
    assert str(p) in str(err.value) and "'rewards': 9" in str(err.value)


def test_checksum_changes_when_data_changes(tmp_path):
    arrays = d4rl_arrays()
    a = write_h5(tmp_path / "a.hdf5", arrays)
    b = write_h5(tmp_path / "b.hdf5", arrays)
    assert mio.dataset_checksum(a) == mio.dataset_checksum(b)
    arrays["rewards"] = arrays["rewards"].copy()
    arrays["rewards"][5] += 1e-3
    write_h5(b, arrays)
    assert mio.dataset_checksum(a) != mio.dataset_checksum(b)
    with pytest.raises(FileNotFoundError):
        mio.dataset_checksum(tmp_path / "missing.hdf5")
    with pytest.raises(FileNotFoundError, match="no Minari data file"):
        mio.dataset_checksum(tmp_path)


def test_source_strings():
    for bad in ("hf:foo", "mujoco/hopper/medium-v0", "minari:", "d4rl:"):
        with pytest.raises(ValueError, match="expected 'minari:<dataset id>'"):
            mio.check_source(bad, "hopper", None)
    with pytest.raises(ValueError, match="malformed Minari dataset id"):
        mio.load_source("minari:hopper medium", "hopper", None)
    with pytest.raises(KeyError, match="unknown environment 'hoper'"):
        mio.check_source("d4rl:x.hdf5", "hoper", None)
