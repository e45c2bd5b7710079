"""What MOREC costs its host: wall time of whole training runs at equal gradient steps; prints one JSON object.

For one dataset and task, seven runs with the same seed, data, dynamics model and learner settings,
each ``--epochs`` epochs of 1,000 gradient steps with its rollouts and evaluations (inline, on one
thread):

- ``mopo``: the task's ``mopo.yaml`` (the host);
- ``mopo_morec``: the task's ``mopo_morec.yaml`` (the recommended MOREC configuration);
- ``mopo_morec_distilled``: the same with ``filter.distilled: true`` (one network scores in place of
  the discriminator snapshots);
- ``mopo_morec_bfloat16``: the same with ``filter.score_dtype: bfloat16`` (the snapshots score in
  bfloat16);
- ``mopo_morec_auto``, ``mopo_morec_auto_distilled``, ``mopo_morec_auto_bfloat16``: the three with
  ``filter.threshold: auto``, which cuts few rollouts, so the filter scores the whole horizon: its
  cost without the saving of cuts.

Models (dynamics, dynamics reward, distilled reward) are trained first, through the training cache
under ``--out``, and are not timed: the wall time is the training loop's own (``summary.json``'s
``wall_seconds``). ``vs_mopo`` is a run's seconds per 1,000 steps over MOPO's. A filter that cuts
rollouts short also makes them cheaper, so each run reports its model transitions per rollout
(``rollout_mean_length`` × starts) beside its time.

    python scripts/bench_morec_cost.py --dataset data/hopper/hopper-medium.hdf5 --task hopper-medium-v2 \\
        --out runs/bench_morec_cost [--epochs 3] [--set dynamics.max_epochs=30]

``--models-only`` trains the models and stops, so the timed runs can be started on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from morec.errors import UserError  # noqa: E402
from morec.provenance import code_version  # noqa: E402
from morec.training.config import resolve_config  # noqa: E402
from morec.training.pipeline import build_components, run_training  # noqa: E402
from morec.training.run_directory import SUMMARY_FILE  # noqa: E402

# variant -> (config file under configs/<benchmark>/<task>/, overrides)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "mopo": ("mopo.yaml", []),
    "mopo_morec": ("mopo_morec.yaml", []),
    "mopo_morec_distilled": ("mopo_morec.yaml", ["filter.distilled=true"]),
    "mopo_morec_bfloat16": ("mopo_morec.yaml", ["filter.score_dtype=bfloat16"]),
    # `threshold: auto` cuts few rollouts: the filter's cost when it lets the whole horizon run
    "mopo_morec_auto": ("mopo_morec.yaml", ["filter.threshold=auto"]),
    "mopo_morec_auto_distilled": ("mopo_morec.yaml", ["filter.threshold=auto", "filter.distilled=true"]),
    "mopo_morec_auto_bfloat16": ("mopo_morec.yaml", ["filter.threshold=auto", "filter.score_dtype=bfloat16"]),
}


def variant_config(variant: str, args: argparse.Namespace):
    """The resolved training config of ``variant``: its file, then the shared budget, then ``--set``."""
    file, overrides = VARIANTS[variant]
    path = ROOT / "configs" / args.benchmark / args.task / file
    shared = [
        f"cache_dir={(Path(args.out) / 'cache').resolve()}",
        "seed=0",
        "model_seed=0",
        f"train.epochs={args.epochs}",
        "train.evaluate_in_background=off",
        f"device={args.device}",
    ]
    return resolve_config(str(path), [*shared, *overrides, *args.set], dataset=str(Path(args.dataset).resolve()))


def timed_run(variant: str, args: argparse.Namespace) -> dict:
    """One run to the end in ``<out>/runs/<variant>`` (a finished run is read, not rerun)."""
    run_dir = Path(args.out) / "runs" / variant
    summary_file = run_dir / SUMMARY_FILE
    if summary_file.exists():
        summary = json.loads(summary_file.read_text())
    else:
        summary = run_training(variant_config(variant, args), run_dir, show_progress=False)
    cfg = variant_config(variant, args)
    rollouts = summary["rollouts"]
    starts = cfg.rollout.batch_size
    return {
        "gradient_steps": summary["gradient_steps"],
        "wall_seconds": summary["wall_seconds"],
        "seconds_per_1k_steps": round(1000 * summary["wall_seconds"] / summary["gradient_steps"], 2),
        "rollout_starts": starts,
        "rollout_horizon": cfg.rollout.horizon,
        "rollout_mean_length": rollouts.get("mean_length"),
        "model_transitions_per_rollout": None
        if rollouts.get("mean_length") is None
        else round(rollouts["mean_length"] * starts),
        "truncation_rate": rollouts.get("truncation_rate"),
        "last_score": summary["last_score"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="a D4RL-format file, e.g. from morec collect")
    p.add_argument("--task", required=True, help="the task whose configs are run, e.g. hopper-medium-v2")
    p.add_argument("--benchmark", default="d4rl", help="the configs/ folder the task's configs are in")
    p.add_argument("--out", required=True, help="the models' cache and the runs")
    p.add_argument("--epochs", type=int, default=3, help="train.epochs of each run (1,000 gradient steps each)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--models-only", action="store_true", help="train the models and stop")
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, mopo first (default: all: {', '.join(VARIANTS)})",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    args = p.parse_args(argv)
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or variants[0] != "mopo":
        p.error(f"--variants must start with mopo (the host) and name only {', '.join(VARIANTS)}; got {args.variants}")
    torch.set_num_threads(args.threads)
    try:
        for variant in variants:  # the models first, untimed: each variant's components, cached
            build_components(variant_config(variant, args), Path(args.out) / "models_tb" / variant, show_progress=False)
        if args.models_only:
            return 0
        rows = {variant: timed_run(variant, args) for variant in variants}
    except UserError as err:
        raise SystemExit(f"bench_morec_cost: error: {err}") from None
    host = rows["mopo"]["seconds_per_1k_steps"]
    for row in rows.values():
        row["vs_mopo"] = round(row["seconds_per_1k_steps"] / host, 2)
    report = {
        "dataset": str(Path(args.dataset).resolve()),
        "task": args.task,
        "epochs": args.epochs,
        "overrides": args.set,
        "device": args.device,
        "threads": args.threads,
        "torch": torch.__version__,
        "commit": code_version(),
        "machine": platform.processor() or platform.machine(),
        "runs": rows,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
