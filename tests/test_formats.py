"""On-disk formats and `load_dataset` sources: D4RL hdf5, NeoRL npz, local Minari datasets.

Everything runs offline: the dataset folders point into ``tmp_path`` and the downloader is
replaced by one that fails like a machine without network."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from morec.data import DatasetError, OfflineDataset, d4rl_file_name, formats, load_dataset, neorl_file_name, sources

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Dataset folders under tmp_path; any download attempt fails with OSError."""
    dirs = SimpleNamespace(d4rl=tmp_path / "d4rl", neorl=tmp_path / "neorl", minari=tmp_path / "minari", calls=[])
    monkeypatch.setenv("D4RL_DATASET_DIR", str(dirs.d4rl))
    monkeypatch.setenv("NEORL_DATASET_DIR", str(dirs.neorl))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(dirs.minari))

    def no_network(url, target):
        dirs.calls.append((url, target))
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(sources, "_download", no_network)
    return dirs


# ------------------------------------------------------------------------------------ helpers
def flagged_arrays(n: int = 12, obs_dim: int = 11, act_dim: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Three episodes: rows 0-4 end in a terminal, rows 5-9 in a timeout, rows 10-11 in a timeout.
    Within an episode ``next_observations[i] == observations[i + 1]``."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n + 1, obs_dim)).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[4] = True
    timeouts = np.zeros(n, bool)
    timeouts[[9, n - 1]] = True
    nxt = obs[1:].copy()
    nxt[[4, 9]] = rng.normal(size=(2, obs_dim))
    return {
        "observations": obs[:n],
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "next_observations": nxt,
        "terminals": terminals,
        "timeouts": timeouts,
    }


def assert_same_arrays(loaded: OfflineDataset, expected) -> None:
    for name in FIELDS:
        want = expected[name] if isinstance(expected, dict) else getattr(expected, name)
        got = getattr(loaded, name)
        assert got.dtype == (np.bool_ if name in ("terminals", "timeouts") else np.float32), name
        np.testing.assert_array_equal(got, want, err_msg=name)


def write_neorl(path, lengths, done, *, obs_dim=12, seed=0, leading_zero=False, drop=()) -> dict[str, np.ndarray]:
    """A NeoRL npz written by hand: ``index`` holds the cumulative trajectory ends as float32;
    ``done[k]`` says whether trajectory ``k`` ends in a terminal (otherwise it was cut)."""
    rng = np.random.default_rng(seed)
    ends = np.cumsum(lengths)
    n = int(ends[-1])
    obs = rng.normal(size=(n + 1, obs_dim)).astype(np.float32)
    next_obs = obs[1:].copy()
    next_obs[ends - 1] = rng.normal(size=(len(ends), obs_dim))
    done_col = np.zeros((n, 1), np.float32)
    done_col[ends[np.asarray(done, bool)] - 1] = 1.0
    index = ends.astype(np.float32)
    if leading_zero:
        index = np.concatenate([[0.0], index]).astype(np.float32)
    data = {
        "obs": obs[:n],
        "next_obs": next_obs,
        "action": rng.uniform(-1, 1, size=(n, 3)).astype(np.float32),
        "reward": rng.normal(size=(n, 1)).astype(np.float32),
        "done": done_col,
        "index": index,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in data.items() if k not in drop})
    return data


def write_official_d4rl(path, n: int = 12, obs_dim: int = 11, timeouts: bool = True) -> dict[str, np.ndarray]:
    """A file laid out like D4RL's own: flat arrays, ``infos/`` extras, a ``metadata/`` group and no
    morec metadata attribute."""
    arrays = flagged_arrays(n, obs_dim)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if key != "timeouts" or timeouts:
                f.create_dataset(key, data=value)
        f.create_dataset("infos/qpos", data=np.arange(n * 6, dtype=np.float64).reshape(n, 6))
        f.create_dataset("infos/action_log_probs", data=np.linspace(-1, 0, n))
        f.create_dataset("infos/short", data=np.zeros(3))  # not one row per transition: skipped
        f.create_dataset("metadata/algorithm", data="SAC")
    return arrays


