"""Bad input is refused at once, in one line naming the field and the fix: training and rollout
settings, `--set` values and YAML files, `morec collect`/`suite`/`credit-training`/`eval-model`/
`generalisation` arguments; a suite run with a bad config fails without a retry; sweeps pin every
path; suite curves find variants that are paths (``paper/mopo_morec``)."""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from morec.errors import UserError
from morec.training.config import ConfigError, load_config

SUITE_ARGS = ["d4rl", "--tasks", "hopper-medium-v2", "--variants", "mopo"]


# ------------------------------------------------------------------------------ training config
@pytest.mark.parametrize(
    "setting, message",
    [
        ("train.log_every=0", "train.log_every must be at least 1, got 0"),
        ("train.eval_every=0", "train.eval_every must be at least 1, got 0"),
        ("train.epochs=0", "train.epochs must be at least 1, got 0"),
        ("train.steps_per_epoch=-1", "train.steps_per_epoch must be at least 1, got -1"),
        ("train.batch_size=0", "train.batch_size must be at least 1, got 0"),
        ("train.eval_episodes=0", "train.eval_episodes must be at least 1, got 0"),
        ("train.real_ratio=1.5", "train.real_ratio is the fraction of each batch drawn from the dataset"),
        ("train.real_ratio=-0.1", "give a number in [0, 1], got -0.1"),
        ("rollout.freq=0", "rollout: freq must be at least 1, got 0"),
        ("rollout.horizon=0", "rollout: horizon must be at least 1, got 0"),
        ("rollout.samples_per_member=0", "rollout: samples_per_member must be at least 1, got 0"),
        ("rollout.batch_size=0", "rollout: batch_size must be at least 1, got 0"),
        ("rollout.retain_epochs=0", "rollout: retain_epochs must be at least 1, got 0"),
        ("rollout.candidate_clip=0", "rollout: candidate_clip must be positive or null (no clip), got 0.0"),
        ("rollout.candidate_clip=-25", "rollout: candidate_clip must be positive or null (no clip), got -25.0"),
        ("filter.score_dtype=float16", "filter: score_dtype must be one of float32, bfloat16, got 'float16'"),
        ("device=gpu", "device must be cpu, cuda, cuda:N (a GPU's index, e.g. cuda:0) or mps, got 'gpu'"),
        ('device="cuda:"', "device must be cpu, cuda, cuda:N"),
        ("device=CUDA", "device must be cpu, cuda, cuda:N"),
        ("device=cuda:x", "device must be cpu, cuda, cuda:N"),
    ],
)
def test_bad_counts_ratios_and_devices_are_config_errors(setting, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [setting])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_mopo_penalty_must_not_be_negative():
    with pytest.raises(ConfigError, match=r"rollout: penalty_coef must be 0 \(no penalty\) or more, got -1.0"):
        load_config(None, ["algorithm=mopo", "rollout.penalty_coef=-1"])


@pytest.mark.parametrize(
    "settings",
    [
        ["train.real_ratio=0"],
        ["train.real_ratio=1"],
        ["rollout.candidate_clip=null"],
        ["rollout.candidate_clip=25"],
        ["device=cuda"],
        ["device=cuda:1"],
        ["device=mps"],
        ["train.eval_every=1", "train.log_every=1", "rollout.freq=1", "rollout.horizon=1"],
    ],
)
def test_edge_values_are_accepted(settings):
    load_config(None, settings)


def test_mobile_needs_two_elites_to_take_their_spread():
    with pytest.raises(ConfigError, match=r"dynamics.num_elites=1: MOBILE's penalty .* needs at least 2 elites"):
        load_config(None, ["algorithm=mobile", "dynamics.num_elites=1"])
    assert load_config(None, ["algorithm=mopo", "dynamics.num_elites=1"]).dynamics.num_elites == 1
    # a trained model named by dynamics_path brings its own elites: the config's count is not used
    load_config(None, ["algorithm=mobile", "dynamics.num_elites=1", "dynamics_path=models/dyn"])


