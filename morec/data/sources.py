"""`load_dataset`: one entry point for D4RL names and files, NeoRL names and files, Minari ids and
dicts of arrays."""

from __future__ import annotations

import os
import re
import urllib.request
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from morec.data import formats
from morec.data import validation as V
from morec.data.dataset import OfflineDataset
from morec.data.errors import DatasetError, UnknownEnvironmentWarning
from morec.tasks import get_task, task_from_file_name

D4RL_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl/gym_mujoco_v2/{file}"
NEORL_URL = "http://datasets.polixir.site/v2/{task}/{file}"
DOWNLOAD_TIMEOUT_S = 30.0


def d4rl_dataset_dir() -> Path:
    return Path(os.environ.get("D4RL_DATASET_DIR", Path.home() / ".d4rl" / "datasets")).expanduser()


def neorl_dataset_dir() -> Path:
    """NeoRL's own package caches files inside the installed package; morec reads them from
    ``$NEORL_DATASET_DIR`` or ``~/.neorl/datasets``."""
    return Path(os.environ.get("NEORL_DATASET_DIR", Path.home() / ".neorl" / "datasets")).expanduser()


def d4rl_file_name(name: str) -> str:
    """``hopper-medium-replay-v2`` -> ``hopper_medium_replay-v2.hdf5`` (D4RL's official name)."""
    task = get_task(name)
    return f"{task.domain.name}_{task.level.replace('-', '_')}-v2.hdf5"


def neorl_file_name(task_name: str, num_trajectories: int, split: str = "train") -> str:
    """``Hopper-v3``, ``low``, 100 -> ``Hopper-v3-low-100-train-noise.npz``."""
    return f"{task_name}-{num_trajectories}-{split}-noise.npz"


def _download(url: str, target: Path) -> None:
    def fetch(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)

    formats.atomic_write(target, fetch)


def _fetch_or_explain(url: str, target: Path, download: bool, what: str) -> None:
    if not download:
        raise DatasetError(f"{what} not found: put the official file at {target} (downloads are off)")
    try:
        _download(url, target)
    except OSError as err:
        raise DatasetError(
            f"{what} not found at {target} and the download from {url} failed ({err}). Download that file on a "
            f"machine with network access and put it at {target}"
        ) from err


def _from_fields(
    fields: Mapping[str, Any], *, infos=None, metadata: dict[str, Any], env_id: str | None, **options
) -> OfflineDataset:
    keys = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")
    return OfflineDataset.from_arrays(
        **{k: fields.get(k) for k in keys}, infos=infos, metadata=metadata, env_id=env_id, **options
    )


def _env_from_file_name(path: Path, meta: dict[str, Any]) -> str | None:
    """The task an official D4RL/NeoRL file name gives (recorded in ``metadata["env_from"]``)."""
    task = task_from_file_name(path)
    if task is None:
        return None
    meta["env_from"] = "file name"
    return task.name


def _warn_if_environment_unknown(ds: OfflineDataset, path: Path) -> OfflineDataset:
    """Without an environment the layout is unknown and oracle checks are skipped: say so, once."""
    if ds.metadata.get("env_id") is None:
        warnings.warn(
            f"{path.name} does not name its environment and is not an official D4RL/NeoRL file name: its observation "
            "layout is unknown and MuJoCo-oracle checks are skipped; pass the environment with --env (env_id=), "
            "e.g. --env Hopper-v4 or --env hopper-medium-replay-v2",
            UnknownEnvironmentWarning,
            stacklevel=3,
        )
    return ds


def _load_d4rl_file(path: Path, env_id: str | None, source: str, **options) -> OfflineDataset:
    fields, infos, stored_meta = formats.read_d4rl_hdf5(path)
    meta = {**stored_meta, "source": source, "path": str(path)}
    env_id = env_id or stored_meta.get("env_id") or _env_from_file_name(path, meta)
    meta.setdefault("layout", "d4rl" if env_id else None)
    return _from_fields(fields, infos=infos, metadata=meta, env_id=env_id, **options)


def _benchmark_task(name: str, benchmark: str, example: str, label: str):
    """The :class:`TaskSpec` of a ``d4rl:``/``neorl:`` name, or a :class:`DatasetError`."""
    try:
        task = get_task(name)
    except KeyError as err:
        raise DatasetError(err.args[0]) from err
    if task.benchmark != benchmark:
        raise DatasetError(f"{name!r} is not a {label} name; use e.g. {example!r}")
    return task


