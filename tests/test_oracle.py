"""MujocoOracle against real gymnasium trajectories: next obs, reward and terminated, both
layouts, call-order independence, torch in/out, input checks and throughput."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from morec.dynamics.oracle import MujocoOracle

ENVS = [
    (env_id, layout) for env_id in ("Hopper-v4", "Walker2d-v4", "HalfCheetah-v4") for layout in ("d4rl", "neorl")
] + [("Hopper-v5", "d4rl"), ("Walker2d-v5", "d4rl")]

# Observed worst case is about 2.4e-12 (HalfCheetah, d4rl layout): x = 0 instead of the true x
# and a cold solver warm start change the last bits.
ATOL = 1e-9


def rollout(env_id: str, layout: str, steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Transitions of one unwrapped env under alternating random and noisy-linear actions;
    episodes go on for 10 terminated steps. ``unclipped``: the state's |qvel| < 10 everywhere,
    i.e. its observation is the exact state (HalfCheetah never clips)."""
    env = gym.make(env_id, exclude_current_positions_from_observation=(layout == "d4rl")).unwrapped
    rng = np.random.default_rng(seed)
    n_act, n_obs = env.action_space.shape[0], env.observation_space.shape[0]
    weights = rng.normal(size=(n_act, n_obs)) / np.sqrt(n_obs)
    obs, _ = env.reset(seed=seed)
    length, n_terminated = 0, 0
    rows: dict[str, list] = {key: [] for key in ("obs", "act", "next_obs", "reward", "terminated", "unclipped")}
    for step in range(steps):
        if step % 2:
            act = rng.uniform(-1.0, 1.0, n_act)
        else:
            act = np.clip(np.tanh(weights @ obs) + rng.normal(scale=0.3, size=n_act), -1.0, 1.0)
        unclipped = env_id.startswith("HalfCheetah") or bool(np.all(np.abs(env.data.qvel) < 10))
        next_obs, reward, terminated, _, _ = env.step(act)
        for key, value in zip(rows, (obs, act, next_obs, reward, terminated, unclipped)):
            rows[key].append(value)
        obs, length, n_terminated = next_obs, length + 1, n_terminated + terminated
        if n_terminated > 10 or length >= 300:
            obs, _ = env.reset()
            length, n_terminated = 0, 0
    return {key: np.array(value) for key, value in rows.items()}


@pytest.fixture(scope="module")
def hopper_rows() -> dict[str, np.ndarray]:
    return rollout("Hopper-v4", "d4rl", 400)


@pytest.mark.parametrize("env_id,layout", ENVS)
def test_reproduces_env_steps_on_unclipped_rows(env_id, layout):
    data = rollout(env_id, layout, 1500)
    keep = data["unclipped"]
    next_obs, reward, terminated = MujocoOracle(env_id, layout).step(data["obs"][keep], data["act"][keep])
    assert next_obs.dtype == reward.dtype == np.float64 and terminated.dtype == bool
    np.testing.assert_allclose(next_obs, data["next_obs"][keep], rtol=0, atol=ATOL)
    np.testing.assert_allclose(reward, data["reward"][keep], rtol=0, atol=ATOL)
    np.testing.assert_array_equal(terminated, data["terminated"][keep])
    assert keep.sum() >= 150
    if not env_id.startswith("HalfCheetah"):
        assert terminated.sum() >= 5 and (~terminated).sum() >= 100


def test_independent_of_call_order(hopper_rows):
    oracle = MujocoOracle("Hopper-v4")
    obs, act = hopper_rows["obs"], hopper_rows["act"]
    first = oracle.step(obs, act)
    reverse = oracle.step(obs[::-1], act[::-1])
    oracle.step(obs[:7] * 1.1, act[:7] * -1.0)  # something unrelated in between
    single = [oracle.step(obs[i : i + 1], act[i : i + 1]) for i in (5, 0, 300)]
    for out, back, one in zip(first, reverse, zip(*single)):
        np.testing.assert_array_equal(out, back[::-1])
        np.testing.assert_array_equal(out[[5, 0, 300]], np.concatenate(one))
    np.testing.assert_array_equal(MujocoOracle("Hopper-v4").step(obs, act)[0], first[0])


