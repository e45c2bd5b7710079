"""Termination functions against gymnasium's own `terminated` flag on real episodes, edge states
checked against the env's `is_healthy`, and the task registry."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from morec.dynamics.termination import get_termination_fn, parse_domain, resolve_termination_fn

ENVS = [
    (env_id, layout)
    for env_id in ("Hopper-v4", "Walker2d-v4", "HalfCheetah-v4", "Hopper-v5", "Walker2d-v5")
    for layout in ("d4rl", "neorl")
]


def make_env(env_id: str, layout: str):
    return gym.make(env_id, exclude_current_positions_from_observation=(layout == "d4rl")).unwrapped


def rollout(env_id: str, layout: str, steps: int, seed: int, policy: str) -> dict[str, np.ndarray]:
    """Transitions of one unwrapped env. Episodes go on for 10 more terminated steps after the
    first one, so the data hold states on both sides of the healthy limits. Policies: uniform
    "random", a fixed random "linear" policy plus noise, and "fall": a constant action per
    episode plus noise, which topples the robot."""
    env = make_env(env_id, layout)
    rng = np.random.default_rng(seed)
    n_act, n_obs = env.action_space.shape[0], env.observation_space.shape[0]
    weights = rng.normal(size=(n_act, n_obs)) / np.sqrt(n_obs)
    obs, _ = env.reset(seed=seed)
    bias, length, n_terminated = rng.choice([-0.8, 0.8], n_act), 0, 0
    rows: dict[str, list] = {"obs": [], "act": [], "next_obs": [], "terminated": []}
    for _ in range(steps):
        noise = rng.normal(scale=0.3, size=n_act)
        if policy == "random":
            act = rng.uniform(-1.0, 1.0, n_act)
        elif policy == "linear":
            act = np.clip(np.tanh(weights @ obs) + noise, -1.0, 1.0)
        else:
            act = np.clip(bias + noise, -1.0, 1.0)
        next_obs, _, terminated, _, _ = env.step(act)
        for key, value in zip(rows, (obs, act, next_obs, terminated)):
            rows[key].append(value)
        obs, length, n_terminated = next_obs, length + 1, n_terminated + terminated
        if n_terminated > 10 or length >= 300:
            obs, _ = env.reset()
            bias, length, n_terminated = rng.choice([-0.8, 0.8], n_act), 0, 0
    return {key: np.array(value) for key, value in rows.items()}


def as_tensors(*arrays: np.ndarray, dtype=torch.float64) -> list[torch.Tensor]:
    return [torch.as_tensor(a, dtype=dtype) for a in arrays]


@pytest.mark.parametrize("env_id,layout", ENVS)
def test_matches_env_terminated_on_real_episodes(env_id, layout):
    data = [rollout(env_id, layout, 500, seed, policy) for seed, policy in enumerate(("random", "linear", "fall"))]
    data = {key: np.concatenate([d[key] for d in data]) for key in data[0]}
    done = get_termination_fn(env_id, layout)(*as_tensors(data["obs"], data["act"], data["next_obs"]))
    assert done.dtype == torch.bool and done.shape == (1500,)
    np.testing.assert_array_equal(done.numpy(), data["terminated"])
    terminated = data["terminated"]
    if env_id.startswith("HalfCheetah"):
        assert not terminated.any()
        return
    # just past the limit: the first terminated step after a healthy one
    crossings = int((terminated[1:] & ~terminated[:-1]).sum())
    assert terminated.sum() >= 150 and (~terminated).sum() >= 300 and crossings >= 25


def edge_cases(domain: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(qpos, qvel) pairs on and around every healthy bound, starting from a standing state."""
    nudge = np.nextafter  # nudge(v, to): the next float after v towards `to`
    if domain == "hopper":
        base_q, base_v = np.array([0.0, 1.25, 0.0, 0.0, 0.0, 0.0]), np.zeros(6)
        q_edits = [(1, 0.7), (1, nudge(0.7, 1)), (2, 0.2), (2, nudge(0.2, 0)), (2, -0.2), (2, nudge(-0.2, 0))]
        q_edits += [(3, -150.0), (4, 150.0), (5, -100.0), (5, nudge(-100.0, 0)), (3, 100.0), (3, nudge(100.0, 0))]
        q_edits += [(0, 1e6)]  # x is not checked
        v_edits = [(0, -150.0), (1, 100.0), (2, -100.0), (5, nudge(100.0, 0)), (4, nudge(-100.0, 0))]
    else:
        base_q, base_v = np.array([0.0, 1.25] + [0.0] * 7), np.zeros(9)
        q_edits = [(1, 0.8), (1, nudge(0.8, 1)), (1, 2.0), (1, nudge(2.0, 0)), (2, 1.0), (2, nudge(1.0, 0))]
        q_edits += [(2, -1.0), (2, nudge(-1.0, 0)), (3, -150.0), (0, 1e6)]  # joints and x are not checked
        v_edits = [(0, -150.0), (8, 1e3)]  # velocities are not checked
    cases = [(base_q, base_v)]
    for index, value in q_edits:
        qpos = base_q.copy()
        qpos[index] = value
        cases.append((qpos, base_v))
    for index, value in v_edits:
        qvel = base_v.copy()
        qvel[index] = value
        cases.append((base_q, qvel))
    return cases