@pytest.mark.parametrize("assignment", ["a.b=[1", "train.epochs={", 'dataset="unclosed'])
def test_a_set_value_that_is_not_yaml_names_the_assignment(assignment):
    with pytest.raises(ConfigError) as err:
        load_config(None, [assignment])
    text = str(err.value)
    assert text.startswith(f"--set {assignment}: the value is not valid YAML (") and "\n" not in text


def test_a_config_file_that_is_not_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: [3\n")
    with pytest.raises(ConfigError, match=f"config file {bad} is not valid YAML: .* at line 3, column 1"):
        load_config(bad)
    top = tmp_path / "top.yaml"
    top.write_text("overlay: bad.yaml\n")  # the broken file reached as an overlay is named too
    with pytest.raises(ConfigError, match=f"config file {bad} is not valid YAML"):
        load_config(top)


@pytest.mark.parametrize("overlay", ["3", "[smoke.yaml, 2]", "{a: b}", "0", "false"])
def test_overlay_must_name_files(tmp_path, overlay):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"overlay: {overlay}\n")
    with pytest.raises(ConfigError, match=f"{path}: overlay must be a file name or a list of file names"):
        load_config(path)


def test_overlay_as_a_name_or_a_list_still_works(tmp_path):
    (tmp_path / "a.yaml").write_text("train:\n  epochs: 4\n")
    (tmp_path / "b.yaml").write_text("train:\n  eval_every: 2\n")
    (tmp_path / "one.yaml").write_text("overlay: a.yaml\n")
    (tmp_path / "two.yaml").write_text("overlay: [a.yaml, b.yaml]\n")
    assert load_config(tmp_path / "one.yaml").train.epochs == 4
    both = load_config(tmp_path / "two.yaml").train
    assert (both.epochs, both.eval_every) == (4, 2)


def test_training_config_module_stays_torch_free():
    code = (
        "import sys, morec.training.config as c; c.load_config(None, ['train.log_every=5']); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


# ------------------------------------------------------------------------------ morec collect
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("train_steps", 0, "train_steps must be at least 1, got 0 (--train-steps)"),
        ("eval_every", 0, "eval_every must be at least 1, got 0 (--eval-every)"),
        ("hidden_size", 0, "hidden_size must be at least 1, got 0 (--hidden-size)"),
        ("batch_size", 0, "batch_size must be at least 1, got 0"),
        ("eval_episodes", 0, "eval_episodes must be at least 1, got 0"),
        ("warmup_steps", -1, "warmup_steps must be at least 0, got -1 (--warmup-steps)"),
    ],
)
def test_sac_counts_are_checked(field, value, message):
    from morec.collect.config import SACConfig

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SACConfig(**{field: value})
    SACConfig(warmup_steps=0)  # no warm-up is allowed


def collect_args(*argv: str) -> argparse.Namespace:
    from morec.commands.collect import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--eval-every", "0"], "eval_every must be at least 1, got 0 (--eval-every)"),
        (["--lr", "0"], "actor_lr must be positive (--lr), got 0.0"),
        (["--train-steps", "0"], "train_steps must be at least 1, got 0 (--train-steps)"),
        (["--hidden-size", "0"], "hidden_size must be at least 1, got 0 (--hidden-size)"),
    ],
)
def test_collect_arguments_give_one_line_errors(argv, message):
    from morec.commands.collect import collect_config

    with pytest.raises(UserError) as err:
        collect_config(collect_args(*argv))
    assert str(err.value) == message


# ------------------------------------------------------------------------------ morec suite
def suite_args(*argv: str) -> argparse.Namespace:
    from morec.commands.suite import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--seeds", "0,0"], "--seeds: [0] given more than once; each seed is one run directory"),
        (["--seeds", "1,2,1"], "--seeds: [1] given more than once"),
        (["--seeds", "0,a"], "--seeds: 'a' is not an integer; give comma-separated integers, e.g. --seeds 0,1,2"),
        (["--seeds", ","], "--seeds: give at least one, comma-separated"),
        (["--variants", "mopo,mopo"], "--variants: ['mopo'] given more than once; each variant runs once"),
        (["--tasks", "hopper-medium-v2,hopper-medium-v2"], "--tasks: ['hopper-medium-v2'] given more than once"),
        (["--variants", "mopo,bogus"], "unknown variant(s) ['bogus']: choose from"),
        (["--cpus-per-run", "0"], "--cpus-per-run must be positive (Ray CPUs per run, e.g. 1 or 0.5), got 0.0"),
        (["--gpus-per-run", "-1"], "--gpus-per-run must be 0 or more"),
        (["--retries", "-1"], "--retries must be 0 or more"),
    ],
)
def test_suite_arguments_are_checked_before_anything_runs(extra, message, tmp_path):
    from morec.commands.suite import suite_from_args

    with pytest.raises(UserError) as err:
        suite_from_args(suite_args(*SUITE_ARGS, "--results", str(tmp_path), *extra), "d4rl")
    assert str(err.value).startswith(message)


