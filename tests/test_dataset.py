"""`OfflineDataset`: validation of raw arrays, episode structure, derived next observations,
statistics and subsets, all on small hand-made data with exact expected values."""

from __future__ import annotations

import numpy as np
import pytest

from morec.data import ArrayStats, DatasetError, OfflineDataset, load_dataset

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


# ------------------------------------------------------------------------------------ helpers
def episode_arrays() -> dict[str, np.ndarray]:
    """Ten rows, four episodes ended in four different ways:

    rows 0-2 end with a terminal, rows 3-4 with a timeout, rows 5-6 with an unflagged break
    (``next_observations[6] != observations[7]``, no flag) and rows 7-9 are an unfinished tail.
    ``observations[i] = [i, 10 i]``, ``rewards[i] = i + 1``."""
    n = 10
    i = np.arange(n, dtype=np.float32)
    obs = np.stack([i, 10 * i], axis=1)
    nxt = np.vstack([obs[1:], [[10.0, 100.0]]]).astype(np.float32)
    nxt[2] = [100.0, 100.0]  # terminal: the successor is unrelated to row 3
    nxt[4] = [200.0, 200.0]  # timeout: row 5 is a reset
    nxt[6] = [50.0, 50.0]  # unflagged break
    terminals = np.zeros(n, bool)
    terminals[2] = True
    timeouts = np.zeros(n, bool)
    timeouts[4] = True
    return {
        "observations": obs,
        "actions": (i / n)[:, None],
        "rewards": i + 1,
        "next_observations": nxt,
        "terminals": terminals,
        "timeouts": timeouts,
    }


def episode_dataset(**metadata) -> OfflineDataset:
    return OfflineDataset(**episode_arrays(), metadata=metadata)


def id_dataset(n: int = 20) -> OfflineDataset:
    """Rows whose first observation column is the row id, continuous (one unfinished episode)."""
    i = np.arange(n, dtype=np.float32)
    return OfflineDataset(
        observations=np.stack([i, -i], axis=1),
        actions=(i / n)[:, None],
        rewards=2 * i,
        next_observations=np.stack([i + 1, -(i + 1)], axis=1),
        terminals=np.zeros(n, bool),
        timeouts=np.zeros(n, bool),
        infos={"row": np.arange(n)},
    )


def hopper_arrays(n: int = 6, obs_dim: int = 11, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-0.9, 0.9, size=(n, 3)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "next_observations": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "terminals": np.zeros(n, bool),
        "timeouts": np.eye(1, n, n - 1, dtype=bool)[0],
    }


# ------------------------------------------------------------------------------ construction
def test_construction_canonicalises_dtypes_and_shapes():
    arrays = episode_arrays()
    arrays["rewards"] = arrays["rewards"].astype(np.float64)[:, None]  # [N, 1] as D4RL sometimes stores it
    arrays["terminals"] = arrays["terminals"].astype(np.float32)[:, None]
    arrays["timeouts"] = arrays["timeouts"].astype(np.int64)
    arrays["observations"] = arrays["observations"].astype(np.int32)
    ds = OfflineDataset(**arrays)
    assert ds.observations.dtype == np.float32 and ds.observations.shape == (10, 2)
    assert ds.actions.dtype == np.float32 and ds.actions.shape == (10, 1)
    assert ds.rewards.dtype == np.float32 and ds.rewards.shape == (10,)
    assert ds.terminals.dtype == np.bool_ and ds.timeouts.dtype == np.bool_
    np.testing.assert_array_equal(ds.rewards, np.arange(1, 11, dtype=np.float32))
    np.testing.assert_array_equal(np.flatnonzero(ds.terminals), [2])
    np.testing.assert_array_equal(np.flatnonzero(ds.timeouts), [4])
    assert (len(ds), ds.obs_dim, ds.act_dim) == (10, 2, 1)
    assert ds.metadata == {"source": None, "env_id": None, "layout": None}
    assert list(ds.arrays()) == list(FIELDS)


