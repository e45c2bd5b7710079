"""Checks that turn raw arrays into the canonical, validated dataset fields.

Every failure raises :class:`DatasetError` naming the field and how to fix it; nothing is dropped
or repaired silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from morec.data.errors import DatasetError

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
OPTIONAL_KEYS = ("timeouts", "next_observations")
ACTION_TOLERANCE = 1e-5  # float32 round-off around tanh-squashed actions at exactly +-1


def require_keys(data: Any, where: str) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise DatasetError(
            f"{where}: missing key(s) {missing}; a dataset needs {list(REQUIRED_KEYS)} "
            f"(optional: {list(OPTIONAL_KEYS)}), one row per transition"
        )


def as_matrix(name: str, value: Any) -> np.ndarray:
    """``[N, D]`` float32. A 1-D array is rejected rather than guessed to be ``[N, 1]``."""
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise DatasetError(f"field {name!r} must be 2-D [N, dim], got shape {arr.shape}; reshape it to (N, dim)")
    if not np.issubdtype(arr.dtype, np.number):
        raise DatasetError(f"field {name!r} must be numeric, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def as_vector(name: str, value: Any, dtype: type) -> np.ndarray:
    """``[N]``; ``[N, 1]`` (as D4RL sometimes stores rewards and terminals) is squeezed."""
    arr = np.asarray(value)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DatasetError(f"field {name!r} must be 1-D [N] (or [N, 1]), got shape {arr.shape}")
    if dtype is bool:
        if arr.dtype != np.bool_ and (not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all()):
            raise DatasetError(f"field {name!r} must hold booleans (or 0/1), got other values of dtype {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.bool_)
    if not np.issubdtype(arr.dtype, np.number):
        raise DatasetError(f"field {name!r} must be numeric, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1))
        raise DatasetError(
            f"field {name!r} has {int(bad.sum())} NaN/inf value(s) in {len(rows)} row(s), first at row {rows[0]}; "
            "repair or remove those transitions before loading (morec does not drop rows silently)"
        )


def check_lengths(fields: dict[str, np.ndarray]) -> int:
    n = len(fields["observations"])
    for name, arr in fields.items():
        if len(arr) != n:
            raise DatasetError(
                f"field {name!r} has {len(arr)} rows but 'observations' has {n}; every field needs one row per "
                f"transition"
            )
    if n == 0:
        raise DatasetError("the dataset is empty (0 transitions); give at least one transition")
    return n


def check_actions(actions: np.ndarray, low: float | np.ndarray, high: float | np.ndarray, clip: bool) -> np.ndarray:
    """Actions must lie in ``[low, high]``; out-of-range values are an error unless ``clip``."""
    low = np.broadcast_to(np.asarray(low, np.float32), actions.shape[1:])
    high = np.broadcast_to(np.asarray(high, np.float32), actions.shape[1:])
    outside = (actions < low - ACTION_TOLERANCE) | (actions > high + ACTION_TOLERANCE)
    if outside.any() and not clip:
        rows = np.flatnonzero(outside.any(axis=1))
        raise DatasetError(
            f"field 'actions' has {int(outside.sum())} value(s) in {len(rows)} row(s) outside the action space "
            f"[{low.min():g}, {high.max():g}] (first at row {rows[0]}: {actions[rows[0]].tolist()}); pass "
            "clip_actions=True to clip them, or check the actions are not stored unnormalised"
        )
    return np.clip(actions, low, high) if clip else actions


def check_obs_dim(obs_dim: int, expected: int, what: str) -> None:
    if obs_dim != expected:
        raise DatasetError(
            f"field 'observations' has {obs_dim} columns but {what} has {expected}; "
            "check the task name and the observation layout ('d4rl' excludes the x position, 'neorl' includes it)"
        )
