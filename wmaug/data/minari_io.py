"""Reading and writing offline datasets: real Minari datasets under a local root, and D4RL HDF5 files.

Minari layout (minari 0.5.4, HDF5 storage; the Arrow and Parquet storages keep the same metadata.json beside
their own files, and are read through minari's API, which needs pyarrow)::

    <root>/<namespace...>/namespace_metadata.json
    <root>/<dataset_id>/data/metadata.json      # spaces, env_spec, totals, ref scores, ...
    <root>/<dataset_id>/data/main_data.hdf5     # groups episode_0..episode_{n-1}, each with
                                                # observations (T+1, d), actions (T, a),
                                                # rewards/terminations/truncations (T,)

Every function takes the datasets root explicitly; ``None`` means minari's own default
(``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``).  Writing goes through
``minari.create_dataset_from_buffers`` into a hidden build root next to the target, and the
finished dataset directory is moved into place with one ``rename``: a killed write leaves at
most a hidden ``.wmaug-build-*`` directory (which minari's listing skips), never a dataset
that loads as complete.  Reading goes straight to the HDF5 file (2.5-3x faster than
iterating ``MinariDataset`` episodes, and it fills preallocated arrays).

Source strings used by configs: ``minari:<dataset_id>`` or ``d4rl:<path to .hdf5>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np
from h5py import h5d, h5g, h5s

from wmaug.data.transitions import Transitions
from wmaug.core.errors import InputError
from wmaug.core.envs import get_spec

MINARI_DATA_FILE = "main_data.hdf5"
MINARI_METADATA_FILE = "metadata.json"
NAMESPACE_METADATA_FILE = "namespace_metadata.json"  # minari.namespace.NAMESPACE_METADATA_FILENAME
AUTHOR = "wmaug"
SOURCE_SCHEMES = ("minari", "d4rl")
D4RL_REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
EPISODE_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")

# D4RL's ant files (Ant-v2 under mujoco-py): 27 joint positions and velocities, then 84 contact forces (14 bodies x
# 6, the world body's included). Ant-v5 observes 105: 27 + 78 (v5 drops the world body's 6, always 0: Gymnasium
# issue #214). Why no mapping is offered: docs/datasets.md, "D4RL's ant files".
D4RL_ANT_OBS_DIM = 111
D4RL_ANT_MESSAGE = (
    "observations have 111 columns: a D4RL ant file (Ant-v2 under mujoco-py: 27 joint positions and velocities, then "
    "84 contact forces of 14 bodies). The harness's ant is Ant-v5, with 105 (27 + 78: v5 drops the world body's 6, "
    "always 0). Dropping those 6 would fit the shape but not the data: D4RL collected ant under mujoco-py with "
    "MuJoCo 2, where the contact forces read 0 (columns 27-110 are all zero: D4RL issue #143, gym issue #2593), "
    "while Ant-v5 observes real ones, so a policy trained on the file would meet inputs online it never saw, and the "
    "file's rewards lack the contact cost Ant-v5 charges (zero forces cost nothing). Use Minari's "
    "mujoco/ant/<kind>-v0 (collected on Ant-v5: dataset_sources or --config datasets=minari), or let the harness "
    "build ant's datasets. docs/datasets.md, \"D4RL's ant files\".")

_BUILD_PREFIX = ".wmaug-build-"
_OLD_PREFIX = ".wmaug-old-"
# Metadata keys minari writes itself; user metadata may not shadow them.
_RESERVED_METADATA = frozenset(
    {
        "dataset_id", "observation_space", "action_space", "env_spec", "eval_env_spec",
        "data_format", "jpeg_encoding", "minari_version", "total_episodes", "total_steps",
        "dataset_size", "author", "author_email", "algorithm_name", "description",
        "code_permalink", "ref_min_score", "ref_max_score", "num_episodes_average_score",
        "requirements", "combined_datasets",
    }
)
_HASH_CHUNK = 1 << 22


class DatasetError(InputError):
    """A dataset that is unreadable, malformed, or does not fit the environment."""


# --------------------------------------------------------------------------- roots and ids


def resolve_root(root: str | Path | None) -> Path:
    """The Minari datasets root: ``root`` itself, else what minari itself would use."""
    # Absolute: minari joins a relative root onto paths it has already rooted.
    if root is not None:
        return Path(root).resolve()
    env = os.environ.get("MINARI_DATASETS_PATH")
    if env is not None:
        return Path(env).resolve()
    return Path.home() / ".minari" / "datasets"


@contextmanager
def minari_root(root: str | Path | None) -> Iterator[Path]:
    """Point minari's API at ``root`` (sets ``MINARI_DATASETS_PATH``, restored on exit)."""
    path = resolve_root(root)
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def parse_dataset_id(dataset_id: str) -> tuple[str | None, str, int]:
    """(namespace, name, version) as minari parses it; a clear error for ids minari rejects.

    minari 0.5.4 needs the ``-v<N>`` suffix (without it its own parser fails with a TypeError).
    Namespaces may be nested: ``wmaug-smoke/halfcheetah/medium-replay-v0`` has namespace
    ``wmaug-smoke/halfcheetah``.
    """
    from minari.dataset.minari_dataset import parse_dataset_id as _parse

    try:
        return _parse(dataset_id)
    except (ValueError, TypeError):
        raise ValueError(
            f"malformed Minari dataset id '{dataset_id}': expected '[namespace/...]name-v<N>', "
            "e.g. 'wmaug-smoke/halfcheetah/medium-replay-v0' (letters, digits, '-', '_'; "
            "the -v<N> version suffix is required)"
        ) from None