# -------------------------------------------------------------------------------- D4RL hdf5
@pytest.mark.parametrize("suffix", [".hdf5", ".h5"])
def test_hdf5_round_trip(tmp_path, suffix):
    arrays = flagged_arrays()
    infos = {"qpos": np.arange(72, dtype=np.float64).reshape(12, 6), "flag": np.arange(12) % 2 == 0}
    ds = OfflineDataset.from_arrays(**arrays, env_id="Hopper-v4", infos=infos)
    path = ds.save(tmp_path / "out" / f"hopper{suffix}")
    assert path == tmp_path / "out" / f"hopper{suffix}"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind

    loaded = load_dataset(path)
    assert_same_arrays(loaded, arrays)
    assert set(loaded.infos) == {"qpos", "flag"}
    np.testing.assert_array_equal(loaded.infos["qpos"], infos["qpos"])
    assert loaded.infos["flag"].dtype == np.bool_
    np.testing.assert_array_equal(loaded.infos["flag"], infos["flag"])
    assert loaded.metadata["layout"] == "d4rl"
    assert loaded.metadata["env_id"] == "Hopper-v4"
    assert loaded.metadata["task"] == "hopper"
    assert loaded.metadata["source"] == str(path) and loaded.metadata["path"] == str(path)
    np.testing.assert_array_equal(loaded.episode_ends(), [4, 9, 11])
    np.testing.assert_array_equal(loaded.returns(), ds.returns())


def test_hdf5_file_layout(tmp_path):
    ds = OfflineDataset.from_arrays(**flagged_arrays(), env_id="Hopper-v4", infos={"qvel": np.ones((12, 6))})
    path = ds.save(tmp_path / "d.hdf5")
    with h5py.File(path, "r") as f:
        assert set(f) == {*FIELDS, "infos"}
        assert set(f["infos"]) == {"qvel"}
        assert f["rewards"].shape == (12,) and f["terminals"].dtype == np.bool_
        meta = json.loads(f.attrs[formats.METADATA_ATTR])
    assert meta == ds.summary()["metadata"]
    assert meta["env_id"] == "Hopper-v4" and meta["layout"] == "d4rl"


def test_hdf5_round_trip_of_other_layouts(tmp_path):
    neorl = OfflineDataset.from_arrays(**flagged_arrays(obs_dim=12), env_id="Hopper-v3-low-100")
    loaded = load_dataset(neorl.save(tmp_path / "n.hdf5"))
    assert_same_arrays(loaded, neorl)
    assert (loaded.metadata["layout"], loaded.metadata["env_id"], loaded.metadata["benchmark"]) == (
        "neorl",
        "Hopper-v4",
        "neorl",
    )
    plain = OfflineDataset.from_arrays(**flagged_arrays(obs_dim=4, act_dim=2))
    loaded = load_dataset(plain.save(tmp_path / "p.hdf5"))
    assert_same_arrays(loaded, plain)
    assert loaded.metadata["layout"] is None and loaded.metadata["env_id"] is None


def test_hdf5_env_id_argument_checks_the_file(tmp_path):
    path = OfflineDataset.from_arrays(**flagged_arrays(obs_dim=4, act_dim=2)).save(tmp_path / "p.hdf5")
    with pytest.raises(DatasetError, match=r"field 'observations' has 4 columns but Hopper-v4 \(d4rl layout\) has 11"):
        load_dataset(path, env_id="Hopper-v4")


