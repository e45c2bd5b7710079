"""The true MuJoCo dynamics as a batch model: set each row's state in a gymnasium env and step it."""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
import torch

from morec.tasks import make_gym_env

Array = np.ndarray | torch.Tensor


class MujocoOracle:
    """Steps one unwrapped gymnasium MuJoCo env (Hopper, Walker2d, HalfCheetah; v4 or v5) from
    observations, so next observation, reward and ``terminated`` come from the env's own code.

    A row's state is ``qpos = [x, obs[:nq - 1]]`` with ``x = 0`` in the ``"d4rl"`` layout (x is
    not observed and the dynamics do not depend on it) or ``qpos = obs[:nq]`` in the ``"neorl"``
    layout, and ``qvel`` = the rest of the row. Before each row the MuJoCo data are reset
    (``mj_resetData``: solver warm start, controls, time, ...), so a result depends only on its
    (obs, act), never on earlier calls.

    Exactness: Hopper and Walker2d observations hold velocities clipped to [-10, 10], so the
    oracle is exact only for rows whose true velocities were not clipped (HalfCheetah does not
    clip). On such rows it matches the env's step to about 1e-12 (floating-point differences
    from x = 0 and from the solver's warm start, which the observation does not carry).
    """

    def __init__(self, env_id: str = "Hopper-v4", layout: str = "d4rl") -> None:
        env: Any = make_gym_env(env_id, layout).unwrapped  # a gymnasium MujocoEnv: model, data, set_state
        self.env = env
        self.env_id, self.layout = env_id, layout
        self.nq, self.nv = self.env.model.nq, self.env.model.nv
        self.skip = 1 if layout == "d4rl" else 0  # qpos entries missing from the observation
        self.obs_dim = self.nq - self.skip + self.nv
        self.act_dim = self.env.model.nu
        if self.env.observation_space.shape != (self.obs_dim,):
            raise ValueError(
                f"{env_id} observations are not [qpos, qvel] (shape {self.env.observation_space.shape}, "
                f"expected ({self.obs_dim},)); MujocoOracle supports Hopper, Walker2d and HalfCheetah"
            )

    def state_from_obs(self, obs: Array) -> tuple[np.ndarray, np.ndarray]:
        """obs [B, D] -> (qpos [B, nq], qvel [B, nv]), float64 numpy; x = 0 in the d4rl layout."""
        obs = self._rows(obs, "obs", self.obs_dim)
        qpos = np.zeros((len(obs), self.nq))
        qpos[:, self.skip :] = obs[:, : self.nq - self.skip]
        return qpos, obs[:, self.nq - self.skip :].copy()

    def step(self, obs: Array, act: Array) -> tuple[Array, Array, Array]:
        """(obs [B, D], act [B, A]) -> (next_obs [B, D], reward [B], terminated [B] bool).

        numpy in gives float64 numpy out; a torch ``obs`` gives float32 torch tensors (bool for
        ``terminated``) on its device. Actions reach the env unclipped, as in ``env.step``."""
        qpos, qvel = self.state_from_obs(obs)
        actions = self._rows(act, "act", self.act_dim)
        if len(actions) != len(qpos):
            raise ValueError(f"obs and act need the same batch size, got {len(qpos)} and {len(actions)}")
        if not (np.isfinite(qpos).all() and np.isfinite(qvel).all() and np.isfinite(actions).all()):
            raise ValueError("obs and act must be finite")
        env, model, data = self.env, self.env.model, self.env.data
        next_obs = np.empty((len(qpos), self.obs_dim))
        reward = np.empty(len(qpos))
        terminated = np.empty(len(qpos), dtype=bool)
        for i in range(len(qpos)):
            mujoco.mj_resetData(model, data)
            env.set_state(qpos[i], qvel[i])
            next_obs[i], reward[i], terminated[i], _, _ = env.step(actions[i])
        if isinstance(obs, torch.Tensor):
            device = obs.device
            return (
                torch.as_tensor(next_obs, dtype=torch.float32, device=device),
                torch.as_tensor(reward, dtype=torch.float32, device=device),
                torch.as_tensor(terminated, device=device),
            )
        return next_obs, reward, terminated

    def _rows(self, x: Array, name: str, dim: int) -> np.ndarray:
        """Any [B, dim] array or tensor -> float64 numpy [B, dim], or a ValueError naming ``name``."""
        x = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != dim:
            raise ValueError(f"{name} must be [B, {dim}] for {self.env_id} ({self.layout} layout), got {x.shape}")
        return x
