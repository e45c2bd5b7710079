"""`morec train-dynamics`, `train-reward` and `eval-model` end to end on a tiny hopper dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from morec.behaviour import BehaviourTrainer, SACConfig
from morec.cli import main
from morec.reward_cli import auc, spearman
from tests.helpers import random_dataset_file


def test_auc_and_spearman():
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5  # ties count half
    assert auc(np.array([1.0, 3.0]), np.array([2.0])) == 0.5
    assert spearman(np.arange(5.0), np.arange(5.0) ** 3) == pytest.approx(1.0)
    assert spearman(np.arange(5.0), -np.arange(5.0)) == pytest.approx(-1.0)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    random_dataset_file(root / "hopper.hdf5", steps=3000)
    cfg = SACConfig(train_steps=40, warmup_steps=40, eval_every=40, eval_episodes=1, hidden_size=16, batch_size=16)
    BehaviourTrainer("Hopper-v4", root / "sac", cfg).train(show_progress=False)
    return root


def run(argv, capsys) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


def test_train_dynamics_reward_and_eval_model(workdir, capsys):
    data, dyn, rew = str(workdir / "hopper.hdf5"), str(workdir / "dyn"), str(workdir / "rew")
    report = run(["train-dynamics", "--dataset", data, "--out", dyn, "--max-epochs", "3", "--eval-starts", "50",
                  "--eval-horizon", "3", "--no-progress", "--json"], capsys)
    assert report["fit"]["epochs"] == 3 and report["fit"]["holdout_size"] == 600
    assert len(report["oracle"]["open_loop_error_per_step"]) == 3
    assert report["oracle"]["random_policy_model_error"]["overall"] > 0
    assert (workdir / "dyn" / "dynamics.pt").exists() and list((workdir / "dyn" / "tb").glob("events.*"))

    assert main(["train-reward", "--dataset", data, "--dynamics", dyn, "--out", rew, "--generator", "fixed",
                 "--updates", "200", "--snapshot-interval", "50", "--snapshot-stride", "2", "--no-progress"]) == 0
    text = capsys.readouterr().out.splitlines()  # for people: a start line, where it went, AUC and snapshots
    assert text[0] == f"train-reward: 3,000 transitions from {data}, dynamics from {dyn} -> {rew}"
    assert f"saved to {rew} (report: {workdir / 'rew' / 'report.json'})" in text
    assert any(line.startswith("  ROC AUC on 300 held-out transitions") for line in text)
    assert any("the reward stacks" in line and "of 4 discriminator snapshots" in line for line in text)
    report = json.loads((workdir / "rew" / "report.json").read_text())
    assert report["fit"]["snapshots_taken"] == 4
    assert 0.0 <= report["discrimination"]["auc_real_vs_model_samples"] <= 1.0
    assert report["discrimination"]["transitions"] == 300  # the 10% split held out from training

    for policy in (["--policy", "random"], ["--policy", "noisy-behaviour", "--policy-path", str(workdir / "sac" / "policy_40.pt")],
                   ["--policy", "checkpoint", "--policy-path", str(workdir / "sac" / "policy_40.pt")]):
        report = run(["eval-model", "--dataset", data, "--dynamics", dyn, "--reward", rew, "--horizon", "5",
                      "--starts", "40", *policy], capsys)
        assert report["unfiltered"]["transitions"] >= 40 and report["filtered"]["transitions"] >= 40
        ratio = report["filtered"]["error"] / report["unfiltered"]["error"]
        assert report["filtered_over_unfiltered_error"] == pytest.approx(ratio)
        assert -1.0 <= report["reward_error_spearman"] <= 1.0


def test_eval_model_needs_a_policy_path(workdir, tmp_path, capsys):
    dyn = tmp_path / "dyn"
    run(["train-dynamics", "--dataset", str(workdir / "hopper.hdf5"), "--out", str(dyn), "--max-epochs", "1",
         "--eval-starts", "10", "--eval-horizon", "1", "--no-progress", "--json"], capsys)
    assert main(["eval-model", "--dataset", str(workdir / "hopper.hdf5"), "--dynamics", str(dyn), "--policy", "checkpoint"]) == 2
    assert capsys.readouterr().err.startswith("morec: error: --policy checkpoint needs --policy-path")


def test_relabel_episodic_data(workdir, tmp_path, capsys):
    from morec.data import load_dataset

    data = str(workdir / "hopper.hdf5")
    report = run(["relabel", "--dataset", data, "--episodic", "--method", "ircr", "--out", str(tmp_path / "ircr.hdf5")], capsys)
    relabelled = load_dataset(tmp_path / "ircr.hdf5")
    original = load_dataset(data)
    np.testing.assert_allclose(relabelled.returns(), original.returns(), rtol=1e-4)  # IRCR keeps each episode's return
    assert relabelled.metadata["reward_relabelling"]["method"] == "ircr"
    assert -1.0 <= report["pearson_with_true_rewards"] <= 1.0
    report = run(["relabel", "--dataset", data, "--episodic", "--method", "lare", "--factors", "hand-written",
                  "--updates", "300", "--out", str(tmp_path / "lare.hdf5"), "--no-progress"], capsys)
    assert report["fit"]["encoder_source"] == "hand-written" and report["pearson_with_true_rewards"] > 0.8
    np.testing.assert_array_equal(load_dataset(tmp_path / "lare.hdf5").observations, original.observations)