def test_official_d4rl_file_from_dataset_dir(offline):
    assert d4rl_file_name("hopper-medium-v2") == "hopper_medium-v2.hdf5"
    arrays = write_official_d4rl(offline.d4rl / "hopper_medium-v2.hdf5")
    ds = load_dataset("d4rl:hopper-medium-v2", download=False)
    assert_same_arrays(ds, arrays)
    assert set(ds.infos) == {"qpos", "action_log_probs"}
    np.testing.assert_array_equal(ds.infos["qpos"], np.arange(72).reshape(12, 6))
    assert ds.metadata["source"] == "d4rl:hopper-medium-v2"
    assert ds.metadata["path"] == str(offline.d4rl / "hopper_medium-v2.hdf5")
    assert (ds.metadata["env_id"], ds.metadata["layout"], ds.metadata["benchmark"]) == ("Hopper-v4", "d4rl", "d4rl")
    assert ds.metadata["actions_clipped"] is False
    assert offline.calls == []


def test_official_d4rl_file_without_timeouts(offline):
    arrays = write_official_d4rl(offline.d4rl / "hopper_random-v2.hdf5", timeouts=False)
    ds = load_dataset("d4rl:hopper-random-v2")  # present locally: no download attempted
    assert offline.calls == []
    assert not ds.timeouts.any()
    np.testing.assert_array_equal(ds.terminals, arrays["terminals"])
    # the timeout rows still end episodes: their next observation does not continue
    np.testing.assert_array_equal(ds.episode_ends(), [4, 9, 11])


def test_hdf5_without_morec_metadata_has_the_d4rl_layout(tmp_path):
    path = tmp_path / "official.hdf5"
    arrays = write_official_d4rl(path)
    ds = load_dataset(path, env_id="Hopper-v3-low-100")  # a NeoRL name, but the file is D4RL-format
    assert_same_arrays(ds, arrays)
    assert (ds.metadata["layout"], ds.metadata["env_id"], ds.metadata["benchmark"]) == ("d4rl", "Hopper-v4", "neorl")
    bare = load_dataset(path)
    assert (bare.metadata["layout"], bare.metadata["env_id"]) == (None, None)
    assert set(bare.infos) == {"qpos", "action_log_probs"}


@pytest.mark.parametrize(
    "name, file",
    [
        ("hopper-medium-replay-v2", "hopper_medium_replay-v2.hdf5"),
        ("halfcheetah-medium-expert-v2", "halfcheetah_medium_expert-v2.hdf5"),
        ("walker2d-random-v2", "walker2d_random-v2.hdf5"),
        ("d4rl:hopper-expert-v2", "hopper_expert-v2.hdf5"),
    ],
)
def test_d4rl_file_name(name, file):
    assert d4rl_file_name(name) == file


def test_d4rl_missing_file_without_download(offline):
    expected = offline.d4rl / "walker2d_medium_replay-v2.hdf5"
    with pytest.raises(DatasetError) as err:
        load_dataset("d4rl:walker2d-medium-replay-v2", download=False)
    assert str(expected) in str(err.value)
    assert "downloads are off" in str(err.value)
    assert offline.calls == []


def test_d4rl_download_failure_names_the_file(offline):
    expected = offline.d4rl / "hopper_medium-v2.hdf5"
    with pytest.raises(DatasetError) as err:
        load_dataset("d4rl:hopper-medium-v2")
    message = str(err.value)
    assert str(expected) in message
    assert sources.D4RL_URL.format(file="hopper_medium-v2.hdf5") in message
    assert "network is unreachable (test)" in message
    assert offline.calls == [(sources.D4RL_URL.format(file="hopper_medium-v2.hdf5"), expected)]
    assert not expected.exists()


def test_d4rl_download_success_is_loaded(offline, monkeypatch):
    arrays = flagged_arrays()
    calls = []

    def fake_download(url, target):
        calls.append((url, target))
        OfflineDataset.from_arrays(**arrays).save(target)

    monkeypatch.setattr(sources, "_download", fake_download)
    ds = load_dataset("d4rl:hopper-expert-v2")
    assert calls == [(sources.D4RL_URL.format(file="hopper_expert-v2.hdf5"), offline.d4rl / "hopper_expert-v2.hdf5")]
    assert_same_arrays(ds, arrays)
    assert ds.metadata["env_id"] == "Hopper-v4" and ds.metadata["layout"] == "d4rl"


