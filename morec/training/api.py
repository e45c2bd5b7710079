"""``morec.train``: the ``morec train`` pipeline from Python, on a dataset you hold in memory, a
file or a benchmark name.

    result = morec.train("d4rl/hopper-medium-v2/mopo.yaml", dataset={"observations": O, ...},
                         run_dir="runs/mine", seed=0, overrides={"train.epochs": 20})
    result.summary["last_score"], result.policy(torch.as_tensor(obs))  # actions in [-1, 1]

Arrays and :class:`~morec.data.OfflineDataset` objects are validated as ``load_dataset`` does and
written once to ``<cache_dir>/datasets/<fingerprint>.hdf5`` (the config then names that file): the
run's ``config.yaml`` says what it trained on, the cached dynamics and dynamics reward are reused
for the same data, and ``resume=True`` (or ``morec train --resume``) continues the run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from morec.data import OfflineDataset
    from morec.training.config import TrainConfig


@dataclass
class TrainResult:
    """What :func:`train` made: the run's ``summary.json``, its folder, its resolved config
    (``config.dataset``: the file it trained on) and its final policy (``policy.pt``: observations
    ``[B, O]`` float32 -> actions ``[B, A]`` in [-1, 1], the actor's mode)."""

    summary: dict[str, Any]
    run_dir: Path
    config: TrainConfig
    policy: torch.jit.ScriptModule


def train(
    config: TrainConfig | str | Path | list[str | Path] | None = None,
    *,
    dataset: OfflineDataset | Mapping[str, Any] | str | Path | None = None,
    run_dir: str | Path | None = None,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    show_progress: bool = True,
) -> TrainResult:
    """Train MOPO or MOBILE (MOREC on or off) as ``morec train`` does and return the result.

    ``config``: a :class:`~morec.training.config.TrainConfig`, a YAML file or a bundled config's path under
    ``configs/`` (a list lays later files over the first), ``None`` for the defaults.
    ``dataset``: arrays (``observations``, ``actions``, ``rewards``, ``terminals``, optional
    ``timeouts`` and ``next_observations``), an ``OfflineDataset``, or a source as ``--dataset`` takes
    it; ``None`` keeps the config's. ``overrides``: config keys in dotted form with Python values,
    ``{"train.epochs": 20, "filter.threshold": "auto"}``. ``run_dir`` defaults to
    ``runs/<task>-<algorithm>[-morec]/seed<seed>``. Mistakes raise :class:`~morec.errors.UserError`
    subclasses with the message ``morec train`` prints.

    Like ``morec train``, it seeds the global torch and numpy generators with the run's seed and, on
    the CPU, sets torch to one thread (``torch.set_num_threads(1)``) for the calling process and
    flushes denormal floats to zero in the calling thread (``torch.set_flush_denormal(True)``:
    :mod:`morec.denormals`); both stay so after it returns."""
    from morec.rollout.policies import load_torchscript
    from morec.training.config import TrainConfig, config_from_dict, resolve_config, set_dotted
    from morec.training.pipeline import run_training
    from morec.training.run_directory import RunDirectory

    assignments = [f"{key}={json.dumps(value)}" for key, value in (overrides or {}).items()]
    if seed is not None:
        assignments.append(f"seed={seed}")
    if isinstance(config, TrainConfig):
        values = config.to_dict()
        for assignment in assignments:
            set_dotted(values, assignment)
        cfg = config_from_dict(values)
    else:
        cfg = resolve_config(config, assignments)
    if isinstance(dataset, str | Path):
        cfg.dataset = str(dataset)
    elif dataset is not None:
        cfg.dataset = str(store_dataset(dataset, cfg))
    run = Path(run_dir) if run_dir else RunDirectory.of_seed(RunDirectory.default_root(cfg), cfg.seed)
    summary = run_training(cfg, run, resume=resume, show_progress=show_progress)
    return TrainResult(
        summary=summary, run_dir=run, config=cfg, policy=load_torchscript(RunDirectory(run, lock=None).policy)
    )


def store_dataset(dataset: OfflineDataset | Mapping[str, Any], cfg: TrainConfig) -> Path:
    """``dataset`` (validated; arrays as ``load_dataset`` takes them, for ``cfg.task``'s environment)
    as ``<cache_dir>/datasets/<fingerprint>.hdf5``, written once and atomically."""
    from morec.data import OfflineDataset, load_dataset
    from morec.training.model_cache import dataset_fingerprint

    loaded = dataset if isinstance(dataset, OfflineDataset) else load_dataset(dict(dataset), env_id=cfg.task)
    path = Path(cfg.cache_dir) / "datasets" / f"{dataset_fingerprint(loaded)}.hdf5"
    if not path.exists():
        loaded.save(path)  # atomic
    return path
