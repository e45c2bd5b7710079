"""MOREC dynamics reward: calibration, stacked snapshots, training, the filter, save/load."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from morec import ModelBuffer, RolloutConfig, RolloutEngine
from morec.dynamics_reward.filter import MorecFilterConfig, MorecSelector
from morec.dynamics_reward.model import Discriminator, DynamicsReward, DynamicsRewardConfig
from morec.dynamics_reward.training import fit_dynamics_reward
from tests.fakes import FixedScores
from tests.helpers import DEVICES

# r_D = -log(1 - sigmoid(x)) = softplus(x) = log(1 + e^x) of the calibrated logit x in [-1, 1]
R_MIN = math.log1p(math.exp(-1.0))  # x = -1 (generated-data level): 0.3133
R_MAX = math.log1p(math.e)  # x = +1 (real-data level): 1.3133


def reward_with_logits(real: list[float], fake: list[float], obs_dim=2, act_dim=1) -> DynamicsReward:
    cfg = DynamicsRewardConfig(hidden_sizes=(8,))
    base = DynamicsReward(obs_dim, act_dim, cfg)
    states = [
        Discriminator(1, base.in_features, cfg.hidden_sizes, torch.Generator().manual_seed(i)).state_dict()
        for i in range(len(real))
    ]
    return base.with_snapshots(states, real, fake)


@pytest.mark.parametrize(
    "logit, expected",
    [
        (10.0, R_MAX),  # above every snapshot's real level e_i: clamped to x = +1
        (-10.0, R_MIN),  # below every generated level g_i: x = -1
        (0.0, math.log(2.0)),  # midway between e_i and g_i for both snapshots: x = 0, sigmoid 1/2
        # snapshot 1 clamps at x = +1; snapshot 2 maps 1.5 to 2 * (1.5 + 2) / 4 - 1 = 0.75; the reward averages
        # probabilities
        (1.5, -math.log(1 - (1 / (1 + math.exp(-1.0)) + 1 / (1 + math.exp(-0.75))) / 2)),
    ],
)
def test_reward_is_minus_log_one_minus_the_mean_calibrated_probability(logit, expected):
    """Every snapshot outputs ``logit``; snapshot i has real level e_i and generated level g_i."""
    r = reward_with_logits([1.0, 2.0], [-1.0, -2.0])
    with torch.no_grad():
        r.snapshots.layers[-1].weight.zero_()
        r.snapshots.layers[-1].bias.fill_(logit)
        out = r(torch.randn(6, 2), torch.randn(6, 1), torch.randn(6, 2))
    torch.testing.assert_close(out, torch.full((6,), expected), atol=1e-6, rtol=0)


def test_calibration_maps_real_mean_to_top_and_generated_mean_to_bottom():
    r = reward_with_logits([2.0, 1.0], [-1.0, -3.0])
    logits = torch.tensor([[2.0, 5.0, -1.0, 0.5], [1.0, 9.0, -3.0, -1.0]])
    x = r.calibrated(logits)
    torch.testing.assert_close(x[:, 0], torch.tensor([1.0, 1.0]))  # at e_i -> +1
    torch.testing.assert_close(x[:, 1], torch.tensor([1.0, 1.0]))  # above e_i is clamped
    torch.testing.assert_close(x[:, 2], torch.tensor([-1.0, -1.0]))  # at g_i -> -1
    torch.testing.assert_close(x[:, 3], torch.tensor([0.0, 0.0]), atol=1e-6, rtol=0)  # midway -> 0


def test_reward_shapes_range_and_single_stacked_pass():
    r = reward_with_logits([1.0, 2.0, 0.5], [-1.0, -2.0, -0.5])
    obs, act = torch.randn(7, 2), torch.randn(7, 1)
    cands = torch.randn(10, 7, 2) * 3
    with torch.no_grad():
        out = r(obs, act, cands)  # broadcast over candidates
    assert out.shape == (10, 7)
    assert float(out.min()) >= R_MIN - 1e-5 and float(out.max()) <= R_MAX + 1e-5
    # the stacked network equals evaluating each snapshot on its own
    x = r.features(obs, act, cands[0])
    stacked = r.snapshots(x)
    for i in range(3):
        single = Discriminator(1, r.in_features, (8,))
        single.load_state_dict({k: v[i : i + 1] for k, v in r.snapshots.state_dict().items()})
        torch.testing.assert_close(single(x)[0], stacked[i])
    p = torch.sigmoid(r.calibrated(stacked)).mean(0)
    torch.testing.assert_close(out[0], -torch.log(1 - p + 1e-9))


def test_features_are_min_max_scaled():
    r = reward_with_logits([1.0], [0.0])
    r.set_ranges(np.array([[0.0, -2.0], [10.0, 2.0]]), np.array([[-0.5], [0.5]]))
    f = r.features(torch.tensor([[10.0, -2.0]]), torch.tensor([[0.5]]), torch.tensor([[0.0, 2.0]]))
    torch.testing.assert_close(f, torch.tensor([[0.8, -0.8, 1.0, -1.6, 1.6]]))


def test_argmax_selector_picks_the_highest_reward_and_truncation_marks_terminal():
    sel = MorecSelector(
        FixedScores([0.4, 1.2, 0.9]), MorecFilterConfig(mode="argmax", threshold=0.6, consensus_weight=0)
    )
    cands = torch.randn(3, 5, 3)
    out = sel(torch.zeros(5, 2), torch.zeros(5, 1), cands, 0, torch.Generator(), cands.mean(0))
    assert out.index.tolist() == [1] * 5 and not bool(out.stop.any())
    low = MorecSelector(
        FixedScores([0.4, 0.5, 0.45]), MorecFilterConfig(mode="argmax", threshold=0.6, consensus_weight=0)
    )
    out = low(torch.zeros(5, 2), torch.zeros(5, 1), cands, 0, torch.Generator(), cands.mean(0))
    assert bool(out.stop.all()) and float(out.stats["truncated"]) == 1.0
    late = MorecSelector(
        FixedScores([0.4, 0.5, 0.45]),
        MorecFilterConfig(mode="argmax", threshold=0.6, min_rollout_length=3, consensus_weight=0),
    )
    assert not bool(late(torch.zeros(5, 2), torch.zeros(5, 1), cands, 2, torch.Generator(), cands.mean(0)).stop.any())


def test_random_pick_ignores_the_scores_and_truncates_by_the_picked_candidates_reward():
    sel = MorecSelector(
        FixedScores([0.4, 1.2, 0.9]), MorecFilterConfig(mode="random", threshold=0.6, consensus_weight=0)
    )
    out = sel(
        torch.zeros(30_000, 2),
        torch.zeros(30_000, 1),
        torch.zeros(3, 30_000, 3),
        0,
        torch.Generator().manual_seed(0),
        torch.zeros(30_000, 3),
    )
    torch.testing.assert_close(
        torch.bincount(out.index, minlength=3).float() / 30_000, torch.full((3,), 1 / 3), atol=0.01, rtol=0
    )
    assert torch.equal(out.stop, out.index == 0)  # only candidate 0's r_D (0.4) is below the threshold


def test_softmax_selector_is_sharp_at_low_temperature():
    sel = MorecSelector(
        FixedScores([0.4, 1.0, 0.9]),
        MorecFilterConfig(mode="softmax", temperature=0.1, threshold=0.6, consensus_weight=0),
    )
    out = sel(
        torch.zeros(20_000, 2),
        torch.zeros(20_000, 1),
        torch.zeros(3, 20_000, 3),
        0,
        torch.Generator().manual_seed(0),
        torch.zeros(20_000, 3),
    )
    freq = torch.bincount(out.index, minlength=3).float() / 20_000
    expected = torch.softmax(torch.tensor([0.4, 1.0, 0.9]) / 0.1, 0)
    torch.testing.assert_close(freq, expected, atol=0.01, rtol=0)


def test_consensus_weight_prefers_the_candidate_nearest_the_elites_mean_and_truncates_on_its_r_d():
    # equal r_D: the pick is the candidate nearest the consensus; its r_D (not the score) meets the threshold
    sel = MorecSelector(
        FixedScores([0.5, 0.5, 0.5]), MorecFilterConfig(mode="argmax", threshold=0.6, consensus_weight=1.0)
    )
    cands = torch.tensor([[[0.9, 0.0, 0.0]], [[0.1, 0.0, 0.0]], [[0.5, 0.0, 0.0]]])  # [K=3, B=1, O+1]
    out = sel(torch.zeros(1, 2), torch.zeros(1, 1), cands, 0, torch.Generator(), torch.tensor([[0.2, 0.0, 0.0]]))
    assert out.index.tolist() == [1] and bool(out.stop.all()) and float(out.stats["reward_d"]) == 0.5
    # a large enough r_D margin outweighs the distance; weight 0 is the paper: r_D alone
    margin = MorecSelector(
        FixedScores([0.5, 0.5, 3.0]), MorecFilterConfig(mode="argmax", threshold=0.6, consensus_weight=1.0)
    )
    assert margin(
        torch.zeros(1, 2), torch.zeros(1, 1), cands, 0, torch.Generator(), torch.tensor([[0.2, 0.0, 0.0]])
    ).index.tolist() == [2]
    paper = MorecSelector(
        FixedScores([0.5, 0.4, 0.45]), MorecFilterConfig(mode="argmax", threshold=0.6, consensus_weight=0)
    )
    assert paper(
        torch.zeros(1, 2), torch.zeros(1, 1), cands, 0, torch.Generator(), torch.tensor([[0.2, 0.0, 0.0]])
    ).index.tolist() == [0]
    with pytest.raises(ValueError, match="consensus_weight"):
        MorecFilterConfig(consensus_weight=-1)


def test_filter_in_the_engine_keeps_truncated_transitions_as_terminal():
    dyn_scores = FixedScores([0.3, 0.5])  # every pick is below 0.6: each rollout stops after one step
    from tests.fakes import ShiftDynamics, never, zero_policy

    selector = MorecSelector(dyn_scores, MorecFilterConfig(mode="argmax", threshold=0.6, consensus_weight=0))
    engine = RolloutEngine(ShiftDynamics(), never, RolloutConfig(horizon=10), selector=selector)
    dyn_scores.scores = torch.tensor([0.3, 0.5, 0.2])  # three elites, one sample each
    buf = ModelBuffer(100, 2, 1)
    stats = engine.rollout(torch.zeros(8, 2), zero_policy, buf)
    data = buf.all()
    assert len(buf) == 8 and bool(data.terminals.all()) and stats.stopped == 8
    torch.testing.assert_close(data.next_observations[:, 0], torch.full((8,), 2.0))  # elite 2 (index 1) scored best
    assert stats.selector["reward_d"] == pytest.approx(0.5) and stats.selector["truncated"] == 1.0


@pytest.mark.parametrize("generator", ["fixed", "adversarial"])
def test_small_fit_separates_real_from_perturbed(trained, generator, tmp_path):
    ds, dyn = trained
    cfg = DynamicsRewardConfig(
        hidden_sizes=(64, 64),
        num_updates=600,
        snapshot_interval=50,
        snapshot_stride=2,
        discriminator_lr=1e-3,
        generator=generator,
    )
    reward, report = fit_dynamics_reward(ds, dyn, cfg, seed=0, log_dir=str(tmp_path / "tb"), show_progress=False)
    assert (
        report.snapshots_taken == 12
        and 1 <= report.snapshots_used <= 6
        and reward.num_snapshots == report.snapshots_used
    )
    assert (report.generator_loss is None) == (generator == "fixed")
    obs, act, nxt = (torch.as_tensor(a[:1000]) for a in (ds.observations, ds.actions, ds.next_observations))
    with torch.no_grad():
        real = reward(obs, act, nxt)
        perturbed = reward(obs, act, nxt + 0.3 * torch.randn_like(nxt))
    assert float(real.mean()) > float(perturbed.mean()) + 0.2
    auc = (real[:, None] > perturbed[None, :]).float().mean()
    assert float(auc) > 0.9
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    # save/load gives identical rewards; a mismatched task is refused
    reward.save(tmp_path / "r")
    loaded = DynamicsReward.load(tmp_path / "r", obs_dim=4, act_dim=2)
    torch.testing.assert_close(loaded(obs, act, nxt), real, rtol=0, atol=0)
    with pytest.raises(ValueError, match="obs_dim=4"):
        DynamicsReward.load(tmp_path / "r", obs_dim=11)


def test_scoring_in_bfloat16_keeps_the_rewards_and_their_order(trained, tmp_path):
    ds, dyn = trained
    cfg = DynamicsRewardConfig(hidden_sizes=(64, 64), num_updates=300, snapshot_interval=50, discriminator_lr=1e-3)
    reward, _ = fit_dynamics_reward(ds, dyn, cfg, seed=0, log_dir=str(tmp_path / "tb"), show_progress=False)
    obs, act, nxt = (torch.as_tensor(a[:1000]) for a in (ds.observations, ds.actions, ds.next_observations))
    candidates = torch.stack([nxt, nxt + 0.1 * torch.randn_like(nxt), nxt + 0.3 * torch.randn_like(nxt)])
    with torch.no_grad():
        full = reward(obs, act, candidates)  # [3, 1000]
        low = reward.set_score_dtype("bfloat16")(obs, act, candidates)
    assert low.dtype == torch.float32 and reward.score_dtype == torch.bfloat16
    assert float((low - full).abs().max()) < 0.02 < float(full.std())
    assert float((low.argmax(0) == full.argmax(0)).float().mean()) > 0.95
    with pytest.raises(ValueError, match="score_dtype must be one of float32, bfloat16, got 'float16'"):
        reward.set_score_dtype("float16")


def test_one_member_at_a_time_equals_the_stacked_network():
    net = Discriminator(4, 5, (16, 16), generator=torch.Generator().manual_seed(0))
    x = torch.randn(33, 5)
    with torch.no_grad():
        torch.testing.assert_close(net.member_logits(x), net(x))
        assert net.member_logits(x, torch.bfloat16).dtype == torch.float32


def test_bfloat16_scoring_is_the_bfloat16_network_with_float32_output():
    net = Discriminator(3, 5, (16, 16), generator=torch.Generator().manual_seed(0))
    x = torch.randn(40, 5)
    hidden, last = net.layers[:-1], net.layers[-1]
    with torch.no_grad():
        want = []
        for m in range(3):  # the hidden layers in bfloat16 with torch's own relu, the output in float32
            h = x.bfloat16()
            for layer in hidden:
                h = torch.relu(torch.addmm(layer.bias[m].bfloat16(), h, layer.weight[m].bfloat16()))
            want.append(torch.addmm(last.bias[m], h.float(), last.weight[m])[:, 0])
        assert torch.equal(net.member_logits(x, torch.bfloat16), torch.stack(want))


def test_scratch_generator_shares_no_weights_with_the_rollout_ensemble(trained, tmp_path):
    from morec.dynamics_reward.training import fresh_generator

    ds, dyn = trained
    gen = fresh_generator(dyn, seed=0)
    assert torch.equal(gen.input_mean, dyn.input_mean) and torch.equal(gen.elites, dyn.elites)
    assert not torch.equal(gen.hidden[0].weight, dyn.hidden[0].weight)
    before = {k: v.clone() for k, v in dyn.state_dict().items()}
    cfg = DynamicsRewardConfig(
        hidden_sizes=(16,), num_updates=100, snapshot_interval=50, snapshot_stride=1, generator="scratch"
    )
    reward, report = fit_dynamics_reward(ds, dyn, cfg, seed=0, show_progress=False)
    assert report.generator_loss is not None and report.snapshots_taken == 2
    for k, v in dyn.state_dict().items():  # the rollout ensemble is left as it was
        assert torch.equal(v, before[k]), k
    with pytest.raises(ValueError, match="generator must be one of adversarial, fixed, scratch"):
        DynamicsRewardConfig(generator="gan")


def test_entropy_target_tunes_the_discriminator_entropy_bonus(trained, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ds, dyn = trained
    cfg = DynamicsRewardConfig(hidden_sizes=(16,), num_updates=200, snapshot_interval=50, entropy_target=0.1)
    fit_dynamics_reward(ds, dyn, cfg, seed=0, log_dir=str(tmp_path / "tb"), show_progress=False)
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    coefs = [e.value for e in events.Scalars("reward/entropy_coef")]
    entropies = [e.value for e in events.Scalars("reward/discriminator_entropy")]
    assert min(entropies) > 0.1  # entropy above the target all along: the weight only falls
    assert coefs == sorted(coefs, reverse=True) and coefs[-1] < cfg.entropy_coef
    with pytest.raises(ValueError, match="entropy_target"):
        DynamicsRewardConfig(entropy_target=0.7)


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_reward(trained, device):
    ds, dyn = trained
    dyn = copy.deepcopy(dyn).to(device)
    cfg = DynamicsRewardConfig(hidden_sizes=(16,), num_updates=100, snapshot_interval=50, generator="adversarial")
    a, _ = fit_dynamics_reward(ds, dyn, cfg, seed=3, show_progress=False)
    b, _ = fit_dynamics_reward(ds, dyn, cfg, seed=3, show_progress=False)
    x = [torch.as_tensor(v[:50], device=device) for v in (ds.observations, ds.actions, ds.next_observations)]
    out = a(*x)
    assert out.device.type == device and a.device.type == device
    torch.testing.assert_close(out, b(*x), rtol=0, atol=0)


# ---------------------------------------------------------------------------- negatives and objectives
class ShiftModel:
    """A deterministic 'ensemble' for the negative sampler: every elite predicts s' = s + a + 1
    with (numerically) zero variance."""

    elites = torch.tensor([0, 1])

    def predict(self, obs, act, members=None):
        mean = torch.cat([obs + act + 1, torch.zeros(len(obs), 1)], dim=-1).expand(2, -1, -1)
        logvar = torch.full((2, len(obs), obs.shape[1] + 1), -60.0)
        return (mean, logvar) if members is None else (mean[members], logvar[members])


def test_trajectory_room_counts_rows_to_the_episode_end():
    from morec.data import OfflineDataset
    from morec.dynamics_reward.training import trajectory_room

    n = 7
    obs = np.arange(n, dtype=np.float32)[:, None]
    ds = OfflineDataset.from_arrays(
        obs,
        np.zeros((n, 1), np.float32),
        np.zeros(n),
        np.array([0, 0, 1, 0, 0, 0, 0], bool),
        np.zeros(n, bool),
        obs + 1,
    )
    assert trajectory_room(ds).tolist() == [3, 2, 1, 4, 3, 2, 1]


def test_multi_step_negatives_roll_the_generator_along_dataset_actions_within_an_episode():
    from morec.data import OfflineDataset
    from morec.dynamics_reward.training import NegativeSampler

    n = 6  # one episode of 4 rows, then one of 2; actions 10, 20, ...
    obs = np.zeros((n, 1), np.float32)
    act = (10 * np.arange(1, n + 1, dtype=np.float32))[:, None]
    ds = OfflineDataset.from_arrays(obs, act, np.zeros(n), np.array([0, 0, 0, 1, 0, 0], bool), np.zeros(n, bool), obs)
    sampler = NegativeSampler(ds, steps=3, device=torch.device("cpu"))
    rows = torch.tensor([0] * 200 + [3] * 50 + [4] * 50)
    s, a, s2 = sampler(ShiftModel(), rows, torch.Generator().manual_seed(0))
    # from row 0 with s = 0: depth 1 -> (0, 10, 11); depth 2 -> (11, 20, 32); depth 3 -> (32, 30, 63)
    seen = {(float(x), float(y), float(z)) for x, y, z in zip(s[:200, 0], a[:200, 0], s2[:200, 0])}
    assert seen == {(0.0, 10.0, 11.0), (11.0, 20.0, 32.0), (32.0, 30.0, 63.0)}
    assert bool((s2[200:250, 0] == 41).all())  # row 3 ends its episode: one step only
    assert {float(v) for v in s2[250:, 0]} == {51.0, 112.0}  # row 4: at most 2 steps (its episode has 2 rows)
    one = NegativeSampler(ds, steps=1, device=torch.device("cpu"))(ShiftModel(), rows[:3], torch.Generator())
    assert one[0].tolist() == [[0.0]] * 3 and one[2].tolist() == [[11.0]] * 3


@pytest.mark.parametrize("options", [dict(negative_steps=3), dict(contrastive_coef=1.0, logit_clip=5.0)])
def test_fit_with_multi_step_negatives_or_the_contrastive_term_still_separates_real_from_perturbed(trained, options):
    ds, dyn = trained
    cfg = DynamicsRewardConfig(
        hidden_sizes=(64, 64),
        num_updates=600,
        snapshot_interval=50,
        snapshot_stride=2,
        discriminator_lr=1e-3,
        generator="fixed",
        **options,
    )
    reward, report = fit_dynamics_reward(ds, dyn, cfg, seed=0, show_progress=False)
    base, _ = fit_dynamics_reward(
        ds,
        dyn,
        DynamicsRewardConfig(
            hidden_sizes=(64, 64),
            num_updates=600,
            snapshot_interval=50,
            snapshot_stride=2,
            discriminator_lr=1e-3,
            generator="fixed",
        ),
        seed=0,
        show_progress=False,
    )
    obs, act, nxt = (torch.as_tensor(a[:1000]) for a in (ds.observations, ds.actions, ds.next_observations))
    with torch.no_grad():
        real, perturbed = reward(obs, act, nxt), reward(obs, act, nxt + 0.3 * torch.randn_like(nxt))
        assert not torch.equal(real, base(obs, act, nxt))  # the option changed the reward
    assert float((real[:, None] > perturbed[None, :]).float().mean()) > 0.9


def test_heldout_halves_are_disjoint_and_cover_the_heldout_rows():
    reward = DynamicsReward(2, 1)
    assert reward.heldout_part("measure") is None
    obs = torch.arange(10, dtype=torch.float32)[:, None].expand(-1, 2)
    reward.set_heldout(obs, obs[:, :1], obs)
    cal, meas = reward.heldout_part("calibrate"), reward.heldout_part("measure")
    assert cal[0][:, 0].tolist() == [0, 2, 4, 6, 8] and meas[0][:, 0].tolist() == [1, 3, 5, 7, 9]


def test_reward_options_are_checked():
    for bad, match in (
        (dict(negative_steps=0), "negative_steps"),
        (dict(contrastive_coef=-1), "contrastive_coef"),
        (dict(logit_clip=0.0), "logit_clip"),
    ):
        with pytest.raises(ValueError, match=match):
            DynamicsRewardConfig(**bad)
