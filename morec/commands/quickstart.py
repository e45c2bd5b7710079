"""``morec quickstart``: the whole job on built-in data, small enough for 2 CPU cores.

Stages: collect a Hopper dataset with an online SAC, then train the dynamics ensemble, the MOREC
dynamics reward and MOBILE + MOREC on it. Everything goes under the parent of ``--out``; a stage
whose settings did not change is reused. The training run's folder is named after a hash of its
resolved config, so a changed ``--set`` trains a fresh run instead of resuming another one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from morec.commands.collect import add_collect_arguments, collect_config, print_collect_summary

if TYPE_CHECKING:
    from morec.training.config import TrainConfig

NAME = "quickstart"
HELP = "the main job on built-in data: collect a hopper dataset, train MOBILE+MOREC on it"

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
D4RL_GRADIENT_STEPS = 3_000_000  # MOBILE's D4RL budget (3000 epochs x 1000 steps)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_collect_arguments(p, out_default="runs/quickstart/data", train_steps=6_000, dataset_size=5_000)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the training config, e.g. train.epochs=10 (a changed config trains in a new run folder)",
    )


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


def run(args: argparse.Namespace) -> int:
    from morec.collect.recipe import dataset_file_name

    start = time.perf_counter()
    root = Path(args.out).parent
    collect_cfg = collect_config(args)
    dataset = Path(args.out) / dataset_file_name(args.env, "medium", "d4rl")
    cfg = training_config(
        dataset, root, args.seed, args.device, args.set
    )  # a bad --set stops here, before minutes of collecting
    run_dir = root / f"{RUN_PREFIX}{run_key(cfg.to_dict())}"
    _print_overview(args, cfg, root)

    print(f"\n[1/4] collect -> {args.out}")
    summary = _collect_or_reuse(collect_cfg, args)
    print(f"\n[2-4/4] dynamics, dynamics reward, MOBILE + MOREC on {dataset} -> {run_dir}")
    result = _train_or_reuse(cfg, run_dir, root, args)
    _print_result(result, cfg, run_dir, root, summary, time.perf_counter() - start)
    return 0


def _print_overview(args: argparse.Namespace, cfg, root: Path) -> None:
    steps = cfg.train.epochs * cfg.train.steps_per_epoch
    print(f"quickstart: MOBILE + MOREC on a small {args.env} dataset, everything under {root}")
    print(
        f"  1. collect: an online SAC for {args.train_steps:,} environment steps, then {args.dataset_size:,} "
        "transitions per D4RL level (random, medium, ...)"
    )
    dyn_cap = f"at most {cfg.dynamics.max_epochs} epochs" if cfg.dynamics.max_epochs else "early stopping"
    print(f"  2. dynamics: a {cfg.dynamics.num_members}-member ensemble on the medium dataset ({dyn_cap})")
    print(f"  3. dynamics reward: {cfg.reward.num_updates:,} discriminator updates")
    print(
        f"  4. MOBILE + MOREC: {cfg.train.epochs} epoch(s) x {cfg.train.steps_per_epoch} gradient steps = {steps:,}, "
        f"each epoch evaluated on {cfg.train.eval_episodes} episodes"
    )
    print("  finished stages with the same settings are reused; a changed --set trains a new run")


def _collect_or_reuse(cfg, args: argparse.Namespace) -> dict[str, Any]:
    from morec.collect.recipe import collect

    path = Path(cfg.out_dir) / "collect_summary.json"
    if path.exists():
        summary = json.loads(path.read_text())
        if summary.get("config") == json.loads(json.dumps(asdict(cfg))):
            print(f"reused the datasets already collected in {cfg.out_dir} with these settings")
            return summary
    summary = collect(cfg, show_progress=not args.no_progress)
    print_collect_summary(summary)
    return summary


def _train_or_reuse(cfg, run_dir: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    from morec.training.config import config_differences
    from morec.training.pipeline import run_training

    if (run_dir / "summary.json").exists():
        print(f"reused the finished run in {run_dir} (same config); delete that folder to train it again")
        return json.loads((run_dir / "summary.json").read_text())
    resume = (run_dir / "checkpoint.pt").exists()
    if resume:
        print(f"resuming the interrupted run in {run_dir}")
    else:
        for other in sorted(p for p in root.glob(f"{RUN_PREFIX}*/config.yaml") if p.parent != run_dir):
            changed = [
                f"{key} {a} -> {b}"
                for key, (a, b) in config_differences(yaml.safe_load(other.read_text()), cfg.to_dict()).items()
            ]
            print(
                f"a fresh run: the config differs from {other.parent.name} in {', '.join(changed[:4])}"
                f"{' ...' if len(changed) > 4 else ''}"
            )
    return run_training(cfg, run_dir, resume=resume, show_progress=not args.no_progress)


def _print_result(
    result: dict[str, Any], cfg, run_dir: Path, root: Path, collected: dict[str, Any], seconds: float
) -> None:
    from morec.data import normalized_score

    steps = result["gradient_steps"]
    data_score = float(normalized_score(cfg.task, result["dataset_mean_return"]))
    print(f"\nquickstart finished in {seconds:.0f} s")
    print(
        f"  normalised score (D4RL hopper scale: 0 = random policy, 100 = D4RL expert): last "
        f"{result['last_score']:.1f}, "
        f"best {result['best_score']:.1f} (return {result['last_return']:.1f})"
    )
    print(
        f"  the dataset's own episodes score {data_score:.1f} (return {result['dataset_mean_return']:.1f}); its "
        f"behaviour "
        f"policy is a {collected['config']['sac']['train_steps']:,}-step SAC"
    )
    print(
        f"  what it means: {steps:,} gradient steps are about 1/{round(D4RL_GRADIENT_STEPS / max(steps, 1)):,} of a "
        f"D4RL run "
        f"({D4RL_GRADIENT_STEPS:,}), so the score shows that the pipeline works end to end,"
    )
    print(
        "  not what MOBILE + MOREC reaches; train longer with --set train.epochs=N, or `morec train` with a config "
        "under configs/"
    )
    print(f"  run folder: {run_dir} (config.yaml, checkpoint.pt, summary.json, policy.pt: the policy as TorchScript)")
    print(f"  TensorBoard, every stage: tensorboard --logdir {root}")
    for folder, what in tensorboard_folders(root, run_dir):
        print(f"    {what}: {folder}")


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