def test_suite_command_prints_one_line_for_repeated_seeds(capsys, tmp_path):
    from morec.cli import main

    assert main(["suite", *SUITE_ARGS, "--seeds", "0,0", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "morec: error: --seeds: [0] given more than once; each seed is one run directory\n"
    assert not any(tmp_path.iterdir())


def test_suite_command_no_longer_hides_errors_of_the_suite_itself(monkeypatch, tmp_path):
    from morec.commands import suite

    def broken(cfg, **options):
        raise ValueError("a bug inside the suite")

    monkeypatch.setattr(suite, "run_suite", broken)
    with pytest.raises(ValueError, match="a bug inside the suite"):  # a traceback, not `morec: error:`
        suite.run(suite_args(*SUITE_ARGS, "--results", str(tmp_path), "--backend", "pool"))


def test_run_suite_refuses_zero_cpus_per_run(tmp_path):
    from morec.runs.suite import SuiteConfig, run_suite

    cfg = SuiteConfig("d4rl", ["hopper-medium-v2"], ["mopo"], [0], results=tmp_path / "r")
    with pytest.raises(UserError, match=r"cpus_per_run \(--cpus-per-run\) must be positive, got 0"):
        run_suite(cfg, backend="ray", cpus_per_run=0)
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------ credit-training
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--variants", "bogus"], "morec: error: unknown variant(s) ['bogus']: choose from"),
        (["--seeds", "a"], "morec: error: --seeds: 'a' is not an integer"),
        (["--seeds", "0,0"], "morec: error: --seeds: [0] given more than once"),
        (["--task", "hopper-medium-v9"], "morec: error: no config for 2 run(s)"),
    ],
)
def test_credit_training_arguments_give_one_line_errors(extra, message, capsys, tmp_path):
    from morec.cli import main

    argv = ["credit-training", "--dataset", str(tmp_path / "d.hdf5"), "--task", "hopper-medium-v2"]
    assert main([*argv, "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_stale_labelled_file_is_a_user_error(tmp_path):
    import numpy as np

    from morec.runs.credit_training import pearson
    from tests.helpers import random_dataset_file

    path = random_dataset_file(tmp_path / "dense.hdf5", steps=100)
    with pytest.raises(UserError, match=f"{path} has 100 transitions but the source has 50; delete it to rebuild"):
        pearson(path, np.zeros(50))


# ------------------------------------------------------------------------------ generalisation, eval-model
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"generators": ["fixed", "bogus"]}, "--generators: unknown ['bogus']; choose from adversarial,fixed,scratch"),
        ({"starts": 0}, "--starts must be at least 1"),
        ({"horizon": 0}, "horizon must be at least 1, got 0"),
    ],
)
def test_generalisation_checks_its_settings_before_training(kwargs, message, tmp_path):
    from morec.runs.generalisation import generalisation

    # the collect folder does not exist: the settings are refused before it is read
    with pytest.raises(UserError) as err:
        generalisation(tmp_path / "no collect", tmp_path / "out", **kwargs)
    assert str(err.value).startswith(message)
    assert not (tmp_path / "out").exists()


