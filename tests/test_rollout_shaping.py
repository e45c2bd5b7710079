"""RolloutEngine's reward_transform hook with morec.shaping.transforms's StepAdapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from morec import ModelBuffer, RolloutConfig, RolloutEngine
from morec.shaping.transforms import Clip, Compose, Delta, FlipNoise, PotentialShaping, StepAdapter
from tests.fakes import never, zero_policy


class StepDynamics:
    """Every member predicts s' = s + 1 and reward 10, with a fixed std."""

    def __init__(self, logvar: float = -40.0, device: str = "cpu"):
        self.device = torch.device(device)
        self.elites = torch.tensor([0, 1], device=self.device)
        self.logvar = logvar

    def predict(self, obs, act, members=None):
        mean = torch.cat([obs + 1, torch.full((len(obs), 1), 10.0, device=obs.device)], 1).expand(
            3 if members is None else len(members), -1, -1
        )
        return mean, torch.full_like(mean, self.logvar)


def run(
    transform, horizon: int = 3, termination=never, penalty: float = 0.0, logvar: float = -40.0, device: str = "cpu"
):
    engine = RolloutEngine(
        StepDynamics(logvar, device),
        termination,
        RolloutConfig(horizon=horizon, penalty_coef=penalty),
        reward_transform=transform,
    )
    buf = ModelBuffer(100, 2, 1, device)
    records = []
    stats = engine.rollout(torch.zeros(4, 2, device=device), zero_policy, buf, step_callback=records.append)
    return buf.all(), stats, records


def test_clip_changes_the_written_rewards_before_the_penalty():
    plain, plain_stats, _ = run(None, logvar=np.log(0.25), penalty=2.0)
    clipped, stats, records = run(StepAdapter(Clip(-1.0, 1.0)), logvar=np.log(0.25), penalty=2.0)
    penalty = 2.0 * 0.5 * np.sqrt(3)  # lambda * ||sigma|| over two obs dims and the reward
    assert plain.rewards.min() > 5  # model rewards ~ 10 - penalty without the transform
    torch.testing.assert_close(
        clipped.rewards, torch.full((12,), 1.0 - penalty)
    )  # clip(r) - penalty, not clip(r - penalty)
    torch.testing.assert_close(torch.cat([rec.rewards for rec in records]), clipped.rewards)
    assert (
        stats.reward_mean == pytest.approx(plain_stats.reward_mean) == pytest.approx(10.0, abs=0.5)
    )  # raw model reward


def test_flip_noise_negates_model_rewards():
    data, _, _ = run(StepAdapter(FlipNoise(1.0)))
    torch.testing.assert_close(data.rewards, torch.full((12,), -10.0))


def test_potential_shaping_with_termination():
    def done_at_2(obs, act, next_obs):
        return next_obs[:, 0] >= 2.0

    shaping = StepAdapter(PotentialShaping(lambda o: o[:, 0], gamma=0.5), termination_fn=done_at_2)
    data, stats, _ = run(shaping, termination=done_at_2)
    # step 0: s = 0, s' = 1: 10 + 0.5 * 1 - 0; step 1: s = 1, s' = 2 terminal: 10 + 0 - 1
    assert data.rewards.tolist() == [10.5] * 4 + [9.0] * 4
    assert data.terminals.tolist() == [False] * 4 + [True] * 4 and stats.terminated == 4


def test_any_callable_with_the_hook_signature_works():
    data, _, _ = run(lambda r, o, a, n: r * 0 + n[:, 0])
    assert data.rewards.tolist() == [1.0] * 4 + [2.0] * 4 + [3.0] * 4


def test_hook_errors():
    with pytest.raises(ValueError, match="reward_transform must return rewards of shape"):
        run(lambda r, o, a, n: r[:1])
    with pytest.raises(ValueError, match="PotentialShaping needs context 'terminals'"):
        run(StepAdapter(PotentialShaping(lambda o: o[:, 0])))  # no termination_fn given to the adapter
    with pytest.raises(ValueError, match="not per_step"):
        StepAdapter(Compose([Clip(0, 1), Delta()]))
    with pytest.raises(ValueError, match="not per_step"):
        StepAdapter(FlipNoise(0.1, scope="episode"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_hook_on_cuda():
    data, _, _ = run(StepAdapter(Compose([Clip(-1.0, 1.0), FlipNoise(1.0)])), device="cuda")
    assert data.rewards.device.type == "cuda"
    torch.testing.assert_close(data.rewards.cpu(), torch.full((12,), -1.0))
