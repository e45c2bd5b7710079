"""`morec train-dynamics`, `train-reward` and `eval-model` end to end on a tiny hopper dataset."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from morec.cli import main
from morec.collect.behaviour import BehaviourTrainer, SACConfig
from morec.metrics import auc, spearman
from tests.fakes import Linear
from tests.helpers import random_dataset_file


def pairwise_auc(positive, negative) -> float:
    """ROC AUC by its definition: the share of (positive, negative) pairs ordered right, ties half."""
    p, n = np.asarray(positive, np.float64)[:, None], np.asarray(negative, np.float64)[None, :]
    return float(((p > n) + 0.5 * (p == n)).mean())


def rank_correlation(x, y) -> float:
    """Spearman's rho of untied data: 1 - 6 sum d^2 / (n (n^2 - 1)) over rank differences d."""
    n = len(x)
    d = np.argsort(np.argsort(x)).astype(np.float64) - np.argsort(np.argsort(y))
    return float(1 - 6 * (d**2).sum() / (n * (n**2 - 1)))


def test_auc_and_spearman():
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5  # ties count half
    assert auc(np.array([1.0, 3.0]), np.array([2.0])) == 0.5
    assert spearman(np.arange(5.0), np.arange(5.0) ** 3) == pytest.approx(1.0)
    assert spearman(np.arange(5.0), -np.arange(5.0)) == pytest.approx(-1.0)
    assert spearman(np.ones(4), np.arange(4.0)) is None and spearman(np.array([1.0]), np.array([2.0])) is None
    rng = np.random.default_rng(0)
    for _ in range(20):
        pos, neg = (
            rng.integers(0, 6, size=rng.integers(1, 30)),
            rng.integers(0, 6, size=rng.integers(1, 30)),
        )  # many ties
        assert auc(pos.astype(float), neg.astype(float)) == pytest.approx(pairwise_auc(pos, neg), abs=1e-12)
        x, y = rng.normal(size=25), rng.normal(size=25)
        assert spearman(x, y) == pytest.approx(rank_correlation(x, y), abs=1e-12)


def discrimination_from_files(data: str, dyn: str, rew: str, seed: int) -> dict:
    """The train-reward report's discrimination numbers recomputed from the files it saved: the
    reward and dynamics, the same 10% held-out split and samples, AUC by pairs."""
    from morec.data import load_dataset
    from morec.dynamics import EnsembleDynamics
    from morec.dynamics_reward.model import DynamicsReward
    from morec.dynamics_reward.training import sample_elite_next_obs

    _, test = load_dataset(data).split(0.1, seed=seed)
    reward, dynamics = DynamicsReward.load(rew), EnsembleDynamics.load(dyn)
    rows = np.random.default_rng(seed).choice(len(test), size=len(test), replace=False)
    obs, act, nxt = (torch.as_tensor(a[rows]) for a in (test.observations, test.actions, test.next_observations))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        real = reward(obs, act, nxt).numpy()
        model_next, _, _ = sample_elite_next_obs(dynamics, obs, act, gen)
        perturbed = nxt + 0.1 * (nxt - obs).std(0) * torch.randn(nxt.shape, generator=gen)
        return {
            "auc_real_vs_model_samples": pairwise_auc(real, reward(obs, act, model_next).numpy()),
            "auc_real_vs_perturbed": pairwise_auc(real, reward(obs, act, perturbed).numpy()),
            "real_reward_mean": float(real.mean()),
        }


def held_out_rewards(rew: str) -> np.ndarray:
    """r_D of the odd rows of the reward's held-out transitions: the half that measures false truncation."""
    from morec.dynamics_reward.model import DynamicsReward

    reward = DynamicsReward.load(rew)
    odd = [t[1::2] for t in reward.heldout]
    with torch.no_grad():
        return reward(*odd).double().numpy()