def test_from_arrays_with_next_observations_matches_direct_construction():
    arrays = episode_arrays()
    ds = OfflineDataset.from_arrays(**arrays)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(ds, name), arrays[name])
    assert "dropped_last_steps" not in ds.metadata
    assert ds.metadata["layout"] is None and ds.metadata["env_id"] is None


@pytest.mark.parametrize(
    "env_id, obs_dim, expected",
    [
        ("Hopper-v4", 11, {"env_id": "Hopper-v4", "layout": "d4rl", "task": "hopper", "benchmark": "gym"}),
        ("Hopper-v5", 11, {"env_id": "Hopper-v5", "layout": "d4rl", "task": "hopper", "benchmark": "gym"}),
        ("hopper-medium-v2", 11, {"env_id": "Hopper-v4", "layout": "d4rl", "task": "hopper", "benchmark": "d4rl"}),
        ("Hopper-v3-low-100", 12, {"env_id": "Hopper-v4", "layout": "neorl", "task": "hopper", "benchmark": "neorl"}),
    ],
)
def test_from_arrays_env_metadata(env_id, obs_dim, expected):
    ds = OfflineDataset.from_arrays(**hopper_arrays(obs_dim=obs_dim), env_id=env_id)
    for key, value in expected.items():
        assert ds.metadata[key] == value, key
    assert ds.metadata["actions_clipped"] is False
    assert ds.domain == "hopper"


def test_domain_is_none_without_a_known_task():
    assert episode_dataset().domain is None
    assert episode_dataset(task="ant").domain is None


# -------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("missing", ["observations", "actions", "rewards", "terminals"])
def test_missing_key_names_the_field(missing):
    arrays = episode_arrays()
    del arrays[missing]
    with pytest.raises(DatasetError, match=f"'{missing}'"):
        load_dataset(arrays)


def test_missing_key_in_a_mapping_is_reported_as_missing():
    arrays = episode_arrays()
    del arrays["rewards"]
    with pytest.raises(DatasetError) as err:
        load_dataset(arrays)
    assert "missing" in str(err.value)


@pytest.mark.parametrize("field", ["actions", "rewards", "terminals", "timeouts", "next_observations"])
def test_length_mismatch_names_the_field(field):
    arrays = episode_arrays()
    arrays[field] = arrays[field][:7]
    with pytest.raises(DatasetError, match=f"field '{field}' has 7 rows but 'observations' has 10"):
        OfflineDataset.from_arrays(**arrays)


def test_length_mismatch_of_infos_names_the_info():
    with pytest.raises(DatasetError, match="field 'infos/qpos' has 3 rows but 'observations' has 10"):
        OfflineDataset.from_arrays(**episode_arrays(), infos={"qpos": np.zeros((3, 2))})
    with pytest.raises(DatasetError, match="field 'infos/qpos' has 3 rows"):
        OfflineDataset(**episode_arrays(), infos={"qpos": np.zeros((3, 2))})


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("observations", np.arange(10.0), r"field 'observations' must be 2-D \[N, dim\], got shape \(10,\)"),
        ("actions", np.zeros((10, 1, 2)), r"field 'actions' must be 2-D \[N, dim\], got shape \(10, 1, 2\)"),
        ("next_observations", np.zeros(10), r"field 'next_observations' must be 2-D"),
        ("rewards", np.zeros((10, 2)), r"field 'rewards' must be 1-D \[N\] \(or \[N, 1\]\), got shape \(10, 2\)"),
        ("terminals", np.zeros((10, 1, 1)), r"field 'terminals' must be 1-D"),
        ("observations", np.full((10, 2), "a"), r"field 'observations' must be numeric"),
        ("rewards", np.array(["x"] * 10), r"field 'rewards' must be numeric"),
    ],
)
def test_wrong_rank_or_dtype_names_the_field(field, value, message):
    arrays = episode_arrays()
    arrays[field] = value
    with pytest.raises(DatasetError, match=message):
        OfflineDataset.from_arrays(**arrays)
    with pytest.raises(DatasetError, match=message):
        OfflineDataset(**arrays)


