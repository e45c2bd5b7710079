"""A benchmark suite: tasks x algorithms x MOREC off/on x seeds as `morec train` processes (up to
``--max-parallel`` at once), then one table of normalised scores (mean ± std over seeds) as
markdown and CSV. Finished runs (a valid summary.json) are skipped; interrupted ones resume.

Used by run_d4rl.py and run_neorl.py; not imported by the library.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    task: str
    variant: str  # mopo, mopo_morec, mobile, mobile_morec
    seed: int

    def run_dir(self, results: Path) -> Path:
        return results / self.task / self.variant / f"seed{self.seed}"


def parse_args(benchmark: str, default_tasks: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=f"{benchmark} suite: run tasks x variants x seeds, then tabulate")
    p.add_argument("--tasks", default=",".join(default_tasks), help="comma-separated task names")
    p.add_argument("--variants", default="mopo,mopo_morec,mobile,mobile_morec")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--results", default=f"runs/{benchmark}")
    p.add_argument("--max-parallel", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="use the configs' smoke variants")
    p.add_argument("--dataset", default=None, help="one dataset file for every task (e.g. from morec collect)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    p.add_argument("--table-only", action="store_true", help="only tabulate existing results")
    return p.parse_args()


def command(run: Run, benchmark: str, args: argparse.Namespace, results: Path) -> list[str]:
    config = ROOT / "configs" / benchmark / run.task / ("smoke" if args.smoke else "") / f"{run.variant}.yaml"
    cmd = [sys.executable, "-m", "morec.cli", "train", "--config", str(config), "--run-dir", str(run.run_dir(results)),
           "--set", f"seed={run.seed}", "--no-progress"]
    if args.dataset:
        cmd += ["--dataset", args.dataset]
    for assignment in args.set:
        cmd += ["--set", assignment]
    if (run.run_dir(results) / "checkpoint.pt").exists():
        cmd.append("--resume")
    return cmd


def finished(run: Run, results: Path) -> bool:
    try:
        return json.loads((run.run_dir(results) / "summary.json").read_text())["last_score"] is not None
    except (OSError, ValueError, KeyError):
        return False


def execute(benchmark: str, default_tasks: list[str]) -> None:
    args = parse_args(benchmark, default_tasks)
    results = Path(args.results)
    runs = [Run(t, v, int(s)) for t in args.tasks.split(",") for v in args.variants.split(",") for s in args.seeds.split(",")]
    todo = [] if args.table_only else [r for r in runs if not finished(r, results)]
    print(f"{len(runs)} runs, {len(runs) - len(todo) if not args.table_only else len(runs)} already finished", flush=True)
    failures = []

    def launch(run: Run) -> None:
        run.run_dir(results).mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with open(run.run_dir(results) / "stdout.log", "a") as log:
            code = subprocess.call(command(run, benchmark, args, results), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        status = "ok" if code == 0 and finished(run, results) else f"FAILED (exit {code}, see {run.run_dir(results) / 'stdout.log'})"
        if status != "ok":
            failures.append(run)
        print(f"{run.task} {run.variant} seed {run.seed}: {status} in {time.perf_counter() - start:.0f} s", flush=True)

    with ThreadPoolExecutor(max_workers=max(args.max_parallel, 1)) as pool:
        list(pool.map(launch, todo))
    write_table(runs, results)
    if failures:
        sys.exit(f"{len(failures)} run(s) failed")


def write_table(runs: list[Run], results: Path) -> None:
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        if finished(run, results):
            groups.setdefault((run.task, run.variant), []).append(json.loads((run.run_dir(results) / "summary.json").read_text()))
    rows = []
    for (task, variant), summaries in sorted(groups.items()):
        last = np.array([s["last_score"] for s in summaries])
        last10 = np.array([s["last10_mean_score"] for s in summaries])
        best = np.array([s["best_score"] for s in summaries])
        rows.append({"task": task, "variant": variant, "seeds": len(summaries),
                     "last": f"{last.mean():.1f} ± {last.std():.1f}", "last10": f"{last10.mean():.1f} ± {last10.std():.1f}",
                     "best": f"{best.mean():.1f} ± {best.std():.1f}",
                     "dataset_return": f"{np.mean([s['dataset_mean_return'] for s in summaries]):.1f}"})
    if not rows:
        print("no finished runs to tabulate")
        return
    header = list(rows[0])
    with open(results / "table.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    (results / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"normalised scores (std over seeds); written to {results / 'table.md'} and {results / 'table.csv'}")
