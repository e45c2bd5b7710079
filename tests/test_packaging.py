"""A non-editable install (a wheel, `pip install .`) carries the per-task configs as package data,
and `morec train --config <benchmark>/<task>/<variant>.yaml` finds them from any directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from morec.bundled_configs import configs_dir, find_config
from tests.helpers import random_dataset_file

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("setup.py", "README.md", "morec", "configs")


def build_wheel(tmp_path: Path) -> Path:
    """A wheel built from a copy of the sources (the build leaves build/ and *.egg-info behind)."""
    src = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(src),
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    [wheel] = (tmp_path / "dist").glob("morec-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_holds_every_config(wheel):
    shipped = {p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    assert (
        len(shipped) == 21 * 8 + 3
    )  # 21 tasks x {mopo, mobile} x 4 variants; the smoke overlay; clip and potential shaping
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert {f"morec/configs/{p}" for p in shipped} <= names
    assert {
        "morec/bundled_configs.py",
        "morec/runs/sweep.py",
        "morec/learners/sac_step.py",
        "morec/commands/train.py",
    } <= names
    assert {name.split("/")[0] for name in names} == {"morec", "morec-0.1.0.dist-info"}  # one top-level package


def test_bundled_configs_are_found_by_their_path_under_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    bundled = configs_dir() / "d4rl" / "hopper-medium-v2" / "mobile_morec.yaml"
    assert find_config("d4rl/hopper-medium-v2/mobile_morec.yaml") == str(bundled)
    assert find_config("configs/d4rl/hopper-medium-v2/mobile_morec.yaml") == str(bundled)
    (tmp_path / "mine.yaml").write_text("seed: 1\n")
    assert find_config("mine.yaml") == "mine.yaml" and find_config(None) is None
    # a typo keeps the bundled folder, so the error can list the configs there
    assert find_config("d4rl/hopper-medium-v2/mobile_morc.yaml") == str(bundled.with_name("mobile_morc.yaml"))
    assert find_config("nowhere/x.yaml") == "nowhere/x.yaml"


@pytest.mark.slow  # a venv, an install and a short training run (about a minute on 2 cores)
def test_an_installed_wheel_trains_a_bundled_config_from_any_directory(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    # the dependencies come from this interpreter's environment (a venv or the system's): its
    # site-packages go on the new one's path, after its own; the .pth files there (an editable
    # install of this checkout) are not read, so `morec` can only come from the wheel
    own_site = subprocess.run(
        [bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    parent_sites = [p for p in sys.path if p.endswith("site-packages") and "__editable__" not in p]
    (Path(own_site) / "parent_environment.pth").write_text("\n".join(parent_sites) + "\n")
    subprocess.run(
        [bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    data = random_dataset_file(work / "hopper.hdf5", steps=600)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [bin_dir / "python", "-c", "import morec, morec.learners; print(morec.__file__, morec.learners.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0 and where.stdout.count(str(env_dir)) == 2, (
        where.stdout + where.stderr
    )  # not this checkout
    sets = [
        "train.epochs=1",
        "train.steps_per_epoch=10",
        "train.eval_episodes=1",
        "rollout.freq=10",
        "dynamics.max_epochs=1",
    ]
    done = subprocess.run(
        [
            bin_dir / "morec",
            "train",
            "--config",
            "d4rl/hopper-medium-v2/mopo.yaml",
            "--config",
            "smoke.yaml",
            "--dataset",
            str(data),
            "--run-dir",
            "run",
            "--no-progress",
            *[x for s in sets for x in ("--set", s)],
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (work / "run" / "summary.json").exists()
    assert "task: hopper-medium-v2" in (work / "run" / "config.yaml").read_text()


def test_lazy_names_are_listed_for_tab_completion():
    code = (
        "import sys, morec, morec.credit, morec.dynamics as dynamics; "
        "assert {'RandomizedReturnDecomposition', 'LaReConfig', 'IRCR'} <= set(dir(morec.credit)), dir(morec.credit); "
        "assert {'RolloutEngine', 'DynamicsReward', '__version__'} <= set(dir(morec)); "
        "assert 'EnsembleDynamics' in dir(dynamics); "
        "assert 'torch' not in sys.modules, 'dir() imported the lazy modules'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
