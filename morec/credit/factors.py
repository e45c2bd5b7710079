"""Latent factor encoders ``phi(s, a)`` for the LaRe reward decoder.

An encoder is any callable ``encoder(obs [N, O] np.ndarray, act [N, A] np.ndarray) -> [N, K]
np.ndarray`` with two string attributes: ``name`` (what it is) and ``source`` (who wrote it:
``"hand-written"`` here, ``"identity"`` for the raw-input ablation, ``"llm"`` for encoders produced
by the LLM bridge). Decomposers record both in their metadata and reports.

The robot encoders below are **hand-written** by the library authors from gymnasium's v4 MuJoCo
sources (D4RL observation layout: ``qpos[1:]`` then ``qvel``, clipped to [-10, 10] for hopper and
walker2d); they are a reference point for LLM-written encoders, not LLM output.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from morec.tasks import DOMAINS, Domain

HAND_WRITTEN = "hand-written"


class FactorEncoder(Protocol):
    """``(obs [N, O], act [N, A]) -> factors [N, K]``, deterministic and row-wise."""

    name: str
    source: str

    def __call__(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray: ...


def check_inputs(
    obs: np.ndarray, act: np.ndarray, obs_dim: int | None = None, act_dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``obs``/``act`` as float arrays ``[N, O]``/``[N, A]`` with the same ``N`` (and the expected
    widths when given); a clear ValueError otherwise."""
    obs, act = np.asarray(obs, dtype=np.float64), np.asarray(act, dtype=np.float64)
    if obs.ndim != 2:
        raise ValueError(f"obs must be a matrix [N, O], got shape {obs.shape}")
    if act.ndim != 2:
        raise ValueError(f"act must be a matrix [N, A], got shape {act.shape}")
    if len(obs) != len(act):
        raise ValueError(f"obs has {len(obs)} rows but act has {len(act)}; they must describe the same steps")
    if obs_dim is not None and obs.shape[1] != obs_dim:
        raise ValueError(f"obs must have {obs_dim} columns (D4RL layout), got {obs.shape[1]}")
    if act_dim is not None and act.shape[1] != act_dim:
        raise ValueError(f"act must have {act_dim} columns, got {act.shape[1]}")
    return obs, act


class IdentityFactors:
    """The raw input as factors: ``[obs, act]`` ``[N, O + A]`` (the RD/RRD ablation of LaRe)."""

    name = "identity"
    source = "identity"

    def __call__(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        obs, act = check_inputs(obs, act)
        return np.concatenate([obs, act], axis=1).astype(np.float32)


class _HandWrittenLocomotion:
    """Hand-written factors of a planar MuJoCo runner in the D4RL layout.

    Indices (gymnasium v4): ``obs[0]`` torso height (rootz), ``obs[1]`` torso angle (rooty),
    ``obs[robot.x_velocity_index]`` forward (x) velocity. Robots that can fall add ``healthy``, the
    env's ``is_healthy`` test evaluated on the observation.
    """

    source = HAND_WRITTEN
    robot: Domain
    factor_names: tuple[str, ...] = ("forward_velocity", "torso_height", "torso_angle", "control_cost")

    @property
    def name(self) -> str:
        return f"{HAND_WRITTEN}/{self.robot.name}"

    def healthy(self, obs: np.ndarray) -> np.ndarray | None:
        """``[N]`` bool, or None for a robot that never falls."""
        return None

    def __call__(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        """``[N, K]`` float32, columns in ``factor_names`` order."""
        robot = self.robot
        obs, act = check_inputs(obs, act, robot.obs_dim, robot.act_dim)
        cols = [obs[:, robot.x_velocity_index], obs[:, 0], obs[:, 1], np.square(act).sum(axis=1)]
        healthy = self.healthy(obs)
        if healthy is not None:
            cols.append(healthy.astype(np.float64))
        return np.stack(cols, axis=1).astype(np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={self.source!r}, factors={list(self.factor_names)})"


_WITH_HEALTHY = (*_HandWrittenLocomotion.factor_names, "healthy")


class HopperFactors(_HandWrittenLocomotion):
    """Hand-written Hopper-v4 factors ``[N, 5]``: forward velocity (``obs[5]``), torso height
    (``obs[0]``), torso angle (``obs[1]``), control cost ``sum(a^2)`` and the healthy indicator
    (``0.7 < z``, ``|angle| < 0.2``, ``|obs[1:]| < 100``)."""

    robot = DOMAINS["hopper"]
    factor_names = _WITH_HEALTHY

    def healthy(self, obs: np.ndarray) -> np.ndarray:
        return (obs[:, 0] > 0.7) & (np.abs(obs[:, 1]) < 0.2) & (np.abs(obs[:, 1:]) < 100.0).all(axis=1)


class Walker2dFactors(_HandWrittenLocomotion):
    """Hand-written Walker2d-v4 factors ``[N, 5]``: forward velocity (``obs[8]``), torso height
    (``obs[0]``), torso angle (``obs[1]``), control cost ``sum(a^2)`` and the healthy indicator
    (``0.8 < z < 2``, ``|angle| < 1``)."""

    robot = DOMAINS["walker2d"]
    factor_names = _WITH_HEALTHY

    def healthy(self, obs: np.ndarray) -> np.ndarray:
        return (obs[:, 0] > 0.8) & (obs[:, 0] < 2.0) & (np.abs(obs[:, 1]) < 1.0)


class HalfCheetahFactors(_HandWrittenLocomotion):
    """Hand-written HalfCheetah-v4 factors ``[N, 4]``: forward velocity (``obs[8]``, unclipped),
    torso height (``obs[0]``), torso angle (``obs[1]``) and control cost ``sum(a^2)``; the cheetah
    never terminates, so there is no healthy indicator."""

    robot = DOMAINS["halfcheetah"]


HAND_WRITTEN_FACTORS: dict[str, type[_HandWrittenLocomotion]] = {
    "hopper": HopperFactors,
    "walker2d": Walker2dFactors,
    "halfcheetah": HalfCheetahFactors,
}


def hand_written_factors(domain: str) -> _HandWrittenLocomotion:
    """The hand-written encoder of ``domain`` (``"hopper"``, ``"walker2d"`` or ``"halfcheetah"``)."""
    if domain not in HAND_WRITTEN_FACTORS:
        raise ValueError(f"no hand-written factors for domain {domain!r}: use one of {sorted(HAND_WRITTEN_FACTORS)}")
    return HAND_WRITTEN_FACTORS[domain]()


def encoder_by_name(name: str) -> FactorEncoder:
    """Rebuild a built-in encoder from its ``name`` (``"identity"`` or ``"hand-written/<domain>"``);
    other encoders (LLM-written ones) must be passed to the loader explicitly."""
    if name == IdentityFactors.name:
        return IdentityFactors()
    prefix = f"{HAND_WRITTEN}/"
    if name.startswith(prefix):
        return hand_written_factors(name[len(prefix) :])
    raise ValueError(f"encoder {name!r} is not built in: pass the encoder object when loading")