def test_next_observation_columns_must_match_observations():
    arrays = episode_arrays()
    arrays["next_observations"] = np.zeros((10, 3))
    with pytest.raises(DatasetError, match="field 'next_observations' has 3 columns but 'observations' has 2"):
        OfflineDataset(**arrays)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("field", ["observations", "actions", "rewards", "next_observations"])
def test_non_finite_values_name_the_field_and_row(field, bad):
    arrays = episode_arrays()
    arr = arrays[field].astype(np.float64)
    arr[3] = bad  # whole row 3 (one value for rewards, every column for matrices)
    arrays[field] = arr
    count = 1 if arr.ndim == 1 else arr.shape[1]
    with pytest.raises(
        DatasetError, match=rf"field '{field}' has {count} NaN/inf value\(s\) in 1 row\(s\), first at row 3"
    ):
        OfflineDataset.from_arrays(**arrays)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_float64_overflow_to_inf_is_caught():
    arrays = episode_arrays()
    arrays["rewards"] = arrays["rewards"].astype(np.float64)
    arrays["rewards"][5] = 1e300  # not representable as float32
    with pytest.raises(DatasetError, match="field 'rewards' has 1 NaN/inf value"):
        OfflineDataset(**arrays)


def test_empty_dataset_is_rejected():
    empty = {
        "observations": np.zeros((0, 2)),
        "actions": np.zeros((0, 1)),
        "rewards": np.zeros(0),
        "next_observations": np.zeros((0, 2)),
        "terminals": np.zeros(0, bool),
        "timeouts": np.zeros(0, bool),
    }
    with pytest.raises(DatasetError, match=r"the dataset is empty \(0 transitions\)"):
        OfflineDataset(**empty)
    with pytest.raises(DatasetError, match="the dataset is empty"):
        load_dataset(empty)


@pytest.mark.parametrize("field, values", [("terminals", [0, 2]), ("timeouts", [0.5, 0]), ("terminals", [np.nan, 0])])
def test_flags_must_be_zero_or_one(field, values):
    arrays = episode_arrays()
    flags = np.zeros(10)
    flags[:2] = values
    arrays[field] = flags
    with pytest.raises(DatasetError, match=f"field '{field}' must hold booleans"):
        OfflineDataset.from_arrays(**arrays)


def test_flags_given_as_zero_one_numbers_are_accepted():
    arrays = episode_arrays()
    arrays["terminals"] = arrays["terminals"].astype(np.float64)
    arrays["timeouts"] = arrays["timeouts"].astype(np.uint8)
    ds = OfflineDataset.from_arrays(**arrays)
    np.testing.assert_array_equal(ds.terminals, episode_arrays()["terminals"])
    np.testing.assert_array_equal(ds.timeouts, episode_arrays()["timeouts"])


def test_actions_outside_the_action_space_are_an_error():
    arrays = hopper_arrays()
    arrays["actions"][2, 1] = 1.5
    arrays["actions"][4, 0] = -1.25
    with pytest.raises(
        DatasetError,
        match=r"field 'actions' has 2 value\(s\) in 2 row\(s\) outside the action space \[-1, 1\] \(first at row 2",
    ):
        OfflineDataset.from_arrays(**arrays, env_id="Hopper-v4")
    with pytest.raises(DatasetError, match="field 'actions'"):
        load_dataset(arrays, env_id="Hopper-v4")


