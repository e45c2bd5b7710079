"""Several seeds in one process (morec/training/seeds.py, ``morec train --seeds``): in lockstep each seed's
run equals the separate run bit for bit and resumes like it; stacked (``train.stack_seeds``) a
seed's run equals its separate run to float rounding and resumes like the uninterrupted stacked
run; bad ``--seeds`` get a clear error."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from morec.training.config import ConfigError, load_config
from morec.training.loop import TrainingLoop
from morec.training.pipeline import start_run
from morec.training.seeds import parse_seeds, train_seeds
from tests.helpers import DEVICES, assert_records_close, smoke

SAME_IN_BOTH = ("evaluations", "rollouts", "gradient_steps", "last_score", "seed", "models")


def final_state(run_dir) -> dict:
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)["algorithm"]


def assert_same_runs(separate_dir, batched_dir, separate: dict, batched: dict) -> None:
    for key in SAME_IN_BOTH:
        assert separate[key] == batched[key], key
    a, b = final_state(separate_dir), final_state(batched_dir)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (separate_dir / "config.yaml").read_text() == (batched_dir / "config.yaml").read_text()


@pytest.mark.parametrize("device", DEVICES)
def test_seeds_in_one_process_equal_separate_runs(hopper_file, tmp_path, device):
    cfg = load_config(
        None,
        smoke(hopper_file, tmp_path / "cache", algorithm="mobile", morec=True, epochs=2, device=device)
        + ["model_seed=0", "train.stack_seeds=off"],
    )  # the seeds share one ensemble and dynamics reward, trained by the first run
    separate = {
        s: start_run(replace(cfg, seed=s), tmp_path / "separate" / f"seed{s}", show_progress=False).run()
        for s in (3, 5)
    }
    batched = train_seeds(cfg, tmp_path / "batched", [3, 5], show_progress=False)
    assert [s["seed"] for s in batched] == [3, 5]
    assert separate[3]["evaluations"] != separate[5]["evaluations"]  # two different runs
    for seed, summary in zip((3, 5), batched):
        assert_same_runs(
            tmp_path / "separate" / f"seed{seed}", tmp_path / "batched" / f"seed{seed}", separate[seed], summary
        )
        assert (tmp_path / "batched" / f"seed{seed}" / "policy.pt").exists()


@pytest.mark.parametrize(
    "killed_at_epoch", [1, 2]
)  # 1: seed 1 has no checkpoint yet; 2: the seeds stopped at different epochs
def test_seeds_resume_like_the_uninterrupted_runs(hopper_file, tmp_path, monkeypatch, killed_at_epoch):
    cfg = load_config(
        None,
        smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=False, epochs=3)
        + ["model_seed=0", "train.stack_seeds=off"],
    )
    full = train_seeds(cfg, tmp_path / "full", [0, 1], show_progress=False)
    original = TrainingLoop._save_checkpoint

    def crash_when_seed_0_ends_the_epoch(self):
        original(self)
        if self.cfg.seed == 0 and self.epoch == killed_at_epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingLoop, "_save_checkpoint", crash_when_seed_0_ends_the_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_seeds(cfg, tmp_path / "killed", [0, 1], show_progress=False)
    monkeypatch.setattr(TrainingLoop, "_save_checkpoint", original)
    assert (tmp_path / "killed" / "seed1" / "checkpoint.pt").exists() == (killed_at_epoch > 1)
    resumed = train_seeds(cfg, tmp_path / "killed", [0, 1], resume=True, show_progress=False)
    for seed, a, b in zip((0, 1), full, resumed):
        assert_same_runs(tmp_path / "full" / f"seed{seed}", tmp_path / "killed" / f"seed{seed}", a, b)
    assert resumed[0]["wall_seconds"] > resumed[0]["wall_seconds_this_session"]


def test_a_stacked_seed_is_its_separate_run_to_float_rounding(hopper_file, tmp_path):
    cfg = load_config(
        None,
        smoke(hopper_file, tmp_path / "cache", algorithm="mobile", morec=True, epochs=2)
        + ["model_seed=0", "train.stack_seeds=on"],
    )
    separate = start_run(replace(cfg, seed=3), tmp_path / "separate", show_progress=False).run()
    (stacked,) = train_seeds(cfg, tmp_path / "stacked", [3], show_progress=False)
    assert stacked["stacked_with_seeds"] == [3] and separate["stacked_with_seeds"] is None
    for a, b in zip(separate["evaluations"], stacked["evaluations"]):
        assert_records_close(a, b, rel=1e-4)
    assert_records_close(separate["rollouts"], stacked["rollouts"], rel=1e-4)  # the run's rollout summary
    torch.testing.assert_close(
        final_state(tmp_path / "separate"), final_state(tmp_path / "stacked" / "seed3"), rtol=1e-3, atol=1e-5
    )
    curves = [
        EventAccumulator(str(run / "tb")).Reload() for run in (tmp_path / "separate", tmp_path / "stacked" / "seed3")
    ]
    for tag in ("train/actor_lr", "train/critic_loss", "train/alpha"):
        separate_curve, stacked_curve = ([(e.step, e.value) for e in c.Scalars(tag)] for c in curves)
        assert [s for s, _ in separate_curve] == [s for s, _ in stacked_curve] == [10, 20, 30, 40]
        assert [v for _, v in separate_curve] == pytest.approx([v for _, v in stacked_curve], rel=1e-4), tag


@pytest.mark.parametrize(
    "killed_after_seed", [1, 0]
)  # 1: every seed's checkpoint written; 0: seed 1's is an epoch behind
def test_stacked_seeds_resume_like_the_uninterrupted_stacked_run(hopper_file, tmp_path, monkeypatch, killed_after_seed):
    cfg = load_config(
        None,
        smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=False, epochs=3)
        + ["model_seed=0", "train.stack_seeds=on"],
    )
    full = train_seeds(cfg, tmp_path / "full", [0, 1], show_progress=False)
    assert [s["stacked_with_seeds"] for s in full] == [[0, 1], [0, 1]]
    assert full[0]["evaluations"] != full[1]["evaluations"]
    original = TrainingLoop._save_checkpoint

    def crash_at_epoch_2(self):
        original(self)
        if self.cfg.seed == killed_after_seed and self.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingLoop, "_save_checkpoint", crash_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_seeds(cfg, tmp_path / "killed", [0, 1], show_progress=False)
    monkeypatch.setattr(TrainingLoop, "_save_checkpoint", original)
    if killed_after_seed == 1:
        resumed = train_seeds(cfg, tmp_path / "killed", [0, 1], resume=True, show_progress=False)
        for seed, a, b in zip((0, 1), full, resumed):
            assert_same_runs(tmp_path / "full" / f"seed{seed}", tmp_path / "killed" / f"seed{seed}", a, b)
    else:
        with pytest.warns(UserWarning, match="seeds 1 resume behind the others"):
            resumed = train_seeds(cfg, tmp_path / "killed", [0, 1], resume=True, show_progress=False)
        assert [len(s["evaluations"]) for s in resumed] == [3, 3] and [s["gradient_steps"] for s in resumed] == [60, 60]
        assert resumed[0]["evaluations"][:2] == full[0]["evaluations"][:2]


def test_bad_seeds_get_a_clear_error(tmp_path, capsys):
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    with pytest.raises(ConfigError, match=r"--seeds: 'x' is not an integer; give comma-separated integers"):
        parse_seeds("0,x")
    with pytest.raises(ConfigError, match=r"--seeds: \[1\] given more than once"):
        parse_seeds("1,0,1")
    with pytest.raises(ConfigError, match="train.stack_seeds must be 'auto', 'on' or 'off', got 'always'"):
        load_config(None, ["train.stack_seeds=always"])
    from morec.cli import main

    assert main(["train", "--seeds", "0,0", "--run-dir", str(tmp_path / "runs")]) != 0
    err = capsys.readouterr().err
    assert "--seeds: [0] given more than once" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_cli_trains_seeds_into_their_own_run_directories(hopper_file, tmp_path, capsys):
    from morec.cli import main

    sets = [
        arg
        for kv in smoke(hopper_file, tmp_path / "cache", algorithm="mopo", morec=False, epochs=1)
        for arg in ("--set", kv)
    ]
    assert (
        main(
            [
                "train",
                *sets,
                "--set",
                "model_seed=0",
                "--seeds",
                "2,7",
                "--run-dir",
                str(tmp_path / "runs"),
                "--no-progress",
                "--json",
            ]
        )
        == 0
    )
    summaries = json.loads(capsys.readouterr().out)  # the evaluation lines go to stderr
    assert [s["seed"] for s in summaries] == [2, 7]
    for seed in (2, 7):
        assert (tmp_path / "runs" / f"seed{seed}" / "summary.json").exists()
        assert "seed: " + str(seed) in (tmp_path / "runs" / f"seed{seed}" / "config.yaml").read_text()
