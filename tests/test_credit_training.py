"""`morec credit-training`: labelled datasets, one suite per labelling, one combined table."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from morec.data import load_dataset
from tests.helpers import random_dataset_file

TINY = [
    "--smoke",
    "--backend",
    "pool",
    "--set",
    "train.steps_per_epoch=10",
    "--set",
    "rollout.freq=10",
    "--set",
    "train.eval_episodes=1",
]


@pytest.mark.slow  # three pool suites (80 s on 2 cores); `make test-all` runs it
def test_three_labellings_train_and_share_one_table(tmp_path):
    source = random_dataset_file(tmp_path / "hopper.hdf5", "Hopper-v4", steps=1500)
    out = tmp_path / "credit"
    argv = [
        sys.executable,
        "-m",
        "morec.cli",
        "credit-training",
        "--dataset",
        str(source),
        "--task",
        "hopper-medium-v2",
        "--out",
        str(out),
        "--labels",
        "dense,episodic,ircr",
        "--variants",
        "mopo",
        "--seeds",
        "0",
        "--lanes",
        "2",
        "--",
        *TINY,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(out / "table.csv", newline="") as fh:
        rows = {r["rewards"]: r for r in csv.DictReader(fh)}
    assert sorted(rows) == ["dense", "episodic", "ircr"] and all(
        r["seeds"] == "1" and r["variant"] == "mopo" for r in rows.values()
    )
    assert (
        float(rows["dense"]["pearson"]) == 1.0
        and float(rows["episodic"]["pearson"]) < float(rows["ircr"]["pearson"]) < 1.0
    )
    assert (out / "data" / "ircr.json").exists() and not list((out / "data").glob("*.partial.*"))
    episodic = load_dataset(str(out / "data" / "episodic.hdf5"))
    assert len(episodic) == len(load_dataset(str(source))) and (episodic.rewards != 0).sum() < len(episodic) / 10
    summaries = sorted(out.glob("results/*/hopper-medium-v2/mopo/seed0/summary.json"))
    assert len(summaries) == 3
    # a re-run trains nothing and gives the same table
    stamps = [p.stat().st_mtime_ns for p in summaries]
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and [p.stat().st_mtime_ns for p in summaries] == stamps
    assert (out / "table.md").read_text().startswith("| rewards | pearson | variant |")


def test_unknown_labelling_is_refused(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "morec.cli",
            "credit-training",
            "--dataset",
            str(tmp_path / "x.hdf5"),
            "--task",
            "hopper-medium-v2",
            "--out",
            str(tmp_path),
            "--labels",
            "dense,rudder",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "unknown ['rudder']" in done.stderr
