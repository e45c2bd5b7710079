"""Gymnasium MuJoCo environments and recording their transitions with the full simulator state."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from morec.tasks import get_task, make_gym_env


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

    Rows go into preallocated arrays that double when full (one small array per step, kept alive
    between SAC updates, fragmented the heap).
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
    def concatenate(logs: list[TransitionLog]) -> TransitionLog:
        """One log holding ``logs``' rows one after another."""
        if len(logs) == 1:
            return logs[0]
        columns = [log.arrays() for log in logs]
        return TransitionLog.from_arrays({key: np.concatenate([c[key] for c in columns]) for key in columns[0]})

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
    """Run ``act_fn`` (``obs [O] -> action [A]``) for exactly ``num_steps`` transitions in one env:
    :func:`record_episodes_batched` with one env."""
    return record_episodes_batched([env], lambda obs: act_fn(obs[0])[None], num_steps, seed, progress)


def record_episodes_batched(
    envs: list[gym.Env], act_fn: Callable[[np.ndarray], np.ndarray], num_steps: int, seed: int, progress=None
) -> TransitionLog:
    """Exactly ``num_steps`` transitions from ``N = len(envs)`` envs stepped side by side, with one
    call of ``act_fn`` (``obs [n, O] -> actions [n, A]``) per step for the ``n`` envs still running:
    a policy's forward pass is batched, which is most of a step's cost.

    Env ``i`` starts from ``reset(seed=seed + i)``, resets after each episode and records its share
    of the budget (``num_steps / N``, the first envs one more); its last episode, cut by the budget,
    is marked a timeout. The log holds env 0's episodes, then env 1's, and so on, so every episode
    is contiguous. With one env this is a plain sequential recording."""
    n = len(envs)
    budgets = [num_steps // n + (i < num_steps % n) for i in range(n)]
    logs = [TransitionLog() for _ in envs]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    while active := [i for i in range(n) if len(logs[i]) < budgets[i]]:
        actions = act_fn(np.stack([obs[i] for i in active]))
        for i, action in zip(active, actions):
            obs_next, terminated, truncated = step_and_record(envs[i], obs[i], action, logs[i])
            obs[i] = envs[i].reset()[0] if (terminated or truncated) else obs_next
        if progress is not None:
            progress.update(len(active))
    for log in logs:
        if len(log) and not log.last("terminals"):
            log.set_last("timeouts", True)
    return TransitionLog.concatenate([log for log in logs if len(log)])