def test_clip_actions_clips_and_records_it():
    arrays = hopper_arrays()
    arrays["actions"][2, 1] = 1.5
    arrays["actions"][4, 0] = -1.25
    ds = OfflineDataset.from_arrays(**arrays, env_id="Hopper-v4", clip_actions=True)
    expected = arrays["actions"].copy()
    expected[2, 1] = 1.0
    expected[4, 0] = -1.0
    np.testing.assert_array_equal(ds.actions, expected)
    assert ds.metadata["actions_clipped"] is True
    ds = load_dataset(arrays, env_id="Hopper-v4", clip_actions=True)
    np.testing.assert_array_equal(ds.actions, expected)
    assert ds.metadata["actions_clipped"] is True


def test_actions_within_round_off_of_the_bound_are_kept_unchanged():
    arrays = hopper_arrays()
    arrays["actions"][0] = [1.000005, -1.000005, 1.0]
    ds = OfflineDataset.from_arrays(**arrays, env_id="Hopper-v4")
    np.testing.assert_array_equal(ds.actions[0], np.float32([1.000005, -1.000005, 1.0]))
    assert ds.metadata["actions_clipped"] is False


def test_custom_action_bounds():
    arrays = episode_arrays()
    arrays["actions"] = (np.arange(10) * 2.0)[:, None]  # 0 ... 18
    ds = OfflineDataset.from_arrays(**arrays, action_low=-20.0, action_high=20.0)
    np.testing.assert_array_equal(ds.actions[:, 0], np.arange(10) * 2.0)
    with pytest.raises(DatasetError, match="outside the action space \\[0, 10\\]"):
        OfflineDataset.from_arrays(**arrays, action_low=0.0, action_high=10.0)
    with pytest.raises(ValueError, match="give both action_low and action_high"):
        OfflineDataset.from_arrays(**arrays, action_low=-1.0)


@pytest.mark.parametrize(
    "env_id, layout, obs_dim, message",
    [
        ("Hopper-v4", None, 12, r"field 'observations' has 12 columns but Hopper-v4 \(d4rl layout\) has 11"),
        ("Hopper-v4", "neorl", 11, r"field 'observations' has 11 columns but Hopper-v4 \(neorl layout\) has 12"),
        (
            "hopper-medium-v2",
            None,
            17,
            r"field 'observations' has 17 columns but hopper-medium-v2 \(d4rl layout\) has 11",
        ),
        (
            "Walker2d-v3-low-100",
            None,
            17,
            r"field 'observations' has 17 columns but Walker2d-v3-low-100 \(neorl layout\) has 18",
        ),
    ],
)
def test_observation_size_must_match_the_env(env_id, layout, obs_dim, message):
    arrays = hopper_arrays(obs_dim=obs_dim)
    arrays["actions"] = np.zeros((6, 6 if "Walker" in env_id else 3), np.float32)
    with pytest.raises(DatasetError, match=message):
        OfflineDataset.from_arrays(**arrays, env_id=env_id, layout=layout)


def test_unknown_task_in_env_id_is_a_dataset_error():
    with pytest.raises(DatasetError, match="unknown task 'Ant-v4'"):
        OfflineDataset.from_arrays(**hopper_arrays(), env_id="Ant-v4")
    with pytest.raises(DatasetError, match="unknown task 'hopper-great-v2'"):
        load_dataset(hopper_arrays(), env_id="hopper-great-v2")


# ------------------------------------------------------------------------- episode structure
def test_episode_boundaries_and_returns():
    ds = episode_dataset()
    np.testing.assert_array_equal(ds.unflagged_breaks(), np.arange(10) == 6)
    np.testing.assert_array_equal(ds.episode_ends(), [2, 4, 6, 9])
    np.testing.assert_array_equal(ds.episode_starts(), [0, 3, 5, 7])
    np.testing.assert_array_equal(ds.episode_lengths(), [3, 2, 2, 3])
    assert list(ds.episodes()) == [slice(0, 3), slice(3, 5), slice(5, 7), slice(7, 10)]
    returns = ds.returns()
    assert returns.dtype == np.float64
    np.testing.assert_array_equal(returns, [6.0, 9.0, 13.0, 27.0])