def minari_dataset_dir(dataset_id: str, root: str | Path | None) -> Path:
    """Where dataset ``dataset_id`` lives under ``root`` (it need not exist)."""
    parse_dataset_id(dataset_id)
    return resolve_root(root) / dataset_id


def _not_installed(dataset_id: str, root: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Minari dataset '{dataset_id}' is not installed under root {root} ({what}). "
        f"Build it with the harness, or fetch it with: "
        f"MINARI_DATASETS_PATH={root} minari download {dataset_id}"
    )


def _locate_minari(dataset_id: str, root: str | Path | None) -> tuple[Path, dict]:
    """(data dir, metadata) of an installed dataset, or an error naming id, root and fetch command."""
    root_p = resolve_root(root)
    data_dir = minari_dataset_dir(dataset_id, root_p) / "data"
    meta_path = data_dir / MINARI_METADATA_FILE
    if not data_dir.is_dir():
        raise _not_installed(dataset_id, root_p, f"no directory {data_dir}")
    if not meta_path.is_file():
        raise _not_installed(dataset_id, root_p, f"{meta_path} is missing")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"{meta_path}: unreadable Minari metadata ({e})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{meta_path}: Minari metadata is not a JSON object")
    for key in ("total_episodes", "total_steps", "observation_space", "action_space"):
        if key not in meta:
            raise DatasetError(f"{meta_path}: Minari metadata lacks '{key}'")
    if meta.get("dataset_id") != dataset_id:
        raise DatasetError(
            f"{meta_path}: metadata says dataset_id '{meta.get('dataset_id')}', "
            f"but it sits where '{dataset_id}' belongs"
        )
    if data_format(meta) != "hdf5":
        _require_storage(meta, dataset_id, data_dir)
        return data_dir, meta
    data_file = data_dir / MINARI_DATA_FILE
    if not data_file.is_file():
        raise DatasetError(f"{data_file}: Minari data file is missing (incomplete dataset?)")
    return data_dir, meta


def data_format(meta: dict) -> str:
    """The dataset's storage: 'hdf5' (also what datasets written before the key record), 'arrow' or 'parquet'."""
    return str(meta.get("data_format") or "hdf5")


def _require_storage(meta: dict, dataset_id: str, data_dir: Path) -> None:
    """A storage other than HDF5 is read through minari's API: it must know the format, and its library must be
    installed (minari's Arrow and Parquet storages import pyarrow, an optional dependency: `minari[arrow]`)."""
    from minari.dataset._storages import get_storage_keys

    fmt = data_format(meta)
    if fmt not in get_storage_keys():
        raise DatasetError(f"{data_dir / MINARI_METADATA_FILE}: data_format {fmt!r} is not one minari "
                           f"{_minari_version()} reads ({', '.join(get_storage_keys())})")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DatasetError(f"Minari dataset '{dataset_id}' ({data_dir}) is stored as {fmt}, which minari reads with "
                           f"pyarrow, not installed here: pip install 'minari[arrow]' (or pyarrow)") from None
    if not any(p.name != MINARI_METADATA_FILE for p in data_dir.iterdir()):
        raise DatasetError(f"{data_dir}: the {fmt} dataset holds metadata but no episode data (incomplete dataset?)")


def _minari_version() -> str:
    import minari

    return minari.__version__


def _box_dim(meta: dict, key: str, where: Path) -> int:
    """Length of a flat Box space serialized in minari metadata."""
    space = meta[key]
    try:
        space = json.loads(space) if isinstance(space, str) else space
        ok = space["type"] == "Box" and len(space["shape"]) == 1
    except (TypeError, KeyError, json.JSONDecodeError):
        ok = False
    if not ok:
        raise DatasetError(f"{where}: {key} is {str(meta[key])[:120]}; only flat Box spaces are supported")
    return int(space["shape"][0])


# --------------------------------------------------------------------------- writing