def first_step_spearman(data: str, dyn: str, rew: str, starts: int, horizon: int, seed: int = 0) -> float:
    """eval-model's reward_error_spearman for the random policy, from the files: r_D of every
    step-1 candidate against its oracle error, from the same start states and policy noise."""
    from morec.data import load_dataset
    from morec.dynamics import EnsembleDynamics, MujocoOracle
    from morec.dynamics_reward.config import FilterCheckConfig
    from morec.dynamics_reward.model import DynamicsReward
    from morec.rollout.engine import RolloutEngine
    from morec.rollout.model_error import normalised_error, observation_std
    from morec.rollout.policies import random_row_policy

    ds = load_dataset(data)
    reward, dynamics = DynamicsReward.load(rew), EnsembleDynamics.load(dyn)
    rows = np.random.default_rng(seed).choice(len(ds), size=starts, replace=False)
    obs = torch.as_tensor(ds.observations[rows])
    act = random_row_policy(ds.act_dim, horizon, starts, seed + 1, "cpu")(obs, torch.arange(starts), 0)
    never = lambda o, a, x: torch.zeros(len(o), dtype=torch.bool)  # noqa: E731
    engine = RolloutEngine(dynamics, never, FilterCheckConfig(horizon=horizon, seed=seed).rollout(), seed=seed)
    with torch.no_grad():
        candidates = engine.candidates(obs, act)[0][..., :-1]  # [K, B, O]
        scores = reward(obs, act, candidates).numpy().ravel()
    true_next, _, _ = MujocoOracle(ds.metadata["env_id"], ds.metadata["layout"]).step(obs.numpy(), act.numpy())
    errors = normalised_error(candidates.numpy().astype(np.float64), true_next[None], observation_std(ds)).ravel()
    return rank_correlation(scores, errors)


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
    return json.loads(out[out.index("{") :])


@pytest.fixture(scope="module")
def trained(workdir) -> dict:
    """``morec train-dynamics`` and ``train-reward`` into ``workdir`` (``dyn/``, ``rew/``), once for the
    module, whichever test asks first: the dynamics' JSON report and what train-reward printed."""
    data, dyn, rew = str(workdir / "hopper.hdf5"), str(workdir / "dyn"), str(workdir / "rew")
    printed = []
    for argv in (
        ["train-dynamics", "--dataset", data, "--out", dyn, "--max-epochs", "3", "--eval-starts", "50"]
        + ["--eval-horizon", "3", "--no-progress", "--json"],
        ["train-reward", "--dataset", data, "--dynamics", dyn, "--out", rew, "--generator", "fixed"]
        + ["--num-updates", "200", "--snapshot-interval", "50", "--snapshot-stride", "2", "--no-progress"],
    ):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(argv) == 0, err.getvalue()
        printed.append((out.getvalue(), err.getvalue()))
    dynamics_out = printed[0][0]
    return {
        "dynamics": json.loads(dynamics_out[dynamics_out.index("{") :]),
        "reward_out": printed[1][0],
        "reward_err": printed[1][1],
    }