def test_single_row_and_flag_at_the_end():
    arrays = {k: v[:1] for k, v in episode_arrays().items()}
    ds = OfflineDataset(**arrays)
    np.testing.assert_array_equal(ds.episode_ends(), [0])
    np.testing.assert_array_equal(ds.returns(), [1.0])
    # a terminal on the last row does not add an empty episode
    arrays = episode_arrays()
    arrays["terminals"][9] = True
    ds = OfflineDataset(**arrays)
    np.testing.assert_array_equal(ds.episode_ends(), [2, 4, 6, 9])
    np.testing.assert_array_equal(ds.episode_lengths(), [3, 2, 2, 3])


def test_flagged_rows_are_not_unflagged_breaks():
    ds = episode_dataset()
    # rows 2 and 4 do not continue into the next row but are flagged
    assert not np.array_equal(ds.next_observations[2], ds.observations[3])
    assert not np.array_equal(ds.next_observations[4], ds.observations[5])
    assert not ds.unflagged_breaks()[[2, 4]].any()


def test_unflagged_break_tolerance_is_relative():
    n = 4
    obs = np.full((n, 1), 1000.0, np.float32) + np.arange(n, dtype=np.float32)[:, None]
    nxt = np.vstack([obs[1:], [[0.0]]]).astype(np.float32)
    nxt[0] += 0.005  # below 1e-5 * (1 + 1001): same state up to round-off
    nxt[1] += 0.05  # above: a break
    ds = OfflineDataset(obs, np.zeros((n, 1)), np.ones(n), nxt, np.zeros(n), np.zeros(n))
    np.testing.assert_array_equal(ds.unflagged_breaks(), [False, True, False, False])
    np.testing.assert_array_equal(ds.episode_lengths(), [2, 2])


def test_summary():
    ds = episode_dataset(source="unit")
    summary = ds.summary()
    assert set(summary) == {
        "transitions", "obs_dim", "act_dim", "episodes", "terminals", "timeouts", "unflagged_breaks",
        "return_mean", "return_std", "return_min", "return_max", "metadata",
    }  # fmt: skip
    assert summary["transitions"] == 10
    assert (summary["obs_dim"], summary["act_dim"]) == (2, 1)
    assert (summary["episodes"], summary["terminals"], summary["timeouts"], summary["unflagged_breaks"]) == (4, 1, 1, 1)
    assert summary["return_mean"] == pytest.approx(13.75)
    assert summary["return_std"] == pytest.approx(float(np.std([6.0, 9.0, 13.0, 27.0])))
    assert (summary["return_min"], summary["return_max"]) == (6.0, 27.0)
    assert summary["metadata"] == {"source": "unit", "env_id": None, "layout": None}
    for key in ("episodes", "terminals", "return_mean"):
        assert type(summary[key]) in (int, float)


def test_summary_metadata_keeps_only_json_values():
    ds = episode_dataset(note="kept", array=np.zeros(2), obj=object())
    assert ds.summary()["metadata"] == {"source": None, "env_id": None, "layout": None, "note": "kept"}


# ------------------------------------------------------------------ derived next observations
def derive_arrays() -> dict[str, np.ndarray]:
    """Eight rows: episode rows 0-2 ends with a terminal, rows 3-5 with a timeout, rows 6-7 are an
    unfinished tail. ``observations[i] = [i, 10 i]``, ``rewards[i] = i + 1``."""
    i = np.arange(8, dtype=np.float32)
    terminals = np.zeros(8, bool)
    terminals[2] = True
    timeouts = np.zeros(8, bool)
    timeouts[5] = True
    return {
        "observations": np.stack([i, 10 * i], axis=1),
        "actions": (i / 8)[:, None],
        "rewards": i + 1,
        "terminals": terminals,
        "timeouts": timeouts,
    }