def _load_neorl(name: str, split: str, download: bool, **options) -> OfflineDataset:
    task = _benchmark_task(name, "neorl", "Hopper-v3-low-100", "NeoRL dataset")
    if task.num_trajectories is None:
        raise DatasetError(f"NeoRL name {name!r} needs a trajectory count, e.g. '{name}-100' (one of 100, 1000, 10000)")
    base = f"{task.domain.gym_name}-v3-{task.level}"
    folder = neorl_dataset_dir()
    path = folder / neorl_file_name(base, task.num_trajectories, split)
    if not path.exists():
        # like NeoRL's own loader: a larger local file of the same task and level holds the first n trajectories
        pattern = re.compile(rf"^{re.escape(base)}-(\d+)-{split}-noise\.npz$")
        larger = sorted(
            (int(m[1]), p) for p in (folder.glob("*.npz") if folder.exists() else []) if (m := pattern.match(p.name))
        )
        larger = [p for n, p in larger if n >= task.num_trajectories]
        if larger:
            path = larger[0]
        else:
            _fetch_or_explain(
                NEORL_URL.format(task=f"{task.domain.gym_name}-v3", file=path.name),
                path,
                download,
                f"NeoRL dataset {name!r}",
            )
    fields = formats.read_neorl_npz(path, num_trajectories=task.num_trajectories)
    meta = {"source": f"neorl:{name}", "path": str(path), "layout": "neorl", "split": split}
    return _from_fields(fields, metadata=meta, env_id=name, **options)


def _known_task_or_none(env_id: str | None) -> str | None:
    """Minari stores any environment; only the MuJoCo tasks morec knows get the task checks."""
    try:
        return env_id if env_id and get_task(env_id) else None
    except KeyError:
        return None


def load_dataset(
    source: str | os.PathLike | Mapping[str, Any],
    *,
    env_id: str | None = None,
    layout: str | None = None,
    clip_actions: bool = False,
    download: bool = True,
    split: str = "train",
) -> OfflineDataset:
    """Load and validate a dataset.

    ``source`` is one of:

    - ``"d4rl:hopper-medium-v2"``: the official file from ``$D4RL_DATASET_DIR`` or
      ``~/.d4rl/datasets`` (downloaded there when missing and ``download`` is on);
    - a path to a D4RL-format ``.hdf5`` / ``.h5`` file;
    - ``"neorl:Hopper-v3-low-100"`` (``split`` picks ``train`` or ``val``) or a path to a NeoRL ``.npz``;
    - ``"minari:<dataset id>"`` from local Minari storage (needs ``pip install 'morec[minari]'``);
    - a mapping of arrays with D4RL key names (``observations, actions, rewards, terminals``,
      optional ``timeouts, next_observations``).

    ``env_id`` names the environment (a gymnasium id or benchmark name) for files and arrays that
    do not say it themselves; with it, observation size and action bounds are checked. Actions
    outside the action space are an error unless ``clip_actions``.
    """
    options = {"layout": layout, "clip_actions": clip_actions}
    if isinstance(source, Mapping):
        V.require_keys(source, "the array mapping")
        meta = {"source": "arrays", "layout": layout}
        return _from_fields(source, metadata=meta, env_id=env_id, **options)
    text = str(source)
    scheme, _, rest = text.partition(":") if re.match(r"^[a-z0-9]+:", text) else ("", "", text)
    if scheme == "d4rl":
        _benchmark_task(rest, "d4rl", "hopper-medium-v2", "D4RL locomotion")
        path = d4rl_dataset_dir() / d4rl_file_name(rest)
        if not path.exists():
            _fetch_or_explain(D4RL_URL.format(file=path.name), path, download, f"D4RL dataset {rest!r}")
        return _load_d4rl_file(path, env_id=rest, source=text, **options)
    if scheme == "neorl":
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return _load_neorl(rest, split, download, **options)
    if scheme == "minari":
        fields, meta = formats.read_minari(rest)
        env_id = env_id or _known_task_or_none(meta.get("env_id"))
        meta = {**meta, "source": text}
        return _from_fields(fields, metadata=meta, env_id=env_id, **options)
    if scheme:
        raise DatasetError(f"unknown dataset scheme {scheme!r} in {text!r}: use d4rl:, neorl:, minari: or a file path")
    path = Path(text).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset file {path} does not exist")
    if path.suffix in (".hdf5", ".h5"):
        return _warn_if_environment_unknown(_load_d4rl_file(path, env_id=env_id, source=str(path), **options), path)
    if path.suffix == ".npz":
        fields = formats.read_neorl_npz(path)
        meta = {"source": str(path), "path": str(path), "layout": layout or "neorl"}
        env_id = env_id or _env_from_file_name(path, meta)
        return _warn_if_environment_unknown(_from_fields(fields, metadata=meta, env_id=env_id, **options), path)
    raise DatasetError(f"cannot tell the format of {path}: use a D4RL .hdf5 or a NeoRL .npz file")