def _episode_arrays(ep: dict, i: int, obs_dim: int, act_dim: int, obs_dtype, act_dtype) -> dict:
    where = f"episode {i}"
    if not isinstance(ep, dict):
        raise ValueError(f"{where}: expected a dict with keys {list(EPISODE_KEYS)}, got {type(ep).__name__}")
    missing = [k for k in EPISODE_KEYS if k not in ep]
    if missing:
        raise ValueError(f"{where}: missing keys {missing}")
    obs = np.asarray(ep["observations"], dtype=obs_dtype)
    act = np.asarray(ep["actions"], dtype=act_dtype)
    rew = np.asarray(ep["rewards"], dtype=np.float64)
    term = np.asarray(ep["terminations"])
    trunc = np.asarray(ep["truncations"])
    T = len(rew)
    if T < 1:
        raise ValueError(f"{where}: has no steps")
    expected = {
        "observations": (obs, (T + 1, obs_dim)),
        "actions": (act, (T, act_dim)),
        "rewards": (rew, (T,)),
        "terminations": (term, (T,)),
        "truncations": (trunc, (T,)),
    }
    for k, (arr, shape) in expected.items():
        if arr.shape != shape:
            raise ValueError(f"{where}: {k} has shape {arr.shape}, expected {shape} (T={T} steps)")
    for k in ("observations", "actions", "rewards"):
        if not np.all(np.isfinite(expected[k][0])):
            raise ValueError(f"{where}: {k} contains NaN or inf")
    term = term.astype(bool)
    trunc = trunc.astype(bool)
    if term[:-1].any() or trunc[:-1].any():
        raise ValueError(f"{where}: terminated/truncated before its last step")
    return {"observations": obs, "actions": act, "rewards": rew, "terminations": term, "truncations": trunc}


def _ensure_namespace_files(root: Path, namespace: str | None) -> None:
    """Mark each level of ``namespace`` as a minari namespace (idempotent, safe for parallel writers)."""
    if not namespace:
        return
    parts = namespace.split("/")
    for k in range(1, len(parts) + 1):
        d = root.joinpath(*parts[:k])
        d.mkdir(parents=True, exist_ok=True)
        target = d / NAMESPACE_METADATA_FILE
        if not target.exists():
            tmp = d / f".{NAMESPACE_METADATA_FILE}.{uuid.uuid4().hex}"
            tmp.write_text("{}")
            os.replace(tmp, target)


def write_minari_dataset(
    dataset_id: str,
    episodes: list[dict],
    env_name: str,
    root: str | Path,
    *,
    description: str,
    algorithm_name: str,
    metadata: dict | None = None,
    reference: dict | None = None,
    data_format: str = "hdf5",
) -> Path:
    """Write ``episodes`` as Minari dataset ``dataset_id`` under ``root``; returns its directory.

    Each episode is a dict with observations (T+1, obs_dim), actions (T, act_dim), rewards (T,),
    terminations (T,), truncations (T,) and optionally an int ``seed``.  Observations and
    actions are stored in the env's space dtypes (float64 / float32 for MuJoCo v5).  An
    existing dataset of the same id is replaced.  The dataset is built under a hidden build
    root inside ``root`` and renamed into place, so a killed write never leaves a directory
    that loads as a complete dataset.  ``metadata`` (JSON-serialisable, no keys minari itself
    uses) is merged into the dataset's metadata.json. ``reference`` (``ref_min``/``ref_max``): the pair recorded
    as the dataset's ``ref_min_score``/``ref_max_score``, D4RL's by default. ``data_format``: minari's storage.
    """
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    spec = get_spec(env_name, where=f"write_minari_dataset({dataset_id!r})")
    namespace = parse_dataset_id(dataset_id)[0]
    if not episodes:
        raise ValueError(f"write_minari_dataset({dataset_id!r}): no episodes to write")
    extra = dict(metadata or {})
    clash = sorted(_RESERVED_METADATA.intersection(extra))
    if clash:
        raise ValueError(f"write_minari_dataset({dataset_id!r}): metadata keys {clash} are reserved by minari")
    try:
        json.dumps(extra)
    except TypeError as e:
        raise ValueError(f"write_minari_dataset({dataset_id!r}): metadata is not JSON-serialisable ({e})") from None

    env = gym.make(spec.gym_id)
    try:
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()
    arrays = [
        _episode_arrays(ep, i, spec.obs_dim, spec.act_dim, obs_space.dtype, act_space.dtype)
        for i, ep in enumerate(episodes)
    ]
    buffers = [
        EpisodeBuffer(
            seed=None if ep.get("seed") is None else int(ep["seed"]),
            observations=a["observations"],
            actions=a["actions"],
            rewards=a["rewards"],
            terminations=a["terminations"],
            truncations=a["truncations"],
        )
        for ep, a in zip(episodes, arrays)
    ]
    total_steps = sum(len(a["rewards"]) for a in arrays)

    root_p = resolve_root(root)
    root_p.mkdir(parents=True, exist_ok=True)
    final_dir = root_p / dataset_id
    if final_dir.exists() and not (final_dir / "data").is_dir() and any(final_dir.iterdir()):
        raise ValueError(
            f"{final_dir} exists and is not a Minari dataset (no data/ inside); refusing to replace it"
        )
    token = uuid.uuid4().hex[:12]
    build_root = root_p / f"{_BUILD_PREFIX}{token}"
    old_dir = root_p / f"{_OLD_PREFIX}{token}"
    try:
        with minari_root(build_root), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`(code_permalink|author_email)` is set to None")
            ds = minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=buffers,
                env=spec.gym_id,
                eval_env=spec.gym_id,
                algorithm_name=algorithm_name,
                author=AUTHOR,
                ref_min_score=spec.ref_min if reference is None else reference["ref_min"],
                ref_max_score=spec.ref_max if reference is None else reference["ref_max"],
                description=description,
                data_format=data_format,
            )
            if extra:
                ds.storage.update_metadata(extra)
            if ds.total_steps != total_steps or ds.total_episodes != len(buffers):
                raise RuntimeError(
                    f"minari wrote {ds.total_episodes} episodes / {ds.total_steps} steps, "
                    f"expected {len(buffers)} / {total_steps}"
                )
        built = build_root / dataset_id
        _ensure_namespace_files(root_p, namespace)
        final_dir.parent.mkdir(parents=True, exist_ok=True)
        if final_dir.exists():
            os.rename(final_dir, old_dir)
        os.rename(built, final_dir)
    finally:
        shutil.rmtree(build_root, ignore_errors=True)
        shutil.rmtree(old_dir, ignore_errors=True)
    return final_dir