def test_derive_next_observations_drops_each_last_step():
    ds = OfflineDataset.from_arrays(**derive_arrays(), infos={"row": np.arange(8)})
    kept = [0, 1, 3, 4, 6]
    assert len(ds) == 5
    assert ds.metadata["dropped_last_steps"] == 3
    assert ds.metadata["next_observations"] == "derived"
    np.testing.assert_array_equal(ds.infos["row"], kept)
    np.testing.assert_array_equal(ds.observations, [[0, 0], [1, 10], [3, 30], [4, 40], [6, 60]])
    # successors stay inside their episode: row 1 -> obs[2], row 4 -> obs[5] (never obs[6] across the timeout)
    np.testing.assert_array_equal(ds.next_observations, [[1, 10], [2, 20], [4, 40], [5, 50], [7, 70]])
    np.testing.assert_array_equal(ds.rewards, [1, 2, 4, 5, 7])
    np.testing.assert_array_equal(ds.actions[:, 0], np.float32([0, 1, 3, 4, 6]) / 8)
    # the terminal row was dropped; every new last row is a timeout
    np.testing.assert_array_equal(ds.terminals, [False] * 5)
    np.testing.assert_array_equal(ds.timeouts, [False, True, False, True, True])
    np.testing.assert_array_equal(ds.episode_ends(), [1, 3, 4])
    np.testing.assert_array_equal(ds.returns(), [3.0, 9.0, 7.0])
    assert not ds.unflagged_breaks().any()


def test_derive_next_observations_through_load_dataset():
    ds = load_dataset(derive_arrays())
    assert ds.metadata["dropped_last_steps"] == 3 and ds.metadata["source"] == "arrays"
    np.testing.assert_array_equal(ds.next_observations[:, 0], [1, 2, 4, 5, 7])


def test_derive_with_single_step_episodes():
    arrays = derive_arrays()
    arrays["terminals"][:] = False
    arrays["timeouts"][:] = False
    arrays["terminals"][[1, 2, 6]] = True  # episodes [0, 1], [2], [3..6], [7]
    ds = OfflineDataset.from_arrays(**arrays)
    assert ds.metadata["dropped_last_steps"] == 4
    np.testing.assert_array_equal(ds.observations[:, 0], [0, 3, 4, 5])
    np.testing.assert_array_equal(ds.next_observations[:, 0], [1, 4, 5, 6])
    np.testing.assert_array_equal(ds.timeouts, [True, False, False, True])
    np.testing.assert_array_equal(ds.returns(), [1.0, 4 + 5 + 6])


def test_derive_leaves_nothing_when_every_episode_has_one_step():
    arrays = derive_arrays()
    arrays["terminals"][:] = True
    with pytest.raises(DatasetError, match="no transition is left after deriving next_observations"):
        OfflineDataset.from_arrays(**arrays)


# -------------------------------------------------------------------------------- statistics
def test_stats_exact():
    ds = OfflineDataset(
        observations=[[1.0, -2.0], [3.0, 0.0], [5.0, 8.0]],
        actions=[[0.5], [-0.5], [0.0]],
        rewards=[1.0, 2.0, 6.0],
        next_observations=[[2.0, 2.0], [2.0, 4.0], [2.0, 6.0]],
        terminals=[0, 0, 1],
        timeouts=[0, 0, 0],
    )
    stats = ds.stats()
    assert set(stats) == {"observations", "actions", "rewards", "next_observations"}
    assert all(isinstance(s, ArrayStats) for s in stats.values())
    obs = stats["observations"]
    np.testing.assert_array_equal(obs.mean, [3.0, 2.0])
    np.testing.assert_allclose(obs.std, [np.sqrt(8 / 3), np.sqrt(56 / 3)], rtol=1e-12)
    np.testing.assert_array_equal(obs.min, [1.0, -2.0])
    np.testing.assert_array_equal(obs.max, [5.0, 8.0])
    act = stats["actions"]
    np.testing.assert_array_equal([act.mean, act.min, act.max], [[0.0], [-0.5], [0.5]])
    np.testing.assert_allclose(act.std, [np.sqrt(1 / 6)], rtol=1e-12)
    rew = stats["rewards"]
    assert np.shape(rew.mean) == ()
    assert (float(rew.mean), float(rew.min), float(rew.max)) == (3.0, 1.0, 6.0)
    assert float(rew.std) == pytest.approx(np.sqrt(14 / 3), rel=1e-12)
    nxt = stats["next_observations"]
    np.testing.assert_array_equal(nxt.mean, [2.0, 4.0])
    np.testing.assert_allclose(nxt.std, [0.0, np.sqrt(8 / 3)], rtol=1e-12)