def test_d4rl_file_with_wrong_observation_size(offline):
    write_official_d4rl(offline.d4rl / "hopper_expert-v2.hdf5", obs_dim=12)
    with pytest.raises(
        DatasetError, match=r"field 'observations' has 12 columns but hopper-expert-v2 \(d4rl layout\) has 11"
    ):
        load_dataset("d4rl:hopper-expert-v2", download=False)


def test_d4rl_scheme_rejects_other_benchmarks():
    with pytest.raises(DatasetError, match="'Hopper-v3-low-100' is not a D4RL locomotion name"):
        load_dataset("d4rl:Hopper-v3-low-100", download=False)
    with pytest.raises(DatasetError, match="'Hopper-v4' is not a D4RL locomotion name"):
        load_dataset("d4rl:Hopper-v4", download=False)


@pytest.mark.parametrize("source", ["d4rl:hopper-mediumm-v2", "neorl:Ant-v3-low-100"])
def test_unknown_benchmark_name_is_a_dataset_error(source):
    with pytest.raises(DatasetError, match="unknown task"):
        load_dataset(source, download=False)


def test_hdf5_missing_key(tmp_path):
    path = tmp_path / "partial.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((3, 2))
        f["actions"] = np.zeros((3, 1))
        f["terminals"] = np.zeros(3, bool)
    with pytest.raises(DatasetError, match=r"missing key\(s\) \['rewards'\]") as err:
        load_dataset(path)
    assert str(path) in str(err.value)


def test_hdf5_length_mismatch_names_the_field(tmp_path):
    arrays = flagged_arrays()
    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value[:-1] if key == "rewards" else value
    with pytest.raises(DatasetError, match="field 'rewards' has 11 rows but 'observations' has 12"):
        load_dataset(path)


def test_hdf5_with_nan_names_the_field(tmp_path):
    arrays = flagged_arrays()
    arrays["next_observations"][7, 3] = np.nan
    path = tmp_path / "nan.hdf5"
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value
    with pytest.raises(
        DatasetError, match=r"field 'next_observations' has 1 NaN/inf value\(s\) in 1 row\(s\), first at row 7"
    ):
        load_dataset(path)


@pytest.mark.parametrize("suffix", [".hdf5", ".h5"])
def test_garbage_hdf5(tmp_path, suffix):
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"this is not an hdf5 file\n" * 20)
    with pytest.raises(DatasetError, match="not a readable hdf5 file") as err:
        load_dataset(path)
    assert str(path) in str(err.value)


