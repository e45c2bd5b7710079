"""``morec quickstart``: the whole job on built-in data, small enough for 2 CPU cores.

Runs the stages of :mod:`morec.runs.quickstart` in order (collect a Hopper dataset, then the
dynamics, the dynamics reward and MOBILE + MOREC on it), everything under the parent of ``--out``,
and says what each stage reused or trained.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from morec.commands.collect import add_collect_arguments, collect_config, print_collect_summary

NAME = "quickstart"
HELP = "the main job on built-in data: collect a hopper dataset, train MOBILE+MOREC on it"

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


def run(args: argparse.Namespace) -> int:
    from morec.collect.recipe import dataset_file_name
    from morec.runs.quickstart import run_dir_of, training_config

    start = time.perf_counter()
    root = Path(args.out).parent
    collect_cfg = collect_config(args)
    dataset = Path(args.out) / dataset_file_name(args.env, "medium", "d4rl")
    cfg = training_config(
        dataset, root, args.seed, args.device, args.set
    )  # a bad --set stops here, before minutes of collecting
    run_dir = run_dir_of(cfg, root)
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
    from morec.runs.quickstart import collected_summary

    summary = collected_summary(cfg)
    if summary is not None:
        print(f"reused the datasets already collected in {cfg.out_dir} with these settings")
        return summary
    summary = collect(cfg, show_progress=not args.no_progress)
    print_collect_summary(summary)
    return summary


def _train_or_reuse(cfg, run_dir: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from morec.runs.quickstart import differences_from_earlier_runs
    from morec.runs.suite.worker import read_summary
    from morec.training.pipeline import run_training
    from morec.training.run_directory import CHECKPOINT_FILE

    summary = read_summary(run_dir)
    if summary is not None:
        print(f"reused the finished run in {run_dir} (same config); delete that folder to train it again")
        return summary
    resume = (run_dir / CHECKPOINT_FILE).exists()
    if resume:
        print(f"resuming the interrupted run in {run_dir}")
    else:
        for other, changed in differences_from_earlier_runs(cfg, run_dir, root).items():
            print(
                f"a fresh run: the config differs from {other} in {', '.join(changed[:4])}"
                f"{' ...' if len(changed) > 4 else ''}"
            )
    return run_training(cfg, run_dir, resume=resume, show_progress=not args.no_progress)


def _print_result(
    result: dict[str, Any], cfg, run_dir: Path, root: Path, collected: dict[str, Any], seconds: float
) -> None:
    from morec.data import normalized_score
    from morec.runs.quickstart import tensorboard_folders

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