# ----------------------------------------------------------------------------------- subsets
def test_take_keeps_rows_metadata_and_infos():
    ds = id_dataset()
    ds.metadata["source"] = "unit"
    sub = ds.take(np.array([5, 1, 1]))
    np.testing.assert_array_equal(sub.observations[:, 0], [5, 1, 1])
    np.testing.assert_array_equal(sub.rewards, [10, 2, 2])
    np.testing.assert_array_equal(sub.infos["row"], [5, 1, 1])
    assert sub.metadata == ds.metadata and sub.metadata is not ds.metadata


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_sizes_disjoint_covering_and_ordered(seed):
    ds = id_dataset(20)
    train, hold = ds.split(0.25, seed=seed)
    assert (len(train), len(hold)) == (15, 5)
    train_ids, hold_ids = train.infos["row"], hold.infos["row"]
    assert not set(train_ids) & set(hold_ids)
    np.testing.assert_array_equal(np.sort(np.concatenate([train_ids, hold_ids])), np.arange(20))
    assert (np.diff(train_ids) > 0).all() and (np.diff(hold_ids) > 0).all()
    # every field stays row-aligned
    for part, ids in ((train, train_ids), (hold, hold_ids)):
        np.testing.assert_array_equal(part.observations[:, 0], ids)
        np.testing.assert_array_equal(part.rewards, 2 * ids)
        np.testing.assert_array_equal(part.next_observations[:, 0], ids + 1)
    # the same seed gives the same split
    again_train, again_hold = ds.split(0.25, seed=seed)
    np.testing.assert_array_equal(again_train.infos["row"], train_ids)
    np.testing.assert_array_equal(again_hold.infos["row"], hold_ids)


def test_split_depends_on_seed_and_makes_gaps_detectable():
    ds = id_dataset(20)
    holds = {tuple(ds.split(0.25, seed=s)[1].infos["row"]) for s in range(5)}
    assert len(holds) > 1
    train, _ = ds.split(0.25, seed=0)
    # removed rows leave visible discontinuities: every gap in the ids is an episode boundary
    gaps = np.flatnonzero(np.diff(train.infos["row"]) > 1)
    np.testing.assert_array_equal(np.flatnonzero(train.unflagged_breaks()), gaps)


def test_split_rounding_and_errors():
    ds = id_dataset(10)
    assert len(ds.split(0.01)[1]) == 1  # at least one held-out row
    assert len(ds.split(0.3)[1]) == 3
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="holdout must be a fraction in \\(0, 1\\)"):
            ds.split(bad)
    with pytest.raises(DatasetError, match="cannot hold out 1 of 1 transitions"):
        id_dataset(1).split(0.5)


def test_sample_is_deterministic_given_the_rng():
    ds = id_dataset(20)
    a = ds.sample(50, np.random.default_rng(3))
    b = ds.sample(50, np.random.default_rng(3))
    c = ds.sample(50, np.random.default_rng(4))
    assert len(a) == 50
    np.testing.assert_array_equal(a.infos["row"], b.infos["row"])
    assert not np.array_equal(a.infos["row"], c.infos["row"])
    np.testing.assert_array_equal(a.infos["row"], np.random.default_rng(3).integers(0, 20, size=50))
    # rows stay aligned across fields
    np.testing.assert_array_equal(a.observations[:, 0], a.infos["row"])
    np.testing.assert_array_equal(a.rewards, 2 * a.infos["row"])
    assert len(np.unique(a.infos["row"])) < 50  # with replacement


