"""``morec credit-training``: does relabelling episodic rewards pay off in training? Six reward
labellings of one dense dataset, a suite on each, one table (see :mod:`morec.runs.credit_training`).

    morec credit-training --dataset data/collect/hopper-medium.hdf5 --task hopper-medium-v2 \\
        --out runs/credit --lanes 2 -- --set train.epochs=4 --set mobile.num_samples=5
"""

from __future__ import annotations

import argparse
from pathlib import Path

from morec.errors import as_user_error
from morec.runs.credit_training import LABELLINGS

NAME = "credit-training"
HELP = "relabel a dense dataset six ways (dense, episodic, IRCR, RRD, LaRe) and train on each: one table"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, type=Path, help="a dense D4RL-format .hdf5 (e.g. from `morec collect`)")
    p.add_argument("--task", required=True, help="the D4RL task whose configs train on it, e.g. hopper-medium-v2")
    p.add_argument("--out", required=True, type=Path, help="data/, results/<labelling>/ and table.md go here")
    p.add_argument("--labels", default=",".join(LABELLINGS), help=f"comma-separated subset of {','.join(LABELLINGS)}")
    p.add_argument("--variants", default="mobile,mobile_morec")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument(
        "--lanes", type=int, default=1, help="labellings trained at a time (each suite runs its own runs one by one)"
    )
    p.add_argument("--table-only", action="store_true", help="only combine what is already under --out")
    p.add_argument(
        "suite_args",
        nargs=argparse.REMAINDER,
        metavar="-- SUITE_ARGS",
        help="after --: arguments for every `morec suite` call (budget overrides, --backend, ...)",
    )


def run(args: argparse.Namespace) -> int:
    from morec.commands import suite
    from morec.runs.credit_training import credit_training

    suite_args = list(args.suite_args)
    if suite_args[:1] == ["--"]:
        suite_args = suite_args[1:]
    parser = argparse.ArgumentParser(prog="morec credit-training ... --", add_help=False)
    suite.add_arguments(parser)  # the suite's own options, read once: every labelling's suite gets them
    # bad --variants/--seeds or suite options: a UserError, one line from the CLI
    suite_template, options = suite.suite_from_args(
        parser.parse_args(
            ["d4rl", "--tasks", args.task, "--variants", args.variants, "--seeds", args.seeds, *suite_args]
        ),
        "d4rl",
    )
    if not args.table_only:
        with as_user_error(FileNotFoundError):  # a --task or --variants without configs: before any relabelling
            suite_template.check()
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    table, code = credit_training(
        args.dataset,
        args.task,
        args.out,
        labels=labels,
        lanes=args.lanes,
        table_only=args.table_only,
        suite=suite_template,
        suite_options=options,
        say=lambda line: print(line, flush=True),
    )
    print(table, end="")
    return code