def test_torch_in_torch_out(hopper_rows):
    oracle = MujocoOracle("Hopper-v4")
    obs = torch.as_tensor(hopper_rows["obs"][:50], dtype=torch.float32)
    act = torch.as_tensor(hopper_rows["act"][:50], dtype=torch.float32)
    next_obs, reward, terminated = oracle.step(obs, act)
    assert next_obs.dtype == reward.dtype == torch.float32 and terminated.dtype == torch.bool
    assert next_obs.shape == (50, 11) and reward.shape == terminated.shape == (50,)
    assert next_obs.device == obs.device
    ref = oracle.step(obs.double().numpy(), act.double().numpy())
    np.testing.assert_array_equal(next_obs.numpy(), ref[0].astype(np.float32))
    np.testing.assert_array_equal(reward.numpy(), ref[1].astype(np.float32))
    np.testing.assert_array_equal(terminated.numpy(), ref[2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_on_cuda(hopper_rows):
    obs = torch.as_tensor(hopper_rows["obs"][:5], device="cuda")
    out = MujocoOracle("Hopper-v4").step(obs, torch.as_tensor(hopper_rows["act"][:5], device="cuda"))
    assert all(x.device.type == "cuda" for x in out)


@pytest.mark.parametrize("layout", ["d4rl", "neorl"])
def test_state_from_obs(layout):
    oracle = MujocoOracle("Walker2d-v4", layout)
    obs = np.arange(3 * oracle.obs_dim, dtype=np.float64).reshape(3, oracle.obs_dim)
    qpos, qvel = oracle.state_from_obs(obs)
    assert qpos.shape == (3, 9) and qvel.shape == (3, 9)
    if layout == "d4rl":
        np.testing.assert_array_equal(qpos[:, 0], 0.0)
        np.testing.assert_array_equal(qpos[:, 1:], obs[:, :8])
    else:
        np.testing.assert_array_equal(qpos, obs[:, :9])
    np.testing.assert_array_equal(qvel, obs[:, -9:])


def test_input_checks():
    oracle = MujocoOracle("Hopper-v4", "neorl")
    obs, act = np.zeros((4, 12)), np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"obs must be \[B, 12\] for Hopper-v4 \(neorl layout\), got \(12,\)"):
        oracle.step(obs[0], act)
    with pytest.raises(ValueError, match=r"obs must be \[B, 12\].*got \(4, 11\)"):
        oracle.step(obs[:, 1:], act)
    with pytest.raises(ValueError, match=r"act must be \[B, 3\].*got \(4, 6\)"):
        oracle.step(obs, np.zeros((4, 6)))
    with pytest.raises(ValueError, match="same batch size, got 4 and 3"):
        oracle.step(obs, act[:3])
    obs[2, 5] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        oracle.step(obs, act)
    with pytest.raises(ValueError, match="unknown observation layout"):
        MujocoOracle("Hopper-v4", "gym")
    with pytest.raises(ValueError, match="observations are not"):
        MujocoOracle("Ant-v4")


def test_throughput(hopper_rows):
    """Reports rows/s for a batch of 2000 (run with -s to see it); asserts nothing about time."""
    idx = np.arange(2000) % len(hopper_rows["obs"])
    oracle = MujocoOracle("Hopper-v4")
    start = time.perf_counter()
    next_obs, _, _ = oracle.step(hopper_rows["obs"][idx], hopper_rows["act"][idx])
    seconds = time.perf_counter() - start
    print(f"\nMujocoOracle(Hopper-v4) step: {2000 / seconds:.0f} rows/s (batch 2000)")
    assert next_obs.shape == (2000, 11)
