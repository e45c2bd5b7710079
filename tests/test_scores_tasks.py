"""Task names (`morec.tasks`) and normalised scores (`morec.data.scores`)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from morec.data import normalized_score, reference_returns
from morec.tasks import D4RL_LEVELS, DOMAINS, check_layout, get_task, known_task_names

D4RL_REFS = {"hopper": (-20.272305, 3234.3), "halfcheetah": (-280.178953, 12135.0), "walker2d": (1.629008, 4592.3)}
NEORL_REFS = {"Hopper": (5.0, 3294.0), "HalfCheetah": (-298.0, 12284.0), "Walker2d": (1.0, 5143.0)}


# ---------------------------------------------------------------------------- normalised scores
@pytest.mark.parametrize("domain", sorted(D4RL_REFS))
@pytest.mark.parametrize("level", D4RL_LEVELS)
def test_d4rl_reference_returns(domain, level):
    name = f"{domain}-{level}-v2"
    lo, hi = D4RL_REFS[domain]
    assert reference_returns(name) == (lo, hi)
    assert normalized_score(name, lo) == pytest.approx(0.0, abs=1e-12)
    assert normalized_score(name, hi) == pytest.approx(100.0, rel=1e-12)


def test_hopper_scores_exact():
    assert normalized_score("hopper-medium-v2", 3234.3) == pytest.approx(100.0, rel=1e-12)
    assert normalized_score("hopper-medium-v2", -20.272305) == pytest.approx(0.0, abs=1e-12)
    assert normalized_score("hopper-medium-v2", 1000.0) == pytest.approx(
        100 * (1000 + 20.272305) / (3234.3 + 20.272305), rel=1e-12
    )
    mid = (3234.3 - 20.272305) / 2
    assert normalized_score("hopper-expert-v2", mid) == pytest.approx(50.0, rel=1e-12)


def test_halfcheetah_and_walker2d_scores():
    assert normalized_score("halfcheetah-medium-v2", 12135.0) == pytest.approx(100.0, rel=1e-12)
    assert normalized_score("halfcheetah-medium-v2", -280.178953) == pytest.approx(0.0, abs=1e-12)
    assert normalized_score("halfcheetah-random-v2", 0.0) == pytest.approx(
        100 * 280.178953 / (12135.0 + 280.178953), rel=1e-12
    )
    assert normalized_score("walker2d-medium-replay-v2", 4592.3) == pytest.approx(100.0, rel=1e-12)
    assert normalized_score("walker2d-medium-replay-v2", 1.629008) == pytest.approx(0.0, abs=1e-12)
    assert normalized_score("walker2d-expert-v2", 2000.0) == pytest.approx(
        100 * (2000 - 1.629008) / (4592.3 - 1.629008), rel=1e-12
    )


def test_scalar_gives_float_and_arrays_keep_their_shape():
    score = normalized_score("hopper-medium-v2", 3234.3)
    assert type(score) is float
    assert type(normalized_score("hopper-medium-v2", np.float32(10.0))) is float
    assert type(normalized_score("hopper-medium-v2", np.array(10.0))) is float
    returns = np.array([[-20.272305, 3234.3, 1607.0138475], [0.0, 6488.872305, -3274.844610]])
    scores = normalized_score("hopper-medium-v2", returns)
    assert isinstance(scores, np.ndarray) and scores.shape == (2, 3) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, [[0.0, 100.0, 50.0], [100 * 20.272305 / 3254.572305, 200.0, -100.0]], atol=1e-9)
    listed = normalized_score("hopper-medium-v2", [3234.3, -20.272305])
    np.testing.assert_allclose(listed, [100.0, 0.0], atol=1e-12)
    assert listed.shape == (2,)
    assert normalized_score("hopper-medium-v2", np.zeros((0,))).shape == (0,)


@pytest.mark.parametrize("gym_name", sorted(NEORL_REFS))
@pytest.mark.parametrize("level", ["low", "medium", "high", "expert"])
@pytest.mark.parametrize("size", [100, 1000, 10000])
def test_neorl_names_use_neorl_references(gym_name, level, size):
    name = f"{gym_name}-v3-{level}-{size}"
    lo, hi = NEORL_REFS[gym_name]
    assert reference_returns(name) == (lo, hi)
    assert normalized_score(name, lo) == pytest.approx(0.0, abs=1e-12)
    assert normalized_score(name, hi) == pytest.approx(100.0, rel=1e-12)


def test_neorl_hopper_scores():
    assert normalized_score("Hopper-v3-low-100", 5.0) == 0.0
    assert normalized_score("Hopper-v3-low-100", 3294.0) == pytest.approx(100.0, rel=1e-12)
    assert normalized_score("Hopper-v3-low-100", 1649.5) == pytest.approx(50.0, rel=1e-12)
    # the same return scores differently under the D4RL references
    assert normalized_score("hopper-medium-v2", 3294.0) != pytest.approx(100.0)
    assert normalized_score("neorl:Hopper-v3-low", 3294.0) == pytest.approx(100.0, rel=1e-12)


@pytest.mark.parametrize("name", ["Hopper-v4", "Hopper-v5", "hopper", "d4rl:hopper-medium-v2"])
def test_gym_and_bare_names_use_d4rl_references(name):
    assert reference_returns(name) == D4RL_REFS["hopper"]
    assert normalized_score(name, 3234.3) == pytest.approx(100.0, rel=1e-12)


def test_unknown_task_in_scores():
    with pytest.raises(KeyError, match="unknown task 'ant-medium-v2'"):
        normalized_score("ant-medium-v2", 1.0)


# ------------------------------------------------------------------------------------- tasks
def test_get_task_d4rl():
    task = get_task("hopper-medium-replay-v2")
    assert (task.name, task.domain.name, task.benchmark, task.layout) == (
        "hopper-medium-replay-v2",
        "hopper",
        "d4rl",
        "d4rl",
    )
    assert (task.level, task.num_trajectories) == ("medium-replay", None)
    assert (task.obs_dim, task.act_dim) == (11, 3)
    assert task.eval_env_id == "Hopper-v4"
    cheetah = get_task("halfcheetah-medium-expert-v2")
    assert (cheetah.domain.name, cheetah.level, cheetah.obs_dim, cheetah.act_dim) == (
        "halfcheetah",
        "medium-expert",
        17,
        6,
    )
    assert cheetah.eval_env_id == "HalfCheetah-v4"
    walker = get_task("d4rl:walker2d-random-v2")
    assert (walker.name, walker.domain.name, walker.level, walker.obs_dim) == (
        "walker2d-random-v2",
        "walker2d",
        "random",
        17,
    )
    assert walker.eval_env_id == "Walker2d-v4"


def test_get_task_neorl():
    task = get_task("HalfCheetah-v3-expert-10000")
    assert (task.domain.name, task.benchmark, task.layout, task.level, task.num_trajectories) == (
        "halfcheetah", "neorl", "neorl", "expert", 10000,
    )  # fmt: skip
    assert (task.obs_dim, task.act_dim) == (18, 6)
    assert task.eval_env_id == "HalfCheetah-v4"
    hopper = get_task("neorl:Hopper-v3-low-100")
    assert (hopper.name, hopper.obs_dim, hopper.num_trajectories) == ("Hopper-v3-low-100", 12, 100)
    no_size = get_task("Walker2d-v3-medium")
    assert (no_size.benchmark, no_size.level, no_size.num_trajectories, no_size.obs_dim) == (
        "neorl",
        "medium",
        None,
        18,
    )


def test_get_task_gym_ids_and_bare_domains():
    task = get_task("Walker2d-v5")
    assert (task.domain.name, task.benchmark, task.layout, task.level) == ("walker2d", "gym", "d4rl", None)
    assert task.eval_env_id == "Walker2d-v5" and task.obs_dim == 17
    assert get_task("hopper-v4").domain.name == "hopper"  # gym names are matched case-insensitively
    assert get_task("Hopper-v3").benchmark == "gym"
    for bare in ("hopper", "HalfCheetah", "WALKER2D"):
        spec = get_task(bare)
        assert (spec.domain.name, spec.benchmark, spec.layout) == (bare.lower(), "gym", "d4rl")


def test_bare_domain_evaluates_on_a_gymnasium_id():
    assert get_task("hopper").eval_env_id == "Hopper-v4"


@pytest.mark.parametrize(
    "name",
    [
        "ant-medium-v2",
        "Ant-v4",
        "hopper-foo-v2",
        "hopper-medium-v1",
        "Hopper-v3-ultra-100",
        "hopper_medium-v2",
        "",
        "d4rl:",
    ],
)
def test_get_task_unknown_names(name):
    with pytest.raises(KeyError, match="unknown task") as err:
        get_task(name)
    assert "hopper-medium-v2" in err.value.args[0] and "Hopper-v3-low-100" in err.value.args[0]


def test_known_task_names():
    names = known_task_names()
    d4rl = {f"{d}-{lvl}-v2" for d in ("hopper", "halfcheetah", "walker2d") for lvl in D4RL_LEVELS}
    assert len(d4rl) == 15
    assert d4rl <= set(names)
    assert "hopper-medium-replay-v2" in names and "halfcheetah-medium-expert-v2" in names
    assert len(names) == len(set(names)) == 15 + 3 * 4 * 3
    assert {"Hopper-v3-low-100", "HalfCheetah-v3-expert-10000", "Walker2d-v3-medium-1000"} <= set(names)
    for name in names:
        task = get_task(name)
        assert task.benchmark == ("d4rl" if name in d4rl else "neorl")
        assert task.name == name


def test_domains_and_layouts():
    assert set(DOMAINS) == {"halfcheetah", "hopper", "walker2d"}
    hopper = DOMAINS["hopper"]
    assert (hopper.obs_dim_for("d4rl"), hopper.obs_dim_for("neorl")) == (11, 12)
    assert hopper.gym_id() == "Hopper-v4" and hopper.gym_id("v5") == "Hopper-v5"
    assert (hopper.action_low, hopper.action_high) == (-1.0, 1.0)
    assert check_layout("neorl") == "neorl"
    with pytest.raises(ValueError, match="unknown observation layout 'pixels'"):
        check_layout("pixels")
    with pytest.raises(ValueError, match="unknown observation layout"):
        hopper.obs_dim_for("pixels")


def test_make_gym_env_keeps_the_settotalmass_warning_out_of_logs():
    """MuJoCo prints its warnings from C, so a child process's output is checked."""
    code = (
        "import mujoco; from morec.tasks import make_gym_env; make_gym_env('HalfCheetah-v4').close(); "
        "assert mujoco.get_mju_user_warning() is None"
    )  # the handler is restored
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert "settotalmass" not in child.stdout + child.stderr
