"""What an epoch costs late in training: finished runs resumed for a few more epochs; prints one JSON object.

``scripts/bench_morec_cost.py`` times runs from their first epoch, where an untrained policy's
rollouts are short (on Hopper medium-1M, MOREC's rollouts were 19 steps long in the first epoch and
85 from the 25th on). The late epochs, which are most of a run, cost what the trained policy's
rollouts cost. This script copies each finished run's checkpoint and config into ``--out``, adds
``--epochs`` epochs (and a case's overrides, e.g. ``filter.score_dtype=bfloat16``) and resumes it
on one thread, evaluating only once, at the end, with one episode (an evaluation of a policy that
hops for 1,000 steps costs more than one that falls at once, which is not what is measured here).
The first case is the reference: ``vs_first`` is each case's seconds per 1,000 gradient steps over
its seconds. A filter that cuts rollouts short also makes them cheaper, so each case reports its
rollouts' mean length and model transitions beside its time.

    python scripts/bench_trained_cost.py --out runs/bench_trained_cost --epochs 3 \\
        --case mopo runs/morec_scale/learn/hopper/runs/hopper-medium-v2/mopo/seed0 \\
        --case auto runs/morec_scale/learn/hopper/runs/hopper-medium-v2/mopo_morec_auto_stop/seed0 \\
        --case auto_bfloat16 runs/.../mopo_morec_auto_stop/seed0 filter.score_dtype=bfloat16
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from morec.errors import UserError  # noqa: E402
from morec.io import plain  # noqa: E402
from morec.provenance import code_version  # noqa: E402
from morec.training.config import resolve_config  # noqa: E402
from morec.training.loop import rollout_summary  # noqa: E402
from morec.training.pipeline import start_run  # noqa: E402
from morec.training.run_directory import CHECKPOINT_FILE, CONFIG_FILE, SUMMARY_FILE  # noqa: E402


def parse_case(words: list[str]) -> tuple[str, Path, list[str]]:
    """``NAME RUN_DIR [KEY=VALUE ...]`` -> ``(name, run_dir, overrides)``; a bad case is one line."""
    if len(words) < 2:
        raise UserError(f"--case needs NAME RUN_DIR [KEY=VALUE ...]; got {' '.join(words)}")
    name, run_dir, overrides = words[0], Path(words[1]), words[2:]
    if not (run_dir / CHECKPOINT_FILE).exists() or not (run_dir / SUMMARY_FILE).exists():
        raise UserError(f"--case {name}: {run_dir} is not a finished run (no {CHECKPOINT_FILE} or {SUMMARY_FILE})")
    bad = [word for word in overrides if "=" not in word]
    if bad:
        raise UserError(f"--case {name}: overrides are KEY=VALUE; got {' '.join(bad)}")
    return name, run_dir, overrides


def resumed_case(name: str, run_dir: Path, overrides: list[str], args: argparse.Namespace) -> dict:
    """Copy ``run_dir``'s checkpoint and config to ``<out>/<name>``, resume it ``args.epochs`` more
    epochs with ``overrides``; its time and rollouts."""
    target = Path(args.out) / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy2(run_dir / CHECKPOINT_FILE, target / CHECKPOINT_FILE)
    epochs = json.loads((run_dir / SUMMARY_FILE).read_text())["epochs"] + args.epochs
    cfg = resolve_config(
        str(run_dir / CONFIG_FILE),
        [
            f"train.epochs={epochs}",
            f"train.eval_every={epochs}",  # one evaluation, at the end
            "train.eval_episodes=1",
            "train.evaluate_in_background=off",
            f"device={args.device}",
            *overrides,
        ],
    )
    (target / CONFIG_FILE).write_text(yaml.safe_dump(plain(cfg.to_dict()), sort_keys=False))  # what the resume checks
    loop = start_run(cfg, target, resume=True, show_progress=False)
    finished_rollouts = len(loop.rollouts)
    summary = loop.run()
    rollouts = rollout_summary(loop.rollouts[finished_rollouts:])  # the added epochs' rollouts only
    steps = args.epochs * cfg.train.steps_per_epoch
    starts = cfg.rollout.batch_size
    return {
        "run": str(run_dir),
        "overrides": overrides,
        "gradient_steps": steps,
        "wall_seconds": summary["wall_seconds_this_session"],
        "seconds_per_1k_steps": round(1000 * summary["wall_seconds_this_session"] / steps, 2),
        "rollout_starts": starts,
        "rollout_mean_length": rollouts["mean_length"],
        "model_transitions_per_rollout": None
        if rollouts["mean_length"] is None
        else round(rollouts["mean_length"] * starts),
        "truncation_rate": rollouts["truncation_rate"],
        "termination_rate": rollouts["termination_rate"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="where the copied runs are resumed")
    p.add_argument("--epochs", type=int, default=3, help="epochs added to each run (1,000 gradient steps each)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--case",
        action="append",
        nargs="+",
        required=True,
        metavar="WORD",
        help="NAME RUN_DIR [KEY=VALUE ...]: a finished run, overrides for its added epochs (the first: the reference)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        if args.epochs < 1:
            raise UserError(f"--epochs must be at least 1; got {args.epochs}")
        cases = [parse_case(words) for words in args.case]
        names = [name for name, _, _ in cases]
        if len(set(names)) != len(names):
            raise UserError(f"--case names must differ; got {' '.join(names)}")
        rows = {name: resumed_case(name, run_dir, overrides, args) for name, run_dir, overrides in cases}
    except UserError as err:
        raise SystemExit(f"bench_trained_cost: error: {err}") from None
    reference = rows[names[0]]["seconds_per_1k_steps"]
    for row in rows.values():
        row["vs_first"] = round(row["seconds_per_1k_steps"] / reference, 2)
    report = {
        "epochs": args.epochs,
        "device": args.device,
        "threads": args.threads,
        "torch": torch.__version__,
        "commit": code_version(),
        "machine": platform.processor() or platform.machine(),
        "cases": rows,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
