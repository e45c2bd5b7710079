"""morec.shaping.transforms: hand-computed values, numpy/torch parity, devices, noise statistics, errors,
and per-episode relabelling of an OfflineDataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from morec.data import OfflineDataset
from morec.shaping.transforms import (
    Clip,
    ClipDelta,
    Compose,
    Delta,
    FlipNoise,
    GatedAccumulation,
    PatternBonus,
    PotentialShaping,
    StepAdapter,
    apply_per_episode,
    describe,
)
from tests.helpers import DEVICES

f32 = np.float32


def a(*values) -> np.ndarray:
    return np.array(values, f32)


def to_torch(value):
    return torch.as_tensor(value) if isinstance(value, np.ndarray) else value


def both(transform, rewards: np.ndarray, **context) -> np.ndarray:
    """Apply to numpy and torch inputs, check they agree and keep their type/dtype; return numpy."""
    out_np = transform(rewards, **context)
    out_t = transform(torch.as_tensor(rewards), **{k: to_torch(v) for k, v in context.items()})
    assert isinstance(out_np, np.ndarray) and out_np.dtype == rewards.dtype and out_np.shape == rewards.shape
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32 and out_t.shape == rewards.shape
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-6, atol=1e-6)
    return out_np


def double(obs):
    return 2 * obs[:, 0]


# ---------------------------------------------------------------------------- hand-computed values
def test_clip():
    assert both(Clip(-1.0, 1.0), a(-2, 0.5, 3)).tolist() == [-1, 0.5, 1]
    assert both(Clip(0.0, float("inf")), a(-2, 0.5, 3)).tolist() == [0, 0.5, 3]


def test_delta_is_a_backward_difference_from_initial():
    r = a(1, 3, 2)
    assert both(Delta(), r).tolist() == [1, 2, -1]
    assert both(Delta(initial=1.0), r).tolist() == [0, 2, -1]
    assert both(Delta(initial=1.0), r).sum() == r[-1] - 1.0  # telescopes
    assert both(Delta(), a()).tolist() == []


def test_clip_delta_follows_gao_section_2():
    # c = min(r - 0.5, 0) = [0, -0.25, -0.125, -0.375, 0]
    r = a(0.75, 0.25, 0.375, 0.125, 1.0)
    out = both(ClipDelta(eta=0.5), r)
    assert out.tolist() == [0.25, -0.125, 0.25, -0.375, 0.0]  # c0-c1, c1-c2, c2-c3, c3 (k=K-1), 0 (k=K)
    assert both(ClipDelta(0.5), a(0.25, 0.75)).tolist() == [-0.25, 0.0]
    assert both(ClipDelta(0.5), a(0.25)).tolist() == [0.0]
    assert both(ClipDelta(0.5), a()).tolist() == []


def test_clip_delta_return_to_go_is_the_clipped_score():
    rng = np.random.default_rng(0)
    for k in range(1, 8):
        r = rng.uniform(0, 1, k).astype(f32)
        out = both(ClipDelta(0.6), r)
        to_go = np.cumsum(out[::-1])[::-1]
        clipped = np.minimum(r - f32(0.6), 0)
        np.testing.assert_allclose(to_go[:-1], clipped[:-1], atol=1e-6)  # t <= K-1
        assert to_go[-1] == 0.0 and (to_go <= 1e-7).all()  # bounded above by 0 at every step


def test_potential_shaping_hand_values_and_terminal():
    obs, nxt = a(1, 2, 3)[:, None], a(2, 3, 4)[:, None]
    shaping = PotentialShaping(double, gamma=0.5)
    live = both(shaping, a(1, 1, 1), observations=obs, next_observations=nxt, terminals=np.zeros(3, bool))
    # r + 0.5 * 2 s' - 2 s
    assert live.tolist() == [1 + 2 - 2, 1 + 3 - 4, 1 + 4 - 6]
    done = both(shaping, a(1, 1, 1), observations=obs, next_observations=nxt, terminals=np.array([False, False, True]))
    assert done.tolist() == [1, 0, 1 - 6]  # Phi(s') = 0 at the terminal step


@pytest.mark.parametrize("terminal_end", [False, True])
@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_potential_shaping_telescopes(terminal_end, gamma):
    rng = np.random.default_rng(1)
    states = rng.normal(size=(9, 3))
    obs, nxt = states[:-1], states[1:]
    r = rng.normal(size=8).astype(f32)
    terminals = np.zeros(8, bool)
    terminals[-1] = terminal_end

    def phi(x):
        return (x**2).sum(1) - 0.5 * x[:, 0] + 1.0

    out = both(PotentialShaping(phi, gamma), r, observations=obs, next_observations=nxt, terminals=terminals)
    disc = gamma ** np.arange(8)
    boundary = gamma**8 * phi(states[-1:])[0] * (not terminal_end) - phi(states[:1])[0]
    assert (disc * out).sum() == pytest.approx((disc * r).sum() + boundary, abs=1e-5)


def test_gated_accumulation_counts_lower_channel_only_when_gate_passes():
    gra = GatedAccumulation(channels=("outcome", "rewards"), thresholds=(1.0,))
    dense = a(0.5, 0.5, 0.25)
    assert both(gra, dense, outcome=a(0, 0, 1)).tolist() == [0.5, 0.5, 1.25]  # R_outcome = 1 >= 1: counted
    assert both(gra, dense, outcome=a(0, 0, 0.5)).tolist() == [0, 0, 0.5]  # gate fails: only the outcome
    assert gra.gates(dense, outcome=a(0, 0, 0.5)).tolist() == [1, 0]


def test_gated_accumulation_gate_is_cumulative_and_chained():
    # the top channel is below its threshold at every single step but its episode total clears it
    gra = GatedAccumulation(("rewards", "mid", "low"), (1.0, 0.0))
    top, mid, low = a(0.5, 0.5), a(-1, 1), a(2, 2)
    assert both(gra, top, mid=mid, low=low).tolist() == [0.5 - 1 + 2, 0.5 + 1 + 2]  # totals 1 >= 1, 0 >= 0
    # mid fails (total -0.5 < 0): low is dropped although the top channel passes
    assert both(gra, top, mid=a(-1, 0.5), low=low).tolist() == [-0.5, 1.0]
    # top fails: neither mid nor low counts, whatever they hold
    assert both(gra, a(0.5, 0.25), mid=mid, low=low).tolist() == [0.5, 0.25]
    assert gra.gates(a(0.5, 0.25), mid=mid, low=low).tolist() == [1, 0, 0]


def test_gated_accumulation_with_infinite_thresholds_is_direct_accumulation():
    gra = GatedAccumulation(("rewards", "b", "c"), (-np.inf, -np.inf))
    r, b, c = a(-5, 1), a(-7, 2), a(3, -4)
    np.testing.assert_array_equal(both(gra, r, b=b, c=c), r + b + c)


def test_flip_noise_hand_values():
    assert both(FlipNoise(1.0), a(1, -2, 0.5)).tolist() == [-1, 2, -0.5]  # sign flip
    assert both(FlipNoise(1.0, center=0.5), a(0, 1)).tolist() == [1, 0]  # §5's r -> 1 - r
    assert both(FlipNoise(0.0), a(1, -2)).tolist() == [1, -2]


def test_pattern_bonus():
    r, bonus = a(0.25, 0.5, 0.75, 0.375, 0.125), a(1, 1, 1, 1, 0)
    out = both(PatternBonus(weight=0.25, threshold=0.5, cap=0.5625), r, bonus=bonus)
    # 0.25 -> 0.5; 0.5 not below threshold; 0.75 unchanged; 0.375 + 0.25 capped at 0.5625; zero bonus
    assert out.tolist() == [0.5, 0.5, 0.75, 0.5625, 0.125]
    notes = PatternBonus()  # §5: min(1, r + 0.1 * RPR) if r < 0.5
    np.testing.assert_allclose(
        both(notes, a(0.25, 0.95, 0.5), score=None, bonus=a(1, 1, 1)), [0.35, 0.95, 0.5], rtol=1e-6
    )
    assert both(PatternBonus(bonus_key="rpr"), a(0.25), rpr=a(0.5)).tolist() == [f32(0.25) + f32(0.1) * f32(0.5)]


# ---------------------------------------------------------------------------- composition
def test_compose_applies_left_to_right_with_shared_context():
    r = a(3, -3)
    assert both(Compose((Clip(-1, 1), Delta())), r).tolist() == [1, -2]
    assert both(Compose((Delta(), Clip(-1, 1))), r).tolist() == [1, -1]
    obs, nxt = a(0, 1)[:, None], a(1, 2)[:, None]
    ctx = {"observations": obs, "next_observations": nxt, "terminals": np.zeros(2, bool)}
    chain = Compose([Clip(-1, 1), PotentialShaping(double, gamma=1.0)])
    assert both(chain, r, **ctx).tolist() == [1 + 2, -1 + 2]
    assert chain.per_step and not Compose([Clip(-1, 1), Delta()]).per_step


def test_describe_is_json_friendly():
    chain = Compose([Clip(-1, 1), FlipNoise(0.1, seed=3), PotentialShaping(double, 0.9)])
    desc = describe(chain)
    json.dumps(desc)
    assert desc["name"] == "Compose" and [d["name"] for d in desc["transforms"]] == [
        "Clip",
        "FlipNoise",
        "PotentialShaping",
    ]
    assert desc["transforms"][1] == {"name": "FlipNoise", "p": 0.1, "seed": 3, "center": 0.0, "scope": "step"}
    assert desc["transforms"][2]["potential"].endswith("double")


# ---------------------------------------------------------------------------- noise
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_flip_noise_is_seeded_and_flips_at_rate_p(backend):
    r = np.ones(10_000, f32)
    r = torch.as_tensor(r) if backend == "torch" else r
    first, again, other = FlipNoise(0.3, seed=5)(r), FlipNoise(0.3, seed=5)(r), FlipNoise(0.3, seed=6)(r)
    assert type(first) is type(r)
    first, again, other = (np.asarray(x) for x in (first, again, other))
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    assert set(np.unique(first)) == {-1.0, 1.0}
    assert (first == -1).mean() == pytest.approx(0.3, abs=0.02)  # 4 sigma at n = 10k
    noise = FlipNoise(0.3, seed=5)
    assert not np.array_equal(np.asarray(noise(r)), np.asarray(noise(r)))  # the generator advances


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_flip_noise_expectation_for_binary_rewards(backend):
    rng = np.random.default_rng(0)
    r = (rng.random(10_000) < 0.7).astype(f32)
    noisy = np.asarray(FlipNoise(0.2, seed=1, center=0.5)(torch.as_tensor(r) if backend == "torch" else r))
    assert noisy.mean() == pytest.approx(0.2 + (1 - 0.4) * r.mean(), abs=0.02)  # p + (1 - 2p) E[r]


def test_flip_noise_episode_scope_flips_whole_episodes():
    noise = FlipNoise(0.4, seed=0, scope="episode")
    assert not noise.per_step and FlipNoise(0.4).per_step
    flipped = []
    for _ in range(2000):
        out = noise(a(1, 1, 1))
        assert len(set(out.tolist())) == 1  # all or nothing
        flipped.append(out[0] == -1)
    assert np.mean(flipped) == pytest.approx(0.4, abs=0.05)


# ---------------------------------------------------------------------------- parity and devices
def context(n: int, rng: np.random.Generator) -> dict:
    terminals = np.zeros(n, bool)
    terminals[-1] = True

    def normal(*shape):
        return rng.normal(size=shape).astype(f32)

    return {
        "observations": normal(n, 2),
        "next_observations": normal(n, 2),
        "actions": normal(n, 1),
        "terminals": terminals,
        "aux": normal(n),
        "bonus": rng.random(n).astype(f32),
    }


DETERMINISTIC = [
    Clip(-0.5, 0.5),
    Delta(0.25),
    ClipDelta(0.1),
    PotentialShaping(lambda x: x.sum(1), 0.9),
    GatedAccumulation(("rewards", "aux"), (0.0,)),
    GatedAccumulation(("aux", "rewards"), (10.0,)),
    PatternBonus(0.5, 0.2, 0.6),
    Compose([PatternBonus(), Delta(), Clip(-1, 1)]),
]


@pytest.mark.parametrize("transform", DETERMINISTIC, ids=lambda t: type(t).__name__)
def test_numpy_torch_parity(transform):
    rng = np.random.default_rng(2)
    for n in (1, 2, 7):
        both(transform, rng.normal(size=n).astype(f32), **context(n, rng))


@pytest.mark.parametrize("transform", DETERMINISTIC, ids=lambda t: type(t).__name__)
def test_torch_needs_no_host_copies(transform):
    """On the meta device (shapes only, no data) any host copy or sync would raise."""
    ctx = {k: torch.as_tensor(v).to("meta") for k, v in context(5, np.random.default_rng(0)).items()}
    out = transform(torch.empty(5, device="meta"), **ctx)
    assert out.device.type == "meta" and out.shape == (5,) and out.dtype == torch.float32


@pytest.mark.parametrize("device", DEVICES)
def test_torch_stays_on_device(device):
    ctx = {k: torch.as_tensor(v, device=device) for k, v in context(6, np.random.default_rng(3)).items()}
    for transform in [*DETERMINISTIC, FlipNoise(0.5, seed=1), FlipNoise(0.5, scope="episode")]:
        rewards = torch.linspace(-1, 1, 6, device=device, dtype=torch.float64)
        ctx64 = {k: v.double() if v.is_floating_point() else v for k, v in ctx.items()}
        out = transform(rewards, **ctx64)
        assert out.device == rewards.device and out.dtype == torch.float64 and out.shape == (6,)


# ---------------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="rewards must be a numpy array or a torch tensor"):
        Clip(0, 1)([1.0, 2.0])
    with pytest.raises(ValueError, match=r"rewards must be 1-D \[T\]"):
        Clip(0, 1)(np.zeros((2, 2), f32))
    with pytest.raises(ValueError, match="rewards must have a floating-point dtype"):
        Delta()(np.arange(3))
    with pytest.raises(ValueError, match="low must not exceed high"):
        Clip(1, 0)
    with pytest.raises(ValueError, match="low must be a number"):
        Clip(float("nan"), 0)
    with pytest.raises(ValueError, match="eta must be a number"):
        ClipDelta(float("nan"))
    with pytest.raises(ValueError, match="p must be a probability"):
        FlipNoise(1.5)
    with pytest.raises(ValueError, match="scope must be"):
        FlipNoise(0.1, scope="group")
    with pytest.raises(ValueError, match="gamma must be in"):
        PotentialShaping(double, gamma=1.5)
    with pytest.raises(TypeError, match="potential must be callable"):
        PotentialShaping(3.0)
    with pytest.raises(ValueError, match="thresholds needs one value per channel"):
        GatedAccumulation(("rewards", "b"), (1.0, 2.0))
    with pytest.raises(ValueError, match="channels must be non-empty, distinct"):
        GatedAccumulation(("rewards", "rewards"), (1.0,))
    with pytest.raises(ValueError, match="threshold must not exceed cap"):
        PatternBonus(threshold=2.0, cap=1.0)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        PatternBonus(weight=-1.0)
    with pytest.raises(ValueError, match="transforms must name at least one"):
        Compose([])
    with pytest.raises(TypeError, match="transforms must be callables"):
        Compose([Clip(0, 1), 2.0])


def test_bad_context_raises_clear_errors():
    r = a(1, 2)
    with pytest.raises(ValueError, match="GatedAccumulation needs context 'outcome'"):
        GatedAccumulation(("outcome", "rewards"), (1.0,))(r)
    with pytest.raises(ValueError, match="PatternBonus: 'bonus' must have 2 rows"):
        PatternBonus()(r, bonus=a(1, 2, 3))
    with pytest.raises(TypeError, match="'bonus' must be a torch tensor like rewards"):
        PatternBonus()(torch.as_tensor(r), bonus=a(1, 2))
    with pytest.raises(TypeError, match="'bonus' must be a numpy array like rewards"):
        PatternBonus()(r, bonus=torch.ones(2))
    shaping = PotentialShaping(double)
    obs = np.zeros((2, 1), f32)
    with pytest.raises(ValueError, match="PotentialShaping needs context 'terminals'"):
        shaping(r, observations=obs, next_observations=obs)
    with pytest.raises(ValueError, match="'terminals' must be a bool"):
        shaping(r, observations=obs, next_observations=obs, terminals=np.zeros(2))
    with pytest.raises(ValueError, match=r"must have shape \[T\] or \[T, 1\]"):
        PotentialShaping(lambda x: x.repeat(2, 1))(
            r, observations=obs, next_observations=obs, terminals=np.zeros(2, bool)
        )
    with pytest.raises(TypeError, match="potential\\(next_observations\\) must return a ndarray"):
        PotentialShaping(lambda x: x.tolist())(r, observations=obs, next_observations=obs, terminals=np.zeros(2, bool))
    with pytest.raises(ValueError, match="not per_step"):
        StepAdapter(Delta())


# ---------------------------------------------------------------------------- datasets
def hand_dataset() -> OfflineDataset:
    """Three episodes: rows 0-2 end terminal, rows 3-4 end in a timeout, row 5 is unfinished."""
    obs = a(0, 1, 2, 10, 11, 20)[:, None]
    return OfflineDataset(
        observations=obs,
        actions=np.zeros((6, 1), f32),
        rewards=a(1, 2, 4, 1, 3, 5),
        next_observations=obs + 1,
        terminals=np.array([0, 0, 1, 0, 0, 0], bool),
        timeouts=np.array([0, 0, 0, 0, 1, 0], bool),
        metadata={"source": "hand"},
        infos={"outcome": a(0, 0, 1, 0, 0, 0)},
    )


def test_apply_per_episode_delta_restarts_each_episode():
    ds = hand_dataset()
    out = apply_per_episode(Delta(), ds)
    assert out.rewards.tolist() == [1, 1, 2, 1, 2, 5]
    assert out.rewards.dtype == np.float32 and ds.rewards.tolist() == [1, 2, 4, 1, 3, 5]  # input untouched
    np.testing.assert_array_equal(out.observations, ds.observations)
    np.testing.assert_array_equal(out.infos["outcome"], ds.infos["outcome"])
    assert out.metadata["source"] == "hand" and out.metadata["reward_shaping"] == [{"name": "Delta", "initial": 0.0}]
    assert "reward_shaping" not in ds.metadata
    twice = apply_per_episode(Clip(0, 1), out)
    assert [d["name"] for d in twice.metadata["reward_shaping"]] == ["Delta", "Clip"]
    json.dumps(twice.summary())


def test_apply_per_episode_potential_uses_terminals_not_timeouts():
    out = apply_per_episode(PotentialShaping(lambda o: o[:, 0], gamma=1.0), hand_dataset())
    # s' = s + 1 so F = 1 everywhere except the terminal row 2, where F = -Phi(s) = -2
    assert out.rewards.tolist() == [2, 3, 4 - 2, 2, 4, 6]


def test_apply_per_episode_gated_on_an_infos_channel():
    out = apply_per_episode(GatedAccumulation(("outcome", "rewards"), (1.0,)), hand_dataset())
    # only the first episode reaches the outcome; the others keep their (zero) outcome channel alone
    assert out.rewards.tolist() == [1, 2, 5, 0, 0, 0]


def test_apply_per_episode_rejects_bad_transforms():
    with pytest.raises(TypeError, match="transform must be callable"):
        apply_per_episode(3, hand_dataset())
    with pytest.raises(ValueError, match="transform must return a numpy array of shape"):
        apply_per_episode(lambda r, **c: r[:1], hand_dataset())
