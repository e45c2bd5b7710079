"""The filter check (eval-model's measures) on tiny synthetic cases whose answers are known by hand,
``threshold: auto``, ``truncate_as`` and TorchScript policies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from morec import RolloutConfig
from morec.dynamics_reward.check import (
    CheckedPolicy,
    FilterCheckConfig,
    check_filter,
    check_policy,
    real_reward_summary,
    selection_gain,
    step_matched_errors,
)
from morec.dynamics_reward.filter import MorecFilterConfig, MorecSelector
from morec.dynamics_reward.model import DynamicsReward
from morec.dynamics_reward.threshold import calibrate_threshold
from morec.rollout.policies import deterministic_row_policy, load_torchscript_policy, random_row_policy
from tests.fakes import FixedScores, Linear, ShiftDynamics, never


def test_selection_gain_from_known_errors():
    err = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # [K=3, B=2]: mean 2, oracle best 1
    assert selection_gain(err, np.array([0, 0])) == 1.0  # the oracle's pick
    assert selection_gain(err, np.array([1, 1])) == 0.0  # no better than the mean candidate
    assert selection_gain(err, np.array([1, 0])) == 0.5
    assert selection_gain(err, np.array([2, 2])) == -1.0  # worse than random
    assert math.isnan(selection_gain(np.ones((3, 2)), np.array([0, 1])))  # nothing to gain


def test_step_matched_ratio_uses_rows_alive_in_both_at_the_same_step():
    nan = np.nan
    filtered = np.array([[1.0, 2.0], [2.0, nan], [nan, nan]])  # [H=3, N=2]; row 1 ended after step 1
    unfiltered = np.array([[2.0, 2.0], [4.0, 4.0], [8.0, 8.0]])
    mean, per_step = step_matched_errors(filtered, unfiltered, matched_steps=2)
    # step 1: (1 + 2) / 2 / 2 = 0.75; step 2: only row 0 alive in both: 2 / 4 = 0.5; step 3: none
    assert mean == pytest.approx(0.625)
    assert per_step["ratio"] == [0.75, 0.5, None] and per_step["rows"] == [2, 1, 0]
    assert per_step["filtered_error"] == [1.5, 2.0, None] and per_step["unfiltered_error"] == [2.0, 4.0, None]
    assert step_matched_errors(filtered, unfiltered, matched_steps=1)[0] == pytest.approx(0.75)


class ScoresOf:
    """A stand-in reward for real transitions: returns the given scores for a batch of their size."""

    def __init__(self, scores):
        self.scores = torch.tensor(scores)

    def __call__(self, obs, act, next_obs):
        return self.scores[: len(obs)]


def test_false_truncation_rate_and_quantiles():
    reward = ScoresOf([0.2, 0.4, 0.6, 0.8])
    x = torch.zeros(4, 2)
    out = real_reward_summary(reward, x, x[:, :1], x, threshold=0.5)
    assert out["false_truncation_rate"] == 0.5
    assert out["real_reward_quantiles"] == pytest.approx({"5": 0.23, "25": 0.35, "50": 0.5})


class ShiftOracle:
    """The truth for :class:`ShiftDynamics`: s' = s + 1 and reward 1 (elite member 1 is exact)."""

    def step(self, obs, act):
        obs = np.asarray(obs, np.float64)
        return obs + 1.0, np.ones(len(obs)), np.zeros(len(obs), bool)


def run_check(scores, threshold=0.6, truncate_as="terminal", horizon=4, starts=6):
    reward = FixedScores(scores)  # candidates: members 1, 2, 3 -> s + 1 (exact), s + 2, s + 3
    cfg = MorecFilterConfig(mode="argmax", consensus_weight=0, threshold=threshold, truncate_as=truncate_as)
    policy = CheckedPolicy("zero", deterministic_row_policy(lambda o: torch.zeros(len(o), 1)), deterministic=True)
    return check_policy(
        ShiftDynamics(),
        reward,
        cfg,
        threshold,
        policy,
        torch.zeros(starts, 2),
        ShiftOracle(),
        never,
        np.ones(2),
        FilterCheckConfig(horizon=horizon, samples_per_member=1),
    )


