"""``morec collect``: train a behaviour SAC online and write D4RL-recipe datasets (quickstart's
first stage too, with its own defaults)."""

from __future__ import annotations

import argparse

from morec.collect.config import CollectConfig, SACConfig
from morec.errors import UserError, message_of
from morec.tasks import D4RL_LEVELS

NAME = "collect"
HELP = "train a behaviour SAC online and write D4RL-recipe datasets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_collect_arguments(p, out_default="data/collect", train_steps=30_000, dataset_size=20_000)


def add_collect_arguments(p: argparse.ArgumentParser, *, out_default: str, train_steps: int, dataset_size: int) -> None:
    sac = SACConfig()
    p.add_argument("--env", default="Hopper-v4", help="gymnasium MuJoCo id: Hopper, HalfCheetah, Walker2d; v4 or v5")
    p.add_argument("--out", default=out_default, help="output directory (datasets, policies, summary)")
    p.add_argument("--train-steps", type=int, default=train_steps, help="online SAC environment steps")
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help=f"random-action steps first (default: min({sac.warmup_steps}, train-steps/5))",
    )
    p.add_argument(
        "--eval-every", type=int, default=None, help="steps between policy checkpoints (default: train-steps/12)"
    )
    p.add_argument(
        "--dataset-size", type=int, default=dataset_size, help="transitions in each of random, medium, expert"
    )
    p.add_argument(
        "--envs",
        type=int,
        default=None,
        help="environments recorded side by side, one batched policy call per step (1: one at a time; default: "
        f"one per {CollectConfig.STEPS_PER_ENV:,} steps of --dataset-size, at most {CollectConfig.MAX_AUTO_ENVS})",
    )
    p.add_argument("--levels", default=",".join(D4RL_LEVELS), help="comma-separated subset of " + ",".join(D4RL_LEVELS))
    p.add_argument("--hidden-size", type=int, default=sac.hidden_size)
    p.add_argument(
        "--lr",
        type=float,
        default=sac.actor_lr,
        help="SAC learning rate of the actor, critics and temperature (D4RL's behaviour SAC: 3e-4)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="a fixed SAC entropy weight (tianshou's MuJoCo example: 0.2); default: tuned, starting at 1",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--neorl", action=argparse.BooleanOptionalAction, default=False, help="also write NeoRL npz files")
    p.add_argument("--device", default="cpu", help="torch device for SAC, e.g. cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def collect_config(args: argparse.Namespace):
    """The :class:`~morec.collect.recipe.CollectConfig` that ``collect``/``quickstart`` arguments describe."""
    warmup = args.warmup_steps if args.warmup_steps is not None else min(SACConfig.warmup_steps, args.train_steps // 5)
    eval_every = args.eval_every if args.eval_every is not None else max(1, args.train_steps // 12)
    levels = tuple(x.strip() for x in args.levels.split(",") if x.strip())
    try:
        sac = SACConfig(
            train_steps=args.train_steps,
            warmup_steps=warmup,
            eval_every=eval_every,
            hidden_size=args.hidden_size,
            actor_lr=args.lr,
            critic_lr=args.lr,
            alpha_lr=args.lr,
            alpha=args.alpha,
        )
        return CollectConfig(
            env_id=args.env,
            out_dir=args.out,
            dataset_size=args.dataset_size,
            levels=levels,
            seed=args.seed,
            neorl=args.neorl,
            device=args.device,
            sac=sac,
            num_envs=args.envs,
        )
    except (KeyError, ValueError) as err:
        raise UserError(message_of(err)) from err


def run(args: argparse.Namespace) -> int:
    from morec.collect.recipe import collect

    summary = collect(collect_config(args), show_progress=not args.no_progress)
    print_collect_summary(summary)
    return 0


def print_collect_summary(summary: dict) -> None:
    med, exp = summary["medium_policy"], summary["expert_policy"]
    print(f"behaviour SAC on {summary['env_id']}: {summary['train_seconds']} s of training")
    print(f"  medium policy (step {med['step']}): return {med['mean_return']:.1f} +- {med['std_return']:.1f}")
    print(f"  expert policy (step {exp['step']}): return {exp['mean_return']:.1f} +- {exp['std_return']:.1f}")
    for name, info in summary["datasets"].items():
        print(
            f"  {name:22s} {info['transitions']:>8d} transitions {info['episodes']:>5d} episodes "
            f"mean return {info['return_mean']:8.1f}  {info['path']}"
        )
    print(f"total {summary['total_seconds']} s")
