"""The quickstart's stages: collect a small dataset with an online SAC, then train the dynamics
ensemble, the MOREC dynamics reward and MOBILE + MOREC on it, each stage reused when its settings
did not change. ``morec quickstart`` runs them in order and prints around them.

The training run's folder is named after a hash of its resolved config (:func:`run_key`), so a
changed setting trains a fresh run instead of resuming another one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from morec.collect.config import CollectConfig
    from morec.training.config import TrainConfig

# MOBILE + MOREC at a budget 2 CPU cores finish in a few minutes
TRAINING = [
    "task=Hopper-v4",
    "algorithm=mobile",
    "morec=true",
    "dynamics.max_epochs=30",
    "reward.num_updates=1000",
    "reward.snapshot_interval=50",
    "reward.snapshot_stride=2",
    "rollout.horizon=50",
    "rollout.batch_size=500",
    "rollout.freq=500",
    "rollout.samples_per_member=2",
    "mobile.beta=1.0",
    "mobile.num_samples=5",
    "mobile.actor_on_target_critics=true",
    "train.epochs=3",
    "train.steps_per_epoch=500",
    "train.eval_episodes=10",
    "train.log_every=100",
]
# the MOREC filter (threshold, pick, truncation) and candidate clip are the shipped recommended
# config's: whatever docs/morec_scale chooses reaches the quickstart when scripts/make_configs.py writes it
RECOMMENDED_CONFIG = "d4rl/hopper-medium-v2/mobile_morec.yaml"
RUN_PREFIX = "mobile_morec-"


def run_key(config: dict[str, Any]) -> str:
    """8 hex digits naming a resolved training config."""
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]


def training_config(dataset: Path, root: Path, seed: int, device: str, overrides: list[str]) -> TrainConfig:
    """The filter and candidate clip of :data:`RECOMMENDED_CONFIG`, then :data:`TRAINING` on ``dataset``, its cache
    under ``root``, then ``overrides`` (``--set``). Paths and typed values go in as they are (never
    as YAML text, which would cut a path at ``#``)."""
    from morec.bundled_configs import find_config
    from morec.training.config import config_from_dict, load_config, set_dotted

    recommended = load_config(find_config(RECOMMENDED_CONFIG))
    values: dict[str, Any] = {
        "dataset": str(dataset),
        "seed": seed,
        "device": device,
        "cache_dir": str(root / "cache"),
        "filter": asdict(recommended.filter),
        "rollout": {"candidate_clip": recommended.rollout.candidate_clip},
    }
    for assignment in TRAINING + list(overrides):
        set_dotted(values, assignment)
    return config_from_dict(values)


def run_dir_of(cfg: TrainConfig, root: Path) -> Path:
    """Where the quickstart trains ``cfg``: ``<root>/mobile_morec-<run_key>``."""
    return root / f"{RUN_PREFIX}{run_key(cfg.to_dict())}"


def collected_summary(cfg: CollectConfig) -> dict[str, Any] | None:
    """The summary of a collection already made in ``cfg.out_dir`` with exactly these settings."""
    path = Path(cfg.out_dir) / "collect_summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    return summary if summary.get("config") == json.loads(json.dumps(asdict(cfg))) else None


def differences_from_earlier_runs(cfg: TrainConfig, run_dir: Path, root: Path) -> dict[str, list[str]]:
    """``{earlier run folder name: ["key old -> new", ...]}``: how ``cfg`` differs from each other
    quickstart run under ``root`` (why a fresh run trains instead of resuming one)."""
    import yaml

    from morec.training.config import config_differences

    return {
        other.parent.name: [
            f"{key} {a} -> {b}"
            for key, (a, b) in config_differences(yaml.safe_load(other.read_text()), cfg.to_dict()).items()
        ]
        for other in sorted(p for p in root.glob(f"{RUN_PREFIX}*/config.yaml") if p.parent != run_dir)
    }


def tensorboard_folders(root: Path, run_dir: Path) -> list[tuple[Path, str]]:
    """Each folder under ``root`` holding TensorBoard event files, with the stage it records."""
    folders = sorted({p.parent for p in root.rglob("events.out.tfevents.*")})
    labelled = []
    for folder in folders:
        if (root / "cache" / "reward") in folder.parents:
            what = "dynamics reward (discriminator training)"
        elif folder.parent == run_dir:
            what = "this run (MOBILE + MOREC; dynamics/ when this run trained them)"
        elif folder.parent.name.startswith(RUN_PREFIX):
            what = "an earlier quickstart run"
        else:
            what = "other"
        labelled.append((folder, what))
    return labelled
