"""Benchmark suites on Ray and on the local pool, and Ray Tune sweeps: a 2-task x 2-seed suite of
smoke configs produces the table and curves; an interrupted suite re-run finishes only the missing
runs; the pool gives the same table; a failing run is reported with its error; runs sharing a
cached model never train it twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from morec.locking import LockBusy, acquire, exclusive_lock
from morec.runs.suite import RunSpec, SuiteConfig, plan_runs
from morec.runs.suite.worker import CHILD_MODULE, execute_run, train_command
from morec.training.config import ConfigError, load_config
from morec.training.pipeline import start_run
from tests.helpers import random_dataset_file

ROOT = Path(__file__).resolve().parents[1]
TASKS = "hopper-medium-v2,halfcheetah-medium-v2"
TINY = ["--set", "train.steps_per_epoch=10", "--set", "rollout.freq=10", "--set", "train.eval_episodes=1"]


@pytest.fixture(scope="module")
def d4rl_dir(tmp_path_factory):
    """Small datasets under their official D4RL file names, found through $D4RL_DATASET_DIR."""
    root = tmp_path_factory.mktemp("d4rl")
    random_dataset_file(root / "hopper_medium-v2.hdf5", "Hopper-v4", steps=1500)
    random_dataset_file(root / "halfcheetah_medium-v2.hdf5", "HalfCheetah-v4", steps=1500, seed=1)
    return root


def suite_argv(results: Path, *extra: str, tasks: str = TASKS) -> list[str]:
    return [
        sys.executable,
        "-m",
        "morec.cli",
        "suite",
        "d4rl",
        "--tasks",
        tasks,
        "--variants",
        "mopo",
        "--seeds",
        "0,1",
        "--smoke",
        "--results",
        str(results),
        *TINY,
        *extra,
    ]


def run_suite(argv: list[str], d4rl_dir: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, "D4RL_DATASET_DIR": str(d4rl_dir)}
    )


def table_rows(results: Path) -> list[str]:
    return [
        line for line in (results / "table.md").read_text().splitlines() if line.startswith("| ") and "---" not in line
    ]


def training_processes(results: Path) -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = proc.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"-m {CHILD_MODULE} " in cmdline and str(results) in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture(scope="module")
def ray_suite(d4rl_dir, tmp_path_factory):
    """A Ray suite interrupted (SIGTERM) after its first finished run, then run again."""
    pytest.importorskip("ray")
    results = tmp_path_factory.mktemp("ray") / "results"
    argv = suite_argv(results, "--backend", "ray")
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "D4RL_DATASET_DIR": str(d4rl_dir)},
    )
    first_output = []
    for line in proc.stdout:
        first_output.append(line)
        if ": ok, score" in line:
            proc.send_signal(signal.SIGTERM)
            break
    first_output += proc.stdout.readlines()
    code = proc.wait(timeout=120)
    finished_first = {p.parent: p.stat().st_mtime_ns for p in results.glob("*/mopo/seed*/summary.json")}
    time.sleep(1)
    leftovers = training_processes(results)
    second = run_suite(argv, d4rl_dir)
    return results, code, "".join(first_output), finished_first, leftovers, second


@pytest.mark.slow  # long end-to-end; `make test-all` runs it
def test_ray_suite_interrupted_then_rerun_finishes_only_the_missing_runs(ray_suite):
    results, code, first, finished_first, leftovers, second = ray_suite
    assert code == 130 and "interrupted" in first, first
    assert leftovers == []  # the interrupted suite left no training process behind
    assert 1 <= len(finished_first) < 4
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"4 runs, {len(finished_first)} already finished" in second.stdout
    assert second.stdout.count(": ok, score") == 4 - len(finished_first)
    for run_dir, mtime in finished_first.items():  # finished runs were not run again
        assert (run_dir / "summary.json").stat().st_mtime_ns == mtime
    assert "[4/4 done, 0 running, 0 failed, 0 queued]" in second.stdout


@pytest.mark.slow  # long end-to-end; `make test-all` runs it
def test_ray_suite_writes_table_curves_and_record(ray_suite):
    results = ray_suite[0]
    rows = table_rows(results)
    assert (
        len(rows) == 3
        and "| halfcheetah-medium-v2 | mopo | 2 |" in rows[1]
        and "| hopper-medium-v2 | mopo | 2 |" in rows[2]
    )
    assert (results / "table.csv").read_text().count("\n") == 3
    for task in TASKS.split(","):
        assert (results / "curves" / f"{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((results / "suite.json").read_text())
    assert record["backend"] == "ray" and record["failed"] == 0 and record["startup_seconds"] > 0


@pytest.mark.slow  # long end-to-end; `make test-all` runs it
def test_pool_gives_the_same_table(ray_suite, d4rl_dir, tmp_path):
    pool = run_suite(suite_argv(tmp_path / "results", "--backend", "pool", "--max-parallel", "2"), d4rl_dir)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    assert table_rows(tmp_path / "results") == table_rows(ray_suite[0])


# the pool case stays in the default run; Ray starts a local cluster (a minute on 2 cores): slow
@pytest.mark.parametrize("backend", ["pool", pytest.param("ray", marks=pytest.mark.slow)])
def test_failing_run_is_retried_then_reported_with_its_error(backend, d4rl_dir, tmp_path):
    if backend == "ray":
        pytest.importorskip("ray")
    # walker2d's dataset file is missing: both attempts fail; the hopper run still lands in the table
    argv = suite_argv(
        tmp_path / "results", "--backend", backend, "--max-parallel", "2", tasks="hopper-medium-v2,walker2d-medium-v2"
    )
    argv[argv.index("0,1")] = "0"
    out = run_suite(argv, d4rl_dir)
    assert out.returncode == 1
    assert (
        "walker2d-medium-v2 mopo seed 0: FAILED: morec: error: D4RL dataset 'walker2d-medium-v2' not found"
        in out.stdout
    )
    table = (tmp_path / "results" / "table.md").read_text()
    assert (
        "## Failed runs (1)" in table
        and "walker2d-medium-v2 mopo seed 0 (2 attempts)" in table
        and "walker2d_medium-v2.hdf5" in table
    )
    assert "| hopper-medium-v2 | mopo | 1 |" in table
    outcomes = {o["task"]: o for o in json.loads((tmp_path / "results" / "suite.json").read_text())["outcomes"]}
    assert outcomes["walker2d-medium-v2"]["attempts"] == 2 and not outcomes["walker2d-medium-v2"]["ok"]
    assert outcomes["hopper-medium-v2"]["ok"] and outcomes["hopper-medium-v2"]["attempts"] == 1


# ------------------------------------------------------------------------------------ planning
def test_plan_is_variant_major_and_a_run_gets_its_resolved_config_as_a_file(tmp_path):
    results = tmp_path / "my runs #2"  # a folder name YAML would cut at the '#'
    cfg = SuiteConfig(
        "d4rl",
        ["hopper-medium-v2", "walker2d-medium-v2"],
        ["mopo", "mobile"],
        [0, 1],
        results=results,
        overrides=["train.epochs=7"],
        dataset="data/my set #1.hdf5",
    )
    runs = plan_runs(cfg)
    assert [r.variant for r in runs[:4]] == ["mopo"] * 4 and len({(r.task, r.seed) for r in runs[:4]}) == 4
    run = RunSpec("hopper-medium-v2", "mopo", 1)
    cmd = train_command(run, cfg)
    run_dir = results / "hopper-medium-v2" / "mopo" / "seed1"
    assert cmd[1:] == [
        "-m",
        "morec.runs.suite",
        str(run_dir / "requested_config.yaml"),
        str(run_dir),
    ]  # no CLI text
    requested = load_config(run_dir / "requested_config.yaml")
    assert (requested.seed, requested.train.epochs, requested.cache_dir) == (1, 7, str(results / "cache"))
    assert requested.dataset == "data/my set #1.hdf5" and requested == replace(
        load_config(cfg.config_path(run), ["train.epochs=7"]),
        seed=1,
        cache_dir=str(results / "cache"),
        dataset="data/my set #1.hdf5",
    )
    (run_dir / "checkpoint.pt").write_bytes(b"")
    assert train_command(run, cfg)[-1] == "--resume"


def test_the_training_child_runs_without_a_runpy_warning_and_names_bad_input(tmp_path):
    # the child module is not one the package imports, so `-m` runs it once (no RuntimeWarning)
    proc = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", CHILD_MODULE, str(tmp_path / "none.yaml"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("morec: error:"), proc.stderr


def test_a_run_finished_meanwhile_is_not_started_again(tmp_path):
    cfg = SuiteConfig("d4rl", ["hopper-medium-v2"], ["mopo"], [0], results=tmp_path, overrides=["no.such.key=1"])
    run = RunSpec("hopper-medium-v2", "mopo", 0)
    run.run_dir(tmp_path).mkdir(parents=True)
    (run.run_dir(tmp_path) / "summary.json").write_text(json.dumps({"last_score": 7.5}))  # another suite finished it
    outcome = execute_run(run, cfg)  # a started child would fail on the unknown key
    assert outcome.ok and outcome.attempts == 0 and outcome.score == 7.5
    assert not (run.run_dir(tmp_path) / "stdout.log").exists()


def test_gpu_share_defaults_only_where_the_cluster_has_gpus():
    from morec.runs.suite.runner import DEFAULT_GPUS_PER_RUN, gpu_share

    assert gpu_share(None, 0, ["a=1"]) == (0.0, ["a=1"])
    assert gpu_share(None, 2, ["a=1"]) == (DEFAULT_GPUS_PER_RUN, ["device=cuda", "a=1"])
    assert gpu_share(0.5, 1, ["device=cuda:1"]) == (0.5, ["device=cuda:1"])  # the user's device stays


def test_bad_suite_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown variant.*'sac'"):
        SuiteConfig("d4rl", ["hopper-medium-v2"], ["sac"], results=tmp_path)
    with pytest.raises(FileNotFoundError, match="no config for 1 run.*hopper-medium-v9"):
        SuiteConfig("d4rl", ["hopper-medium-v9"], ["mopo"], [0], results=tmp_path).check()


def test_a_configs_tree_of_your_own_names_its_own_variants(tmp_path):
    task = tmp_path / "configs" / "d4rl" / "hopper-medium-v2"
    task.mkdir(parents=True)
    (task / "mopo_longer.yaml").write_text("algorithm: mopo\n")
    cfg = SuiteConfig(
        "d4rl", ["hopper-medium-v2"], ["mopo_longer"], [0], results=tmp_path / "r", configs=tmp_path / "configs"
    )
    cfg.check()
    assert cfg.config_path(plan_runs(cfg)[0]) == task / "mopo_longer.yaml"
    with pytest.raises(ValueError, match=r"unknown variant\(s\) \['mopo'\]: choose from \['mopo_longer'\]"):
        SuiteConfig("d4rl", ["hopper-medium-v2"], ["mopo"], [0], results=tmp_path / "r", configs=tmp_path / "configs")


# ------------------------------------------------------------------------------------ locks
def test_locks_exclude_other_holders(tmp_path):
    with exclusive_lock(tmp_path / "x.lock"), pytest.raises(LockBusy):
        acquire(tmp_path / "x.lock", blocking=False)
    acquire(tmp_path / "x.lock", blocking=False).close()  # released


def test_trainer_refuses_a_run_directory_in_use(tmp_path):
    holder = acquire(tmp_path / "run" / ".lock")
    with pytest.raises(ConfigError, match="in use by another running process"):
        start_run(load_config(None, ["task=hopper-medium-v2"]), tmp_path / "run")
    holder.close()


@pytest.mark.slow  # long end-to-end; `make test-all` runs it
def test_concurrent_runs_train_a_shared_dynamics_model_once(tmp_path):
    data = random_dataset_file(tmp_path / "hopper.hdf5", steps=1500)
    config = ROOT / "configs" / "d4rl" / "hopper-medium-v2" / "mopo.yaml"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "morec.cli",
                "train",
                "--config",
                str(config),
                "--config",
                "smoke.yaml",
                "--dataset",
                str(data),
                "--run-dir",
                str(tmp_path / f"run{k}"),
                "--no-progress",
                "--set",
                f"cache_dir={tmp_path / 'cache'}",
                "--set",
                "dynamics.max_epochs=30",
                "--set",
                f"rollout.penalty_coef={k + 1}",
                *TINY,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    trained = [
        any(
            "dynamics/train_nll" in f.read_bytes().decode(errors="ignore")
            for f in (tmp_path / f"run{k}" / "tb").iterdir()
        )
        for k in range(2)
    ]
    assert sorted(trained) == [False, True]
    assert len(list((tmp_path / "cache" / "dynamics").glob("*/dynamics.pt"))) == 1


# ------------------------------------------------------------------------------------ sweeps
def sweep_argv(results: Path, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "morec.cli",
        "sweep",
        "--config",
        str(ROOT / "configs/d4rl/hopper-medium-v2/mopo.yaml"),
        "--config",
        "smoke.yaml",
        "--dataset",
        str(data),
        "--results",
        str(results),
        *TINY,
        "--set",
        "train.epochs=3",
        *extra,
    ]


@pytest.mark.slow  # long end-to-end; `make test-all` runs it
def test_sweep_reports_scores_and_writes_the_best_config(d4rl_dir, tmp_path):
    pytest.importorskip("ray.tune")
    argv = sweep_argv(
        tmp_path / "sweep", d4rl_dir / "hopper_medium-v2.hdf5", "--param", "rollout.penalty_coef=grid:0.5,2.0"
    )
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = (tmp_path / "sweep" / "sweep.csv").read_text().splitlines()
    assert rows[0] == "rollout.penalty_coef,trial,status,evaluations,last,last10,best,error" and len(rows) == 3
    assert {r.split(",")[0] for r in rows[1:]} == {"0.5", "2.0"}
    best = yaml.safe_load((tmp_path / "sweep" / "best_config.yaml").read_text())
    assert best["rollout"]["penalty_coef"] in (0.5, 2.0) and best["train"]["epochs"] == 3
    again = subprocess.run(argv, capture_output=True, text=True, timeout=60)  # no --resume: refuse, touch nothing
    assert again.returncode != 0 and "pass --resume" in again.stderr


def test_sweep_rejects_bad_keys_before_starting_ray(tmp_path):
    out = subprocess.run(
        sweep_argv(tmp_path / "sweep", tmp_path / "x.hdf5", "--param", "mobile.betta=grid:1,2"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "unknown config key 'mobile.betta'; did you mean mobile.beta?" in out.stderr
    assert not (tmp_path / "sweep").exists()


def test_suite_command_names_bad_settings_without_a_traceback(capsys):
    from morec.cli import main

    assert main(["suite", "d4rl", "--variants", "mopo,sac", "--smoke"]) == 2
    assert "error: unknown variant(s) ['sac']" in capsys.readouterr().err


def test_curves_of_several_results_folders_share_a_task_plot(tmp_path, monkeypatch):
    import matplotlib.axes
    from torch.utils.tensorboard import SummaryWriter

    from morec.runs.suite import write_curves
    from morec.runs.suite.report import read_curve

    for root, variant, scores in (("main", "mopo", [1.0, 2.0]), ("ablation", "mopo_morec_matched", [3.0, 5.0])):
        for seed in (0, 1):
            with SummaryWriter(str(tmp_path / root / "hopper-medium-v2" / variant / f"seed{seed}" / "tb")) as writer:
                for step, score in zip((1000, 2000), scores):
                    writer.add_scalar("eval/normalized_score", score + seed, step)
            (tmp_path / root / "hopper-medium-v2" / variant / f"seed{seed}" / "summary.json").write_text("{}")
    assert read_curve(tmp_path / "main" / "hopper-medium-v2" / "mopo" / "seed1" / "tb", "eval/normalized_score")[
        1
    ].tolist() == [2.0, 3.0]
    plotted, plot = [], matplotlib.axes.Axes.plot
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "plot",
        lambda ax, x, y, label: plotted.append((label, list(y))) or plot(ax, x, y, label=label),
    )
    written = write_curves(
        [tmp_path / "main", tmp_path / "ablation"], out=tmp_path / "figures", labels=["main", "stop"]
    )
    assert plotted == [
        ("main: mopo (2 seeds)", [1.5, 2.5]),
        ("stop: mopo_morec_matched (2 seeds)", [3.5, 5.5]),
    ]  # means over seeds
    with SummaryWriter(str(tmp_path / "main" / "hopper-medium-v2" / "mopo" / "seed2" / "tb")) as writer:
        writer.add_scalar("eval/normalized_score", 9.0, 1000)  # a seed still running
    plotted.clear()
    write_curves([tmp_path / "main"], out=tmp_path / "figures")
    assert plotted == [("mopo (2 seeds, 1 still running left out)", [1.5, 2.5])]
    with SummaryWriter(str(tmp_path / "main" / "hopper-medium-v2" / "mopo_morec" / "seed0" / "tb")) as writer:
        writer.add_scalar("eval/normalized_score", 4.0, 1000)  # a variant whose only seed is still running
    plotted.clear()
    write_curves([tmp_path / "main"], out=tmp_path / "figures")
    assert ("mopo_morec (1 seed, partial)", [4.0]) in plotted
    assert written == [tmp_path / "figures" / "hopper-medium-v2.png"] and written[0].stat().st_size > 0
    with pytest.raises(ValueError, match="1 labels for 2 results folders"):
        write_curves([tmp_path / "main", tmp_path / "ablation"], labels=["main"])


def test_the_table_is_written_as_each_run_finishes(tmp_path, monkeypatch):
    """A suite of hours shows its finished runs (and how far the rest have got) before it ends."""
    from torch.utils.tensorboard import SummaryWriter

    from morec.runs.suite import runner

    tables_seen = []

    class OneAtATime:  # a backend whose runs finish one at a time, writing the summary a run leaves
        name, startup_seconds, capacity = "fake", 0.0, 2

        def __init__(self, cfg, max_parallel):
            self.cfg = cfg

        def submit(self, run):
            with SummaryWriter(str(run.run_dir(self.cfg.results) / "tb")) as writer:  # what a running run has logged
                for step, score in ((1000, 4.0), (2000, 8.0)):
                    writer.add_scalar("eval/normalized_score", score, step)
            return run

        def wait(self, handles):
            table = self.cfg.results / "table.md"
            tables_seen.append(table.read_text() if table.exists() else None)
            run = handles[0]
            summary = {"last_score": 10.0 + run.seed, "last10_mean_score": 9.0, "best_score": 12.0}
            summary |= {"dataset_mean_return": 1.0, "wall_seconds": 30.0 * (run.seed + 1), "gradient_steps": 1000}
            (run.run_dir(self.cfg.results) / "summary.json").write_text(json.dumps(summary))
            return [(run, runner.RunOutcome(run, True, 1.0, 1, score=summary["last_score"]))]

        def close(self):
            """Nothing to release: no processes were started."""

    monkeypatch.setattr(runner, "PoolBackend", OneAtATime)
    cfg = SuiteConfig("d4rl", ["hopper-medium-v2"], variants=["mopo"], seeds=[0, 1], results=tmp_path / "results")
    assert runner.run_suite(cfg, backend="pool") == 0
    before_first, before_second = tables_seen
    assert before_first is None
    assert "| hopper-medium-v2 | mopo | 1 | 10.0 ± 0.0 |" in before_second and "30.0 |" in before_second
    assert "## Not finished (1)" in before_second and "hopper-medium-v2 mopo seed 1" in before_second
    assert "seed1 (partial: 2 evaluations, step 2,000; last 8.0, last10 6.0, best 8.0)" in before_second
    final = (tmp_path / "results" / "table.md").read_text()
    assert "| hopper-medium-v2 | mopo | 2 | 10.5 ± 0.5 |" in final and "45.0 |" in final and "Not finished" not in final


def test_curves_find_variants_that_are_paths(tmp_path, monkeypatch):
    import matplotlib.axes
    from torch.utils.tensorboard import SummaryWriter

    from morec.runs.suite.report import variant_dirs, write_curves

    task = tmp_path / "results" / "hopper-medium-v2"
    for variant, score in (("mopo", 1.0), ("paper/mopo_morec", 3.0)):
        for seed in (0, 1):
            with SummaryWriter(str(task / variant / f"seed{seed}" / "tb")) as writer:
                writer.add_scalar("eval/normalized_score", score + seed, 1000)
            (task / variant / f"seed{seed}" / "summary.json").write_text("{}")  # finished runs
    (task / "paper" / "notes").mkdir()  # a folder without runs is no variant
    assert variant_dirs(task) == [task / "mopo", task / "paper" / "mopo_morec"]
    assert variant_dirs(tmp_path / "results" / "no such task") == []
    plotted, plot = [], matplotlib.axes.Axes.plot
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "plot",
        lambda ax, x, y, label: plotted.append((label, list(y))) or plot(ax, x, y, label=label),
    )
    written = write_curves(tmp_path / "results", ["hopper-medium-v2"])
    assert plotted == [("mopo (2 seeds)", [1.5]), ("paper/mopo_morec (2 seeds)", [3.5])]
    assert written == [tmp_path / "results" / "curves" / "hopper-medium-v2.png"]
