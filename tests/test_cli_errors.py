"""The `morec` command as a user meets it: one-line errors with the fix (exit 2), `--debug`
tracebacks, warnings about data without an environment, a parser that does not load torch, and
quickstart's reuse of finished stages. Every case runs the real command in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from morec.data import OfflineDataset, load_dataset
from tests.helpers import random_dataset


def morec(
    *argv: str, env: dict[str, str] | None = None, timeout: int = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "morec.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def first_error_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.strip().splitlines()[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The same hopper data three ways: with morec's metadata, under D4RL's official file name with
    no metadata, and under a plain name with no metadata."""
    root = tmp_path_factory.mktemp("cli_errors")
    ds = random_dataset(steps=400)
    bare = OfflineDataset.from_arrays(**ds.arrays())  # no env_id: the file names no environment
    return {
        "named": ds.save(root / "hopper.hdf5"),
        "official": bare.save(root / "hopper_medium_replay-v2.hdf5"),
        "plain": bare.save(root / "plain.hdf5"),
        "root": root,
    }


def test_parsing_loads_neither_torch_nor_tianshou():
    code = (
        "import sys, morec.cli; morec.cli.build_parser().parse_args(['train', '--set', 'a=1']); "
        "print(sorted(m for m in ('torch', 'tianshou', 'gymnasium') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]"


def test_a_training_config_validates_without_torch():
    code = (
        "import sys; from morec.training.config import resolve_config; "
        "cfg = resolve_config('configs/d4rl/hopper-medium-replay-v2/mopo_morec.yaml', ['train.epochs=3']); "
        "assert cfg.train.epochs == 3; "
        "print(sorted(m for m in ('torch', 'tianshou', 'gymnasium') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1]
    )
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_help_lists_every_subcommand():
    proc = morec("--help")
    assert proc.returncode == 0
    from morec.commands import COMMANDS

    for name in [module.replace("_", "-") for module in COMMANDS]:
        assert f"\n    {name} " in proc.stdout, name


def test_argument_errors_are_argparse_one_liners():
    proc = morec("train-dynamics", "--out", "x")
    assert proc.returncode == 2 and "error: the following arguments are required: --dataset" in proc.stderr


def test_missing_dataset_file(tmp_path):
    proc = morec("train-dynamics", "--dataset", str(tmp_path / "nope.hdf5"), "--out", str(tmp_path / "dyn"))
    assert proc.returncode == 2
    assert first_error_line(proc) == f"morec: error: dataset file {tmp_path / 'nope.hdf5'} does not exist"
    assert "Traceback" not in proc.stderr


def test_missing_d4rl_file_says_where_to_put_it(tmp_path):
    env = {"D4RL_DATASET_DIR": str(tmp_path), "http_proxy": "http://127.0.0.1:9"}  # the download fails at once
    proc = morec("train-dynamics", "--dataset", "d4rl:hopper-medium-v2", "--out", str(tmp_path / "dyn"), env=env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert first_error_line(proc).startswith("morec: error: D4RL dataset 'hopper-medium-v2' not found at")
    assert f"put it at {tmp_path / 'hopper_medium-v2.hdf5'}" in proc.stderr


def test_wrong_observation_size_for_the_environment(files, tmp_path):
    proc = morec(
        "train-dynamics", "--dataset", str(files["named"]), "--env", "Walker2d-v4", "--out", str(tmp_path / "d")
    )
    assert proc.returncode == 2
    assert first_error_line(proc).startswith(
        "morec: error: field 'observations' has 11 columns but Walker2d-v4 (d4rl layout) has 17"
    )


@pytest.mark.parametrize(
    "setting, message",
    [
        ("rollout.horizn=3", "morec: error: unknown config key 'rollout.horizn'; did you mean rollout.horizon?"),
        ("train.epochs=five", "morec: error: train.epochs must be an integer, got 'five' (str)"),
        ("mobile.beta=high", "morec: error: mobile.beta must be a number, got 'high' (str)"),
    ],
)
def test_config_mistakes(setting, message):
    proc = morec("train", "--set", setting)
    assert proc.returncode == 2 and first_error_line(proc) == message


def test_missing_config_file_lists_the_configs_there():
    proc = morec("train", "--config", "configs/d4rl/hopper-medium-v2/mobile_morc.yaml")
    assert proc.returncode == 2
    assert first_error_line(proc) == (
        "morec: error: config file configs/d4rl/hopper-medium-v2/mobile_morc.yaml does not exist; "
        "configs in configs/d4rl/hopper-medium-v2: mobile.yaml, mobile_morec.yaml, mobile_morec_matched.yaml, "
        "mopo.yaml, mopo_morec.yaml, mopo_morec_matched.yaml"
    )


# --dataset is a path or source name, passed on as it is; it used to become the YAML override
# "dataset=<text>": `null` trained on the benchmark dataset, `#` cut the path, `2024` was an integer.
OFFLINE = {
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
}  # a benchmark download fails at once


def test_train_dataset_null_is_a_file_name_not_the_benchmark_dataset(tmp_path):
    proc = morec(
        "train",
        "--dataset",
        "null",
        "--run-dir",
        "run",
        cwd=tmp_path,
        env={**OFFLINE, "D4RL_DATASET_DIR": str(tmp_path)},
    )
    assert proc.returncode == 2 and first_error_line(proc) == "morec: error: dataset file null does not exist"


def test_train_dataset_path_with_a_hash_and_spaces_is_loaded_whole(files, tmp_path):
    folder = tmp_path / "my runs #2"
    folder.mkdir()
    shutil.copy(files["named"], folder / "h.hdf5")
    # a walker task on hopper data: the file is read (its 11 columns are seen), then refused before training
    proc = morec(
        "train", "--dataset", "my runs #2/h.hdf5", "--set", "task=walker2d-medium-v2", "--run-dir", "run", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert first_error_line(proc).startswith("morec: error: field 'observations' has 11 columns but walker2d-medium-v2")
    proc = morec("train", "--dataset", "my runs #2/missing.hdf5", "--run-dir", "run", cwd=tmp_path)
    assert first_error_line(proc) == "morec: error: dataset file my runs #2/missing.hdf5 does not exist"


def test_train_dataset_named_2024_is_a_path_not_an_integer(files, tmp_path):
    shutil.copy(files["named"], tmp_path / "2024")
    proc = morec("train", "--dataset", "2024", "--run-dir", "run", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        first_error_line(proc) == "morec: error: cannot tell the format of 2024: use a D4RL .hdf5 or a NeoRL .npz file"
    )


@pytest.mark.parametrize("dataset", ["null", "my runs #2/h.hdf5", "2024", "~/d.hdf5", "d4rl:hopper-medium-v2"])
def test_typed_dataset_reaches_the_config_unchanged(dataset):
    from morec.runs.quickstart import training_config as quickstart_config
    from morec.training.config import resolve_config

    assert resolve_config(None, ["seed=3"], dataset).dataset == dataset
    root = Path("my runs #2")
    cfg = quickstart_config(root / "data" / dataset, root, 1, "cpu", [])
    assert (cfg.dataset, cfg.cache_dir, cfg.seed) == (str(root / "data" / dataset), "my runs #2/cache", 1)


def test_sweep_passes_its_dataset_to_every_trial_unchanged():
    from morec.runs.sweep import check_config, trial_config

    assert trial_config(None, [], "my runs #2/h.hdf5", {"mobile.beta": 2.0}).dataset == "my runs #2/h.hdf5"
    assert check_config(None, [], [("mobile.beta", "grid", [0.5, 1.0])], "null").dataset == "null"


def test_an_empty_dataset_is_refused_rather_than_meaning_the_configs():
    proc = morec("train", "--dataset", "")
    assert proc.returncode == 2 and "argument --dataset: must name a dataset" in proc.stderr


def test_debug_flag_and_variable_show_the_traceback():
    for argv, env in ((["--debug", "train"], None), (["train", "--debug"], None), (["train"], {"MOREC_DEBUG": "1"})):
        proc = morec(*argv, "--set", "rollout.horizn=3", env=env)
        assert proc.returncode == 1 and proc.stderr.startswith("Traceback") and "ConfigError" in proc.stderr, argv


def test_official_file_names_name_their_task(files):
    ds = load_dataset(files["official"])
    assert (ds.metadata["env_id"], ds.metadata["layout"], ds.metadata["env_from"]) == ("Hopper-v4", "d4rl", "file name")
    assert ds.domain == "hopper"
    with pytest.warns(UserWarning, match="pass the environment with --env"):
        assert load_dataset(files["plain"]).metadata["layout"] is None


def test_train_dynamics_checks_an_officially_named_file_against_the_simulator(files, tmp_path):
    proc = morec(
        "train-dynamics",
        "--dataset",
        str(files["official"]),
        "--out",
        str(tmp_path / "dyn"),
        "--max-epochs",
        "1",
        "--eval-starts",
        "10",
        "--eval-horizon",
        "2",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith(
        f"train-dynamics: 400 transitions from {files['official']} (Hopper-v4, d4rl layout)"
    )
    assert "error against the MuJoCo simulator" in proc.stdout and "saved to" in proc.stdout


def test_unnamed_file_warns_in_train_dynamics_and_stops_eval_model(files, tmp_path):
    dyn = tmp_path / "dyn"
    proc = morec(
        "train-dynamics", "--dataset", str(files["plain"]), "--out", str(dyn), "--max-epochs", "1", "--no-progress"
    )
    assert proc.returncode == 0, proc.stderr
    assert first_error_line(proc).startswith("morec: warning: plain.hdf5 does not name its environment")
    assert "--env" in first_error_line(proc) and "no simulator check" in proc.stdout
    proc = morec("eval-model", "--dataset", str(files["plain"]), "--dynamics", str(dyn))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert first_error_line(proc).startswith(f"morec: error: {files['plain']} does not say which environment")
    assert "pass --env" in proc.stderr


def test_eval_model_refuses_dynamics_of_another_task(files, tmp_path):
    walker = random_dataset("Walker2d-v4", steps=300).save(tmp_path / "walker.hdf5")
    proc = morec(
        "train-dynamics",
        "--dataset",
        str(files["named"]),
        "--out",
        str(tmp_path / "dyn"),
        "--max-epochs",
        "1",
        "--eval-starts",
        "5",
        "--eval-horizon",
        "1",
        "--no-progress",
        "--json",
    )
    assert proc.returncode == 0 and proc.stdout.startswith("{")
    proc = morec("eval-model", "--dataset", str(walker), "--dynamics", str(tmp_path / "dyn"))
    assert proc.returncode == 2
    assert first_error_line(proc).startswith(
        f"morec: error: dynamics at {tmp_path / 'dyn' / 'dynamics.pt'} were trained with obs_dim=11"
    )
    proc = morec("eval-model", "--dataset", str(walker), "--dynamics", str(tmp_path / "none"))
    assert proc.returncode == 2 and first_error_line(proc).startswith("morec: error: no trained dynamics at")


def test_quickstart_reuses_a_finished_run_and_trains_a_changed_one_fresh(tmp_path):
    data = tmp_path / "qs" / "data"
    small = [
        "--out",
        str(data),
        "--train-steps",
        "200",
        "--dataset-size",
        "200",
        "--hidden-size",
        "16",
        "--no-progress",
    ]
    short = [
        "train.epochs=1",
        "train.steps_per_epoch=20",
        "train.eval_episodes=1",
        "rollout.batch_size=50",
        "rollout.freq=10",
        "reward.num_updates=100",
        "dynamics.max_epochs=1",
        "mobile.num_samples=2",
        "agent.hidden_sizes=[32, 32]",
    ]
    sets = [x for s in short for x in ("--set", s)]
    first = morec("quickstart", *small, *sets)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("quickstart: MOBILE + MOREC") and "[1/4] collect" in first.stdout
    assert "normalised score" in first.stdout and f"tensorboard --logdir {tmp_path / 'qs'}" in first.stdout
    assert "dynamics reward (discriminator training): " + str(tmp_path / "qs" / "cache" / "reward") in first.stdout
    [run] = list((tmp_path / "qs").glob("mobile_morec-*"))
    assert (run / "summary.json").exists()

    again = morec("quickstart", *small, *sets)
    assert again.returncode == 0, again.stderr
    assert "reused the datasets already collected" in again.stdout
    assert f"reused the finished run in {run} (same config)" in again.stdout

    changed = morec("quickstart", *small, *sets, "--set", "train.steps_per_epoch=30")
    assert changed.returncode == 0, changed.stderr
    assert f"a fresh run: the config differs from {run.name} in train.steps_per_epoch 20 -> 30" in changed.stdout
    runs = sorted((tmp_path / "qs").glob("mobile_morec-*"))
    assert len(runs) == 2
    steps = sorted(json.loads((r / "summary.json").read_text())["gradient_steps"] for r in runs)
    assert steps == [20, 30]


def test_quickstart_names_a_bad_setting_before_collecting(tmp_path):
    proc = morec("quickstart", "--out", str(tmp_path / "data"), "--set", "train.epoch=5")
    assert proc.returncode == 2
    assert first_error_line(proc) == "morec: error: unknown config key 'train.epoch'; did you mean train.epochs?"
    assert not (tmp_path / "data").exists()


def test_collect_names_an_unknown_environment(tmp_path):
    proc = morec("collect", "--env", "Ant-v4", "--out", str(tmp_path / "data"))
    assert proc.returncode == 2
    line = first_error_line(proc)
    assert line.startswith("morec: error: unknown task 'Ant-v4': use a D4RL name") and line.endswith("like 'Hopper-v4'")


def test_a_redirected_log_gets_a_line_per_epoch_not_a_redrawn_bar(files, tmp_path):
    proc = morec(
        "train-dynamics",
        "--dataset",
        str(files["official"]),
        "--out",
        str(tmp_path / "dyn"),
        "--max-epochs",
        "3",
        "--eval-starts",
        "10",
        "--eval-horizon",
        "2",
    )  # progress on, stderr a pipe (as in `> log 2>&1`)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    epochs = [line for line in proc.stderr.splitlines() if line.startswith("dynamics: ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"] and all(
        "best_holdout_mse" in line for line in epochs
    )


def test_warnings_are_one_line_each(capsys):
    from morec.cli import _show_warning

    _show_warning(
        UserWarning("the filter cut\n  most rollouts"),
        UserWarning,
        str(Path(__file__).parents[1] / "morec" / "training" / "loop.py"),
        1,
    )
    _show_warning(
        DeprecationWarning("old call"), DeprecationWarning, "/venv/lib/python3.11/site-packages/torch/nn/x.py", 3
    )
    assert capsys.readouterr().err.splitlines() == [
        "morec: warning: the filter cut most rollouts",
        "morec: warning: DeprecationWarning from torch: old call",
    ]
