"""Reading and writing the official on-disk formats: D4RL hdf5, NeoRL npz, local Minari datasets.

Writers are atomic (write to a temporary file beside the target, then rename), so an interrupted
save never leaves a half-written dataset under the final name.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from morec.data import validation as V
from morec.data.errors import DatasetError
from morec.io import atomic_write

if TYPE_CHECKING:  # only annotations: the dataset module calls the writers
    from morec.data.dataset import OfflineDataset

METADATA_ATTR = "morec_metadata"  # JSON of OfflineDataset.metadata, stored as a file attribute


# ---------------------------------------------------------------------------------------- D4RL
def save_d4rl_hdf5(ds: OfflineDataset, path: Path) -> Path:
    """The D4RL layout: flat ``observations, actions, rewards, terminals, timeouts,
    next_observations`` datasets, extras under ``infos/``, morec's metadata as a JSON attribute."""

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for key, arr in ds.arrays().items():
                f.create_dataset(key, data=arr, compression="gzip", compression_opts=1)
            for key, arr in ds.infos.items():
                f.create_dataset(f"infos/{key}", data=arr, compression="gzip", compression_opts=1)
            f.attrs[METADATA_ATTR] = json.dumps(ds.summary()["metadata"])

    return atomic_write(path, write)


def read_d4rl_hdf5(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """``(fields, infos, metadata)`` from a D4RL-format file; only arrays, no validation."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DatasetError(f"{path}: not a readable hdf5 file ({err}); re-download or regenerate it") from err
    with f:
        V.require_keys(f, str(path))
        fields = {k: f[k][()] for k in (*V.REQUIRED_KEYS, *V.OPTIONAL_KEYS) if k in f}
        n = len(fields["observations"])
        infos = {}
        if "infos" in f:
            for key, item in f["infos"].items():
                if isinstance(item, h5py.Dataset) and item.shape[:1] == (n,):
                    infos[key] = item[()]
        meta = json.loads(f.attrs[METADATA_ATTR]) if METADATA_ATTR in f.attrs else {}
    return fields, infos, meta


# ---------------------------------------------------------------------------------------- NeoRL
def save_neorl_npz(ds: OfflineDataset, path: Path) -> Path:
    """NeoRL's npz keys: ``obs, next_obs, action, reward [N, 1], done [N, 1], index`` where
    ``index`` holds the cumulative end of each trajectory (as NeoRL's files do). NeoRL
    observations include the x position, so only ``neorl``-layout data can be written."""
    if ds.metadata.get("layout") != "neorl":
        raise DatasetError(
            f"NeoRL npz files hold observations with the x position (layout 'neorl'); this dataset's layout is "
            f"{ds.metadata.get('layout')!r}. Collect with NeoRL output enabled, or save as .hdf5"
        )

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                obs=ds.observations,
                next_obs=ds.next_observations,
                action=ds.actions,
                reward=ds.rewards[:, None],
                done=ds.terminals[:, None].astype(np.float32),
                index=(ds.episode_ends() + 1).astype(np.float32),
            )

    return atomic_write(path, write)


def read_neorl_npz(path: Path, num_trajectories: int | None = None) -> dict[str, np.ndarray]:
    """D4RL-named fields from a NeoRL npz (``index`` as trajectory ends or starts, see
    :func:`_trajectory_ends`). NeoRL has no timeout flag: an episode that ends
    without ``done`` was cut at the time limit, so its last row becomes a timeout. With
    ``num_trajectories`` only the first that many trajectories are kept (as NeoRL's loader does)."""
    path = Path(path)
    try:
        with np.load(path) as npz:
            data = dict(npz)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{path}: not a readable npz file ({err}); re-download or regenerate it") from err
    missing = [k for k in ("obs", "next_obs", "action", "reward", "done", "index") if k not in data]
    if missing:
        raise DatasetError(
            f"{path}: missing NeoRL key(s) {missing}; a NeoRL file has obs, next_obs, action, reward, done, index"
        )
    n = len(data["obs"])
    ends = _trajectory_ends(np.asarray(data["index"]).reshape(-1).astype(np.int64), n, path)
    if num_trajectories is None and ends[-1] != n:
        raise DatasetError(
            f"{path}: field 'index' ends at row {ends[-1]} but the file has {n} rows; the file looks damaged"
        )
    if num_trajectories is not None:
        if num_trajectories > len(ends):
            raise DatasetError(f"{path} holds {len(ends)} trajectories, fewer than the {num_trajectories} asked for")
        ends = ends[:num_trajectories]
    n_keep = int(ends[-1])
    done = V.as_vector("done", data["done"][:n_keep], bool)
    timeouts = np.zeros(n_keep, bool)
    timeouts[ends - 1] = ~done[ends - 1]
    return {
        "observations": data["obs"][:n_keep],
        "actions": data["action"][:n_keep],
        "rewards": data["reward"][:n_keep],
        "next_observations": data["next_obs"][:n_keep],
        "terminals": done,
        "timeouts": timeouts,
    }


def _trajectory_ends(index: np.ndarray, n: int, path: Path) -> np.ndarray:
    """``[K]`` cumulative trajectory ends from a NeoRL ``index`` in either form: NeoRL's files store
    the ends (``[e1, ..., eK]``, ``eK == n``; a leading 0 is tolerated), while NeoRL's
    ``get_dataset`` returns the starts (``[0, s2, ..., sK]``: a leading 0 and no final end), which
    is what a saved copy of its output holds. With a leading 0 the last value tells them apart:
    ``n`` ends the last trajectory, anything less starts it."""
    if len(index) and index[0] == 0 and index[-1] < n:
        ends = np.append(index[1:], n)  # starts: each trajectory ends where the next one starts
    else:
        ends = index[1:] if len(index) and index[0] == 0 else index
    if len(ends) == 0 or np.any(np.diff(ends) <= 0) or ends[-1] > n or ends[0] <= 0:
        raise DatasetError(
            f"{path}: field 'index' must be increasing trajectory ends within 1..{n} (or trajectory starts "
            f"from 0, as NeoRL's get_dataset returns them), got {index[:5]}..."
        )
    return ends


# --------------------------------------------------------------------------------------- Minari
def read_minari(dataset_id: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """D4RL-named fields from a Minari dataset in local storage (``$MINARI_DATASETS_PATH`` or
    ``~/.minari/datasets``), and ``{"env_id": ...}`` from its stored environment spec."""
    try:
        import minari
    except ImportError as err:
        raise DatasetError("reading Minari datasets needs the minari extra: pip install 'morec[minari]'") from err
    try:
        mds = minari.load_dataset(dataset_id)
    except Exception as err:  # minari raises several types for a missing local dataset
        raise DatasetError(
            f"Minari dataset {dataset_id!r} is not in local storage ({err}); download it with "
            f"`minari download {dataset_id}` on a machine with network access and copy it into "
            f"{os.environ.get('MINARI_DATASETS_PATH', '~/.minari/datasets')}"
        ) from err
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
    }
    for ep in mds.iterate_episodes():
        obs = np.asarray(ep.observations)
        if obs.dtype == object or obs.ndim != 2:
            raise DatasetError(
                f"Minari dataset {dataset_id!r}: only flat Box observations are supported, got {obs.shape}"
            )
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(np.asarray(ep.actions))
        parts["rewards"].append(np.asarray(ep.rewards))
        term = np.asarray(ep.terminations, bool)
        trunc = np.asarray(ep.truncations, bool)
        parts["terminals"].append(term)
        parts["timeouts"].append(trunc & ~term)
    if not parts["observations"]:
        raise DatasetError(f"Minari dataset {dataset_id!r} has no episodes")
    fields = {k: np.concatenate(v) for k, v in parts.items()}
    env_spec = getattr(mds, "spec", None)
    env_id = getattr(getattr(env_spec, "env_spec", None), "id", None)
    return fields, {"env_id": env_id, "minari_id": dataset_id}
