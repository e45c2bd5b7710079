"""Does MOREC make MOPO and MOBILE learn better, everything else held equal? The evidence run behind
docs/morec_learning.

For one dataset and task it runs, through the ``morec`` command line:

1. ``morec suite d4rl`` over ``--variants`` x ``--seeds`` on the local process pool, every run with
   ``model_seed=0`` (all seeds and variants share one dynamics model and one dynamics reward, so
   they differ only in what the variant changes and in the learner's seed) and the budget given
   here (``train.epochs``; 1,000 gradient steps each). The suite skips finished runs and resumes
   unfinished ones from their checkpoints. A variant whose resolved config equals an earlier one's
   (the paper's MOREC config where MOREC's λ is the host's) is not run: its row is the earlier one's;
2. ``scripts/bc_baseline.py`` (behaviour cloning, the same seeds);
3. per finished run, ``morec eval-model --policy torchscript --policy-path <run>/policy.pt
   --horizon H --json`` with the run's dynamics and the task's dynamics reward (from a MOREC run):
   the final policy's true return from dataset start states against its return inside the model,
   unfiltered and with the MOREC filter of the MOREC runs' config (selection only, so lengths match);
4. ``table.md`` / ``table.json`` under ``--out`` after every step, with unfinished rows marked
   ``partial``.

    python scripts/morec_learning.py --dataset data/hopper/hopper-medium-replay.hdf5 \\
        --task hopper-medium-replay-v2 --out runs/morec_learning/hopper-medium-replay
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from morec_check import run  # noqa: E402  # a morec command's JSON, kept in a file and read back on a rerun

from morec.errors import UserError  # noqa: E402
from morec.io import atomic_write  # noqa: E402
from morec.runs.suite.report import code_of  # noqa: E402
from morec.runs.suite.worker import read_summary  # noqa: E402
from morec.training.run_directory import CONFIG_FILE  # noqa: E402

LABELS = {
    "mopo": "MOPO",
    "mopo_morec_matched": "MOPO + MOREC (matched)",
    "paper/mopo_morec": "MOPO + MOREC (paper)",
    "mopo_morec": "MOPO + MOREC (recommended)",
    "mobile": "MOBILE",
    "mobile_morec_matched": "MOBILE + MOREC (matched)",
    "paper/mobile_morec": "MOBILE + MOREC (paper)",
    "mobile_morec": "MOBILE + MOREC (recommended)",
}


def same_config_as(
    task: str, variants: list[str], overrides: list[str], smoke: bool, configs: Path = ROOT / "configs"
) -> dict[str, str]:
    """``{variant: earlier variant}`` for each variant whose resolved config equals an earlier one's
    (MOREC's λ equals the host's on some tasks, so its paper config is its matched one there). Such a
    run would repeat the earlier one exactly, so it is not run and its row is the earlier one's."""
    from morec.training.config import load_config

    folder, overlays = configs / "d4rl" / task, [configs / "smoke.yaml"] if smoke else []
    resolved = {v: load_config(folder / f"{v}.yaml", overrides, overlays=overlays).to_dict() for v in variants}
    same: dict[str, str] = {}
    for i, variant in enumerate(variants):
        earlier = [u for u in variants[:i] if u not in same and resolved[u] == resolved[variant]]
        if earlier:
            same[variant] = earlier[0]
    return same


def filter_flags(run_dir: Path) -> list[str]:
    """``eval-model`` flags for the filter a MOREC run trained with (its config.yaml)."""
    filt = yaml.safe_load((run_dir / CONFIG_FILE).read_text())["filter"]
    return [
        "--threshold",
        str(filt["threshold"]),
        "--consensus-weight",
        str(filt["consensus_weight"]),
        "--mode",
        filt["mode"],
        "--truncate-as",
        filt["truncate_as"],
    ]


def evaluate_in_model(run_dir: Path, summary: dict, dataset: str, reward_run: Path | None, args) -> dict | None:
    """``eval-model`` of the run's final policy, or ``None`` while no MOREC run has finished."""
    if reward_run is None or not (run_dir / summary["policy"]).exists():
        return None
    reward_summary = read_summary(reward_run)
    cmd = [
        "morec",
        "eval-model",
        "--dataset",
        dataset,
        "--dynamics",
        summary["models"]["dynamics"],
        "--reward",
        reward_summary["models"]["reward"],
        "--policy",
        "torchscript",
        "--policy-path",
        str(run_dir / summary["policy"]),
        "--horizon",
        str(args.horizon),
        "--starts",
        str(args.starts),
        "--json",
        *filter_flags(reward_run),
    ]
    return run(cmd, run_dir / "eval_model.json")


