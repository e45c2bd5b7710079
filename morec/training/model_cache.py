"""Trained dynamics, dynamics rewards and distilled rewards, trained once and then loaded: cached under
``cfg.cache_dir`` by dataset fingerprint, model config and seed (``cfg.resolved_model_seed``), so runs that
can share them do.

Runs sharing a cache entry (same dataset, config and seed) may start at once, in several processes
or on several machines sharing the cache directory: a lock next to the entry makes one of them
train it while the others wait and then load it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from morec.data import OfflineDataset
from morec.dynamics import EnsembleDynamics, TaskInfo
from morec.dynamics.ensemble import CHECKPOINT_FILE as DYNAMICS_FILE
from morec.dynamics_reward.config import DistillationConfig
from morec.dynamics_reward.model import CHECKPOINT_FILE as REWARD_FILE
from morec.dynamics_reward.model import DynamicsReward
from morec.locking import exclusive_lock
from morec.rollout.config import RolloutConfig
from morec.training.config import MOBILE_ELITES_REASON, MOBILE_MIN_ELITES, ConfigError, TrainConfig
from morec.training.models import distil_reward_model, fit_dynamics_model, fit_reward_model


def dataset_fingerprint(ds: OfflineDataset) -> str:
    """16 hex digits naming a dataset's arrays and layout."""
    digest = hashlib.sha1()
    for arr in ds.arrays().values():
        digest.update(np.ascontiguousarray(arr).tobytes())
    digest.update(str(ds.metadata.get("layout")).encode())
    return digest.hexdigest()[:16]


def cache_key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def named_key(file: Path) -> str:
    """The cache key of a model a config names by its folder: the folder and the saved file's
    content, so a model trained again into the same folder never reuses what was derived from the
    old one (a reward trained for old dynamics, a reward distilled from an old reward)."""
    return cache_key("named", str(file.parent), hashlib.sha1(file.read_bytes()).hexdigest())


def entry_dir(cfg: TrainConfig, kind: str, key: str) -> Path:
    """The cache folder of one trained model: ``<cache_dir>/<kind>/<key>`` (kind: dynamics or reward)."""
    return Path(cfg.cache_dir) / kind / key


def cached_dynamics(
    cfg: TrainConfig, ds: OfflineDataset, fingerprint: str, writer: SummaryWriter | None, progress: bool
) -> tuple[EnsembleDynamics, str, Path]:
    """``(ensemble, its cache key, its folder)``: the one ``cfg.dynamics_path`` names, or loaded from
    the cache, or trained on ``ds`` (logging to ``writer``) and saved there."""
    task = TaskInfo.of(ds)
    if cfg.dynamics_path is not None:
        folder = Path(cfg.dynamics_path).resolve()
        try:
            model = EnsembleDynamics.load(folder, cfg.device, expect=task)
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(f"dynamics_path: {err}") from None
        if cfg.algorithm == "mobile" and len(model.elites) < MOBILE_MIN_ELITES:  # the config checks trained ones
            raise ConfigError(
                f"dynamics_path: {folder} has {len(model.elites)} elite; {MOBILE_ELITES_REASON}: name dynamics "
                f"trained with dynamics.num_elites >= {MOBILE_MIN_ELITES}"
            )
        return model, named_key(folder / DYNAMICS_FILE), folder
    key = cache_key("dynamics", fingerprint, asdict(cfg.dynamics), cfg.resolved_model_seed)
    folder = entry_dir(cfg, "dynamics", key)
    with exclusive_lock(folder.with_name(key + ".lock"), f"waiting for another process training dynamics {folder}"):
        if (folder / "dynamics.pt").exists():
            return EnsembleDynamics.load(folder, cfg.device, expect=task), key, folder
        model, _ = fit_dynamics_model(
            ds,
            cfg.dynamics,
            folder,
            seed=cfg.resolved_model_seed,
            device=cfg.device,
            writer=writer,
            show_progress=progress,
        )
    return model, key, folder


def cached_reward(
    cfg: TrainConfig, ds: OfflineDataset, dynamics: EnsembleDynamics, dynamics_key: str, progress: bool
) -> tuple[DynamicsReward, str, Path]:
    """``(the dynamics reward of dynamics, its cache key, its folder)``: the one ``cfg.reward_path``
    names, or loaded, or trained and saved."""
    if cfg.reward_path is not None:
        folder = Path(cfg.reward_path).resolve()
        try:
            reward = DynamicsReward.load(
                folder,
                cfg.device,
                obs_dim=ds.obs_dim,
                act_dim=ds.act_dim,
                env_id=ds.metadata.get("env_id"),
                layout=ds.metadata.get("layout"),
            )
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(f"reward_path: {err}") from None
        return reward, named_key(folder / REWARD_FILE), folder
    key = cache_key("reward", dynamics_key, asdict(cfg.reward), cfg.resolved_model_seed)
    folder = entry_dir(cfg, "reward", key)
    with exclusive_lock(
        folder.with_name(key + ".lock"), f"waiting for another process training the dynamics reward {folder}"
    ):
        if (folder / "dynamics_reward.pt").exists():
            return DynamicsReward.load(folder, cfg.device, obs_dim=ds.obs_dim, act_dim=ds.act_dim), key, folder
        reward, _ = fit_reward_model(
            ds, dynamics, cfg.reward, folder, seed=cfg.resolved_model_seed, show_progress=progress
        )
    return reward, key, folder


def cached_distilled_reward(
    cfg: TrainConfig,
    ds: OfflineDataset,
    dynamics: EnsembleDynamics,
    teacher: DynamicsReward,
    reward_key: str,
    threshold: float,
    writer: SummaryWriter | None,
    progress: bool,
) -> DynamicsReward:
    """``teacher`` (named by its cache key) distilled into one network with ``morec distil-reward``'s
    defaults: loaded, or distilled and saved with ``report.json`` (agreement with the teacher at
    ``threshold``, also written to ``writer`` as ``reward/distil_*``). The student does not depend on
    the threshold, so a cached one is reused at any; its report keeps the threshold it was measured at."""
    config = DistillationConfig(seed=cfg.resolved_model_seed)
    rollout = RolloutConfig(
        samples_per_member=cfg.rollout.samples_per_member, candidate_clip=cfg.rollout.candidate_clip
    )
    key = cache_key("distilled", reward_key, asdict(config), rollout.samples_per_member, rollout.candidate_clip)
    folder = entry_dir(cfg, "reward", key)
    with exclusive_lock(
        folder.with_name(key + ".lock"), f"waiting for another process distilling the dynamics reward {folder}"
    ):
        if (folder / "dynamics_reward.pt").exists():
            student = DynamicsReward.load(folder, cfg.device, obs_dim=ds.obs_dim, act_dim=ds.act_dim)
            report = json.loads((folder / "report.json").read_text())
        else:
            student, report = distil_reward_model(
                ds,
                dynamics,
                teacher,
                config,
                folder,
                filter_config=cfg.filter,
                threshold=threshold,
                rollout=rollout,
                show_progress=progress,
            )
    if writer is not None:  # a cached student's report may be at another run's threshold: say which
        writer.add_scalar("reward/distil_agreement_threshold", report["threshold"], 0)
        writer.add_scalar("reward/distil_truncation_agreement", report["truncation_agreement"], 0)
        for name, value in report["pick_agreement"].items():
            writer.add_scalar(f"reward/distil_pick_agreement_{name}", value, 0)
    return student
