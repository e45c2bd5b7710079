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

from . import collect_cli, dynamics_cli, quickstart, reward_cli
from .credit import cli as credit_cli
from .allocator import keep_freed_memory
from .errors import InputWarning, UserError
from .suite import cli as suite_cli

DEBUG_ENV = "MOREC_DEBUG"


def cmd_train(args: argparse.Namespace) -> int:
    # the command line (here, quickstart and relabel --shaping) is the composition root: the one place in `morec` that reaches into `algos`
    from algos.config import load_config
    from algos.train import Trainer

    overrides = list(args.set) + ([f"dataset={args.dataset}"] if args.dataset else [])
    first, *later = args.config or [None]  # --config A --config B: B laid over A
    cfg = load_config(first, overrides, overlays=later)
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
    collect_cli.add_arguments(p, out_default="data/collect", train_steps=30_000, dataset_size=20_000)
    p.set_defaults(func=collect_cli.run)
    p = sub.add_parser("quickstart", parents=[debug], help="the main job on built-in data: collect a hopper dataset, train MOBILE+MOREC on it")
    collect_cli.add_arguments(p, out_default="runs/quickstart/data", train_steps=6_000, dataset_size=5_000)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the training config, e.g. train.epochs=10 (a changed config trains in a new run folder)")
    p.set_defaults(func=quickstart.run)
    p = sub.add_parser("train-dynamics", parents=[debug], help="fit the ensemble dynamics on a dataset and report holdout and oracle error")
    dynamics_cli.add_arguments(p)
    p.set_defaults(func=dynamics_cli.run)
    p = sub.add_parser("train", parents=[debug], help="train MOPO or MOBILE (MOREC on or off) from a YAML config")
    p.add_argument("--config", action="append", default=None,
                   help="a YAML file under configs/ (default: built-in defaults); repeat to merge overlays, e.g. configs/shaping/clip.yaml")
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
    p = sub.add_parser("relabel", parents=[debug], help="dense per-step rewards for episodic data (IRCR, RD, RRD, LaRe with hand-written/identity/LLM factors) and/or reward shaping")
    credit_cli.add_arguments(p)
    p.set_defaults(func=credit_cli.run)
    p = sub.add_parser("eval-model", parents=[debug], help="oracle error of model rollouts, with and without the MOREC filter")
    reward_cli.add_eval_arguments(p)
    p.set_defaults(func=reward_cli.eval_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # training steps reuse their freed activations instead of faulting in fresh pages
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