def bc_seeds(bc_file: Path) -> list[int]:
    """The seeds a ``bc.json`` of ``scripts/bc_baseline.py`` holds runs for."""
    return sorted(r["seed"] for r in json.loads(bc_file.read_text())["runs"])


def mean_std(values: list[float], digits: int = 1) -> str:
    return "–" if not values else f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def mean_of(values: list, digits: int) -> str:
    values = [v for v in values if v is not None]
    return "–" if not values else f"{np.mean(values):.{digits}f}"


def variant_row(variant: str, summaries: list[dict], evals: list[dict], seeds: int) -> dict:
    """One table row: scores over seeds, rollout statistics and the final policies' model errors."""
    pol = [next(iter(e["policies"].values())) for e in evals]
    return {
        "variant": LABELS.get(variant, variant),
        "seeds": f"{len(summaries)}/{seeds}",
        "partial": len(summaries) < seeds,
        "last": mean_std([s["last_score"] for s in summaries]),
        "last10": mean_std([s["last10_mean_score"] for s in summaries]),
        "best": mean_std([s["best_score"] for s in summaries]),
        "rollout_length": mean_of([s["rollouts"]["mean_length"] for s in summaries], 1),
        "truncated": mean_of([s["rollouts"]["truncation_rate"] for s in summaries], 3),
        "model_buffer": mean_of([s["rollouts"]["model_buffer_size"] for s in summaries], 0),
        # a property of the filter, not of the policy: shown for the runs that filtered
        "false_truncation_rate": mean_of([e.get("false_truncation_rate") for e in evals], 3)
        if "morec" in variant
        else "–",
        "true_return": mean_of([p.get("true_return_mean") for p in pol], 1),
        "model_return": mean_of([p["unfiltered"].get("return_mean") for p in pol], 1),
        "exploitation_gap": mean_of([p["unfiltered"].get("return_bias") for p in pol], 1),
        "eval_error_unfiltered": mean_of([p["unfiltered"].get("return_abs_error") for p in pol], 1),
        "eval_error_filtered": mean_of([(p.get("filtered") or {}).get("return_abs_error") for p in pol], 1),
        # a run's wall time (rollouts, updates, evaluations) per 1,000 gradient steps, and that over the
        # first variant's (the host's), filled in by tabulate
        "wall_s_per_1k_steps": mean_of([1000 * s["wall_seconds"] / s["gradient_steps"] for s in summaries], 1),
        "wall_vs_first": "–",
        "code": code_of(summaries) or "–",  # the commits its epochs ran on (a run resumed on newer code names both)
    }


