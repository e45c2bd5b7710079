"""``morec sweep``: a Ray Tune search over any ``morec train`` config keys (see :mod:`morec.runs.sweep`).

    morec sweep --config configs/d4rl/hopper-medium-replay-v2/mobile_morec.yaml \\
        --param mobile.beta=grid:0.5,1.0,2.0 --param filter.threshold=uniform:0.5,0.8 --num-samples 2
    morec sweep ... --resume                 # continue an interrupted sweep
    morec sweep ... --address auto           # on a running Ray cluster
"""

from __future__ import annotations

import argparse

from morec.bundled_configs import find_config
from morec.commands.train import dataset_source
from morec.runs.suite.runner import DEFAULT_GPUS_PER_RUN

NAME = "sweep"
HELP = "a Ray Tune search over training config keys; ASHA stops bad trials early; one table and the best config"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        action="append",
        default=None,
        help="base YAML config: a file, or a bundled one such as d4rl/hopper-medium-v2/mobile_morec.yaml (default: "
        "built-in defaults); repeat to lay overlays over it, e.g. --config smoke.yaml",
    )
    p.add_argument(
        "--dataset", type=dataset_source, default=None, help="dataset source for every trial, taken as it is"
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=KIND:VALUES",
        help="a swept key (repeatable); KIND: grid, choice, uniform, loguniform or randint, e.g. "
        "mobile.beta=grid:0.5,1.0",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a fixed override for every trial")
    p.add_argument(
        "--num-samples", type=int, default=1, help="samples of the search space (grids are repeated this often)"
    )
    p.add_argument(
        "--scheduler",
        choices=("asha", "fifo"),
        default="asha",
        help="asha stops bad trials early; fifo runs all to the end",
    )
    p.add_argument(
        "--grace-evals", type=int, default=1, help="ASHA: evaluations every trial gets before it can be stopped"
    )
    p.add_argument("--results", default="runs/sweep", help="sweep directory (Tune state, run directories, tables)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep in --results")
    p.add_argument("--address", default=None, help="join a running Ray cluster: auto or ray://host:port")
    p.add_argument("--max-concurrent", type=int, default=None, help="trials at a time (default: as resources allow)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument(
        "--gpus-per-trial",
        type=float,
        default=None,
        help=f"default: {DEFAULT_GPUS_PER_RUN} where the cluster has GPUs, else 0",
    )


def run(args: argparse.Namespace) -> int:
    from morec.runs.sweep import run_sweep

    configs = [find_config(c) for c in args.config or []]
    return run_sweep(
        args.param,
        config=configs,
        dataset=args.dataset,
        overrides=args.set,
        results=args.results,
        resume=args.resume,
        num_samples=args.num_samples,
        scheduler=args.scheduler,
        grace_evals=args.grace_evals,
        address=args.address,
        max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
    )