def test_generalisation_names_a_missing_level_before_training(tmp_path):
    import json

    summary = {
        "env_id": "Hopper-v4",
        "medium_policy": {"policy_path": "m.pt"},
        "expert_policy": {"policy_path": "e.pt"},
        "datasets": {"medium:d4rl": {"path": "data/hopper-medium.hdf5"}},
    }
    (tmp_path / "collect_summary.json").write_text(json.dumps(summary))
    from morec.runs.generalisation import generalisation

    with pytest.raises(UserError, match="--levels: no dataset .*hopper-medium-replay.hdf5"):
        generalisation(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--starts", "0"], "morec: error: --starts must be at least 1"),
        (["--horizon", "0"], "morec: error: horizon must be at least 1, got 0"),
        (["--samples-per-member", "0"], "morec: error: samples_per_member must be at least 1, got 0"),
        (["--candidate-clip", "0"], "morec: error: candidate_clip must be positive or null (no clip), got 0.0"),
    ],
)
def test_eval_model_settings_are_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    import torch

    from morec.cli import main

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the command's; not this test process's
    assert main(["eval-model", "--dataset", str(tmp_path / "d.hdf5"), "--dynamics", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_eval_model_job_checks_starts_before_loading(tmp_path):
    from morec.runs.jobs import eval_model

    with pytest.raises(UserError, match="--starts must be at least 1 .* got 0"):
        eval_model(str(tmp_path / "missing.hdf5"), str(tmp_path / "no dynamics"), starts=0)


# ------------------------------------------------------------------------------ suite worker
def test_a_run_whose_config_is_wrong_fails_at_once_without_a_child(tmp_path):
    from morec.runs.suite import RunSpec, SuiteConfig
    from morec.runs.suite.worker import execute_run

    cfg = SuiteConfig(
        "d4rl", ["hopper-medium-v2"], ["mopo"], [0], results=tmp_path, overrides=["rollout.freq=0"], retries=2
    )
    run = RunSpec("hopper-medium-v2", "mopo", 0)
    outcome = execute_run(run, cfg)  # no exception: a failed outcome
    assert not outcome.ok and outcome.attempts == 1
    assert outcome.error == "morec: error: rollout: freq must be at least 1, got 0"
    log = (run.run_dir(tmp_path) / "stdout.log").read_text()
    assert "no child started" in log and outcome.error in log


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_child_dies_with_its_parent_without_loading_a_library_after_fork(monkeypatch):
    from morec.runs.suite import worker

    assert worker._PRCTL is not None

    def no_loading(*args, **kwargs):
        raise AssertionError("a library loaded in the forked child")

    monkeypatch.setattr(ctypes, "CDLL", no_loading)  # the forked child inherits this: preexec_fn must not load
    code = (
        "import ctypes; v = ctypes.c_int(); "
        "ctypes.CDLL('libc.so.6').prctl(2, ctypes.byref(v), 0, 0, 0); print(v.value)"  # PR_GET_PDEATHSIG
    )
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, preexec_fn=worker._die_with_parent
    )
    assert child.returncode == 0 and child.stdout.strip() == "9", child.stderr  # SIGKILL


# ------------------------------------------------------------------------------ sweeps
def test_sweep_pins_model_paths_as_well_as_the_cache(tmp_path, monkeypatch):
    import json

    from morec.runs.sweep import pin_paths

    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, ["dynamics_path=models/dyn", "reward_path=models/rew", "cache_dir=cache"])
    overrides, dataset = pin_paths(cfg, ["train.epochs=3"], None)
    assert (
        overrides
        == [
            "train.epochs=3",
            f"cache_dir={json.dumps(str(tmp_path / 'cache'))}",
            f"dynamics_path={json.dumps(str(tmp_path / 'models' / 'dyn'))}",
            f"reward_path={json.dumps(str(tmp_path / 'models' / 'rew'))}",
        ]
        and dataset is None
    )
    for override in overrides[1:]:  # each reads back as the absolute path
        assert Path(load_config(None, [override]).to_dict()[override.split("=")[0]]).is_absolute()
    plain, _ = pin_paths(load_config(None, ["cache_dir=cache"]), [], None)
    assert plain == [f"cache_dir={json.dumps(str(tmp_path / 'cache'))}"]  # no model paths: none added
    (tmp_path / "d.hdf5").write_bytes(b"")
    _, dataset = pin_paths(load_config(None, ["dataset=d.hdf5"]), [], "d.hdf5")
    assert dataset == str(tmp_path / "d.hdf5")
