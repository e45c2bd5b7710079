"""The ``morec`` command line. Each subcommand lives in its own small function."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import dynamics_cli, reward_cli
from .credit import cli as credit_cli
from .suite import cli as suite_cli
from .tasks import D4RL_LEVELS


def _add_collect_args(p: argparse.ArgumentParser, *, out_default: str, train_steps: int, dataset_size: int) -> None:
    from .behaviour import SACConfig

    sac = SACConfig()
    p.add_argument("--env", default="Hopper-v4", help="gymnasium MuJoCo id: Hopper, HalfCheetah, Walker2d; v4 or v5")
    p.add_argument("--out", default=out_default, help="output directory (datasets, policies, summary)")
    p.add_argument("--train-steps", type=int, default=train_steps, help="online SAC environment steps")
    p.add_argument("--warmup-steps", type=int, default=None, help=f"random-action steps first (default: min({sac.warmup_steps}, train-steps/5))")
    p.add_argument("--eval-every", type=int, default=None, help="steps between policy checkpoints (default: train-steps/12)")
    p.add_argument("--dataset-size", type=int, default=dataset_size, help="transitions in each of random, medium, expert")
    p.add_argument("--levels", default=",".join(D4RL_LEVELS), help="comma-separated subset of " + ",".join(D4RL_LEVELS))
    p.add_argument("--hidden-size", type=int, default=sac.hidden_size)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--neorl", action=argparse.BooleanOptionalAction, default=False, help="also write NeoRL npz files")
    p.add_argument("--device", default="cpu", help="torch device for SAC, e.g. cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _collect_config(args: argparse.Namespace):
    from .behaviour import SACConfig
    from .collect import CollectConfig

    warmup = args.warmup_steps if args.warmup_steps is not None else min(SACConfig.warmup_steps, args.train_steps // 5)
    eval_every = args.eval_every if args.eval_every is not None else max(1, args.train_steps // 12)
    sac = SACConfig(train_steps=args.train_steps, warmup_steps=warmup, eval_every=eval_every, hidden_size=args.hidden_size)
    levels = tuple(x.strip() for x in args.levels.split(",") if x.strip())
    return CollectConfig(
        env_id=args.env, out_dir=args.out, dataset_size=args.dataset_size, levels=levels,
        seed=args.seed, neorl=args.neorl, device=args.device, sac=sac,
    )


def cmd_collect(args: argparse.Namespace) -> int:
    from .collect import collect

    summary = collect(_collect_config(args), show_progress=not args.no_progress)
    _print_collect_summary(summary)
    return 0


def _print_collect_summary(summary: dict) -> None:
    med, exp = summary["medium_policy"], summary["expert_policy"]
    print(f"behaviour SAC on {summary['env_id']}: {summary['train_seconds']} s of training")
    print(f"  medium policy (step {med['step']}): return {med['mean_return']:.1f} +- {med['std_return']:.1f}")
    print(f"  expert policy (step {exp['step']}): return {exp['mean_return']:.1f} +- {exp['std_return']:.1f}")
    for name, info in summary["datasets"].items():
        print(f"  {name:22s} {info['transitions']:>8d} transitions {info['episodes']:>5d} episodes "
              f"mean return {info['return_mean']:8.1f}  {info['path']}")
    print(f"total {summary['total_seconds']} s")


QUICKSTART_TRAINING = [  # MOBILE + MOREC at a budget 2 CPU cores finish in a few minutes
    "task=Hopper-v4", "algorithm=mobile", "morec=true",
    "dynamics.max_epochs=30",
    "reward.num_updates=1000", "reward.snapshot_interval=50", "reward.snapshot_stride=2",
    "rollout.horizon=50", "rollout.batch_size=500", "rollout.freq=500", "rollout.samples_per_member=2",
    "mobile.beta=1.0", "mobile.num_samples=5", "mobile.actor_on_target_critics=true",
    "train.epochs=3", "train.steps_per_epoch=500", "train.eval_episodes=10", "train.log_every=100",
]


def cmd_quickstart(args: argparse.Namespace) -> int:
    """The main job on built-in data: collect a small hopper dataset, then train dynamics, the
    MOREC dynamics reward and MOBILE+MOREC briefly, and report the normalised score."""
    from algos.config import load_config
    from algos.train import Trainer

    from .collect import collect
    from .data import load_dataset

    start = time.perf_counter()
    summary = collect(_collect_config(args), show_progress=not args.no_progress)
    _print_collect_summary(summary)
    path = summary["datasets"]["medium:d4rl"]["path"]
    ds = load_dataset(path)
    print(f"\ntraining MOBILE + MOREC on {path} ({len(ds)} transitions, mean episode return {ds.returns().mean():.1f})")
    run_dir = Path(args.out).parent / "mobile_morec"
    overrides = QUICKSTART_TRAINING + [f"dataset={path}", f"seed={args.seed}", f"device={args.device}",
                                       f"cache_dir={Path(args.out).parent / 'cache'}"] + list(args.set)
    result = Trainer(load_config(None, overrides), run_dir, resume=(run_dir / "checkpoint.pt").exists(),
                     show_progress=not args.no_progress).run()
    print(f"normalised score (D4RL hopper references): last {result['last_score']:.1f}, best {result['best_score']:.1f} "
          f"(return {result['last_return']:.1f}; the dataset's episodes average {result['dataset_mean_return']:.1f})")
    print(f"TensorBoard: tensorboard --logdir {run_dir / 'tb'}")
    print(f"quickstart finished in {time.perf_counter() - start:.0f} s; everything is under {Path(args.out).parent.resolve()}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    # the CLI is the composition root: the one place in `morec` that reaches into `algos`
    from algos.config import load_config
    from algos.train import Trainer

    overrides = list(args.set) + ([f"dataset={args.dataset}"] if args.dataset else [])
    cfg = load_config(args.config, overrides)
    run_dir = Path(args.run_dir or f"runs/{cfg.name}/seed{cfg.seed}")
    summary = Trainer(cfg, run_dir, resume=args.resume, show_progress=not args.no_progress).run()
    print(json.dumps({k: v for k, v in summary.items() if k != "evaluations"}, indent=2))
    print(f"TensorBoard: tensorboard --logdir {run_dir / 'tb'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="morec", description="Offline model-based RL with MOREC dynamics rewards")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("collect", help="train a behaviour SAC online and write D4RL-recipe datasets")
    _add_collect_args(p, out_default="data/collect", train_steps=30_000, dataset_size=20_000)
    p.set_defaults(func=cmd_collect)
    p = sub.add_parser("quickstart", help="the main job on built-in data: collect a hopper dataset, train MOBILE+MOREC on it")
    _add_collect_args(p, out_default="runs/quickstart/data", train_steps=6_000, dataset_size=5_000)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the training config, e.g. train.epochs=10")
    p.set_defaults(func=cmd_quickstart)
    p = sub.add_parser("train-dynamics", help="fit the ensemble dynamics on a dataset and report holdout and oracle error")
    dynamics_cli.add_arguments(p)
    p.set_defaults(func=dynamics_cli.run)
    p = sub.add_parser("train", help="train MOPO or MOBILE (MOREC on or off) from a YAML config")
    p.add_argument("--config", default=None, help="a YAML file under configs/ (default: built-in defaults)")
    p.add_argument("--dataset", default=None, help="dataset source overriding the config's (file, d4rl:, neorl:, minari:)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. rollout.horizon=100")
    p.add_argument("--run-dir", default=None, help="run directory (default: runs/<task>-<algorithm>[-morec]/seed<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("suite", help="a benchmark suite (tasks x variants x seeds) on Ray or a local pool, then one table")
    suite_cli.add_arguments(p)
    p.set_defaults(func=suite_cli.run)
    p = sub.add_parser("train-reward", help="learn the MOREC dynamics reward (adversarial discriminator snapshots)")
    reward_cli.add_train_arguments(p)
    p.set_defaults(func=reward_cli.train_reward)
    p = sub.add_parser("relabel", help="dense per-step rewards for episodic data (IRCR, RD, RRD, LaRe with hand-written/identity/LLM factors)")
    credit_cli.add_arguments(p)
    p.set_defaults(func=credit_cli.run)
    p = sub.add_parser("eval-model", help="oracle error of model rollouts, with and without the MOREC filter")
    reward_cli.add_eval_arguments(p)
    p.set_defaults(func=reward_cli.eval_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
