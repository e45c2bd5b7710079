"""Gymnasium MuJoCo environments and recording their transitions with the full simulator state."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from .tasks import get_task, make_gym_env


def make_env(env_id: str, seed: int | None = None) -> gym.Env:
    """A gymnasium MuJoCo env with its default (x position excluded) observation."""
    get_task(env_id)  # a clear error for unknown tasks before gymnasium's own
    env = make_gym_env(env_id)
    if seed is not None:
        env.action_space.seed(seed)
    return env


class TransitionLog:
    """Per-step arrays of a recording, including what the NeoRL layout and the MuJoCo oracle
    need: x position before and after the step, and qpos/qvel before the step.

    Rows go into preallocated arrays that double when full. (Keeping one small array per step
    alive between SAC updates fragmented the heap: about 140 KB of resident memory per step.)
    """

    def __init__(self) -> None:
        self._columns: dict[str, np.ndarray] = {}
        self._size = 0

    def append(self, **row) -> None:
        if not self._columns:
            self._columns = {k: np.zeros((1024, *np.shape(v)), np.asarray(v).dtype) for k, v in row.items()}
        if self._size == len(next(iter(self._columns.values()))):
            self._columns = {k: np.concatenate([v, np.zeros_like(v)]) for k, v in self._columns.items()}
        for key, value in row.items():
            self._columns[key][self._size] = value
        self._size += 1

    def __len__(self) -> int:
        return self._size

    def last(self, key: str) -> np.ndarray:
        return self._columns[key][self._size - 1]

    def set_last(self, key: str, value) -> None:
        self._columns[key][self._size - 1] = value

    def arrays(self, stop: int | None = None) -> dict[str, np.ndarray]:
        """Copies of the first ``stop`` (default: all) rows of every column."""
        n = self._size if stop is None else min(stop, self._size)
        return {k: v[:n].copy() for k, v in self._columns.items()}

    @staticmethod
    def from_arrays(arrays: dict[str, np.ndarray]) -> TransitionLog:
        log = TransitionLog()
        log._columns = {k: np.array(v) for k, v in arrays.items()}
        log._size = len(next(iter(arrays.values()), []))
        return log


def step_and_record(env: gym.Env, obs: np.ndarray, action: np.ndarray, log: TransitionLog):
    """Step ``env`` with ``action`` from ``obs`` and append the transition to ``log``.
    Returns ``(next_obs, terminated, truncated)``."""
    data = env.unwrapped.data
    qpos, qvel = data.qpos.copy(), data.qvel.copy()
    next_obs, reward, terminated, truncated, _ = env.step(action)
    log.append(
        observations=obs,
        actions=action,
        rewards=np.float32(reward),
        next_observations=next_obs,
        terminals=terminated,
        timeouts=truncated and not terminated,
        x_before=qpos[0],
        x_after=data.qpos[0],
        qpos=qpos,
        qvel=qvel,
    )
    return next_obs, terminated, truncated


def record_episodes(
    env: gym.Env, act_fn: Callable[[np.ndarray], np.ndarray], num_steps: int, seed: int, progress=None
) -> TransitionLog:
    """Run ``act_fn`` for exactly ``num_steps`` transitions (resetting after each episode). A last
    episode cut by the step budget is marked as a timeout."""
    log = TransitionLog()
    obs, _ = env.reset(seed=seed)
    for _ in range(num_steps):
        obs_next, terminated, truncated = step_and_record(env, obs, act_fn(obs), log)
        obs = env.reset()[0] if (terminated or truncated) else obs_next
        if progress is not None:
            progress.update(1)
    if not log.last("terminals"):
        log.set_last("timeouts", True)
    return log
