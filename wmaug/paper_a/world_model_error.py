"""Paper A's world model, held out: its one-step error on dataset rows it never saw, and where it is largest.

A world model is trained on a sample of a dataset (`wmaug subsample` keeps the sample's row `indices`);
every other row of the full dataset is a held-out transition. This module measures, per world model:

* ``summary``      train vs held-out one-step MSE of the deterministic prediction (`predict_next`), the
                   copy-the-state baseline MSE(s, s'), their ratio and the generalisation gap;
* ``by_distance``  held-out error against the distance of each held-out state to the NEAREST training state
                   (equal-count quantile bins): "where in state space" the model errs, read as "how far from
                   the data it saw";
* ``by_dimension`` the same errors per state dimension.

Units. Unless a column says ``_raw``, errors are on states z-scored with the model's own statistics
(``model.obs_mean``, ``model.obs_std + model.cfg.std_eps``: the training sample's), so every state dimension
weighs the same; an MSE is averaged over rows and state dimensions. These are the units of
`wmaug.paper_a.world_model.one_step_error`'s ``*_normalized`` keys: on the same rows the numbers agree.

Rows that are terminal or time-outs are left out everywhere (their s' is no successor of s: the world model
is not trained on them either). Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from wmaug.data.transitions import Transitions

__all__ = [
    "BOOTSTRAP_REPS",
    "SUMMARY_COLUMNS",
    "BY_DISTANCE_COLUMNS",
    "BY_DIMENSION_COLUMNS",
    "held_out_rows",
    "nearest_distances",
    "distance_bins",
    "bootstrap_mean_ci",
    "world_model_error",
]

#: bootstrap resamples per 95% interval (percentile bootstrap over held-out rows)
BOOTSTRAP_REPS = 1000
#: stream tags mixed into the seed, so the held-out draw and the bootstraps are independent of the sample's
#: own permutation (`subsample_indices` uses default_rng(seed)) and of each other
_HOLDOUT_STREAM = 0x57A1
_BOOTSTRAP_STREAM = 0xB007

SUMMARY_COLUMNS = [
    "n_total",                      # rows of the full dataset
    "n_train",                      # training-sample rows evaluated (usable: non-terminal, non-timeout)
    "n_train_excluded",             # training-sample rows left out as terminal/timeout
    "n_holdout",                    # held-out rows evaluated
    "n_holdout_available",          # usable rows outside the training sample (the pool drawn from)
    "train_mse_normalized",         # model MSE on the training rows, z-scored states
    "heldout_mse_normalized",       # model MSE on the held-out rows, z-scored states
    "heldout_mse_normalized_lo",    # its 95% bootstrap interval over held-out rows
    "heldout_mse_normalized_hi",
    "train_copy_mse_normalized",    # copy-the-state baseline MSE(s, s') on the training rows
    "heldout_copy_mse_normalized",  # ... on the held-out rows
    "ratio_normalized",             # heldout_mse_normalized / heldout_copy_mse_normalized (< 1: beats copying)
    "generalization_gap",           # heldout_mse_normalized / train_mse_normalized (> 1: worse off the sample)
    "heldout_mse_raw",              # model MSE on the held-out rows, raw states
    "heldout_copy_mse_raw",         # copy baseline on the held-out rows, raw states
    "ratio_raw",                    # heldout_mse_raw / heldout_copy_mse_raw
    "nn_distance_median",           # median distance of a held-out state to its nearest training state (z-scored)
    "bootstrap_reps",
]
BY_DISTANCE_COLUMNS = [
    "bin",                      # 0 = nearest to the training states
    "dist_lo", "dist_hi",       # the bin's smallest and largest nearest-training-state distance (z-scored, L2)
    "dist_mean",                # the bin's mean distance
    "n",                        # held-out rows in the bin
    "mse_normalized",           # model MSE of the bin's rows, z-scored states
    "mse_normalized_lo",        # its 95% bootstrap interval over the bin's rows
    "mse_normalized_hi",
    "copy_mse_normalized",      # copy baseline MSE(s, s') of the bin's rows
    "bootstrap_reps",
]
BY_DIMENSION_COLUMNS = [
    "dim",                          # state dimension index
    "heldout_mse_normalized",       # model squared error of this dim, held-out rows, z-scored
    "train_mse_normalized",         # ... training rows
    "heldout_copy_mse_normalized",  # copy baseline, held-out rows
    "heldout_mse_raw",              # model squared error, held-out rows, raw units
]


def _usable(data: Transitions) -> np.ndarray:
    """Non-terminal, non-timeout rows (the rule `train_world_model` trains on)."""
    return (np.asarray(data.terminals) < 0.5) & (np.asarray(data.timeouts) < 0.5)


def held_out_rows(n_total: int, train_indices: np.ndarray, usable: np.ndarray, n_holdout: int,
                  seed: int) -> np.ndarray:
    """Rows of the full dataset to evaluate a world model on, sorted.

    The candidates are the rows not in ``train_indices`` (the model's training sample) and ``usable``
    (bool mask over all ``n_total`` rows: non-terminal, non-timeout). min(n_holdout, candidates) of them are
    drawn uniformly without replacement with a generator seeded by ``seed``. Raises ValueError when there
    are no candidates (the sample covers every usable row) or an argument is malformed.
    """
    usable = np.asarray(usable)
    train_indices = np.asarray(train_indices)
    if usable.dtype != np.bool_ or usable.shape != (n_total,):
        raise ValueError(f"held_out_rows: usable must be a bool mask of shape ({n_total},), "
                         f"got dtype {usable.dtype}, shape {usable.shape}")
    if n_holdout < 1:
        raise ValueError(f"held_out_rows: n_holdout must be >= 1, got {n_holdout}")
    if train_indices.size and (not np.issubdtype(train_indices.dtype, np.integer)
                               or train_indices.min() < 0 or train_indices.max() >= n_total):
        raise ValueError(f"held_out_rows: train_indices must be integer rows in [0, {n_total}), got dtype "
                         f"{train_indices.dtype}, range [{train_indices.min()}, {train_indices.max()}]")
    candidates = usable.copy()
    candidates[train_indices.astype(np.int64)] = False
    pool = np.flatnonzero(candidates)
    if len(pool) == 0:
        raise ValueError(
            f"held_out_rows: no held-out rows: of {n_total} rows {int(usable.sum())} are usable (non-terminal, "
            f"non-timeout) and the training sample ({len(np.unique(train_indices))} distinct rows) covers all of them")
    take = min(int(n_holdout), len(pool))
    rng = np.random.default_rng([_HOLDOUT_STREAM, seed])
    return np.sort(pool[rng.permutation(len(pool))[:take]])


@torch.no_grad()
def nearest_distances(queries: np.ndarray, reference: np.ndarray, *, device: str | torch.device = "cpu",
                      query_chunk: int = 2048, reference_chunk: int = 4096) -> np.ndarray:
    """Euclidean distance (float64) from each row of ``queries`` to its nearest row of ``reference``.

    torch.cdist over (query_chunk x reference_chunk) blocks, keeping a running minimum, so memory stays at
    one block (8 * query_chunk * reference_chunk bytes) whatever the sizes (10K x 1M is fine)."""
    q = np.asarray(queries, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"nearest_distances: need 2-d arrays with the same columns, got {q.shape}, {r.shape}")
    if len(r) == 0:
        raise ValueError("nearest_distances: the reference set is empty")
    out = np.empty(len(q), dtype=np.float64)
    ref_blocks = [torch.from_numpy(r[j:j + reference_chunk]).to(device) for j in range(0, len(r), reference_chunk)]
    for i in range(0, len(q), query_chunk):
        block = torch.from_numpy(q[i:i + query_chunk]).to(device)
        best = torch.full((len(block),), float("inf"), dtype=torch.float64, device=device)
        for ref in ref_blocks:
            best = torch.minimum(best, torch.cdist(block, ref).min(dim=1).values)
        out[i:i + query_chunk] = best.cpu().numpy()
    return out


def distance_bins(distances: np.ndarray, bins: int) -> np.ndarray:
    """Equal-count quantile bins: bin b holds the rows ranked [b n / bins, (b + 1) n / bins) by distance
    (ties broken by row order), so every bin has n // bins or n // bins + 1 rows even when distances tie.
    Returns the bin (0 = nearest) of each row; min(bins, n) bins are used."""
    d = np.asarray(distances)
    n = len(d)
    if bins < 1:
        raise ValueError(f"distance_bins: bins must be >= 1, got {bins}")
    bins = min(bins, n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(d, kind="stable")] = np.arange(n)
    return (rank * bins) // max(n, 1)


def bootstrap_mean_ci(values: np.ndarray, reps: int, rng: np.random.Generator,
                      level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampling rows with replacement)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    means = np.empty(reps)
    step = max(1, 4_000_000 // len(v))  # resamples per block: bounded memory for large bins
    for start in range(0, reps, step):
        k = min(step, reps - start)
        means[start:start + k] = v[rng.integers(0, len(v), size=(k, len(v)))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


@torch.no_grad()
def _squared_errors(model, data: Transitions, rows: np.ndarray, chunk: int):
    """Yield per-row, per-dim squared errors of one chunk of ``rows``: (model z-scored, copy z-scored,
    model raw, copy raw), float64 numpy arrays of shape (chunk, obs_dim). Same arithmetic as
    `one_step_error`."""
    scale = (model.obs_std + model.cfg.std_eps).cpu().double()
    for start in range(0, len(rows), chunk):
        idx = rows[start:start + chunk]
        s = model._as_tensor(data.observations[idx])
        a = model._as_tensor(data.actions[idx])
        s_next = model._as_tensor(data.next_observations[idx])
        err_model = (model.predict_next(s, a) - s_next).cpu().double()
        err_copy = (s - s_next).cpu().double()
        yield ((err_model / scale).pow(2).numpy(), (err_copy / scale).pow(2).numpy(),
               err_model.pow(2).numpy(), err_copy.pow(2).numpy())


def _z_score(model, observations: np.ndarray) -> np.ndarray:
    mean = model.obs_mean.detach().cpu().double().numpy()
    scale = (model.obs_std + model.cfg.std_eps).detach().cpu().double().numpy()
    return (np.asarray(observations, dtype=np.float64) - mean) / scale


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def world_model_error(model, full: Transitions, train_indices: np.ndarray, n_holdout: int, seed: int,
                      bins: int = 5, *, bootstrap_reps: int = BOOTSTRAP_REPS,
                      chunk: int = 65536) -> dict[str, pd.DataFrame]:
    """Held-out one-step error of ``model`` (a `WorldModel`) trained on ``full.take(train_indices)``.

    ``full``: the whole dataset the training sample was drawn from; ``train_indices``: the sample's rows of
    ``full`` (the ``indices`` array `wmaug subsample` writes); ``n_holdout``: held-out rows to draw (fewer if
    fewer are available); ``seed``: the held-out draw's and the bootstraps' seed; ``bins``: distance bins.

    Train error is measured on the usable (non-terminal, non-timeout) rows of ``train_indices``; held-out
    rows come from `held_out_rows`. Returns {"summary", "by_distance", "by_dimension"}: DataFrames with
    columns `SUMMARY_COLUMNS` (one row), `BY_DISTANCE_COLUMNS` (one row per bin), `BY_DIMENSION_COLUMNS`
    (one row per state dimension, by dim); the column comments there say what each number is. Intervals
    are 95% percentile bootstraps over held-out rows, ``bootstrap_reps`` resamples, seeded by ``seed``.
    The distance of a held-out row is the Euclidean distance, in z-scored state space, from its state s to
    the nearest state s of a usable training row (the states the model was conditioned on).
    """
    if full.obs_dim != model.obs_dim or full.act_dim != model.act_dim:
        raise ValueError(f"world_model_error: the model is for obs_dim {model.obs_dim}, act_dim {model.act_dim}; "
                         f"the dataset has {full.obs_dim}, {full.act_dim}")
    if bins < 1 or bootstrap_reps < 1:
        raise ValueError(f"world_model_error: bins and bootstrap_reps must be >= 1, got {bins}, {bootstrap_reps}")
    n_total = len(full)
    usable = _usable(full)
    train_indices = np.asarray(train_indices)
    held = held_out_rows(n_total, train_indices, usable, n_holdout, seed)  # validates train_indices too
    sample = np.unique(train_indices.astype(np.int64))
    train_rows = sample[usable[sample]]
    if len(train_rows) == 0:
        raise ValueError(f"world_model_error: none of the {len(sample)} training rows is usable "
                         "(all terminal or timeouts): no training error and no training states to measure from")
    n_available = int(usable.sum()) - len(train_rows)

    # training rows: per-dim sums only (the sample may be large)
    sums = [np.zeros(model.obs_dim) for _ in range(2)]
    for sq_model_n, sq_copy_n, _, _ in _squared_errors(model, full, train_rows, chunk):
        sums[0] += sq_model_n.sum(0)
        sums[1] += sq_copy_n.sum(0)
    train_dim, train_copy_dim = sums[0] / len(train_rows), sums[1] / len(train_rows)

    # held-out rows: per row (binning, bootstrap)
    parts = list(zip(*_squared_errors(model, full, held, chunk)))
    sq_model_n, sq_copy_n, sq_model_raw, sq_copy_raw = (np.concatenate(p) for p in parts)
    row_mse, row_copy = sq_model_n.mean(1), sq_copy_n.mean(1)  # per held-out row, mean over dims

    device = model.obs_mean.device
    dist = nearest_distances(_z_score(model, full.observations[held]), _z_score(model, full.observations[train_rows]),
                             device=device)
    bin_of = distance_bins(dist, bins)

    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng([_BOOTSTRAP_STREAM, seed, stream])

    heldout_mse, heldout_copy = float(row_mse.mean()), float(row_copy.mean())
    train_mse = float(train_dim.mean())
    lo, hi = bootstrap_mean_ci(row_mse, bootstrap_reps, rng(0))
    raw_mse, raw_copy = float(sq_model_raw.mean()), float(sq_copy_raw.mean())
    summary = pd.DataFrame([{
        "n_total": n_total,
        "n_train": len(train_rows),
        "n_train_excluded": len(sample) - len(train_rows),
        "n_holdout": len(held),
        "n_holdout_available": n_available,
        "train_mse_normalized": train_mse,
        "heldout_mse_normalized": heldout_mse,
        "heldout_mse_normalized_lo": lo,
        "heldout_mse_normalized_hi": hi,
        "train_copy_mse_normalized": float(train_copy_dim.mean()),
        "heldout_copy_mse_normalized": heldout_copy,
        "ratio_normalized": _ratio(heldout_mse, heldout_copy),
        "generalization_gap": _ratio(heldout_mse, train_mse),
        "heldout_mse_raw": raw_mse,
        "heldout_copy_mse_raw": raw_copy,
        "ratio_raw": _ratio(raw_mse, raw_copy),
        "nn_distance_median": float(np.median(dist)),
        "bootstrap_reps": bootstrap_reps,
    }], columns=SUMMARY_COLUMNS)

    rows = []
    for b in range(int(bin_of.max()) + 1):
        m = bin_of == b
        lo, hi = bootstrap_mean_ci(row_mse[m], bootstrap_reps, rng(b + 1))
        rows.append({"bin": b, "dist_lo": float(dist[m].min()), "dist_hi": float(dist[m].max()),
                     "dist_mean": float(dist[m].mean()), "n": int(m.sum()),
                     "mse_normalized": float(row_mse[m].mean()), "mse_normalized_lo": lo, "mse_normalized_hi": hi,
                     "copy_mse_normalized": float(row_copy[m].mean()), "bootstrap_reps": bootstrap_reps})
    by_distance = pd.DataFrame(rows, columns=BY_DISTANCE_COLUMNS)

    by_dimension = pd.DataFrame({
        "dim": np.arange(model.obs_dim),
        "heldout_mse_normalized": sq_model_n.mean(0),
        "train_mse_normalized": train_dim,
        "heldout_copy_mse_normalized": sq_copy_n.mean(0),
        "heldout_mse_raw": sq_model_raw.mean(0),
    }, columns=BY_DIMENSION_COLUMNS)
    return {"summary": summary, "by_distance": by_distance, "by_dimension": by_dimension}