def test_train_dynamics_reward_and_eval_model(workdir, trained, capsys):
    data, dyn, rew = str(workdir / "hopper.hdf5"), str(workdir / "dyn"), str(workdir / "rew")
    report = trained["dynamics"]
    assert report["fit"]["epochs"] == 3 and report["fit"]["holdout_size"] == 600
    assert len(report["oracle"]["open_loop_error_per_step"]) == 3
    assert report["oracle"]["random_policy_model_error"]["overall"] > 0
    assert (workdir / "dyn" / "dynamics.pt").exists() and list((workdir / "dyn" / "tb").glob("events.*"))

    text = trained["reward_out"].splitlines()  # for people: a start line, where it went, AUC and snapshots
    assert text[0] == f"train-reward: 3,000 transitions from {data}, dynamics from {dyn} -> {rew}"
    assert f"saved to {rew} (report: {workdir / 'rew' / 'report.json'})" in text
    assert any(line.startswith("  ROC AUC on 300 held-out transitions") for line in text)
    report = json.loads((workdir / "rew" / "report.json").read_text())
    used = report["snapshots_used"]
    assert used == report["fit"]["snapshots_used"]
    assert any(f"the reward stacks {used} of 4 discriminator snapshots" in line for line in text)
    assert (
        f"warning: the dynamics reward uses only {used} discriminator snapshot(s)" in trained["reward_err"]
    )  # 4 taken, stride 2
    assert report["fit"]["snapshots_taken"] == 4
    assert report["discrimination"]["transitions"] == 300  # the 10% split held out from training
    expected = discrimination_from_files(data, dyn, rew, seed=0)
    for key, value in expected.items():
        assert report["discrimination"][key] == pytest.approx(value, abs=1e-9), key

    for policy in (
        ["--policy", "random"],
        ["--policy", "noisy-behaviour", "--policy-path", str(workdir / "sac" / "policy_40.pt")],
        ["--policy", "checkpoint", "--policy-path", str(workdir / "sac" / "policy_40.pt")],
    ):
        report = run(
            [
                "eval-model",
                "--dataset",
                data,
                "--dynamics",
                dyn,
                "--reward",
                rew,
                "--horizon",
                "5",
                "--starts",
                "40",
                *policy,
                "--json",
            ],
            capsys,
        )
        assert report["unfiltered"]["transitions"] >= 40 and report["filtered"]["transitions"] >= 40
        ratio = report["filtered"]["error"] / report["unfiltered"]["error"]
        assert report["filtered_over_unfiltered_error"] == pytest.approx(ratio)
        if policy[1] == "random":
            assert report["reward_error_spearman"] == pytest.approx(
                first_step_spearman(data, dyn, rew, starts=40, horizon=5), abs=1e-9
            )
        ((name, checked),) = report["policies"].items()  # one policy per call fills `policies` with one entry
        assert checked["filtered"] == report["filtered"]
        held_out = held_out_rewards(rew)  # the half of the reward's held-out transitions that measures
        assert report["false_truncation_rate"] == pytest.approx(
            float((held_out < report["threshold"]).mean()), abs=1e-12
        )
        assert report["real_reward_quantiles"]["50"] == pytest.approx(float(np.median(held_out)), abs=1e-9)
        assert 1 <= checked["filtered"]["mean_rollout_length"] <= 5 and "return_abs_error" not in checked["filtered"]
        assert len(checked["per_step"]["ratio"]) == 5


def test_distil_reward_writes_a_one_network_reward_that_eval_model_takes(workdir, trained, capsys):
    data, dyn, rew, out = (str(workdir / n) for n in ("hopper.hdf5", "dyn", "rew", "rew-distilled"))
    report = run(
        [
            "distil-reward",
            "--dataset",
            data,
            "--dynamics",
            dyn,
            "--reward",
            rew,
            "--out",
            out,
            "--updates",
            "30",
            "--hidden-sizes",
            "16",
            "--no-progress",
            "--json",
        ],
        capsys,
    )
    assert report["updates"] == 30 and report["holdout_rows"] == 300 and report["config"]["hidden_sizes"] == [16]
    assert set(report["pick_agreement"]) == {"consensus_weight_0", "consensus_weight_1"}
    assert 0 <= report["truncation_agreement"] <= 1 and report == json.loads(
        (workdir / "rew-distilled" / "report.json").read_text()
    )
    assert list((workdir / "rew-distilled" / "tb").glob("events.*"))
    checked = run(
        [
            "eval-model",
            "--dataset",
            data,
            "--dynamics",
            dyn,
            "--reward",
            out,
            "--horizon",
            "3",
            "--starts",
            "20",
            "--json",
        ],
        capsys,
    )
    assert checked["filter"]["consensus_weight"] == 1.0 and checked["filtered"]["transitions"] >= 20
    # bad input: one line naming the fix, exit status 2
    assert (
        main(["distil-reward", "--dataset", data, "--dynamics", dyn, "--reward", out, "--out", str(workdir / "x")]) == 2
    )
    assert "already a distilled reward" in capsys.readouterr().err
    assert (
        main(
            [
                "distil-reward",
                "--dataset",
                data,
                "--dynamics",
                dyn,
                "--reward",
                rew,
                "--out",
                str(workdir / "x"),
                "--hidden-sizes",
                "a,b",
            ]
        )
        == 2
    )
    assert "--hidden-sizes must be comma-separated integers" in capsys.readouterr().err


