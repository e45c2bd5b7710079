"""``morec train``: train MOPO or MOBILE (MOREC on or off) from a YAML config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from morec.training.config import TrainConfig

NAME = "train"
HELP = "train MOPO or MOBILE (MOREC on or off) from a YAML config"


def dataset_source(text: str) -> str:
    """``--dataset``: any non-empty text, passed on as it is (an empty one would mean "the config's")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a dataset: a file path, d4rl:NAME, neorl:NAME or minari:ID")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        action="append",
        default=None,
        help="a YAML file, or a bundled config by its path under configs/, e.g. "
        "d4rl/hopper-medium-v2/mobile_morec.yaml "
        "(default: built-in defaults); repeat to lay overlays over it, e.g. --config shaping/clip.yaml",
    )
    p.add_argument(
        "--dataset",
        type=dataset_source,
        default=None,
        help="dataset source overriding the config's (file, d4rl:, neorl:, minari:), taken as it is",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. rollout.horizon=100",
    )
    p.add_argument(
        "--run-dir", default=None, help="run directory (default: runs/<task>-<algorithm>[-morec]/seed<seed>)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument(
        "--seeds",
        default=None,
        metavar="N,N,...",
        help="train these seeds together in one process, each in <run-dir>/seed<N> as a separate run would be; "
        "train.stack_seeds (auto: on CUDA) updates them as one stacked learner "
        "(default run dir: runs/<task>-<algorithm>[-morec])",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar: one line per evaluation")
    p.add_argument(
        "--json", action="store_true", help="print only the JSON summary (as in summary.json, without the evaluations)"
    )


def run(args: argparse.Namespace) -> int:
    from morec.training.config import resolve_config
    from morec.training.pipeline import run_training
    from morec.training.run_directory import RunDirectory
    from morec.training.seeds import parse_seeds, train_seeds

    cfg = resolve_config(args.config, args.set, args.dataset)
    say = (lambda *_: None) if args.json else print
    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
        run_root = Path(args.run_dir) if args.run_dir else RunDirectory.default_root(cfg)
        say(start_line(cfg, run_root, seeds))
        summaries = train_seeds(cfg, run_root, seeds, resume=args.resume, show_progress=not args.no_progress)
        runs = [RunDirectory.of_seed(run_root, s["seed"]) for s in summaries]
    else:
        run_dir = Path(args.run_dir) if args.run_dir else RunDirectory.of_seed(RunDirectory.default_root(cfg), cfg.seed)
        say(start_line(cfg, run_dir, None))
        summaries = [run_training(cfg, run_dir, resume=args.resume, show_progress=not args.no_progress)]
        runs = [run_dir]
    if args.json:
        reports = [{k: v for k, v in s.items() if k != "evaluations"} for s in summaries]
        print(json.dumps(reports if args.seeds is not None else reports[0], indent=2))
        return 0
    for summary, run in zip(summaries, runs):
        print_training_summary(summary, run, cfg)
    print(f"TensorBoard: tensorboard --logdir {runs[0].parent if args.seeds is not None else runs[0] / 'tb'}")
    return 0


def start_line(cfg: TrainConfig, run_dir: Path, seeds: list[int] | None) -> str:
    """What ``morec train`` is about to do, where, and its budget."""
    t = cfg.train
    what = f"{cfg.algorithm.upper()}{' + MOREC' if cfg.morec else ''} on {cfg.task}"
    who = f"seeds {', '.join(map(str, seeds))}" if seeds is not None else f"seed {cfg.seed}"
    source = cfg.dataset or f"the benchmark's {cfg.task} data"
    return (
        f"train: {what} ({source}), {who}, {t.epochs} epochs x {t.steps_per_epoch:,} gradient steps "
        f"= {t.epochs * t.steps_per_epoch:,} on {cfg.device}, into {run_dir}"
    )


def print_training_summary(summary: dict, run_dir: Path, cfg: TrainConfig) -> None:
    """A finished run in a few lines: its scores, its model rollouts, where its files are."""
    if summary["last_score"] is None:
        print(f"seed {summary['seed']}: no evaluation yet ({summary['gradient_steps']:,} gradient steps); {run_dir}")
        return
    print(
        f"seed {summary['seed']}: normalised score {summary['last_score']:.1f} at the end (best "
        f"{summary['best_score']:.1f}, "
        f"last 10 evaluations {summary['last10_mean_score']:.1f}); return {summary['last_return']:.1f} against the "
        f"data's "
        f"{summary['dataset_mean_return']:.1f}; {summary['gradient_steps']:,} gradient steps, "
        f"{summary['wall_seconds']:,.0f} s"
    )
    rollouts = summary["rollouts"]
    if rollouts["count"]:
        cut = f", {rollouts['truncation_rate']:.0%} cut by the MOREC filter" if cfg.morec else ""
        print(
            f"  model rollouts: {rollouts['count']}, mean length {rollouts['mean_length']:.1f} of "
            f"{cfg.rollout.horizon}{cut}; "
            f"{rollouts['model_buffer_size']:,} model transitions held at the end"
        )
    print(
        f"  policy {run_dir / summary['policy']} (TorchScript: observations -> actions); summary "
        f"{run_dir / 'summary.json'}"
    )
