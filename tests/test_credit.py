"""`morec.credit`: the episodic view, IRCR / RD / RRD / LaRe decomposers, their objective, factor
encoders (hand-written ones checked on a real Hopper-v4 rollout), relabelling, seeding, save/load
and input errors. Synthetic data have a known per-step reward."""

from __future__ import annotations

import itertools
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from morec.credit import (
    IRCR,
    HalfCheetahFactors,
    HopperFactors,
    IdentityFactors,
    IRCRConfig,
    LaReConfig,
    LatentRewardDecoder,
    RandomizedReturnDecomposition,
    RDConfig,
    ReturnDecomposition,
    RRDConfig,
    Walker2dFactors,
    episodic,
    hand_written_factors,
    load_decomposer,
    return_decomposition_loss,
    split_episodes,
)
from morec.credit.decomposers import Episodes, sample_steps
from morec.data import OfflineDataset
from tests.helpers import DEVICES

SMALL = {"hidden_sizes": (32, 32), "lr": 3e-3, "updates": 300, "batch_size": 128}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: one thread is much faster than several on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------ data
def hand_made() -> OfflineDataset:
    """Ten rows, ``rewards[i] = i + 1``: rows 0-2 end in a terminal, 3-4 in a timeout, 5-6 in an
    unflagged break (``next_observations[6] != observations[7]``), 7-9 are an unfinished tail."""
    i = np.arange(10, dtype=np.float32)
    obs = np.stack([i, 10 * i], axis=1)
    nxt = np.vstack([obs[1:], [[10.0, 100.0]]]).astype(np.float32)
    nxt[2], nxt[4], nxt[6] = [100.0, 100.0], [200.0, 200.0], [50.0, 50.0]
    terminals, timeouts = np.zeros(10, bool), np.zeros(10, bool)
    terminals[2], timeouts[4] = True, True
    return OfflineDataset(
        obs,
        (i / 10)[:, None],
        i + 1,
        nxt,
        terminals,
        timeouts,
        metadata={"source": "test"},
        infos={"row": np.arange(10)},
    )


def synthetic(reward_fn, episodes: int = 60, obs_dim: int = 3, act_dim: int = 2, seed: int = 0) -> OfflineDataset:
    """Episodes of 10-40 steps with Gaussian states and uniform actions; per-step reward
    ``reward_fn(obs, act)``; returned as the episodic view (true rewards in infos)."""
    rng = np.random.default_rng(seed)
    obs, nxt, act, term = [], [], [], []
    for length in rng.integers(10, 41, episodes):
        states = rng.normal(size=(length + 1, obs_dim)).astype(np.float32)
        obs.append(states[:-1]), nxt.append(states[1:])
        act.append(rng.uniform(-1, 1, (length, act_dim)).astype(np.float32))
        term.append(np.arange(length) == length - 1)
    obs, nxt, act, term = (np.concatenate(x) for x in (obs, nxt, act, term))
    ds = OfflineDataset(
        obs, act, reward_fn(obs, act), nxt, term, np.zeros(len(obs), bool), metadata={"source": "synthetic"}
    )
    return episodic(ds)


def linear_reward(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    return (obs @ np.array([1.0, -0.5, 0.25]) + act @ np.array([0.5, -1.0]) + 0.3).astype(np.float32)


def corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64), np.asarray(b, np.float64))[0, 1])


