"""Distilling a dynamics reward's snapshot ensemble into one network."""

from __future__ import annotations

import copy

import pytest
import torch

from morec.dynamics_reward.config import DistillationConfig, MorecFilterConfig
from morec.dynamics_reward.distillation import (
    _Rows,
    _split,
    distil_reward,
    distillation_agreement,
    reward_from_logit,
    teacher_logit,
)
from morec.dynamics_reward.model import Discriminator, DynamicsReward, DynamicsRewardConfig
from morec.rollout.engine import RolloutConfig
from tests.helpers import DEVICES


def teacher_for(ds, snapshots: int = 4) -> DynamicsReward:
    cfg = DynamicsRewardConfig(hidden_sizes=(32, 32))
    base = DynamicsReward(4, 2, cfg)
    base.set_ranges(ds.observations, ds.actions)
    states = [
        Discriminator(1, base.in_features, cfg.hidden_sizes, torch.Generator().manual_seed(i)).state_dict()
        for i in range(snapshots)
    ]
    # spread logits: random nets give logits near 0, so calibrate each snapshot to a narrow band
    return base.with_snapshots(
        states, [0.05 * (i + 1) for i in range(snapshots)], [-0.05 * (i + 1) for i in range(snapshots)]
    )


def test_teacher_logit_gives_the_teacher_reward_through_one_snapshot(trained):  # noqa: F811
    ds, _ = trained
    teacher = teacher_for(ds)
    obs, act, nxt = (torch.as_tensor(a[:200]) for a in (ds.observations, ds.actions, ds.next_observations))
    with torch.no_grad():
        logit = teacher_logit(teacher, teacher.features(obs, act, nxt))
        torch.testing.assert_close(reward_from_logit(logit), teacher(obs, act, nxt), atol=1e-5, rtol=0)
    assert float(logit.abs().max()) <= 1.0


def test_distilled_reward_is_one_network_that_agrees_better_than_an_untrained_one(trained, tmp_path):  # noqa: F811
    ds, dyn = trained
    teacher = teacher_for(ds)
    cfg = DistillationConfig(hidden_sizes=(32, 32), updates=300, batch_size=64, model_steps=2, seed=0)
    filt = MorecFilterConfig(threshold=0.6)
    student, report = distil_reward(
        teacher,
        dyn,
        ds.observations,
        ds.actions,
        ds.next_observations,
        cfg,
        rollout=RolloutConfig(samples_per_member=2),
        filter_config=filt,
        threshold=0.6,
        show_progress=False,
    )
    assert student.num_snapshots == 1 and student.distilled_from == 4 and student.config.hidden_sizes == (32, 32)
    _, check_rows = _split(len(ds.observations), cfg.holdout_fraction, cfg.seed)
    assert report.holdout_rows == len(check_rows) and report.teacher_snapshots == 4
    untrained = teacher.with_snapshots(
        [Discriminator(1, teacher.in_features, (32, 32), torch.Generator().manual_seed(9)).state_dict()],
        [1.0],
        [-1.0],
        config=student.config,
    )
    data = tuple(a[check_rows] for a in (ds.observations, ds.actions, ds.next_observations))
    rows = _Rows(dyn, *data, cfg, RolloutConfig(samples_per_member=2), cfg.seed + 1, "cpu")
    baseline = distillation_agreement(teacher, untrained, rows, filt, 0.6, cfg.model_steps)
    assert report.logit_mae < 0.5 * baseline["logit_mae"]
    assert report.pick_agreement["consensus_weight_0"] > baseline["pick_agreement"]["consensus_weight_0"]
    assert set(report.pick_agreement) == {"consensus_weight_0", "consensus_weight_1"}
    student.save(tmp_path / "d")
    loaded = DynamicsReward.load(tmp_path / "d", obs_dim=4, act_dim=2)
    obs, act, nxt = (torch.as_tensor(a[:50]) for a in (ds.observations, ds.actions, ds.next_observations))
    assert loaded.distilled_from == 4
    torch.testing.assert_close(loaded(obs, act, nxt), student(obs, act, nxt), rtol=0, atol=0)
    student.env_id = "Hopper-v4"  # a student keeps its teacher's task, so another task's data refuses it
    student.save(tmp_path / "hopper")
    with pytest.raises(ValueError, match="trained with env_id='Hopper-v4' but this task has env_id='Walker2d-v4'"):
        DynamicsReward.load(tmp_path / "hopper", obs_dim=4, act_dim=2, env_id="Walker2d-v4")


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_distilled_reward(trained, device):  # noqa: F811
    ds, dyn = trained
    dyn = copy.deepcopy(dyn).to(device)
    teacher = teacher_for(ds).to(device)
    cfg = DistillationConfig(hidden_sizes=(16,), updates=30, batch_size=32, model_steps=1)
    runs = [
        distil_reward(teacher, dyn, ds.observations, ds.actions, ds.next_observations, cfg, show_progress=False)
        for _ in range(2)
    ]
    x = [torch.as_tensor(v[:50], device=device) for v in (ds.observations, ds.actions, ds.next_observations)]
    out = runs[0][0](*x)
    assert out.device.type == device
    torch.testing.assert_close(out, runs[1][0](*x), rtol=0, atol=0)
    assert runs[0][1].pick_agreement == runs[1][1].pick_agreement


def test_distillation_options_are_checked():
    with pytest.raises(ValueError, match="holdout_fraction"):
        DistillationConfig(holdout_fraction=1.0)
    with pytest.raises(ValueError, match="model_steps"):
        DistillationConfig(model_steps=-1)