# --------------------------------------------------------------------------- reading Minari


def _open_hdf5(path: Path, what: str) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file ({what})") from None
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file, corrupt or truncated ({what}): {e}") from None


def _iter_episodes(dataset_id: str, root: str | Path | None) -> Iterator[tuple[dict, int, Path]]:
    """Checked episodes of a Minari dataset read straight from its HDF5 file (h5py low-level API).
    Yields (episode arrays, total steps from metadata, data file)."""
    data_dir, meta = _locate_minari(dataset_id, root)
    if data_format(meta) != "hdf5":
        yield from _iter_episodes_api(dataset_id, root, data_dir, meta)
        return
    data_file = data_dir / MINARI_DATA_FILE
    obs_dim = _box_dim(meta, "observation_space", data_dir / MINARI_METADATA_FILE)
    act_dim = _box_dim(meta, "action_space", data_dir / MINARI_METADATA_FILE)
    n_eps, n = int(meta["total_episodes"]), int(meta["total_steps"])
    pos = 0
    with _open_hdf5(data_file, f"Minari dataset '{dataset_id}'") as f:
        if len(f) != n_eps:
            raise DatasetError(f"{data_file}: holds {len(f)} episodes, metadata says {n_eps}")
        fid = f.id
        try:
            for i in range(n_eps):
                where = f"{data_file}: episode_{i}"
                try:
                    gid = h5g.open(fid, f"episode_{i}".encode())
                except (KeyError, ValueError, TypeError):
                    raise DatasetError(f"{where} is missing") from None
                ep = {k: _read_h5(gid, k, where) for k in EPISODE_KEYS}
                pos += _checked_length(ep, obs_dim, act_dim, where, pos, n, data_file)
                yield ep, n, data_file
        except (OSError, RuntimeError) as e:  # h5py's errors for damaged objects/chunks
            raise DatasetError(f"{data_file}: corrupt data ({type(e).__name__}: {e})") from None
    if pos != n:
        raise DatasetError(f"{data_file}: episodes hold {pos} steps, metadata says {n}")


def _checked_length(ep: dict, obs_dim: int, act_dim: int, where: str, pos: int, n: int, data: Path) -> int:
    """An episode's steps T, after checking its arrays' shapes and that the dataset's total still holds them."""
    T = ep["rewards"].shape[0] if ep["rewards"].ndim else -1
    shapes = {"observations": (T + 1, obs_dim), "actions": (T, act_dim), "rewards": (T,), "terminations": (T,),
              "truncations": (T,)}
    for k, shape in shapes.items():
        if ep[k].shape != shape:
            raise DatasetError(f"{where}/{k} has shape {ep[k].shape}, expected {shape}")
    if pos + T > n:
        raise DatasetError(f"{data}: episodes hold more steps than the {n} in metadata")
    return T