def test_concatenate_marks_seams():
    first = id_dataset(4)  # unfinished episode: its last row becomes a timeout at the seam
    second_arrays = episode_arrays()
    second_arrays["terminals"][9] = True  # ends in a terminal: stays terminal, not a timeout
    second = OfflineDataset(**second_arrays, infos={"row": np.arange(10) + 100, "extra": np.zeros(10)})
    third = id_dataset(3)  # unfinished at the very end: marked too
    both = OfflineDataset.concatenate([first, second, third])
    assert len(both) == 17
    expected_timeouts = np.zeros(17, bool)
    expected_timeouts[[3, 4 + 4, 16]] = True
    np.testing.assert_array_equal(both.timeouts, expected_timeouts)
    expected_terminals = np.zeros(17, bool)
    expected_terminals[[4 + 2, 4 + 9]] = True
    np.testing.assert_array_equal(both.terminals, expected_terminals)
    np.testing.assert_array_equal(both.episode_ends(), [3, 6, 8, 10, 13, 16])
    # only the infos every part has
    assert set(both.infos) == {"row"}
    np.testing.assert_array_equal(both.infos["row"], [0, 1, 2, 3, *range(100, 110), 0, 1, 2])
    np.testing.assert_array_equal(both.rewards, np.concatenate([first.rewards, second.rewards, third.rewards]))
    # parts are not modified
    assert not first.timeouts.any() and not third.timeouts.any()
    assert both.metadata == first.metadata


def test_concatenate_metadata_and_empty():
    ds = OfflineDataset.concatenate([id_dataset(2), id_dataset(2)], metadata={"source": "joined"})
    assert ds.metadata == {"source": "joined", "env_id": None, "layout": None}
    with pytest.raises(DatasetError, match="nothing to concatenate"):
        OfflineDataset.concatenate([])


def test_save_with_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the format"):
        id_dataset().save(tmp_path / "data.csv")
    assert list(tmp_path.iterdir()) == []


def test_print_shows_one_screen_not_arrays():
    big = OfflineDataset.from_arrays(
        **{k: np.repeat(v, 5000, axis=0) for k, v in hopper_arrays().items()},
        env_id="Hopper-v4",
        metadata={"source": "test", "note": "x" * 500},
    )
    text = repr(big)
    lines = text.splitlines()
    assert (
        lines[0]
        == f"OfflineDataset: 30,000 transitions, {len(big.returns()):,} episodes (env_id Hopper-v4, layout d4rl)"
    )
    assert len(lines) <= 15 and max(map(len, lines)) <= 120 and "array(" not in text
    assert "  note: " + "x" * 67 + "..." in lines
    assert "observations [30000, 11] float32" in text and "environment unknown" in repr(episode_dataset())


def test_episode_subsets_are_whole_episodes_nested_by_size():
    from tests.helpers import random_dataset

    ds = random_dataset(steps=3_000, seed=1)
    small, large = ds.episode_subset(600, seed=4), ds.episode_subset(1_500, seed=4)
    assert 0 < len(small) <= 600 and 600 < len(large) <= 1_500
    as_rows = {tuple(o) for o in large.observations}
    assert all(tuple(o) in as_rows for o in small.observations)  # nested: the small subset is inside the large one
    assert small.episode_lengths().sum() == len(small) and len(small.episode_lengths()) < len(ds.episode_lengths())
    whole = {tuple(ds.observations[s][0]) for s in ds.episodes()}  # every kept episode starts where one of ds's does
    assert {tuple(small.observations[s][0]) for s in small.episodes()} <= whole
    assert not np.array_equal(
        ds.episode_subset(600, seed=5).observations, small.observations
    )  # another seed, other episodes
    with pytest.raises(DatasetError, match="a subset of 3,001 transitions was asked of a dataset of 3,000"):
        ds.episode_subset(3_001)