def test_a_filter_that_picks_the_exact_member():
    out = run_check([1.0, 0.5, 0.4])  # always keeps member 1 (exact), never below 0.6
    f, u = out["filtered"], out["unfiltered"]
    assert f["mean_rollout_length"] == 4 and f["fake_terminal_fraction"] == 0 and f["error"] == 0
    assert u["mean_rollout_length"] == 4 and u["fake_terminal_fraction"] == 0 and u["error"] > 0
    assert out["selection_gain_captured"] == 1.0 and out["step_matched_error_ratio"] == 0.0
    assert len(out["per_step"]["ratio"]) == 4 and out["per_step"]["rows"] == [6] * 4
    # policy evaluation: truth 1 per step for 4 steps; the exact member's returns match it
    assert out["true_return_mean"] == 4.0
    assert f["return_abs_error"] == 0 and f["return_bias"] == 0 and f["return_mean"] == 4.0
    assert u["return_abs_error"] > 0 and u["return_bias"] == pytest.approx(
        u["return_abs_error"]
    )  # elites 2, 3 overshoot
    assert out["return_error_ratio"] == 0.0


@pytest.mark.parametrize("truncate_as, fake", [("terminal", 1.0), ("stop", 0.0)])
def test_truncation_ends_every_rollout_and_only_terminal_mode_fakes_terminals(truncate_as, fake):
    out = run_check([0.5, 0.4, 0.3], truncate_as=truncate_as)  # every kept r_D < 0.6: one step each
    assert out["filtered"]["mean_rollout_length"] == 1 and out["filtered"]["fake_terminal_fraction"] == fake
    assert out["filtered"]["truncated"] == 6
    assert out["per_step"]["rows"] == [6, 0, 0, 0] and out["step_matched_error_ratio"] == 0.0
    # policy evaluation selects without truncating: full-length rollouts, exact returns
    assert out["filtered"]["return_abs_error"] == 0


def test_ranking_needs_two_deterministic_policies_and_a_random_policy_gets_no_return_check():
    cfg = MorecFilterConfig(mode="argmax", consensus_weight=0, threshold=0.6)
    policies = [
        CheckedPolicy("random", random_row_policy(1, 3, 4, seed=0, device="cpu"), deterministic=False),
        CheckedPolicy("zero", deterministic_row_policy(lambda o: torch.zeros(len(o), 1)), deterministic=True),
    ]
    report = check_filter(
        ShiftDynamics(),
        FixedScores([1.0, 0.5, 0.4]),
        cfg,
        0.6,
        policies,
        torch.zeros(4, 2),
        ShiftOracle(),
        never,
        np.ones(2),
        FilterCheckConfig(horizon=3, samples_per_member=1),
    )
    assert list(report["policies"]) == ["random", "zero"] and "policy_ranking_spearman" not in report
    assert "return_abs_error" not in report["policies"]["random"]["filtered"]
    assert "return_error_ratio" in report["policies"]["zero"]


def test_random_row_policy_gives_each_start_row_its_own_noise_whichever_rows_are_alive():
    policy = random_row_policy(2, horizon=3, rows=5, seed=0, device="cpu")
    obs = torch.zeros(5, 4)
    every = policy(obs, torch.arange(5), 1)
    torch.testing.assert_close(policy(obs[:2], torch.tensor([1, 3]), 1), every[[1, 3]])
    assert not torch.equal(policy(obs, torch.arange(5), 2), every)
    assert float(every.abs().max()) <= 1.0


