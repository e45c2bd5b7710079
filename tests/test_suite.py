"""The benchmark scripts: a tiny D4RL-style suite of smoke configs, its table, resume-by-skip,
and learning-curve PNGs from the TensorBoard files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import random_dataset_file

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    random_dataset_file(root / "hopper.hdf5", steps=1500)
    argv = [sys.executable, str(SCRIPTS / "run_d4rl.py"), "--tasks", "hopper-medium-replay-v2", "--variants", "mopo,mobile_morec",
            "--seeds", "0,1", "--smoke", "--dataset", str(root / "hopper.hdf5"), "--results", str(root / "results"),
            "--max-parallel", "2", "--set", f"cache_dir={root / 'cache'}", "--set", "train.steps_per_epoch=10",
            "--set", "rollout.freq=10", "--set", "train.eval_episodes=1", "--set", "reward.num_updates=100"]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    return root, argv, first


def test_suite_runs_and_tabulates(suite):
    root, _, first = suite
    assert first.returncode == 0, first.stdout + first.stderr
    table = (root / "results" / "table.md").read_text().splitlines()
    assert len(table) == 4 and "hopper-medium-replay-v2 | mobile_morec | 2" in table[2] and "| mopo | 2 |" in table[3]
    assert (root / "results" / "table.csv").exists()
    for variant in ("mopo", "mobile_morec"):
        for seed in (0, 1):
            assert (root / "results" / "hopper-medium-replay-v2" / variant / f"seed{seed}" / "summary.json").exists()


def test_rerun_skips_finished_runs(suite):
    _, argv, _ = suite
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "4 runs, 4 already finished" in again.stdout


def test_curves_from_tensorboard(suite):
    root, _, _ = suite
    out = subprocess.run([sys.executable, str(SCRIPTS / "plot_curves.py"), str(root / "results")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    png = root / "results" / "curves" / "hopper-medium-replay-v2.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