class SquareFactors:
    """A test encoder: the true latent factors of ``nonlinear_reward``."""

    name, source = "test/square", "test"

    def __call__(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        return np.stack([obs[:, 0] ** 2, 100.0 * act[:, 0]], axis=1).astype(np.float32)


def nonlinear_reward(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    return (obs[:, 0] ** 2 - act[:, 0]).astype(np.float32)


@pytest.fixture(scope="module")
def linear_data() -> OfflineDataset:
    return synthetic(linear_reward)


# ------------------------------------------------------------------------------ episodic view
def test_episodic_view_exact_values():
    ds = hand_made()
    ep = episodic(ds)
    expected = np.zeros(10, np.float32)
    expected[[2, 4, 6, 9]] = [1 + 2 + 3, 4 + 5, 6 + 7, 8 + 9 + 10]
    np.testing.assert_array_equal(ep.rewards, expected)
    np.testing.assert_array_equal(ep.infos["true_rewards"], ds.rewards)
    np.testing.assert_array_equal(ep.returns(), ds.returns())
    assert ep.metadata["episodic_rewards"] == {
        "true_rewards": "infos/true_rewards",
        "episodes": 4,
        "unfinished_last_episode": True,
    }
    assert ep.metadata["source"] == "test" and "episodic_rewards" not in ds.metadata
    for key in ("observations", "actions", "next_observations", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(ep, key), getattr(ds, key))
    np.testing.assert_array_equal(ep.infos["row"], ds.infos["row"])
    with pytest.raises(ValueError, match="already an episodic view"):
        episodic(ep)


def test_split_episodes_keeps_whole_episodes():
    train, held = split_episodes(episodic(hand_made()), 0.5, seed=0)
    assert len(train.episode_ends()) == 2 and len(held.episode_ends()) == 2
    both = np.concatenate([train.returns(), held.returns()])
    np.testing.assert_allclose(np.sort(both), [6, 9, 13, 27])


# ------------------------------------------------------------------------------ IRCR
def test_ircr_exact_values_and_normalisation():
    ep = episodic(hand_made())
    credit = np.array([2, 2, 2, 4.5, 4.5, 6.5, 6.5, 9, 9, 9], np.float32)
    ircr = IRCR()
    report = ircr.fit(ep, show_progress=False)
    assert report.method == "ircr" and report.episodes == 4 and report.encoder_source is None
    np.testing.assert_allclose(ircr.relabel(ep).rewards, credit)
    np.testing.assert_allclose(ircr.predict(ep.observations, ep.actions), credit)  # nearest fitted step
    norm = IRCR(IRCRConfig(normalize=True))
    norm.fit(ep, show_progress=False)
    np.testing.assert_allclose(norm.relabel(ep).rewards, (credit - 2) / 7, rtol=1e-6)


# ------------------------------------------------------------------------------ objective
def test_bias_corrected_objective_matches_hand_computation():
    # episode A: T = 5, R = 10, sampled predictions 1, 2, 4 (k = 3)
    #   m = 7/3, (m - R/T)^2 = 1/9, s^2 = (16/9 + 1/9 + 25/9) / 2 = 7/3, correction (1 - 3/5) * s^2 / 3 = 2.8/9
    # episode B: T = 2, R = 6, predictions 3, 5 (k = T: no correction), (4 - 3)^2 = 1
    pred = torch.tensor([[1.0, 2.0, 4.0], [3.0, 5.0, 99.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    lengths, returns = torch.tensor([5, 2]), torch.tensor([10.0, 6.0])
    corrected = return_decomposition_loss(pred, mask, lengths, returns, bias_correction=True)
    plain = return_decomposition_loss(pred, mask, lengths, returns, bias_correction=False)
    assert corrected.item() == pytest.approx(((1 / 9 - 2.8 / 9) + 1) / 2, abs=1e-6)
    assert plain.item() == pytest.approx((1 / 9 + 1) / 2, abs=1e-6)


def test_bias_corrected_objective_is_unbiased_for_rd():
    """Averaged over every K-subset of one episode, the corrected RRD loss equals the RD loss
    ``(mean - R/T)^2`` exactly, and the plain one exceeds it by ``Var_I(m_I)``."""
    r = torch.tensor([0.3, -1.2, 2.5, 0.7, 1.1, -0.4], dtype=torch.float64)
    T, R, K = len(r), 4.0, 2
    rd = (r.mean() - R / T) ** 2
    subsets = list(itertools.combinations(range(T), K))
    pred = torch.stack([r[list(s)] for s in subsets])
    ones = torch.ones_like(pred, dtype=torch.bool)
    lengths, returns = torch.full((len(subsets),), T), torch.full((len(subsets),), R, dtype=torch.float64)
    corrected = return_decomposition_loss(pred, ones, lengths, returns, bias_correction=True)
    plain = return_decomposition_loss(pred, ones, lengths, returns, bias_correction=False)
    assert corrected.item() == pytest.approx(rd.item(), abs=1e-12)
    assert plain.item() == pytest.approx(rd.item() + pred.mean(1).var(unbiased=False).item(), abs=1e-12)


def test_subset_sampling_covers_short_episodes_whole():
    ep = episodic(hand_made())
    episodes = Episodes.of(ep, torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    rows, mask = sample_steps(episodes, torch.tensor([0, 3]), 2, gen)
    assert mask.tolist() == [[True, True], [True, True]]
    assert set(rows[0].tolist()) <= {0, 1, 2} and len(set(rows[0].tolist())) == 2
    assert set(rows[1].tolist()) <= {7, 8, 9} and len(set(rows[1].tolist())) == 2
    rows, mask = sample_steps(episodes, torch.tensor([1, 3]), 64, gen)  # K > T: the whole episode
    assert mask.sum(1).tolist() == [2, 3] and sorted(rows[1].tolist()) == [7, 8, 9]
    rows, mask = sample_steps(episodes, torch.tensor([0, 1]), None, gen)  # RD: all steps in order
    assert rows[mask].tolist() == [0, 1, 2, 3, 4]


# ------------------------------------------------------------------------------ recovery
@pytest.mark.parametrize(
    "make",
    [
        lambda: ReturnDecomposition(RDConfig(**SMALL)),
        lambda: RandomizedReturnDecomposition(RRDConfig(**SMALL, subset_size=8)),
        lambda: RandomizedReturnDecomposition(RRDConfig(**SMALL, subset_size=8, bias_correction=True)),
    ],
    ids=["rd", "rrd", "rrd-unbiased"],
)
def test_learned_decomposers_recover_linear_reward(linear_data, make):
    model = make()
    report = model.fit(linear_data, seed=0, show_progress=False)
    assert report.updates == SMALL["updates"] and report.encoder == "identity"
    assert corr(model.relabel(linear_data).rewards, linear_data.infos["true_rewards"]) > 0.9


def test_lare_with_true_factors_recovers_nonlinear_reward():
    data = synthetic(nonlinear_reward, seed=1)
    lare = LatentRewardDecoder(SquareFactors(), LaReConfig(**SMALL, subset_size=8))
    report = lare.fit(data, seed=0, show_progress=False)
    assert (report.method, report.encoder, report.encoder_source) == ("lare", "test/square", "test")
    with_factors = corr(lare.relabel(data).rewards, data.infos["true_rewards"])
    identity = LatentRewardDecoder(IdentityFactors(), LaReConfig(**SMALL, subset_size=8))
    identity.fit(data, seed=0, show_progress=False)
    assert with_factors > 0.9 and with_factors > corr(identity.relabel(data).rewards, data.infos["true_rewards"]) + 0.05


def test_factor_standardisation_is_stored_and_reused(tmp_path):
    data = synthetic(nonlinear_reward, episodes=20, seed=2)
    lare = LatentRewardDecoder(SquareFactors(), LaReConfig(**{**SMALL, "updates": 20}, subset_size=8))
    lare.fit(data, show_progress=False)
    factors = SquareFactors()(data.observations, data.actions).astype(np.float64)
    np.testing.assert_allclose(lare.factor_mean.numpy(), factors.mean(0), rtol=1e-4)
    np.testing.assert_allclose(lare.factor_std.numpy(), factors.std(0), rtol=1e-4)
    full = lare.predict(data.observations, data.actions)
    single = lare.predict(data.observations[5:6], data.actions[5:6])  # one row: its own stats would be degenerate
    np.testing.assert_allclose(single, full[5:6], rtol=1e-5)
    loaded = load_decomposer(lare.save(tmp_path / "lare.pt"), encoder=SquareFactors())
    np.testing.assert_array_equal(loaded.factor_mean.numpy(), lare.factor_mean.numpy())
    np.testing.assert_array_equal(loaded.predict(data.observations, data.actions), full)


# ------------------------------------------------------------------------------ factor encoders
@pytest.mark.parametrize(
    "domain, cls, obs_dim, act_dim, k",
    [
        ("hopper", HopperFactors, 11, 3, 5),
        ("walker2d", Walker2dFactors, 17, 6, 5),
        ("halfcheetah", HalfCheetahFactors, 17, 6, 4),
    ],
)
def test_hand_written_factors_shapes_and_labels(domain, cls, obs_dim, act_dim, k):
    enc = hand_written_factors(domain)
    assert isinstance(enc, cls) and enc.source == "hand-written" and enc.name == f"hand-written/{domain}"
    assert "hand-written" in cls.__doc__.lower() and len(enc.factor_names) == k
    rng = np.random.default_rng(0)
    out = enc(rng.normal(size=(7, obs_dim)), rng.uniform(-1, 1, (7, act_dim)))
    assert out.shape == (7, k) and out.dtype == np.float32
    with pytest.raises(ValueError, match="obs must have"):
        enc(np.zeros((7, obs_dim + 1)), np.zeros((7, act_dim)))
    assert IdentityFactors()(np.zeros((7, obs_dim)), np.zeros((7, act_dim))).shape == (7, obs_dim + act_dim)


def test_hopper_forward_velocity_factor_tracks_env_velocity():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make("Hopper-v4")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    rows, acts, x_velocity = [], [], []
    for _ in range(200):
        act = rng.uniform(-1, 1, 3).astype(np.float32)
        rows.append(obs), acts.append(act)
        obs, _, terminated, truncated, info = env.step(act)
        x_velocity.append(info["x_velocity"])
        if terminated or truncated:
            obs, _ = env.reset()
    factors = HopperFactors()(np.array(rows), np.array(acts))
    assert corr(factors[:, HopperFactors.factor_names.index("forward_velocity")], x_velocity) > 0.9
    np.testing.assert_allclose(factors[:, 3], np.square(acts).sum(1), rtol=1e-5)
    assert set(np.unique(factors[:, 4])) <= {0.0, 1.0}


def test_hand_written_source_is_recorded_in_reports_and_metadata():
    rng = np.random.default_rng(0)
    n = 60
    ds = episodic(
        OfflineDataset(
            rng.normal(size=(n, 11)),
            rng.uniform(-1, 1, (n, 3)),
            rng.normal(size=n),
            rng.normal(size=(n, 11)),
            np.arange(n) % 20 == 19,
            np.zeros(n, bool),
        )
    )
    lare = LatentRewardDecoder(hand_written_factors("hopper"), LaReConfig(**{**SMALL, "updates": 5}))
    assert lare.fit(ds, show_progress=False).encoder_source == "hand-written"
    meta = lare.relabel(ds).metadata["reward_relabelling"]
    assert (
        meta["method"] == "lare"
        and meta["encoder"] == "hand-written/hopper"
        and meta["encoder_source"] == "hand-written"
    )


# ------------------------------------------------------------------------------ relabel, seeds, save/load
def test_relabel_keeps_every_other_field(linear_data):
    model = RandomizedReturnDecomposition(RRDConfig(**{**SMALL, "updates": 10}, subset_size=8))
    model.fit(linear_data, show_progress=False)
    out = model.relabel(linear_data)
    for key, value in linear_data.arrays().items():
        if key != "rewards":
            np.testing.assert_array_equal(getattr(out, key), value)
    assert out.infos.keys() == linear_data.infos.keys()
    for key, value in linear_data.infos.items():
        np.testing.assert_array_equal(out.infos[key], value)
    assert {k: v for k, v in out.metadata.items() if k != "reward_relabelling"} == linear_data.metadata
    assert out.metadata["reward_relabelling"]["method"] == "rrd" and out.rewards.dtype == np.float32
    assert not np.array_equal(out.rewards, linear_data.rewards)


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_relabelling(linear_data, device):
    def run(seed):
        model = LatentRewardDecoder(
            IdentityFactors(), LaReConfig(**{**SMALL, "updates": 50}, subset_size=8), device=device
        )
        model.fit(linear_data, seed=seed, show_progress=False)
        out = model.predict(
            torch.as_tensor(linear_data.observations[:5], device=device),
            torch.as_tensor(linear_data.actions[:5], device=device),
        )
        assert out.device.type == device
        return model.relabel(linear_data).rewards

    first, again, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    "make",
    [
        lambda: IRCR(IRCRConfig(normalize=True)),
        lambda: ReturnDecomposition(RDConfig(**{**SMALL, "updates": 5})),
        lambda: RandomizedReturnDecomposition(RRDConfig(**{**SMALL, "updates": 5}, bias_correction=True)),
        lambda: LatentRewardDecoder(IdentityFactors(), LaReConfig(**{**SMALL, "updates": 5})),
    ],
    ids=["ircr", "rd", "rrd", "lare"],
)
def test_save_load_round_trip(linear_data, tmp_path, make):
    model = make()
    model.fit(linear_data, seed=3, show_progress=False)
    loaded = load_decomposer(model.save(tmp_path / "model.pt"))
    assert type(loaded) is type(model) and loaded.config == model.config and loaded.report == model.report
    obs, act = linear_data.observations[:50], linear_data.actions[:50]
    np.testing.assert_array_equal(loaded.predict(obs, act), model.predict(obs, act))
    np.testing.assert_array_equal(loaded.relabel(linear_data).rewards, model.relabel(linear_data).rewards)
    out = loaded.predict(torch.as_tensor(obs), torch.as_tensor(act))
    assert isinstance(out, torch.Tensor) and out.shape == (50,) and out.device == torch.device("cpu")


# ------------------------------------------------------------------------------ errors
def test_bad_inputs_raise_clear_errors(linear_data, tmp_path):
    with pytest.raises(TypeError, match="dataset must be an OfflineDataset"):
        episodic({"rewards": [1.0]})
    with pytest.raises(ValueError, match="updates"):
        RDConfig(updates=0)
    with pytest.raises(ValueError, match="hidden_sizes"):
        RDConfig(hidden_sizes=())
    with pytest.raises(ValueError, match="subset_size"):
        RRDConfig(subset_size=1, bias_correction=True)
    with pytest.raises(ValueError, match="holdout"):
        split_episodes(linear_data, 1.5)
    with pytest.raises(TypeError, match="encoder must have"):
        LatentRewardDecoder(lambda o, a: o)
    with pytest.raises(ValueError, match="no hand-written factors"):
        hand_written_factors("ant")
    model = RandomizedReturnDecomposition(RRDConfig(**{**SMALL, "updates": 5}))
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(linear_data.observations, linear_data.actions)
    with pytest.raises(TypeError, match="dataset must be an OfflineDataset"):
        model.fit(linear_data.arrays())
    model.fit(linear_data, show_progress=False)
    with pytest.raises(ValueError, match="obs must have 3 columns"):
        model.predict(np.zeros((4, 5)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="obs has 4 rows but act has 3"):
        model.predict(np.zeros((4, 3)), np.zeros((3, 2)))

    class Broken:
        name, source = "test/broken", "test"

        def __call__(self, obs, act):
            return obs[:, 0]

    with pytest.raises(ValueError, match="returned shape"):
        LatentRewardDecoder(Broken(), LaReConfig(**SMALL)).fit(linear_data, show_progress=False)
    lare = LatentRewardDecoder(SquareFactors(), LaReConfig(**{**SMALL, "updates": 2}))
    lare.fit(linear_data, show_progress=False)
    path = lare.save(tmp_path / "lare.pt")
    with pytest.raises(ValueError, match="not built in"):
        load_decomposer(path)
    with pytest.raises(ValueError, match="fitted with 'test/square'"):
        load_decomposer(path, encoder=IdentityFactors())