@pytest.mark.parametrize("env_id", ["Hopper-v4", "Hopper-v5", "Walker2d-v4", "Walker2d-v5"])
@pytest.mark.parametrize("layout", ["d4rl", "neorl"])
def test_edge_states_match_env_is_healthy(env_id, layout):
    """Bounds exactly hit and one float inside, and out-of-range joints and velocities that a
    model (not the env, which clips velocities) may predict, e.g. a hopper joint at -150."""
    env, skip = make_env(env_id, layout), int(layout == "d4rl")
    domain = parse_domain(env_id)
    cases = edge_cases(domain)
    expected = []
    for qpos, qvel in cases:
        env.set_state(qpos, qvel)
        expected.append(not env.is_healthy)
    next_obs = torch.as_tensor(np.stack([np.concatenate([q[skip:], v]) for q, v in cases]))
    done = get_termination_fn(env_id, layout)(next_obs, torch.zeros(len(cases), 3), next_obs)
    assert done.tolist() == expected
    assert expected[0] is False and sum(expected) == {"hopper": 10, "walker2d": 4}[domain]
    if domain == "hopper":
        assert done[cases_index(cases, 3, -150.0)]  # no lower-bound bug: abs(x < 100) is not a bound


def cases_index(cases, index: int, value: float) -> int:
    return next(i for i, (q, _) in enumerate(cases) if q[index] == value)


@pytest.mark.parametrize("domain", ["hopper", "walker2d", "halfcheetah"])
@pytest.mark.parametrize("layout", ["d4rl", "neorl"])
def test_non_finite_rows_are_done(domain, layout):
    dim = {"hopper": 11, "walker2d": 17, "halfcheetah": 17}[domain] + (layout == "neorl")
    next_obs = torch.zeros(5, dim, dtype=torch.float32)
    next_obs[:, 0 + (layout == "neorl")] = 1.25  # standing height
    next_obs[1, -1] = float("nan")
    next_obs[2, 1] = float("inf")
    next_obs[3, 0] = float("-inf")
    next_obs[4, dim // 2] = float("nan")
    done = get_termination_fn(domain, layout)(next_obs, torch.zeros(5, 3), next_obs)
    assert done.tolist() == [False, True, True, True, True]


def test_float32_batched_and_dim_checks():
    fn = get_termination_fn("hopper", "neorl")
    next_obs = torch.zeros(4, 7, 12)
    next_obs[..., 1] = 1.25
    next_obs[2, 3, 2] = 0.3
    done = fn(next_obs, torch.zeros(4, 7, 3), next_obs)
    assert done.shape == (4, 7) and done.sum() == 1 and done[2, 3]
    with pytest.raises(ValueError, match=r"hopper termination \(d4rl layout\) expects next_obs \[B, 11\]"):
        get_termination_fn("hopper")(next_obs, None, next_obs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    next_obs = torch.zeros(3, 17, device="cuda")
    next_obs[:, 0] = torch.tensor([1.25, 0.5, 1.25])
    done = get_termination_fn("walker2d")(next_obs, None, next_obs)
    assert done.device.type == "cuda" and done.tolist() == [False, True, False]


@pytest.mark.parametrize(
    "task,domain",
    [
        ("hopper", "hopper"),
        ("Hopper-v4", "hopper"),
        ("Hopper-v5", "hopper"),
        ("hopper-medium-v2", "hopper"),
        ("hopper-medium-replay-v2", "hopper"),
        ("Hopper-v3-low-100", "hopper"),
        ("Walker2d-v4", "walker2d"),
        ("walker2d-expert-v2", "walker2d"),
        ("Walker2d-v3-high-10000", "walker2d"),
        ("HalfCheetah-v4", "halfcheetah"),
        ("halfcheetah-medium-expert-v2", "halfcheetah"),
        ("HalfCheetah-v3-medium", "halfcheetah"),
    ],
)
def test_registry_parses_task_names(task, domain):
    assert parse_domain(task) == domain
    for layout in ("d4rl", "neorl"):
        assert get_termination_fn(task, layout) is get_termination_fn(domain, layout)
        assert get_termination_fn(task, layout).__name__ == f"{domain}_{layout}_termination"


@pytest.mark.parametrize("task", ["Ant-v4", "hopperx", "walker-v4", "cheetah", "Hopper_v4", "my-hopper-v2", ""])
def test_unknown_task_is_a_key_error(task):
    with pytest.raises(KeyError, match=r"known domains are \['halfcheetah', 'hopper', 'walker2d'\].*callable"):
        get_termination_fn(task)


def test_unknown_layout_is_a_value_error():
    with pytest.raises(ValueError, match="unknown observation layout 'gym'"):
        get_termination_fn("hopper", "gym")
    with pytest.raises(ValueError, match="unknown observation layout"):
        resolve_termination_fn(lambda o, a, n: n[:, 0] > 0, "gym")


def test_resolve_passes_callables_through_and_checks_their_output():
    next_obs = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    fn = resolve_termination_fn(lambda obs, act, nxt: nxt[:, 0] < 0)
    assert fn(next_obs, None, next_obs).tolist() == [False, True]
    assert resolve_termination_fn("hopper-medium-v2", "neorl") is get_termination_fn("hopper", "neorl")

    def returns_float(obs, act, nxt):
        return (nxt[:, 0] < 0).float()

    with pytest.raises(TypeError, match="returns_float must return a bool tensor, got a torch.float32 tensor"):
        resolve_termination_fn(returns_float)(next_obs, None, next_obs)
    with pytest.raises(TypeError, match="must return a bool tensor, got ndarray"):
        resolve_termination_fn(lambda o, a, n: np.zeros(2, bool))(next_obs, None, next_obs)
    with pytest.raises(ValueError, match=r"must return shape \(2,\).*got \(2, 1\)"):
        resolve_termination_fn(lambda o, a, n: n[:, :1] < 0)(next_obs, None, next_obs)
    with pytest.raises(TypeError, match="a task name or a callable"):
        resolve_termination_fn(3)