def write_table(out: Path, meta: dict, rows: list[dict]) -> None:
    atomic_write(out / "table.json", lambda tmp: tmp.write_text(json.dumps({**meta, "rows": rows}, indent=2)))
    cols = [k for k in rows[0] if k not in ("variant", "partial")] if rows else []
    ds_return = meta.get("dataset_mean_return")
    lines = [
        f"# {meta['task']}: {meta['dataset']}",
        "",
        f"Dataset mean return {ds_return:.1f} (normalised {meta['dataset_score']:.1f})."
        if ds_return is not None
        else "",
        "",
        "| variant | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']}{' (partial)' if r['partial'] else ''} | " + " | ".join(str(r[c]) for c in cols) + " |"
        )
    atomic_write(out / "table.md", lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


def tabulate(out: Path, meta: dict, variants: list[str], seeds: list[int], dataset: str, bc: dict | None, args) -> None:
    runs = out / "runs" / meta["task"]
    reward_run = next(
        (
            runs / v / f"seed{s}"
            for v in variants
            if "morec" in v
            for s in seeds
            if read_summary(runs / v / f"seed{s}") is not None
        ),
        None,
    )
    duplicates = meta["same_config_as"]
    rows = []
    for variant in variants:
        ran = duplicates.get(variant, variant)
        summaries, evals = [], []
        for seed in seeds:
            summary = read_summary(runs / ran / f"seed{seed}")
            if summary is None:
                continue
            summaries.append(summary)
            report = evaluate_in_model(runs / ran / f"seed{seed}", summary, dataset, reward_run, args)
            if report is not None:
                evals.append(report)
        row = variant_row(variant, summaries, evals, len(seeds))
        if variant in duplicates:
            row["variant"] += f" = {LABELS.get(ran, ran)} (the same config: not run twice)"
        rows.append(row)
    first_wall = rows[0]["wall_s_per_1k_steps"] if rows else "–"
    for row in rows:
        if "–" not in (first_wall, row["wall_s_per_1k_steps"]):
            row["wall_vs_first"] = f"{float(row['wall_s_per_1k_steps']) / float(first_wall):.2f}"
    if bc is not None:
        rows.append(
            {
                **{k: "–" for k in rows[0]},
                "variant": "BC",
                "seeds": f"{len(bc['runs'])}/{len(seeds)}",
                "partial": False,
                "last": mean_std([r["normalized_score"] for r in bc["runs"]]),
            }
        )
    meta["dataset_mean_return"] = bc["dataset_mean_return"] if bc else None
    if bc:
        from morec.data import normalized_score

        meta["dataset_score"] = float(normalized_score(meta["task"], np.array([bc["dataset_mean_return"]]))[0])
    write_table(out, meta, rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="a D4RL-format file, e.g. from morec collect")
    p.add_argument("--task", required=True, help="the task whose configs, normaliser and evaluation env are used")
    p.add_argument("--out", required=True)
    p.add_argument("--variants", default="mopo,mopo_morec_matched,paper/mopo_morec")
    p.add_argument("--configs", default=str(ROOT / "configs"), help="the configs/ tree the variants are read from")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=100, help="train.epochs (1,000 gradient steps each)")
    p.add_argument("--dynamics-max-epochs", type=int, default=None, help="dynamics.max_epochs (default: the configs')")
    p.add_argument("--max-parallel", type=int, default=2)
    p.add_argument("--horizon", type=int, default=100, help="eval-model horizon")
    p.add_argument("--starts", type=int, default=500, help="eval-model start states")
    p.add_argument(
        "--smoke", action="store_true", help="lay the smoke budget over every config (checks the pipeline in minutes)"
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="more config overrides for every run"
    )
    p.add_argument("--table-only", action="store_true", help="only evaluate finished runs and write the table")
    args = p.parse_args(argv)

    out, dataset = Path(args.out).resolve(), str(Path(args.dataset).resolve())
    out.mkdir(parents=True, exist_ok=True)
    variants, seeds = args.variants.split(","), [int(s) for s in args.seeds.split(",")]
    overrides = [
        "model_seed=0",
        *([] if args.smoke else [f"train.epochs={args.epochs}"]),
        *([f"dynamics.max_epochs={args.dynamics_max_epochs}"] if args.dynamics_max_epochs else []),
        *args.set,
    ]
    try:  # every variant's config resolves before anything runs (a missing paper/ config is one line)
        duplicates = same_config_as(args.task, variants, overrides, args.smoke, Path(args.configs))
    except UserError as err:
        raise SystemExit(f"morec_learning: error: {err}") from None
    meta = {
        "task": args.task,
        "dataset": dataset,
        "seeds": seeds,
        "overrides": overrides,
        "smoke": args.smoke,
        "same_config_as": duplicates,
        "eval_model": {"horizon": args.horizon, "starts": args.starts},
    }
    bc_file = out / "bc.json"
    if not args.table_only:
        to_run = [v for v in variants if v not in duplicates]
        suite = [
            "morec",
            "suite",
            "d4rl",
            "--tasks",
            args.task,
            "--dataset",
            dataset,
            "--variants",
            ",".join(to_run),
            "--seeds",
            args.seeds,
            "--results",
            str(out / "runs"),
            "--configs",
            args.configs,
            "--backend",
            "pool",
            "--max-parallel",
            str(args.max_parallel),
            *(["--smoke"] if args.smoke else []),
            *[x for o in overrides for x in ("--set", o)],
        ]
        print("+", " ".join(suite), flush=True)
        code = subprocess.run(suite).returncode
        if code not in (0, 1):  # 1: some runs failed; they are listed in the suite's table and retried on a rerun
            return code
        if bc_file.exists() and bc_seeds(bc_file) != sorted(seeds):
            bc_file.unlink()  # written for other seeds: run BC for these
        bc_steps = ["--steps", "200"] if args.smoke else []
        run(
            [
                sys.executable,
                str(ROOT / "scripts" / "bc_baseline.py"),
                "--dataset",
                dataset,
                "--task",
                args.task,
                "--seeds",
                args.seeds,
                *bc_steps,
            ],
            bc_file,
        )
    bc = json.loads(bc_file.read_text()) if bc_file.exists() else None
    tabulate(out, meta, variants, seeds, dataset, bc, args)
    print((out / "table.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
