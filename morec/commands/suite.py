"""``morec suite d4rl|neorl ...``: a benchmark suite (tasks x variants x seeds) on Ray or a local
pool, then one table (see :mod:`morec.runs.suite`)."""

from __future__ import annotations

import argparse
import importlib.util
import os

from morec.errors import UserError, as_user_error
from morec.runs.suite.plan import (
    BENCHMARK_TASKS,
    DATASET_ENV_VARS,
    DEFAULT_CONFIGS,
    DEFAULT_VARIANTS,
    VARIANTS,
    SuiteConfig,
)
from morec.runs.suite.runner import DEFAULT_GPUS_PER_RUN, run_suite

NAME = "suite"
HELP = "a benchmark suite (tasks x variants x seeds) on Ray or a local pool, then one table"


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "benchmark", choices=sorted(BENCHMARK_TASKS), help="which configs/<benchmark>/ tree and default task list"
    )
    p.add_argument("--tasks", default=None, help="comma-separated task names (default: the benchmark's suite)")
    p.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated config names under configs/<benchmark>/<task>/ (shipped: {','.join(VARIANTS)})",
    )
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--results", default=None, help="results root, local or a shared mount (default: runs/<benchmark>)")
    p.add_argument(
        "--configs", default=str(DEFAULT_CONFIGS), help="the configs/ tree (default: the configs shipped with morec)"
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="lay the smoke budget (configs/smoke.yaml) over every config (minutes, not hours)",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="one dataset for every task (e.g. a `morec collect` file); default: each task's benchmark file",
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run (repeatable)"
    )
    p.add_argument(
        "--retries", type=int, default=1, help="extra attempts for a failed run before it is reported (default 1)"
    )
    p.add_argument(
        "--backend",
        choices=("auto", "ray", "pool"),
        default="auto",
        help="auto: Ray when installed, else the local pool",
    )
    p.add_argument(
        "--address",
        default=None,
        help="join a running Ray cluster: auto or ray://host:port (default: start a local instance)",
    )
    p.add_argument(
        "--max-parallel",
        type=int,
        default=None,
        help="runs at a time (default: Ray: the cluster's CPUs / --cpus-per-run; pool: 1)",
    )
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray CPUs reserved by each run")
    p.add_argument(
        "--gpus-per-run",
        type=float,
        default=None,
        help=f"Ray GPU fraction per run (default: {DEFAULT_GPUS_PER_RUN} where the cluster has GPUs, else 0)",
    )
    p.add_argument("--table-only", action="store_true", help="only tabulate and plot what is already in --results")


def resolve_backend(choice: str, address: str | None) -> str:
    has_ray = importlib.util.find_spec("ray") is not None
    if choice == "auto":
        if not has_ray:
            print("Ray is not installed (pip install 'morec[ray]'): using the local process pool")
        choice = "ray" if has_ray else "pool"
    if address and choice != "ray":
        raise SystemExit("--address joins a Ray cluster: it needs --backend ray (and Ray installed)")
    return choice


def run(args: argparse.Namespace) -> int:
    # bad --variants/--seeds, missing configs: a UserError (one line from the CLI) before anything runs
    cfg, options = suite_from_args(args, args.benchmark)
    with as_user_error(FileNotFoundError):
        cfg.check()
    try:
        failed = run_suite(cfg, **options)
    except KeyboardInterrupt:
        return 130
    return 1 if failed else 0


def _unique(flag: str, items: list, each: str) -> list:
    """``items`` (from ``flag``), refused when empty or when one is given twice (``--seeds 0,0``
    would run one run directory twice, side by side)."""
    if not items:
        raise UserError(f"{flag}: give at least one, comma-separated")
    repeated = [x for i, x in enumerate(items) if x in items[:i]]
    if repeated:
        raise UserError(f"{flag}: {sorted(set(repeated), key=str)} given more than once; {each}")
    return items


def _seeds(text: str) -> list[int]:
    """``--seeds 0,1,2`` as integers, each once (the message of `morec train --seeds`)."""
    seeds = []
    for part in _csv(text):
        try:
            seeds.append(int(part))
        except ValueError:
            raise UserError(
                f"--seeds: {part!r} is not an integer; give comma-separated integers, e.g. --seeds 0,1,2"
            ) from None
    return _unique("--seeds", seeds, "each seed is one run directory")


def suite_from_args(args: argparse.Namespace, benchmark: str) -> tuple[SuiteConfig, dict]:
    """The :class:`SuiteConfig` and the keyword arguments of :func:`run_suite` that ``morec suite``'s
    arguments ``args`` describe; a mistake in them raises :class:`~morec.errors.UserError`."""
    tasks = _unique("--tasks", _csv(args.tasks) if args.tasks else BENCHMARK_TASKS[benchmark], "each task runs once")
    variants = _unique("--variants", _csv(args.variants), "each variant runs once")
    seeds = _seeds(args.seeds)
    if not args.cpus_per_run > 0:
        raise UserError(f"--cpus-per-run must be positive (Ray CPUs per run, e.g. 1 or 0.5), got {args.cpus_per_run}")
    if args.gpus_per_run is not None and args.gpus_per_run < 0:
        raise UserError(f"--gpus-per-run must be 0 or more (a GPU fraction per run), got {args.gpus_per_run}")
    if args.retries < 0:
        raise UserError(f"--retries must be 0 or more (extra attempts for a failed run), got {args.retries}")
    with as_user_error(ValueError):  # an unknown variant
        cfg = SuiteConfig(
            benchmark=benchmark,
            tasks=tasks,
            variants=variants,
            seeds=seeds,
            results=args.results or f"runs/{benchmark}",
            configs=args.configs,
            smoke=args.smoke,
            dataset=args.dataset,
            overrides=list(args.set),
            retries=args.retries,
            env={k: os.environ[k] for k in DATASET_ENV_VARS if k in os.environ},
        )
    backend = "pool" if args.table_only else resolve_backend(args.backend, args.address)
    return cfg, {
        "backend": backend,
        "max_parallel": args.max_parallel,
        "address": args.address,
        "cpus_per_run": args.cpus_per_run,
        "gpus_per_run": args.gpus_per_run,
        "table_only": args.table_only,
    }
