"""The ``morec`` command line. Each subcommand lives in its own small function.

Parsing imports nothing heavy (torch and tianshou load inside the subcommands), so ``--help`` and
argument errors answer at once. Mistakes in what the user gave (:class:`~morec.errors.UserError`,
a missing file) print one ``morec: error:`` line and exit 2; ``--debug`` or ``MOREC_DEBUG=1``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from . import dynamics_cli, quickstart, reward_cli
from .credit import cli as credit_cli
from .errors import InputWarning, UserError
from .suite import cli as suite_cli
from .tasks import D4RL_LEVELS

DEBUG_ENV = "MOREC_DEBUG"


def _add_collect_args(p: argparse.ArgumentParser, *, out_default: str, train_steps: int, dataset_size: int) -> None:
    from .sac_config import SACConfig

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


def collect_config(args: argparse.Namespace):
    """The :class:`~morec.collect.CollectConfig` that ``collect``/``quickstart`` arguments describe."""
    from .collect import CollectConfig
    from .sac_config import SACConfig

    warmup = args.warmup_steps if args.warmup_steps is not None else min(SACConfig.warmup_steps, args.train_steps // 5)
    eval_every = args.eval_every if args.eval_every is not None else max(1, args.train_steps // 12)
    sac = SACConfig(train_steps=args.train_steps, warmup_steps=warmup, eval_every=eval_every, hidden_size=args.hidden_size)
    levels = tuple(x.strip() for x in args.levels.split(",") if x.strip())
    try:
        return CollectConfig(
            env_id=args.env, out_dir=args.out, dataset_size=args.dataset_size, levels=levels,
            seed=args.seed, neorl=args.neorl, device=args.device, sac=sac,
        )
    except (KeyError, ValueError) as err:
        raise UserError(str(err).strip("'\"")) from err


def cmd_collect(args: argparse.Namespace) -> int:
    from .collect import collect

    summary = collect(collect_config(args), show_progress=not args.no_progress)
    print_collect_summary(summary)
    return 0


def print_collect_summary(summary: dict) -> None:
    med, exp = summary["medium_policy"], summary["expert_policy"]
    print(f"behaviour SAC on {summary['env_id']}: {summary['train_seconds']} s of training")
    print(f"  medium policy (step {med['step']}): return {med['mean_return']:.1f} +- {med['std_return']:.1f}")
    print(f"  expert policy (step {exp['step']}): return {exp['mean_return']:.1f} +- {exp['std_return']:.1f}")
    for name, info in summary["datasets"].items():
        print(f"  {name:22s} {info['transitions']:>8d} transitions {info['episodes']:>5d} episodes "
              f"mean return {info['return_mean']:8.1f}  {info['path']}")
    print(f"total {summary['total_seconds']} s")


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
    parser = argparse.ArgumentParser(prog="morec", description="Offline model-based RL with MOREC dynamics rewards",
                                     epilog=f"Mistakes print one line; --debug (or {DEBUG_ENV}=1) shows the traceback.")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    # the same flag after the subcommand; SUPPRESS keeps it from resetting a --debug given before it
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("collect", parents=[debug], help="train a behaviour SAC online and write D4RL-recipe datasets")
    _add_collect_args(p, out_default="data/collect", train_steps=30_000, dataset_size=20_000)
    p.set_defaults(func=cmd_collect)
    p = sub.add_parser("quickstart", parents=[debug], help="the main job on built-in data: collect a hopper dataset, train MOBILE+MOREC on it")
    _add_collect_args(p, out_default="runs/quickstart/data", train_steps=6_000, dataset_size=5_000)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the training config, e.g. train.epochs=10 (a changed config trains in a new run folder)")
    p.set_defaults(func=quickstart.run)
    p = sub.add_parser("train-dynamics", parents=[debug], help="fit the ensemble dynamics on a dataset and report holdout and oracle error")
    dynamics_cli.add_arguments(p)
    p.set_defaults(func=dynamics_cli.run)
    p = sub.add_parser("train", parents=[debug], help="train MOPO or MOBILE (MOREC on or off) from a YAML config")
    p.add_argument("--config", default=None, help="a YAML file under configs/ (default: built-in defaults)")
    p.add_argument("--dataset", default=None, help="dataset source overriding the config's (file, d4rl:, neorl:, minari:)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. rollout.horizon=100")
    p.add_argument("--run-dir", default=None, help="run directory (default: runs/<task>-<algorithm>[-morec]/seed<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("suite", parents=[debug], help="a benchmark suite (tasks x variants x seeds) on Ray or a local pool, then one table")
    suite_cli.add_arguments(p)
    p.set_defaults(func=suite_cli.run)
    p = sub.add_parser("train-reward", parents=[debug], help="learn the MOREC dynamics reward (adversarial discriminator snapshots)")
    reward_cli.add_train_arguments(p)
    p.set_defaults(func=reward_cli.train_reward)
    p = sub.add_parser("relabel", parents=[debug], help="dense per-step rewards for episodic data (IRCR, RD, RRD, LaRe with hand-written/identity/LLM factors)")
    credit_cli.add_arguments(p)
    p.set_defaults(func=credit_cli.run)
    p = sub.add_parser("eval-model", parents=[debug], help="oracle error of model rollouts, with and without the MOREC filter")
    reward_cli.add_eval_arguments(p)
    p.set_defaults(func=reward_cli.eval_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    with warnings.catch_warnings():
        warnings.showwarning = _show_input_warning
        try:
            return args.func(args)
        except (UserError, FileNotFoundError) as err:
            if debug:
                raise
            print(f"morec: error: {_one_line(err)}", file=sys.stderr)
            return 2
        except SystemExit as err:
            if debug or not isinstance(err.code, str):
                raise
            print(f"morec: error: {err.code}", file=sys.stderr)  # a subcommand's own refusal, e.g. a missing option
            return 2
        except KeyboardInterrupt:
            print("morec: interrupted", file=sys.stderr)
            return 130


_default_showwarning = warnings.showwarning


def _show_input_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """:class:`InputWarning` as one ``morec: warning:`` line; other warnings as Python shows them."""
    if issubclass(category, InputWarning):
        print(f"morec: warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def _one_line(err: BaseException) -> str:
    if isinstance(err, FileNotFoundError) and err.filename:
        return f"{err.filename}: no such file or directory"
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
