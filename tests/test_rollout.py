"""ModelBuffer, RolloutEngine (selectors, termination, truncation, penalty) and model error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from morec import ModelBuffer, RolloutConfig, RolloutEngine, Selection, TransitionBatch
from morec.dynamics import EnsembleConfig, EnsembleDynamics, MujocoOracle, TaskInfo, fit_ensemble, get_termination_fn
from morec.rollout.model_error import model_error, normalised_error, observation_std, open_loop_error
from tests.fakes import ShiftDynamics, never, zero_policy
from tests.helpers import DEVICES, random_dataset


def batch(n: int, start: float = 0.0, obs_dim: int = 2, act_dim: int = 1) -> TransitionBatch:
    ids = torch.arange(n, dtype=torch.float32) + start
    return TransitionBatch(
        ids[:, None].repeat(1, obs_dim),
        ids[:, None].repeat(1, act_dim),
        ids,
        ids[:, None].repeat(1, obs_dim) + 1,
        ids.long() % 2 == 0,
    )


# ---------------------------------------------------------------------------- ModelBuffer
def test_buffer_is_fifo_and_wraps():
    buf = ModelBuffer(5, 2, 1)
    buf.add(batch(3))
    assert len(buf) == 3 and buf.all().rewards.tolist() == [0, 1, 2]
    buf.add(batch(4, start=10))
    assert len(buf) == 5
    assert buf.all().rewards.tolist() == [2, 10, 11, 12, 13]  # 0 and 1 overwritten, oldest first
    buf.add(batch(7, start=100))  # more than the capacity: only the newest five survive
    assert buf.all().rewards.tolist() == [102, 103, 104, 105, 106]
    assert buf.all().terminals.tolist() == [True, False, True, False, True]


def test_buffer_sample_and_state_roundtrip():
    buf = ModelBuffer(8, 2, 1)
    buf.add(batch(6))
    sample = buf.sample(32, generator=torch.Generator().manual_seed(0))
    assert sample.observations.shape == (32, 2) and sample.actions.shape == (32, 1)
    assert set(sample.rewards.tolist()) <= set(range(6))
    torch.testing.assert_close(sample.next_observations, sample.observations + 1)
    other = ModelBuffer(8, 2, 1)
    other.load_state_dict(buf.state_dict())
    other.add(batch(3, start=50))
    buf.add(batch(3, start=50))
    torch.testing.assert_close(other.all().rewards, buf.all().rewards)
    with pytest.raises(RuntimeError, match="empty"):
        ModelBuffer(4, 2, 1).sample(1)
    with pytest.raises(ValueError, match="does not fit"):
        ModelBuffer(4, 3, 1).load_state_dict(buf.state_dict())


def test_candidates_come_with_the_elites_mean_prediction_clipped_like_them():
    engine = RolloutEngine(ShiftDynamics(), never, RolloutConfig(samples_per_member=2))
    cands, _, consensus = engine.candidates(torch.zeros(4, 2), torch.zeros(4, 1))
    assert cands.shape == (6, 4, 3) and torch.allclose(consensus, torch.full((4, 3), 2.0))  # elites 1..3 shift by 1..3
    clipped = RolloutEngine(ShiftDynamics(), never, RolloutConfig(samples_per_member=1, candidate_clip=1.5))
    cands, _, consensus = clipped.candidates(torch.zeros(4, 2), torch.zeros(4, 1))
    assert float(cands.max()) <= 1.5 and torch.allclose(consensus, torch.full((4, 3), 1.5))


def test_random_elite_selection_only_uses_elites_and_fills_the_buffer():
    dyn = ShiftDynamics()
    engine = RolloutEngine(dyn, never, RolloutConfig(horizon=4), seed=0)
    buf = ModelBuffer(1000, 2, 1)
    stats = engine.rollout(torch.zeros(50, 2), zero_policy, buf)
    data = buf.all()
    shifts = (data.next_observations - data.observations)[:, 0]
    assert set(shifts.round().tolist()) == {1.0, 2.0, 3.0}
    torch.testing.assert_close(data.rewards, shifts)
    assert stats.transitions == len(buf) == 200 and stats.mean_length == 4.0
    assert stats.reached_horizon == 50 and stats.terminated == stats.stopped == 0


def test_termination_removes_rows_and_marks_them_terminal():
    dyn = ShiftDynamics()
    engine = RolloutEngine(dyn, lambda o, a, n: n[:, 0] >= 5.0, RolloutConfig(horizon=20))
    buf = ModelBuffer(10_000, 2, 1)
    seen = []
    stats = engine.rollout(torch.zeros(64, 2), lambda o: (seen.append(len(o)), torch.zeros(len(o), 1))[1], buf)
    data = buf.all()
    assert bool((data.terminals == (data.next_observations[:, 0] >= 5.0)).all())
    assert stats.terminated == 64 and stats.reached_horizon == 0
    assert seen == sorted(seen, reverse=True) and seen[0] == 64  # the policy only sees live rows
    assert stats.transitions == sum(seen) and stats.mean_length == pytest.approx(sum(seen) / 64)


def test_selector_stop_keeps_the_transition_as_terminal_and_truncation_does_not():
    dyn = ShiftDynamics()

    class PickFirstStopOdd:
        def __call__(self, obs, act, candidates, step, generator, consensus):
            index = torch.zeros(candidates.shape[1], dtype=torch.long)
            return Selection(index=index, stop=torch.arange(len(obs)) % 2 == 1, stats={"score": torch.tensor(0.5)})

    engine = RolloutEngine(dyn, never, RolloutConfig(horizon=3), selector=PickFirstStopOdd())
    buf = ModelBuffer(100, 2, 1)
    stats = engine.rollout(torch.zeros(4, 2), zero_policy, buf)
    first = buf.all()
    assert first.terminals[:4].tolist() == [False, True, False, True]
    assert stats.stopped >= 2 and stats.selector == {"score": 0.5}
    truncate_at_1 = RolloutEngine(
        dyn, never, RolloutConfig(horizon=5), truncation_fn=lambda step, o, a, n: torch.full((len(o),), step == 1)
    )
    buf2 = ModelBuffer(100, 2, 1)
    stats2 = truncate_at_1.rollout(torch.zeros(6, 2), zero_policy, buf2)
    assert stats2.transitions == 12 and stats2.stopped == 6 and not bool(buf2.all().terminals.any())


class DivergingDynamics(ShiftDynamics):
    """ShiftDynamics whose predictions for rows with a first observation above 2.5 are not finite."""

    def predict(self, obs, act, members=None):
        mean, logvar = super().predict(obs, act, members)
        return torch.where((obs[:, 0] > 2.5)[None, :, None], torch.nan, mean), logvar


def test_rows_the_model_diverged_on_end_unwritten_with_or_without_a_filter():
    from morec.dynamics_reward.filter import MorecFilterConfig, MorecSelector
    from tests.fakes import FixedScores

    starts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])  # row 2 diverges at once, the others later
    selectors = (None, MorecSelector(FixedScores([0.9, 0.8, 0.7]), MorecFilterConfig(threshold=0.6)))
    for selector in selectors:
        buf = ModelBuffer(100, 2, 1)
        engine = RolloutEngine(DivergingDynamics(), never, RolloutConfig(horizon=10), selector=selector)
        stats = engine.rollout(starts, zero_policy, buf)
        data = buf.all()
        assert stats.diverged == 3 and stats.reached_horizon == 0
        assert stats.transitions == len(data.observations) > 0 and bool(torch.isfinite(data.next_observations).all())
        assert float(data.observations[:, 0].max()) <= 2.5  # nothing written from a state the model diverged on


def test_the_filter_never_picks_a_candidate_that_is_not_finite():
    from morec.dynamics_reward.filter import MorecFilterConfig, MorecSelector
    from tests.fakes import FixedScores

    config = MorecFilterConfig(threshold=0.0, temperature=10.0, consensus_weight=0.0)
    selector = MorecSelector(FixedScores([0.9, 0.8, 0.7]), config)
    candidates = torch.zeros(3, 4, 3)
    candidates[0, :2] = torch.inf  # rows 0, 1: the best-scored candidate diverged
    candidates[:, 3] = torch.nan  # row 3: every candidate diverged (any pick; the engine ends the row)
    obs, act = torch.zeros(4, 2), torch.zeros(4, 1)
    for seed in range(20):
        sel = selector(obs, act, candidates, 0, torch.Generator().manual_seed(seed), torch.zeros(4, 3))
        assert bool((sel.index[:2] != 0).all()) and 0 <= int(sel.index[3]) < 3


def test_mopo_penalty_is_lambda_times_max_member_std_norm():
    dyn = ShiftDynamics(logvar=np.log(0.25))  # std 0.5 for members 1..4, std e for member 0
    engine = RolloutEngine(dyn, never, RolloutConfig(horizon=1, penalty_coef=2.0))
    buf = ModelBuffer(100, 2, 1)
    stats = engine.rollout(torch.zeros(1000, 2), zero_policy, buf)
    widest = np.sqrt(3) * np.exp(0.5 * (np.log(0.25) + 2))  # member 0, three output dims
    assert stats.penalty_mean == pytest.approx(2.0 * widest, rel=1e-5)
    assert stats.reward_mean == pytest.approx(2.0, abs=0.1)  # elites 1..3 with noise of std 0.5


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_rollout(device):
    dyn = ShiftDynamics(logvar=-2.0, device=device)
    out = []
    for _ in range(2):
        buf = ModelBuffer(500, 2, 1, device)
        engine = RolloutEngine(dyn, never, RolloutConfig(horizon=5, samples_per_member=2), seed=7)
        engine.rollout(torch.zeros(40, 2, device=device), zero_policy, buf)
        out.append(buf.all())
    assert out[0].observations.device.type == device and len(out[0]) == 40 * 5
    for name in ModelBuffer.FIELDS:
        torch.testing.assert_close(getattr(out[0], name), getattr(out[1], name), rtol=0, atol=0)


# ---------------------------------------------------------------------------- real hopper
@pytest.fixture(scope="module")
def hopper_model():
    torch.manual_seed(0)
    ds = random_dataset(steps=4000)
    cfg = EnsembleConfig(
        num_members=4, num_elites=3, hidden_sizes=(64, 64), weight_decays=(2.5e-5, 5e-5, 1e-4), max_epochs=15
    )
    model = EnsembleDynamics(TaskInfo(11, 3, "Hopper-v4", "d4rl"), cfg, seed=0)
    fit_ensemble(model, ds, show_progress=False)
    return ds, model


def test_hopper_rollout_with_real_termination(hopper_model):
    ds, model = hopper_model
    engine = RolloutEngine(model, get_termination_fn("Hopper-v4"), RolloutConfig(horizon=10, penalty_coef=1.0))
    buf = ModelBuffer(100_000, 11, 3)
    starts = torch.as_tensor(ds.observations[:500])
    stats = engine.rollout(starts, lambda o: torch.rand(len(o), 3) * 2 - 1, buf)
    assert stats.transitions == len(buf) and 1.0 <= stats.mean_length <= 10.0
    assert stats.terminated + stats.stopped + stats.reached_horizon == 500
    assert stats.terminated > 0  # random hopper states fall quickly
    assert stats.penalty_mean > 0 and np.isfinite(stats.reward_mean)


def test_model_error_against_the_oracle(hopper_model):
    ds, model = hopper_model
    oracle = MujocoOracle("Hopper-v4")
    std = observation_std(ds)
    starts = torch.as_tensor(ds.observations[::40][:100])
    gen = torch.Generator().manual_seed(0)
    report = model_error(
        model, None, lambda o: torch.rand(len(o), 3, generator=gen) * 2 - 1, starts, 5, oracle, obs_std=std
    )
    assert report.transitions == sum(report.per_step_count) == report.rollout["transitions"]
    assert report.per_step_count[0] == 100 and len(report.per_step) == 5
    assert 0 < report.overall < 1.0  # a trained model is far better than the data spread

    # a "model" that is the oracle itself has (float32) zero error, reward included
    class OracleDynamics(ShiftDynamics):
        def predict(self, obs, act, members=None):
            nxt, rew, _ = oracle.step(obs, act)
            mean = torch.cat([nxt, rew[:, None]], 1).expand(3 if members is None else len(members), -1, -1)
            return mean, torch.full_like(mean, -40.0)

    perfect = OracleDynamics(members=3, obs_dim=11)
    perfect.elites, perfect.task = torch.tensor([0, 1, 2]), TaskInfo(11, 3)
    exact = model_error(
        perfect, None, lambda o: torch.rand(len(o), 3, generator=gen) * 2 - 1, starts, 5, oracle, obs_std=std
    )
    assert exact.overall < 1e-5 and exact.reward_abs_error < 1e-5 and exact.per_step_count[0] == 100

    # a model that predicts "no change" has exactly the error of the true one-step change
    class Frozen(ShiftDynamics):
        def predict(self, obs, act, members=None):
            mean = torch.cat([obs, torch.zeros(len(obs), 1)], 1).expand(4 if members is None else len(members), -1, -1)
            return mean, torch.full_like(mean, -40.0)

    frozen = Frozen(members=4, obs_dim=11)
    frozen.task = TaskInfo(11, 3)
    zero = np.zeros((len(starts), 3))
    stuck = model_error(frozen, None, lambda o: torch.zeros(len(o), 3), starts, 1, oracle, obs_std=std)
    true_next, _, _ = oracle.step(starts.numpy().astype(np.float64), zero)
    expected = normalised_error(starts.numpy().astype(np.float64), true_next, std).mean()
    assert stuck.overall == pytest.approx(expected, rel=1e-5)


def test_normalised_error_and_open_loop(hopper_model):
    ds, model = hopper_model
    std = np.array([1.0, 2.0])
    assert normalised_error(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]), std).tolist() == [1.0]
    errors = open_loop_error(model, ds, 5, obs_std=observation_std(ds), num_segments=64)
    assert len(errors) == 5 and all(np.isfinite(errors)) and errors[-1] > errors[0]