def test_eval_model_checks_torchscript_policies_and_ranks_them(workdir, trained, capsys):
    data, dyn, rew = str(workdir / "hopper.hdf5"), str(workdir / "dyn"), str(workdir / "rew")
    paths = []
    for i, scale in enumerate((0.2, 1.0)):
        paths.append(str(workdir / f"pi{i}.pt"))
        torch.jit.script(Linear(11, 3, scale)).save(paths[-1])
    report = run(
        [
            "eval-model",
            "--dataset",
            data,
            "--dynamics",
            dyn,
            "--reward",
            rew,
            "--horizon",
            "4",
            "--starts",
            "20",
            "--policy",
            "torchscript",
            "--policy-path",
            paths[0],
            "--policy-path",
            paths[1],
            "--threshold",
            "auto",
            "--truncate-as",
            "stop",
            "--candidate-clip",
            "25",
            "--json",
        ],
        capsys,
    )
    assert list(report["policies"]) == ["pi0", "pi1"]
    cal = report["threshold_calibration"]
    assert report["threshold"] == cal["threshold"] == min(cal["real_quantile"], cal["selected_quantile"])
    assert report["false_truncation_rate"] <= 0.02 and set(report["real_reward_quantiles"]) == {"5", "25", "50"}
    for checked in report["policies"].values():
        f, u = checked["filtered"], checked["unfiltered"]
        assert f["fake_terminal_fraction"] == 0 and u["fake_terminal_fraction"] == 0  # truncate-as stop
        assert f["return_abs_error"] >= 0 and u["return_abs_error"] > 0 and "return_bias" in f
        assert checked["return_error_ratio"] == pytest.approx(f["return_abs_error"] / u["return_abs_error"])
        assert checked["selection_gain_captured"] <= 1.0
    assert set(report["policy_ranking_spearman"]) == {"filtered", "unfiltered"}


def morec(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "morec.cli", *map(str, argv)], capture_output=True, text=True, timeout=300
    )


