"""Does relabelling episodic rewards pay off in training? One table, one command.

From one dense D4RL-format file (e.g. ``morec collect``'s hopper-medium) this builds six reward
labellings of the same transitions, trains MOBILE and MOBILE+MOREC on each with ``morec suite``
and writes one table (``<out>/table.md``, ``<out>/table.csv``):

- ``dense``: the true per-step rewards (the file itself);
- ``episodic``: each episode's return on its last step, zero elsewhere (``morec.credit.episodic``);
- ``ircr``, ``rrd``, ``lare-hand`` (LaRe on the **hand-written** factors), ``lare-identity``:
  ``morec relabel --episodic`` with that method.

Each labelling's Pearson correlation with the true per-step rewards is in the table. Re-running
the command reuses the labelled files and finished runs and resumes interrupted ones; arguments
after ``--`` go to every ``morec suite`` call (budget overrides, ``--backend``, ...).

    python scripts/credit_training.py --dataset data/collect/hopper-medium.hdf5 --task hopper-medium-v2 \\
        --out runs/credit --lanes 2 -- --set train.epochs=4 --set mobile.num_samples=5
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from morec.credit import episodic
from morec.data import load_dataset
from morec.suite.report import write_rows

# labelling -> `morec relabel` arguments (None: built here)
LABELLINGS = {
    "dense": None,
    "episodic": None,
    "ircr": ["--method", "ircr"],
    "rrd": ["--method", "rrd"],
    "lare-hand": ["--method", "lare", "--factors", "hand-written"],
    "lare-identity": ["--method", "lare", "--factors", "identity"],
}
MORECLI = [sys.executable, "-m", "morec.cli"]


def build_dataset(label: str, source: Path, path: Path) -> None:
    """Write ``path``, the ``label`` view of ``source`` (skipped when it exists)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.hdf5")
    if label == "dense":
        load_dataset(str(source)).save(tmp)
    elif label == "episodic":
        episodic(load_dataset(str(source))).save(tmp)
    else:
        subprocess.run([*MORECLI, "relabel", "--dataset", str(source), "--episodic", *LABELLINGS[label],
                        "--out", str(tmp), "--no-progress"], check=True, stdout=subprocess.DEVNULL)
        tmp.with_suffix(".json").replace(path.with_suffix(".json"))  # the relabel report
    tmp.replace(path)


def pearson(path: Path, truth: np.ndarray) -> float:
    rewards = load_dataset(str(path)).rewards
    if len(rewards) != len(truth):
        raise ValueError(f"{path} has {len(rewards)} transitions but the source has {len(truth)}; delete it to rebuild")
    return float(np.corrcoef(rewards, truth)[0, 1])


def run_suites(labels: list[str], args: argparse.Namespace, suite_args: list[str]) -> list[int]:
    """One ``morec suite`` per labelling, ``args.lanes`` at a time; returns their exit codes."""
    def suite(label: str) -> int:
        cmd = [*MORECLI, "suite", "d4rl", "--tasks", args.task, "--variants", args.variants, "--seeds", args.seeds,
               "--dataset", str(args.out / "data" / f"{label}.hdf5"), "--results", str(args.out / "results" / label),
               *suite_args]
        log = args.out / "results" / f"{label}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as fh:
            code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
        print(f"{label}: morec suite exited {code} (log: {log})", flush=True)
        return code

    with ThreadPoolExecutor(max_workers=args.lanes) as pool:
        return list(pool.map(suite, labels))


def combine(labels: list[str], correlations: dict[str, float], args: argparse.Namespace) -> str:
    """One row per (labelling, variant) from each suite's ``table.csv``."""
    rows = []
    for label in labels:
        table = args.out / "results" / label / "table.csv"
        if not table.exists():
            continue
        with open(table, newline="") as fh:
            for row in csv.DictReader(fh):
                rows.append({"rewards": label, "pearson": f"{correlations[label]:.3f}", "variant": row["variant"],
                             "seeds": row["seeds"], "last": row["last"], "last10": row["last10"], "best": row["best"]})
    header = ["rewards", "pearson", "variant", "seeds", "last", "last10", "best"]
    text = write_rows(rows, header, args.out / "table.csv")
    text += (f"\n\n{args.task}, normalised scores, mean ± std over seeds (`last`: final evaluation; `last10`: mean of "
             "the last 10). `pearson`: the labelling's correlation with the true per-step rewards.\n")
    (args.out / "table.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, suite_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, type=Path, help="a dense D4RL-format .hdf5 (e.g. from `morec collect`)")
    p.add_argument("--task", required=True, help="the D4RL task whose configs train on it, e.g. hopper-medium-v2")
    p.add_argument("--out", required=True, type=Path, help="data/, results/<labelling>/ and table.md go here")
    p.add_argument("--labels", default=",".join(LABELLINGS), help=f"comma-separated subset of {','.join(LABELLINGS)}")
    p.add_argument("--variants", default="mobile,mobile_morec")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--lanes", type=int, default=1, help="labellings trained at a time (each suite runs its own runs one by one)")
    p.add_argument("--table-only", action="store_true", help="only combine what is already under --out")
    args = p.parse_args(own)
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    unknown = sorted(set(labels) - set(LABELLINGS))
    if unknown:
        p.error(f"--labels: unknown {unknown}; choose from {','.join(LABELLINGS)}")
    if not args.dataset.exists():
        p.error(f"--dataset: {args.dataset} does not exist")
    if args.lanes < 1:
        p.error("--lanes must be at least 1")

    args.out.mkdir(parents=True, exist_ok=True)
    truth = load_dataset(str(args.dataset)).rewards
    correlations = {}
    for label in labels:
        path = args.out / "data" / f"{label}.hdf5"
        if not args.table_only:
            build_dataset(label, args.dataset, path)
        correlations[label] = pearson(path, truth) if path.exists() else float("nan")
    (args.out / "correlations.json").write_text(json.dumps(correlations, indent=2))
    codes = [] if args.table_only else run_suites(labels, args, suite_args)
    print(combine(labels, correlations, args), end="")
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