def _iter_episodes_api(dataset_id: str, root, data_dir: Path, meta: dict) -> Iterator[tuple[dict, int, Path]]:
    """The episodes of an Arrow or Parquet dataset, through minari's own reader, checked as the HDF5 reader checks."""
    import minari

    obs_dim = _box_dim(meta, "observation_space", data_dir / MINARI_METADATA_FILE)
    act_dim = _box_dim(meta, "action_space", data_dir / MINARI_METADATA_FILE)
    n_eps, n = int(meta["total_episodes"]), int(meta["total_steps"])
    pos, seen = 0, 0
    with minari_root(root):
        try:
            episodes = list(minari.load_dataset(dataset_id).iterate_episodes())
        except Exception as e:  # pyarrow's and minari's errors for damaged files have no common base
            raise DatasetError(f"{data_dir}: minari cannot read the {data_format(meta)} dataset "
                               f"({type(e).__name__}: {e})") from None
    for ep in episodes:
        where = f"{data_dir}: episode {ep.id}"
        arrays = {k: np.asarray(getattr(ep, k)) for k in EPISODE_KEYS}
        pos += _checked_length(arrays, obs_dim, act_dim, where, pos, n, data_dir)
        seen += 1
        yield arrays, n, data_dir
    if (seen, pos) != (n_eps, n):
        raise DatasetError(f"{data_dir}: holds {seen} episodes / {pos} steps, metadata says {n_eps} / {n}")


def read_minari_episodes(dataset_id: str, root: str | Path | None = None) -> list[dict]:
    """Every episode of a Minari dataset in the builder's episode format (float32 arrays, bool flags)."""
    return [
        {
            "observations": ep["observations"].astype(np.float32),
            "actions": ep["actions"].astype(np.float32),
            "rewards": ep["rewards"].astype(np.float32),
            "terminations": ep["terminations"].astype(bool),
            "truncations": ep["truncations"].astype(bool),
        }
        for ep, _, _ in _iter_episodes(dataset_id, root)
    ]


def load_minari_transitions(dataset_id: str, root: str | Path | None = None) -> Transitions:
    """All steps of Minari dataset ``dataset_id`` as flat transitions, in episode order.

    Per episode: observations[:-1] -> observations, observations[1:] -> next_observations,
    terminations -> terminals, truncations -> timeouts (float32), written into preallocated arrays.
    """
    pos = 0
    arrays = None
    for ep, n, data_file in _iter_episodes(dataset_id, root):
        if arrays is None:
            obs_dim, act_dim = ep["observations"].shape[1], ep["actions"].shape[1]
            arrays = {
                "observations": np.empty((n, obs_dim), np.float32),
                "next_observations": np.empty((n, obs_dim), np.float32),
                "actions": np.empty((n, act_dim), np.float32),
                "rewards": np.empty(n, np.float32),
                "terminals": np.empty(n, np.float32),
                "timeouts": np.empty(n, np.float32),
            }
        s = slice(pos, pos + len(ep["rewards"]))
        arrays["observations"][s] = ep["observations"][:-1]
        arrays["next_observations"][s] = ep["observations"][1:]
        arrays["actions"][s] = ep["actions"]
        arrays["rewards"][s] = ep["rewards"]
        arrays["terminals"][s] = ep["terminations"]
        arrays["timeouts"][s] = ep["truncations"]
        pos = s.stop
    if arrays is None:
        raise DatasetError(f"Minari dataset '{dataset_id}' holds no episodes")
    t = Transitions(**arrays)
    _check_finite(t, str(data_file))
    return t


def _read_h5(gid, key: str, where: str) -> np.ndarray:
    """Read a whole dataset through h5py's low-level API (about 3x faster per small dataset
    than ``group[key][()]``, which matters for thousands of episodes)."""
    try:
        d = h5d.open(gid, key.encode())
    except (KeyError, ValueError, TypeError):
        raise DatasetError(f"{where}/{key} is missing or not a plain array") from None
    dtype = d.dtype
    if dtype.kind not in "biuf":
        raise DatasetError(f"{where}/{key} has dtype {dtype}; expected numbers")
    arr = np.empty(d.shape, dtype)
    d.read(h5s.ALL, h5s.ALL, arr)
    return arr


def _load_minari_transitions_via_api(dataset_id: str, root: str | Path | None = None) -> Transitions:
    """Same result as :func:`load_minari_transitions`, through ``MinariDataset.iterate_episodes``.

    Kept as an independent reference (tests cross-check the direct reader against it); slower.
    """
    import minari

    with minari_root(root):
        ds = minari.load_dataset(dataset_id)
        parts = [
            Transitions.from_mapping(
                {
                    "observations": ep.observations[:-1],
                    "next_observations": ep.observations[1:],
                    "actions": ep.actions,
                    "rewards": ep.rewards,
                    "terminals": ep.terminations,
                    "timeouts": ep.truncations,
                },
                where=f"{dataset_id} episode {ep.id}",
            )
            for ep in ds.iterate_episodes()
        ]
    return Transitions.concatenate(parts)