def test_bad_input_is_one_line_and_exit_2(workdir, tmp_path):
    """Each a user mistake: exit 2 and one line naming the fix, no traceback."""
    data, dyn = workdir / "hopper.hdf5", tmp_path / "dyn"
    from morec.cli import main

    assert (
        main(
            [
                "train-dynamics",
                "--dataset",
                str(data),
                "--out",
                str(dyn),
                "--max-epochs",
                "1",
                "--eval-starts",
                "5",
                "--eval-horizon",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    old_reward, walker_reward = tmp_path / "old", tmp_path / "walker"
    from morec.dynamics_reward.model import DynamicsReward

    DynamicsReward(11, 3).save(old_reward)  # no held-out data, no task: as an older morec wrote it
    other = DynamicsReward(11, 3)
    other.env_id = "Walker2d-v4"
    other.save(walker_reward)
    torch.save({"w": torch.zeros(1)}, tmp_path / "weights.pt")
    torch.jit.script(Linear(17, 6)).save(str(tmp_path / "walker_policy.pt"))
    base = ["eval-model", "--dataset", data, "--dynamics", dyn, "--horizon", "2", "--starts", "5"]
    cases = [
        (["--policy", "torchscript", "--policy-path", tmp_path / "missing.pt"], "missing.pt does not exist"),
        (["--policy", "torchscript", "--policy-path", tmp_path / "weights.pt"], "is not a TorchScript module"),
        (
            ["--policy", "torchscript", "--policy-path", tmp_path / "walker_policy.pt"],
            "fails on observations of shape [B, 11]",
        ),
        (["--policy", "checkpoint"], "--policy checkpoint needs --policy-path"),
        (["--reward", old_reward, "--threshold", "auto"], "threshold 'auto' needs held-out real transitions"),
        (["--reward", walker_reward], "trained with env_id='Walker2d-v4' but this task has env_id='Hopper-v4'"),
    ]
    for extra, message in cases:
        out = morec(*base, *extra)
        assert out.returncode == 2, (extra, out.stderr)
        assert "Traceback" not in out.stderr and message in out.stderr, (extra, out.stderr)
        assert out.stderr.strip().splitlines()[-1].startswith("morec: error:")


def train_one_epoch_of_dynamics(data: Path, out: Path, capsys) -> dict:
    """``morec train-dynamics`` for one epoch on ``data`` into ``out`` (a model to hand to other commands)."""
    argv = ["train-dynamics", "--dataset", str(data), "--out", str(out), "--max-epochs", "1"]
    return run([*argv, "--eval-starts", "10", "--eval-horizon", "1", "--no-progress", "--json"], capsys)


def test_dynamics_for_another_task_is_refused(workdir, tmp_path, capsys):
    random_dataset_file(tmp_path / "walker.hdf5", "Walker2d-v4", steps=300)
    dyn = tmp_path / "dyn"
    train_one_epoch_of_dynamics(workdir / "hopper.hdf5", dyn, capsys)
    assert main(["eval-model", "--dataset", str(tmp_path / "walker.hdf5"), "--dynamics", str(dyn)]) == 2
    assert "trained with obs_dim=11" in capsys.readouterr().err


def test_eval_model_needs_a_policy_path(workdir, tmp_path, capsys):
    dyn = tmp_path / "dyn"
    train_one_epoch_of_dynamics(workdir / "hopper.hdf5", dyn, capsys)
    assert (
        main(
            ["eval-model", "--dataset", str(workdir / "hopper.hdf5"), "--dynamics", str(dyn), "--policy", "checkpoint"]
        )
        == 2
    )
    assert capsys.readouterr().err.startswith("morec: error: --policy checkpoint needs --policy-path")


def test_relabel_episodic_data(workdir, tmp_path, capsys):
    from morec.data import load_dataset

    data = str(workdir / "hopper.hdf5")
    report = run(
        ["relabel", "--dataset", data, "--episodic", "--method", "ircr", "--out", str(tmp_path / "ircr.hdf5")], capsys
    )
    relabelled = load_dataset(tmp_path / "ircr.hdf5")
    original = load_dataset(data)
    np.testing.assert_allclose(relabelled.returns(), original.returns(), rtol=1e-4)  # IRCR keeps each episode's return
    assert relabelled.metadata["reward_relabelling"]["method"] == "ircr"
    r, truth = (
        relabelled.rewards.astype(np.float64),
        original.rewards.astype(np.float64),
    )  # --episodic keeps the dense truth
    pearson = ((r - r.mean()) * (truth - truth.mean())).sum() / np.sqrt(
        ((r - r.mean()) ** 2).sum() * ((truth - truth.mean()) ** 2).sum()
    )
    assert report["pearson_with_true_rewards"] == pytest.approx(pearson, abs=1e-6)
    report = run(
        [
            "relabel",
            "--dataset",
            data,
            "--episodic",
            "--method",
            "lare",
            "--factors",
            "hand-written",
            "--updates",
            "300",
            "--out",
            str(tmp_path / "lare.hdf5"),
            "--no-progress",
        ],
        capsys,
    )
    assert report["fit"]["encoder_source"] == "hand-written" and report["pearson_with_true_rewards"] > 0.8
    np.testing.assert_array_equal(load_dataset(tmp_path / "lare.hdf5").observations, original.observations)


def test_eval_model_prints_a_summary_unless_asked_for_json(workdir, trained, capsys):
    data, dyn, rew = str(workdir / "hopper.hdf5"), str(workdir / "dyn"), str(workdir / "rew")
    assert (
        main(["eval-model", "--dataset", data, "--dynamics", dyn, "--reward", rew, "--horizon", "3", "--starts", "20"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"eval-model: 20 start states of {data}, horizon 3, filter threshold ")
    assert lines[1].startswith("  policy random: unfiltered error ") and lines[2].startswith("    filtered: error ")
    assert "step-matched error ratio" in lines[3] and lines[-1] == "  --json prints the whole report"
