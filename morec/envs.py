"""Gymnasium MuJoCo environments and recording their transitions with the full simulator state."""

from __future__ import annotations

from dataclasses import dataclass, field
import warnings
from typing import Callable

import gymnasium as gym
import numpy as np

from .tasks import get_task


def make_env(env_id: str, seed: int | None = None) -> gym.Env:
    """A gymnasium MuJoCo env with its default (x position excluded) observation."""
    get_task(env_id)  # a clear error for unknown tasks before gymnasium's own
    with warnings.catch_warnings():  # v4 is deprecated in gymnasium but is the D4RL-matching version
        warnings.filterwarnings("ignore", message=".*is out of date.*")
        env = gym.make(env_id)
    if seed is not None:
        env.action_space.seed(seed)
    return env


@dataclass
class TransitionLog:
    """Growing per-step arrays of a recording, including what the NeoRL layout and the MuJoCo
    oracle need: x position before and after the step, and qpos/qvel before the step."""

    columns: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def append(self, **row: np.ndarray) -> None:
        for key, value in row.items():
            self.columns.setdefault(key, []).append(np.asarray(value))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def arrays(self, stop: int | None = None) -> dict[str, np.ndarray]:
        return {k: np.stack(v[:stop]) for k, v in self.columns.items()}

    @staticmethod
    def from_arrays(arrays: dict[str, np.ndarray]) -> "TransitionLog":
        return TransitionLog({k: list(v) for k, v in arrays.items()})


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
    for t in range(num_steps):
        obs_next, terminated, truncated = step_and_record(env, obs, act_fn(obs), log)
        obs = env.reset()[0] if (terminated or truncated) else obs_next
        if progress is not None:
            progress.update(1)
    if not log.columns["terminals"][-1]:
        log.columns["timeouts"][-1] = np.asarray(True)
    return log