# ---------------------------------------------------------------------------- threshold auto
def test_auto_threshold_is_the_lower_target_quantile_of_real_and_kept_rewards():
    scores = FixedScores([0.9, 0.5, 0.4])
    reward = DynamicsReward(2, 1)  # only its held-out data is used below
    n = 100  # the even half (calibration rows) is used: 100 of these 200
    reward.set_heldout(torch.zeros(2 * n, 2), torch.zeros(2 * n, 1), torch.zeros(2 * n, 2))

    class Both:  # r_D of real (s, a, s') [N] -> 0.01, 0.02, ..., 1.00; of candidates [K, N] -> fixed scores
        heldout_part = reward.heldout_part
        heldout = reward.heldout

        def __call__(self, obs, act, next_obs):
            return scores(obs, act, next_obs) if next_obs.dim() == 3 else torch.arange(1, len(obs) + 1) / len(obs)

    cfg = MorecFilterConfig(mode="argmax", consensus_weight=0, threshold="auto", false_truncation_target=0.1)
    cal = calibrate_threshold(Both(), ShiftDynamics(), cfg, RolloutConfig(samples_per_member=1))
    assert cal.real_quantile == pytest.approx(0.109) and cal.selected_quantile == pytest.approx(0.9)
    assert cal.threshold == pytest.approx(0.109) and cal.transitions == n and cal.target == 0.1


def test_auto_threshold_needs_held_out_data_and_a_resolved_number():
    with pytest.raises(ValueError, match="retrain it with `morec train-reward`"):
        calibrate_threshold(DynamicsReward(2, 1), ShiftDynamics(), MorecFilterConfig(threshold="auto"), RolloutConfig())
    with pytest.raises(ValueError, match="must be resolved first"):
        MorecSelector(FixedScores([1.0]), MorecFilterConfig(threshold="auto"))
    with pytest.raises(ValueError, match="a number or 'auto'"):
        MorecFilterConfig(threshold="high")
    with pytest.raises(ValueError, match="truncate_as"):
        MorecFilterConfig(truncate_as="drop")
    with pytest.raises(ValueError, match="horizon must be at least 1"):
        FilterCheckConfig(horizon=0)
    with pytest.raises(ValueError, match="matched_steps must be at least 1, got 0"):
        FilterCheckConfig(matched_steps=0)


def test_held_out_data_and_task_survive_save_and_load(tmp_path):
    reward = DynamicsReward(2, 1)
    reward.env_id, reward.layout = "Walker2d-v4", "d4rl"
    reward.set_heldout(torch.ones(3, 2), torch.ones(3, 1), torch.ones(3, 2) * 2)
    reward.save(tmp_path)
    loaded = DynamicsReward.load(tmp_path, obs_dim=2, act_dim=1, env_id="Walker2d-v4")
    assert loaded.env_id == "Walker2d-v4" and torch.equal(loaded.heldout[2], torch.ones(3, 2) * 2)
    with pytest.raises(ValueError, match="env_id='Walker2d-v4' but this task has env_id='HalfCheetah-v4'"):
        DynamicsReward.load(tmp_path, obs_dim=2, act_dim=1, env_id="HalfCheetah-v4")


def test_torchscript_policy_loads_and_clips(tmp_path):
    path = tmp_path / "pi.pt"
    module = Linear(11, 3, scale=3.0)
    torch.jit.script(module).save(str(path))
    policy = load_torchscript_policy(path, 11, 3)
    obs = torch.randn(7, 11)
    out = policy(obs)
    torch.testing.assert_close(out, (3.0 * torch.tanh(module.net(obs))).clamp(-1, 1).detach())
    assert out.shape == (7, 3) and float(out.abs().max()) <= 1.0


def test_torchscript_policy_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_torchscript_policy(tmp_path / "missing.pt", 11, 3)
    torch.save(Linear(11, 3).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="is not a TorchScript module.*torch.jit.script"):
        load_torchscript_policy(tmp_path / "weights.pt", 11, 3)
    torch.jit.script(Linear(17, 6)).save(str(tmp_path / "walker.pt"))
    with pytest.raises(ValueError, match=r"fails on observations of shape \[B, 11\]"):
        load_torchscript_policy(tmp_path / "walker.pt", 11, 3)
    torch.jit.script(Linear(11, 6)).save(str(tmp_path / "wide.pt"))
    with pytest.raises(ValueError, match=r"needs actions \[B, 3\]"):
        load_torchscript_policy(tmp_path / "wide.pt", 11, 3)
