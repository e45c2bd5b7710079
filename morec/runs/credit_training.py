"""Does relabelling episodic rewards pay off in training? One table, one command.

From one dense D4RL-format file (e.g. ``morec collect``'s hopper-medium) this builds six reward
labellings of the same transitions, trains MOBILE and MOBILE+MOREC on each with a suite
and writes one table (``<out>/table.md``, ``<out>/table.csv``):

- ``dense``: the true per-step rewards (the file itself);
- ``episodic``: each episode's return on its last step, zero elsewhere (``morec.credit.episodic``);
- ``ircr``, ``rrd``, ``lare-hand`` (LaRe on the **hand-written** factors), ``lare-identity``:
  ``morec relabel --episodic`` with that method.

Each labelling's Pearson correlation with the true per-step rewards is in the table. Re-running
reuses the labelled files and finished runs and resumes interrupted ones; every labelling's suite
is one :class:`~morec.runs.suite.SuiteConfig` (budget overrides, backend, ...). The command:

    morec credit-training --dataset data/collect/hopper-medium.hdf5 --task hopper-medium-v2 \\
        --out runs/credit --lanes 2 -- --set train.epochs=4 --set mobile.num_samples=5
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from morec.errors import UserError
from morec.runs.suite.plan import SuiteConfig
from morec.runs.suite.report import write_rows

# labelling -> `morec relabel --episodic` settings (None: built here)
LABELLINGS = {
    "dense": None,
    "episodic": None,
    "ircr": {"method": "ircr"},
    "rrd": {"method": "rrd"},
    "lare-hand": {"method": "lare", "factors": "hand-written"},
    "lare-identity": {"method": "lare", "factors": "identity"},
}


def build_dataset(label: str, source: Path, path: Path) -> None:
    """Write ``path``, the ``label`` view of ``source`` (skipped when it exists)."""
    from morec.credit import episodic
    from morec.credit.relabel import relabel
    from morec.data import load_dataset

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.hdf5")
    if label == "dense":
        load_dataset(str(source)).save(tmp)
    elif label == "episodic":
        episodic(load_dataset(str(source))).save(tmp)
    else:
        relabel(episodic(load_dataset(str(source))), tmp, source=str(source), show_progress=False, **LABELLINGS[label])
        tmp.with_suffix(".json").replace(path.with_suffix(".json"))  # the relabel report
    tmp.replace(path)


def pearson(path: Path, truth: np.ndarray) -> float:
    from morec.data import load_dataset

    rewards = load_dataset(str(path)).rewards
    if len(rewards) != len(truth):
        raise UserError(f"{path} has {len(rewards)} transitions but the source has {len(truth)}; delete it to rebuild")
    return float(np.corrcoef(rewards, truth)[0, 1])


def run_suites(
    labels: list[str], *, out: Path, suite: SuiteConfig, options: dict, lanes: int, say: Callable[[str], None] = print
) -> list[int]:
    """One suite per labelling (``suite`` with that labelling's dataset and results folder, run with
    :func:`~morec.runs.suite.run_suite`'s ``options``), ``lanes`` at a time (on Ray, one after the
    other: the cluster runs each suite's runs side by side already); 1 for a suite with failed runs."""
    from morec.runs.suite import run_suite

    def one(label: str) -> int:
        cfg = replace(suite, dataset=str(out / "data" / f"{label}.hdf5"), results=out / "results" / label)
        failed = run_suite(cfg, **options)
        say(f"{label}: {failed} failed run(s) (results: {cfg.results})")
        return 1 if failed else 0

    with ThreadPoolExecutor(max_workers=1 if options.get("backend") == "ray" else lanes) as pool:
        return list(pool.map(one, labels))


def combine(labels: list[str], correlations: dict[str, float], *, out: Path, task: str) -> str:
    """One row per (labelling, variant) from each suite's ``table.csv``."""
    rows = []
    for label in labels:
        table = out / "results" / label / "table.csv"
        if not table.exists():
            continue
        with open(table, newline="") as fh:
            for row in csv.DictReader(fh):
                rows.append(
                    {
                        "rewards": label,
                        "pearson": f"{correlations[label]:.3f}",
                        "variant": row["variant"],
                        "seeds": row["seeds"],
                        "last": row["last"],
                        "last10": row["last10"],
                        "best": row["best"],
                    }
                )
    header = ["rewards", "pearson", "variant", "seeds", "last", "last10", "best"]
    text = write_rows(rows, header, out / "table.csv")
    text += (
        f"\n\n{task}, normalised scores, mean ± std over seeds (`last`: final evaluation; `last10`: mean of "
        "the last 10). `pearson`: the labelling's correlation with the true per-step rewards.\n"
    )
    (out / "table.md").write_text(text)
    return text


def credit_training(
    dataset: Path,
    task: str,
    out: Path,
    *,
    suite: SuiteConfig,
    suite_options: dict | None = None,
    labels: Sequence[str] = tuple(LABELLINGS),
    lanes: int = 1,
    table_only: bool = False,
    say: Callable[[str], None] = print,
) -> tuple[str, int]:
    """Build the ``labels`` views of ``dataset`` under ``out/data``, train ``suite`` (its variants and
    seeds of ``task``'s configs) on each (``out/results/<label>``) and combine them into
    ``out/table.md``. Returns ``(the table, 1 if a suite had failed runs else 0)``; ``table_only``
    only combines what is there."""
    from morec.data import load_dataset

    unknown = sorted(set(labels) - set(LABELLINGS))
    if unknown:
        raise UserError(f"--labels: unknown {unknown}; choose from {','.join(LABELLINGS)}")
    if not Path(dataset).exists():
        raise UserError(f"--dataset: {dataset} does not exist")
    if lanes < 1:
        raise UserError("--lanes must be at least 1")
    labels = list(labels)
    out.mkdir(parents=True, exist_ok=True)
    truth = load_dataset(str(dataset)).rewards
    correlations = {}
    for label in labels:
        path = out / "data" / f"{label}.hdf5"
        if not table_only:
            build_dataset(label, Path(dataset), path)
        correlations[label] = pearson(path, truth) if path.exists() else float("nan")
    (out / "correlations.json").write_text(json.dumps(correlations, indent=2))
    codes = (
        []
        if table_only
        else run_suites(labels, out=out, suite=suite, options=suite_options or {}, lanes=lanes, say=say)
    )
    return combine(labels, correlations, out=out, task=task), max(codes, default=0)