def _check_finite(t: Transitions, where: str) -> None:
    for name in ("observations", "next_observations", "actions", "rewards"):
        if not np.all(np.isfinite(getattr(t, name))):
            raise DatasetError(f"{where}: {name} contains NaN or inf")


# --------------------------------------------------------------------------- D4RL HDF5


def _d4rl_headers(f: h5py.File, path: Path, env_name: str) -> int:
    """Check keys, shapes and lengths of an open D4RL file from its headers; returns N."""
    spec = get_spec(env_name, where=f"{path}")
    missing = [k for k in D4RL_REQUIRED_KEYS if not isinstance(f.get(k), h5py.Dataset)]
    if missing:
        raise DatasetError(
            f"{path}: missing key(s) {missing}; a D4RL file needs {list(D4RL_REQUIRED_KEYS)} "
            f"(found top-level keys {sorted(f.keys())})"
        )
    keys = list(D4RL_REQUIRED_KEYS) + (["next_observations"] if "next_observations" in f else [])
    shapes = {k: f[k].shape for k in keys}
    if spec.gym_id.startswith("Ant-") and shapes["observations"][1:] == (D4RL_ANT_OBS_DIM,):
        raise DatasetError(f"{path}: {D4RL_ANT_MESSAGE}")
    for k in ("observations", "next_observations"):
        if k in shapes and (len(shapes[k]) != 2 or shapes[k][1] != spec.obs_dim):
            raise DatasetError(
                f"{path}: {k} have shape {shapes[k]}, but {env_name} expects (N, {spec.obs_dim}) "
                f"(obs_dim {spec.obs_dim}, found {shapes[k][1:] or 'no feature axis'})"
            )
    if len(shapes["actions"]) != 2 or shapes["actions"][1] != spec.act_dim:
        raise DatasetError(
            f"{path}: actions have shape {shapes['actions']}, but {env_name} expects (N, {spec.act_dim}) "
            f"(act_dim {spec.act_dim}, found {shapes['actions'][1:] or 'no feature axis'})"
        )
    for k in ("rewards", "terminals", "timeouts"):
        if not (len(shapes[k]) == 1 or (len(shapes[k]) == 2 and shapes[k][1] == 1)):
            raise DatasetError(f"{path}: {k} has shape {shapes[k]}, expected (N,)")
    lengths = {k: s[0] if s else 0 for k, s in shapes.items()}
    if len(set(lengths.values())) != 1:
        raise DatasetError(f"{path}: length mismatch between arrays: {lengths}")
    n = lengths["observations"]
    if n < 2 and "next_observations" not in f:
        raise DatasetError(f"{path}: only {n} rows; need at least 2 without next_observations")
    if n < 1:
        raise DatasetError(f"{path}: empty dataset")
    return n


def load_d4rl_hdf5(path: str | Path, env_name: str) -> Transitions:
    """Transitions from a D4RL-format HDF5 file.

    With ``next_observations`` every row is kept.  Without it, next_obs[i] = obs[i+1] and the
    rows whose next state is unknown are dropped, exactly as ``d4rl.qlearning_dataset`` does
    (default ``terminate_on_end=False``): every row with timeouts=1 and the final row.
    """
    path = Path(path)
    with _open_hdf5(path, "D4RL dataset") as f:
        _d4rl_headers(f, path, env_name)
        try:
            data = {k: f[k][()] for k in D4RL_REQUIRED_KEYS}
            has_next = "next_observations" in f
            if has_next:
                data["next_observations"] = f["next_observations"][()]
        except (OSError, KeyError, RuntimeError) as e:
            raise DatasetError(f"{path}: corrupt data ({type(e).__name__}: {e})") from None
    for k in ("rewards", "terminals", "timeouts"):
        data[k] = data[k].reshape(-1)
    if has_next:
        t = Transitions.from_mapping(data, where=str(path))
    else:
        keep = ~data["timeouts"].astype(bool)
        keep[-1] = False
        idx = np.flatnonzero(keep)
        obs = data["observations"]
        t = Transitions(
            observations=obs[idx].astype(np.float32),
            actions=data["actions"][idx].astype(np.float32),
            rewards=data["rewards"][idx].astype(np.float32),
            next_observations=obs[idx + 1].astype(np.float32),
            terminals=data["terminals"][idx].astype(np.float32),
            timeouts=data["timeouts"][idx].astype(np.float32),  # all 0: timeout rows were dropped
        )
    if len(t) == 0:
        raise DatasetError(f"{path}: no usable transitions (every row ends in a timeout)")
    _check_finite(t, str(path))
    return t


# --------------------------------------------------------------------------- checksums and sources


def _data_file(path_or_dir: str | Path) -> Path:
    p = Path(path_or_dir)
    if p.is_file():
        return p
    if p.is_dir():
        for cand in (p / "data" / MINARI_DATA_FILE, p / MINARI_DATA_FILE):
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"{p}: directory holds no Minari data file (data/{MINARI_DATA_FILE})")
    raise FileNotFoundError(f"{p}: no such file or directory")