# -------------------------------------------------------------------------------- NeoRL npz
def test_npz_round_trip(tmp_path):
    arrays = flagged_arrays(obs_dim=12)
    ds = OfflineDataset.from_arrays(**arrays, env_id="Hopper-v4", layout="neorl")
    assert ds.metadata["layout"] == "neorl"
    path = ds.save(tmp_path / "hopper.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["hopper.npz"]

    loaded = load_dataset(path, env_id="Hopper-v4")
    assert_same_arrays(loaded, arrays)
    assert (loaded.metadata["layout"], loaded.metadata["env_id"]) == ("neorl", "Hopper-v4")
    assert loaded.metadata["source"] == str(path)
    np.testing.assert_array_equal(loaded.returns(), ds.returns())
    # the npz format has no room for the environment: without env_id it is unknown, the layout is NeoRL's
    bare = load_dataset(path)
    assert_same_arrays(bare, arrays)
    assert (bare.metadata["layout"], bare.metadata["env_id"]) == ("neorl", None)


def test_npz_file_layout(tmp_path):
    ds = OfflineDataset.from_arrays(**flagged_arrays(obs_dim=12), env_id="Hopper-v4", layout="neorl")
    with np.load(ds.save(tmp_path / "x.npz")) as data:
        assert set(data.files) == {"obs", "next_obs", "action", "reward", "done", "index"}
        assert data["reward"].shape == (12, 1) and data["done"].shape == (12, 1)
        assert data["done"].dtype == np.float32 and data["index"].dtype == np.float32
        np.testing.assert_array_equal(data["index"], [5, 10, 12])
        np.testing.assert_array_equal(data["done"][:, 0], ds.terminals.astype(np.float32))
        np.testing.assert_array_equal(data["obs"], ds.observations)


def test_npz_unfinished_last_episode_becomes_a_timeout(tmp_path):
    arrays = flagged_arrays(obs_dim=12)
    arrays["timeouts"][-1] = False  # unfinished tail
    ds = OfflineDataset.from_arrays(**arrays, env_id="Hopper-v4", layout="neorl")
    loaded = load_dataset(ds.save(tmp_path / "x.npz"), env_id="Hopper-v4")
    expected = dict(arrays)
    expected["timeouts"] = arrays["timeouts"].copy()
    expected["timeouts"][-1] = True
    assert_same_arrays(loaded, expected)


def test_npz_needs_neorl_layout(tmp_path):
    ds = OfflineDataset.from_arrays(**flagged_arrays(), env_id="Hopper-v4")
    with pytest.raises(DatasetError, match="layout 'neorl'"):
        ds.save(tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("leading_zero", [False, True])
def test_handwritten_neorl_npz(tmp_path, leading_zero):
    path = tmp_path / "hand.npz"
    data = write_neorl(path, [4, 3, 2], done=[True, False, True], leading_zero=leading_zero)
    ds = load_dataset(path, env_id="Hopper-v4")
    np.testing.assert_array_equal(ds.observations, data["obs"])
    np.testing.assert_array_equal(ds.next_observations, data["next_obs"])
    np.testing.assert_array_equal(ds.actions, data["action"])
    np.testing.assert_array_equal(ds.rewards, data["reward"][:, 0])
    assert ds.rewards.shape == (9,)
    # trajectory 2 (rows 4-6) was cut without done: a timeout
    np.testing.assert_array_equal(np.flatnonzero(ds.terminals), [3, 8])
    np.testing.assert_array_equal(np.flatnonzero(ds.timeouts), [6])
    np.testing.assert_array_equal(ds.episode_lengths(), [4, 3, 2])
    np.testing.assert_allclose(
        ds.returns(), [data["reward"][i:j, 0].astype(np.float64).sum() for i, j in ((0, 4), (4, 7), (7, 9))], rtol=1e-12
    )
    assert ds.metadata["layout"] == "neorl" and ds.metadata["env_id"] == "Hopper-v4"


def test_neorl_npz_missing_keys(tmp_path):
    path = tmp_path / "partial.npz"
    write_neorl(path, [2, 2], done=[True, True], drop=("done", "index"))
    with pytest.raises(DatasetError, match=r"missing NeoRL key\(s\) \['done', 'index'\]") as err:
        load_dataset(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "index, lengths",
    [
        ([0.0, 4.0, 7.0], [4, 3, 2]),  # NeoRL's get_dataset: trajectory starts, a leading 0 and no final end
        ([0.0, 4.0, 7.0, 9.0], [4, 3, 2]),  # the file's ends with a leading 0
        ([0.0, 7.0], [7, 2]),  # the starts of two trajectories
        ([0.0], [9]),  # the start of one
    ],
)
def test_neorl_index_of_ends_or_starts(tmp_path, index, lengths):
    path = tmp_path / "starts.npz"
    data = write_neorl(path, [4, 3, 2], done=[True, False, True])
    data["index"] = np.asarray(index, np.float32)
    np.savez(path, **data)
    ds = load_dataset(path, env_id="Hopper-v4")
    np.testing.assert_array_equal(ds.observations, data["obs"])
    np.testing.assert_array_equal(np.flatnonzero(ds.terminals), [3, 8])
    # a trajectory that ends without done was cut at the time limit: a timeout on its last row
    cut = [end - 1 for end in np.cumsum(lengths) if end - 1 not in (3, 8)]
    np.testing.assert_array_equal(np.flatnonzero(ds.timeouts), cut)
    np.testing.assert_array_equal(ds.episode_ends(), [3, 6, 8])  # next_obs breaks after row 6 whatever the index says


def test_neorl_name_reads_a_saved_get_dataset_output(offline):
    """`neorl:` names read the first N trajectories of a file whose index holds starts, too."""
    path, data = hopper_neorl_file(offline.neorl, 100, trajectories=120, length=3)
    data["index"] = np.arange(0, 360, 3, dtype=np.float32)  # 120 starts, no final end
    np.savez(path, **data)
    ds = load_dataset("neorl:Hopper-v3-low-100", download=False)
    assert len(ds) == 300 and len(ds.episode_ends()) == 100
    np.testing.assert_array_equal(ds.observations, data["obs"][:300])
    np.testing.assert_array_equal(ds.episode_lengths(), [3] * 100)


def test_neorl_index_that_stops_before_the_last_row_is_refused(tmp_path):
    """Ends without a leading 0 that stop short leave rows in no trajectory: a damaged file."""
    path = tmp_path / "short.npz"
    data = write_neorl(path, [4, 3, 2], done=[True, False, True])
    data["index"] = np.asarray([4.0, 7.0], np.float32)
    np.savez(path, **data)
    with pytest.raises(DatasetError, match="field 'index' ends at row 7 but the file has 9 rows"):
        load_dataset(path)


@pytest.mark.parametrize(
    "index", [[4.0, 3.0, 9.0], [4.0, 7.0, 20.0], [0.0, 4.0, 4.0], [0.0, 12.0], [], [-1.0, 9.0], [0.0, -2.0]]
)
def test_neorl_bad_index(tmp_path, index):
    path = tmp_path / "bad.npz"
    data = write_neorl(path, [4, 3, 2], done=[True, False, True])
    data["index"] = np.asarray(index, np.float32)
    np.savez(path, **data)
    with pytest.raises(DatasetError, match="field 'index' must be increasing trajectory ends within 1..9"):
        load_dataset(path)


def test_neorl_npz_with_nan_reward(tmp_path):
    path = tmp_path / "nan.npz"
    data = write_neorl(path, [4, 3, 2], done=[True, False, True])
    data["reward"][5, 0] = np.inf
    np.savez(path, **data)
    with pytest.raises(DatasetError, match=r"field 'rewards' has 1 NaN/inf value\(s\) in 1 row\(s\), first at row 5"):
        load_dataset(path)


def test_garbage_npz(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"definitely not numpy data\n" * 20)
    with pytest.raises(DatasetError, match="not a readable npz file") as err:
        load_dataset(path)
    assert str(path) in str(err.value)


def test_truncated_npz_is_a_dataset_error(tmp_path):
    ds = OfflineDataset.from_arrays(**flagged_arrays(obs_dim=12), env_id="Hopper-v4", layout="neorl")
    whole = ds.save(tmp_path / "whole.npz").read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DatasetError, match="not a readable npz file"):
        load_dataset(path)


def hopper_neorl_file(folder, size, level="low", split="train", trajectories=None, length=2, seed=0):
    trajectories = size if trajectories is None else trajectories
    path = folder / neorl_file_name(f"Hopper-v3-{level}", size, split)
    done = np.arange(trajectories) % 3 == 0
    return path, write_neorl(path, [length] * trajectories, done=done, seed=seed)


def test_neorl_file_name():
    assert neorl_file_name("Hopper-v3-low", 100) == "Hopper-v3-low-100-train-noise.npz"
    assert neorl_file_name("Walker2d-v3-expert", 10000, "val") == "Walker2d-v3-expert-10000-val-noise.npz"


def test_neorl_name_finds_the_exact_file(offline):
    path, data = hopper_neorl_file(offline.neorl, 100)
    assert path.name == "Hopper-v3-low-100-train-noise.npz"
    ds = load_dataset("neorl:Hopper-v3-low-100", download=False)
    assert len(ds) == 200 and len(ds.episode_ends()) == 100
    np.testing.assert_array_equal(ds.observations, data["obs"])
    np.testing.assert_array_equal(ds.terminals, data["done"][:, 0] == 1)
    np.testing.assert_array_equal(np.flatnonzero(ds.timeouts), [2 * k + 1 for k in range(100) if k % 3])
    assert ds.metadata["source"] == "neorl:Hopper-v3-low-100"
    assert ds.metadata["path"] == str(path)
    assert (ds.metadata["layout"], ds.metadata["env_id"], ds.metadata["benchmark"]) == ("neorl", "Hopper-v4", "neorl")
    assert ds.metadata["split"] == "train"
    assert offline.calls == []


def test_neorl_name_slices_a_larger_local_file(offline):
    hopper_neorl_file(offline.neorl, 10, seed=1)  # smaller: unusable
    hopper_neorl_file(offline.neorl, 1000, level="medium", trajectories=120, seed=2)  # other level
    hopper_neorl_file(offline.neorl, 1000, split="val", trajectories=120, seed=3)  # other split
    bigger, _ = hopper_neorl_file(offline.neorl, 10000, trajectories=130, length=2, seed=4)
    path, data = hopper_neorl_file(offline.neorl, 1000, trajectories=120, length=3, seed=5)
    ds = load_dataset("neorl:Hopper-v3-low-100", download=False)
    assert ds.metadata["path"] == str(path)  # the smallest file that is large enough
    assert len(ds) == 300 and len(ds.episode_ends()) == 100  # first 100 of 120 trajectories
    np.testing.assert_array_equal(ds.observations, data["obs"][:300])
    np.testing.assert_array_equal(ds.rewards, data["reward"][:300, 0])
    np.testing.assert_array_equal(ds.episode_lengths(), [3] * 100)
    assert offline.calls == []
    assert bigger.exists()


def test_neorl_val_split(offline):
    path, data = hopper_neorl_file(offline.neorl, 100, split="val", seed=7)
    hopper_neorl_file(offline.neorl, 100, split="train", seed=8)
    ds = load_dataset("neorl:Hopper-v3-low-100", split="val", download=False)
    assert ds.metadata["split"] == "val" and ds.metadata["path"] == str(path)
    np.testing.assert_array_equal(ds.observations, data["obs"])
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        load_dataset("neorl:Hopper-v3-low-100", split="test", download=False)


def test_neorl_file_with_too_few_trajectories(offline):
    hopper_neorl_file(offline.neorl, 100, trajectories=50)
    with pytest.raises(DatasetError, match="holds 50 trajectories, fewer than the 100 asked for"):
        load_dataset("neorl:Hopper-v3-low-100", download=False)


def test_neorl_missing_file_without_download(offline):
    expected = offline.neorl / "Hopper-v3-low-100-train-noise.npz"
    with pytest.raises(DatasetError) as err:
        load_dataset("neorl:Hopper-v3-low-100", download=False)
    assert str(expected) in str(err.value) and "downloads are off" in str(err.value)
    assert offline.calls == []


def test_neorl_download_failure_names_the_file(offline):
    expected = offline.neorl / "HalfCheetah-v3-medium-1000-train-noise.npz"
    url = sources.NEORL_URL.format(task="HalfCheetah-v3", file=expected.name)
    with pytest.raises(DatasetError) as err:
        load_dataset("neorl:HalfCheetah-v3-medium-1000")
    assert str(expected) in str(err.value) and url in str(err.value)
    assert offline.calls == [(url, expected)]


def test_neorl_name_needs_a_trajectory_count():
    with pytest.raises(DatasetError, match="needs a trajectory count, e.g. 'Hopper-v3-low-100'"):
        load_dataset("neorl:Hopper-v3-low", download=False)


# -------------------------------------------------------------------------------------- Minari
def make_minari_dataset(dataset_id: str):
    """Three short random Hopper-v5 episodes: terminated, truncated, and both."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    rng = np.random.default_rng(0)
    episodes = []
    for k, (steps, term, trunc) in enumerate([(4, True, False), (3, False, True), (2, True, True)]):
        episodes.append(
            EpisodeBuffer(
                id=k,
                observations=list(rng.normal(size=(steps + 1, 11))),
                actions=list(rng.uniform(-1, 1, size=(steps, 3)).astype(np.float32)),
                rewards=list(rng.normal(size=steps)),
                terminations=[False] * (steps - 1) + [term],
                truncations=[False] * (steps - 1) + [trunc],
            )
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make("Hopper-v5")
        try:
            minari.create_dataset_from_buffers(dataset_id, episodes, env=env, algorithm_name="random")
        finally:
            env.close()
    return episodes


def test_minari_local_dataset(offline):
    episodes = make_minari_dataset("morec/hopper-unit-v0")
    assert (offline.minari / "morec" / "hopper-unit-v0").is_dir()
    ds = load_dataset("minari:morec/hopper-unit-v0")
    assert len(ds) == 9
    obs = [np.asarray(ep.observations, np.float32) for ep in episodes]
    np.testing.assert_array_equal(ds.observations, np.concatenate([o[:-1] for o in obs]))
    np.testing.assert_array_equal(ds.next_observations, np.concatenate([o[1:] for o in obs]))
    np.testing.assert_array_equal(ds.actions, np.concatenate([np.asarray(ep.actions, np.float32) for ep in episodes]))
    np.testing.assert_array_equal(ds.rewards, np.concatenate([np.asarray(ep.rewards, np.float32) for ep in episodes]))
    # terminations -> terminals; truncations -> timeouts unless also terminated
    np.testing.assert_array_equal(np.flatnonzero(ds.terminals), [3, 8])
    np.testing.assert_array_equal(np.flatnonzero(ds.timeouts), [6])
    np.testing.assert_array_equal(ds.episode_lengths(), [4, 3, 2])
    assert ds.metadata["env_id"] == "Hopper-v5"
    assert ds.metadata["layout"] == "d4rl" and ds.metadata["benchmark"] == "gym"
    assert ds.metadata["source"] == "minari:morec/hopper-unit-v0"
    assert ds.metadata["minari_id"] == "morec/hopper-unit-v0"


def test_minari_missing_dataset(offline):
    with pytest.raises(DatasetError, match=r"Minari dataset 'morec/absent-v0' is not in local storage") as err:
        load_dataset("minari:morec/absent-v0")
    assert str(offline.minari) in str(err.value)


# ------------------------------------------------------------------------------ other sources
def test_missing_path_and_unknown_formats(tmp_path):
    missing = tmp_path / "nope.hdf5"
    with pytest.raises(DatasetError, match="does not exist") as err:
        load_dataset(missing)
    assert str(missing) in str(err.value)
    other = tmp_path / "data.csv"
    other.write_text("1,2,3\n")
    with pytest.raises(DatasetError, match="cannot tell the format"):
        load_dataset(other)
    with pytest.raises(DatasetError, match="unknown dataset scheme 'foo'"):
        load_dataset("foo:bar")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "file.bin"

    def failing(tmp):
        tmp.write_bytes(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        formats.atomic_write(target, failing)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
    formats.atomic_write(target, lambda tmp: tmp.write_bytes(b"whole"))
    assert target.read_bytes() == b"whole"
    assert list(target.parent.iterdir()) == [target]