def dataset_checksum(path_or_dir: str | Path) -> str:
    """sha256 (hex) of a data file, streamed; for a Minari dataset dir, of its data/main_data.hdf5; for an Arrow or
    Parquet dataset (many files, no main_data.hdf5), of each data file's relative path and content in path order."""
    h = hashlib.sha256()
    files = _storage_files(Path(path_or_dir))
    for path in files or [_data_file(path_or_dir)]:
        if files:
            h.update(str(path.relative_to(Path(path_or_dir))).encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def _storage_files(dataset_dir: Path) -> list[Path]:
    """The data files of a Minari dataset directory stored without main_data.hdf5 (Arrow, Parquet); [] otherwise."""
    data = dataset_dir / "data"
    if not data.is_dir() or (data / MINARI_DATA_FILE).is_file():
        return []
    return sorted(p for p in data.rglob("*") if p.is_file() and p.name != MINARI_METADATA_FILE)


def parse_source(source: str) -> tuple[str, str]:
    """``"minari:<id>"`` / ``"d4rl:<path>"`` -> (scheme, rest); a clear error otherwise."""
    scheme, sep, rest = str(source).partition(":")
    if not sep or scheme not in SOURCE_SCHEMES or not rest:
        raise ValueError(
            f"dataset source '{source}': expected 'minari:<dataset id>' "
            f"(e.g. minari:mujoco/halfcheetah/medium-v0) or 'd4rl:<path to .hdf5>'"
        )
    if scheme == "minari":
        parse_dataset_id(rest)
    return scheme, rest


def _check_dims(t: Transitions, env_name: str, where: str) -> None:
    spec = get_spec(env_name, where=where)
    if t.obs_dim != spec.obs_dim or t.act_dim != spec.act_dim:
        raise DatasetError(
            f"{where}: observation/action dims {t.obs_dim}/{t.act_dim} do not fit {env_name}, "
            f"which expects {spec.obs_dim}/{spec.act_dim}"
        )


def load_source(source: str, env_name: str, root: str | Path | None) -> tuple[Transitions, dict[str, Any]]:
    """Load a dataset source string; returns (transitions, provenance).

    provenance = {"source": source, "checksum": sha256 of the data file, "n_transitions": N, "reference": the
    normalised score's reference returns (`source_reference`)}. ``root`` is the Minari datasets root (unused for
    d4rl: paths).
    """
    scheme, rest = parse_source(source)
    if scheme == "minari":
        t = load_minari_transitions(rest, root)
        data_path = minari_dataset_dir(rest, root)
        _check_dims(t, env_name, f"{data_path} ({source})")
        check_recorded_env(_locate_minari(rest, root)[1], data_path / "data" / MINARI_METADATA_FILE, env_name)
    else:
        data_path = Path(rest)
        t = load_d4rl_hdf5(data_path, env_name)
    return t, {"source": source, "checksum": dataset_checksum(data_path), "n_transitions": len(t),
               "reference": source_reference(source, env_name, root)}


def source_reference(source: str, env_name: str, root: str | Path | None) -> dict:
    """The reference returns a source's scores are normalised with: a Minari dataset's own `ref_min_score` and
    `ref_max_score`, else D4RL's table (D4RL files carry none). A Minari dataset not (yet) installed gets D4RL's,
    saying so: an online-only cell names its task's dataset without reading it."""
    from wmaug.core.references import d4rl_reference, metadata_reference

    scheme, rest = parse_source(source)
    if scheme == "d4rl":
        return d4rl_reference(env_name)
    meta_path = minari_dataset_dir(rest, root) / "data" / MINARI_METADATA_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return d4rl_reference(env_name, f"{meta_path} not readable")
    return metadata_reference(meta, env_name, f"minari:{rest}")


def _environment_base(gym_id: str) -> str:
    """'Hopper-v5' -> 'Hopper': D4RL-derived datasets record older versions of the same task."""
    return gym_id.rsplit("-v", 1)[0]


def check_recorded_env(meta: dict, meta_path: Path, env_name: str) -> None:
    """A Minari dataset records the environment it was collected in (`env_spec`): it must be ``env_name``'s task.
    Dimensions alone let HalfCheetah data pass as Walker2d's (both 17/6)."""
    raw = meta.get("env_spec")
    if not raw:
        return  # nothing recorded (datasets made without an environment); the dimensions were checked
    try:
        recorded = (json.loads(raw) if isinstance(raw, str) else raw)["id"]
    except (ValueError, TypeError, KeyError):
        raise DatasetError(f"{meta_path}: unreadable env_spec {str(raw)[:120]!r}") from None
    expected = get_spec(env_name).gym_id
    if _environment_base(str(recorded)) != _environment_base(expected):
        raise DatasetError(f"{meta_path}: the dataset was collected in {recorded}, but it is configured as "
                           f"{env_name}'s data ({expected})")


def check_finite_streaming(source: str, root: str | Path | None, cache_dir: str | Path | None) -> None:
    """NaN or inf anywhere in a source's observations, actions or rewards, found before any job starts: one pass
    over the file a chunk at a time, remembered per (file, size, mtime) in ``cache_dir`` so that it runs once."""
    scheme, rest = parse_source(source)
    path = Path(rest) if scheme == "d4rl" else minari_dataset_dir(rest, root) / "data" / MINARI_DATA_FILE
    files = [] if scheme == "d4rl" else _storage_files(minari_dataset_dir(rest, root))
    version = "|".join(f"{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in files or [path])
    key = hashlib.sha256(version.encode()).hexdigest()[:24]
    marker = Path(cache_dir) / f"finite-{key}" if cache_dir else None
    if marker is not None and marker.exists():
        return
    if files:  # Arrow or Parquet: minari's reader, one episode at a time
        for ep, _, data_dir in _iter_episodes(rest, root):
            for k in ("observations", "actions", "rewards"):
                if not np.all(np.isfinite(ep[k])):
                    raise DatasetError(f"{data_dir}: {k} contains NaN or inf in {source}")
        if marker is not None:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{source}\n")
        return
    keys = ("observations", "next_observations", "actions", "rewards")
    with _open_hdf5(path, f"dataset source '{source}'") as f:
        groups = [f] if scheme == "d4rl" else [f[name] for name in f if isinstance(f[name], h5py.Group)]
        for g in groups:
            for k in keys:
                ds = g.get(k)
                if not isinstance(ds, h5py.Dataset) or ds.shape == ():
                    continue
                for start in range(0, ds.shape[0], 1 << 16):
                    if not np.all(np.isfinite(ds[start: start + (1 << 16)])):
                        where = f"{path}" + (f": {g.name.strip('/')}" if scheme == "minari" else "")
                        raise DatasetError(f"{where}: {k} contains NaN or inf (rows from {start}) in {source}")
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{source}\n")


def check_source(source: str, env_name: str, root: str | Path | None) -> None:
    """Cheap pre-flight check, no full load: the source exists, opens as HDF5 (catches truncated
    files), its shapes fit ``env_name`` according to metadata and HDF5 headers, and a Minari dataset was
    collected in ``env_name``'s task. D4RL files record no environment: only their shapes are checked."""
    scheme, rest = parse_source(source)
    spec = get_spec(env_name, where=f"dataset source '{source}'")
    if scheme == "d4rl":
        path = Path(rest)
        with _open_hdf5(path, "D4RL dataset") as f:
            _d4rl_headers(f, path, env_name)
        warnings.warn(f"{path}: a D4RL file records no environment; only its shapes were checked against "
                      f"{env_name} ({spec.obs_dim}/{spec.act_dim})", stacklevel=2)
        return
    data_dir, meta = _locate_minari(rest, root)
    meta_path = data_dir / MINARI_METADATA_FILE
    obs_dim = _box_dim(meta, "observation_space", meta_path)
    act_dim = _box_dim(meta, "action_space", meta_path)
    if (obs_dim, act_dim) != (spec.obs_dim, spec.act_dim):
        raise DatasetError(
            f"{meta_path}: observation/action dims {obs_dim}/{act_dim} do not fit {env_name}, "
            f"which expects {spec.obs_dim}/{spec.act_dim}"
        )
    check_recorded_env(meta, meta_path, env_name)
    n_eps = int(meta["total_episodes"])
    if n_eps < 1 or int(meta["total_steps"]) < 1:
        raise DatasetError(f"{meta_path}: dataset is empty")
    source_reference(source, env_name, root)  # a reference pair that cannot be used fails here, not in a cell
    if data_format(meta) != "hdf5":
        next(_iter_episodes(rest, root))  # minari opens it and the first episode fits (the finiteness pass reads all)
        return
    data_file = data_dir / MINARI_DATA_FILE
    with _open_hdf5(data_file, f"Minari dataset '{rest}'") as f:
        if len(f) != n_eps:
            raise DatasetError(f"{data_file}: holds {len(f)} episodes, metadata says {n_eps}")
        g = f.get("episode_0")
        obs_ds = g.get("observations") if isinstance(g, h5py.Group) else None
        if not isinstance(obs_ds, h5py.Dataset) or obs_ds.shape[1:] != (spec.obs_dim,):
            found = getattr(obs_ds, "shape", None)
            raise DatasetError(
                f"{data_file}: episode_0/observations has shape {found}, {env_name} expects (T+1, {spec.obs_dim})"
            )
