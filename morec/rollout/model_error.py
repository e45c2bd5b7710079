"""Model error against the MuJoCo oracle: the yardstick for rollout selectors (MOREC's claim),
measured per step and over whole rollouts.

Errors are normalised per observation dimension by the dataset's standard deviation, then
averaged over dimensions (root mean square), so one number compares across tasks:
``err(s', s'_true) = sqrt(mean_d ((s'_d - s'_true,d) / std_d)^2)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from morec.dynamics.termination import TerminationFn, get_termination_fn
from morec.rollout.buffer import ModelBuffer
from morec.rollout.engine import Policy, RolloutConfig, RolloutEngine, RolloutStats, Selector, StepRecord


@dataclass
class ModelErrorReport:
    """Oracle error of the transitions a rollout wrote."""

    overall: float  # mean normalised error over every written transition
    median: float
    per_step: list[float]  # [H] mean error of the transitions written at each step
    per_step_count: list[int]  # [H] transitions written at each step
    reward_abs_error: float  # mean |model reward - true reward|
    transitions: int
    rollout: dict

    def to_dict(self) -> dict:
        return asdict(self)


def observation_std(dataset, min_std: float = 1e-6) -> np.ndarray:
    """``[O]`` per-dimension std of a dataset's observations (floored at ``min_std``)."""
    return np.maximum(np.asarray(dataset.observations, np.float64).std(0), min_std)


def normalised_error(pred: np.ndarray, true: np.ndarray, obs_std: np.ndarray) -> np.ndarray:
    """``[...]`` RMS over the last dimension of ``(pred - true) / obs_std`` for ``[..., O]`` inputs
    (broadcast against each other)."""
    return np.sqrt((((pred - true) / obs_std) ** 2).mean(axis=-1))


def model_error(
    dynamics,
    selector: Selector | None,
    policy: Policy,
    start_states: torch.Tensor,
    horizon: int,
    oracle,
    *,
    obs_std: np.ndarray,
    termination_fn: TerminationFn | None = None,
    samples_per_member: int = 1,
    seed: int = 0,
) -> ModelErrorReport:
    """Roll ``policy`` through ``dynamics`` (candidates chosen by ``selector``; ``None`` = random
    elite) from ``start_states [B, O]`` for ``horizon`` steps, then ask ``oracle`` for the true
    next state of every written ``(s, a)``. No penalty is applied, so rewards are comparable."""
    term = termination_fn or get_termination_fn(oracle.env_id, oracle.layout)
    engine = RolloutEngine(
        dynamics,
        term,
        RolloutConfig(horizon=horizon, samples_per_member=samples_per_member),
        selector=selector,
        seed=seed,
    )
    records: list[StepRecord] = []
    buffer = ModelBuffer(max(len(start_states) * horizon, 1), start_states.shape[1], _act_dim(dynamics), engine.device)
    stats: RolloutStats = engine.rollout(start_states, policy, buffer, step_callback=records.append)
    if not records:
        raise ValueError("the rollout wrote no transitions; give at least one start state and horizon >= 1")
    obs = torch.cat([r.observations for r in records]).cpu().numpy()
    act = torch.cat([r.actions for r in records]).cpu().numpy()
    pred = torch.cat([r.next_observations for r in records]).cpu().numpy().astype(np.float64)
    reward = torch.cat([r.rewards for r in records]).cpu().numpy().astype(np.float64)
    steps = np.concatenate([np.full(len(r.observations), r.step) for r in records])
    true_next, true_reward, _ = oracle.step(obs, act)
    err = normalised_error(pred, true_next, obs_std)
    counts = np.bincount(steps, minlength=horizon)
    per_step = np.bincount(steps, weights=err, minlength=horizon) / np.maximum(counts, 1)
    return ModelErrorReport(
        overall=float(err.mean()),
        median=float(np.median(err)),
        per_step=per_step.tolist(),
        per_step_count=counts.tolist(),
        reward_abs_error=float(np.abs(reward - true_reward).mean()),
        transitions=len(err),
        rollout=asdict(stats),
    )


@torch.no_grad()
def open_loop_error(
    dynamics,
    dataset,
    horizon: int,
    *,
    obs_std: np.ndarray,
    selector: Selector | None = None,
    num_segments: int = 256,
    samples_per_member: int = 1,
    seed: int = 0,
) -> list[float]:
    """``[H]`` mean normalised error of the model's predicted state ``k + 1`` steps after a
    dataset state, feeding the dataset's own actions (open loop) along ``horizon``-step segments
    that lie inside one episode."""
    rng = np.random.default_rng(seed)
    starts = [s for sl in dataset.episodes() for s in range(sl.start, sl.stop - horizon + 1)]
    if not starts:
        raise ValueError(f"no episode of the dataset has {horizon} steps; use a shorter horizon")
    chosen = rng.choice(np.asarray(starts), size=min(num_segments, len(starts)), replace=False)
    rows = chosen[:, None] + np.arange(horizon)  # [S, H]
    device = dynamics.device
    engine = RolloutEngine(
        dynamics,
        lambda o, a, n: torch.zeros(len(o), dtype=torch.bool, device=device),
        RolloutConfig(horizon=horizon, samples_per_member=samples_per_member),
        selector=selector,
        seed=seed,
    )
    actions = torch.as_tensor(dataset.actions[rows], device=device)
    truth = dataset.next_observations[rows].astype(np.float64)
    obs = torch.as_tensor(dataset.observations[chosen], device=device)
    errors = []
    for k in range(horizon):
        picked, _, _ = engine.select(obs, actions[:, k], k)
        obs = picked[:, :-1]
        errors.append(float(normalised_error(obs.cpu().numpy().astype(np.float64), truth[:, k], obs_std).mean()))
    return errors


def oracle_report(model, ds, starts: int, horizon: int, seed: int) -> dict:
    """Model error under a uniformly random policy and open-loop along dataset actions."""
    from morec.dynamics import MujocoOracle

    oracle = MujocoOracle(ds.metadata["env_id"], ds.metadata["layout"])
    std = observation_std(ds)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(ds), size=min(starts, len(ds)), replace=False)
    start_states = torch.as_tensor(ds.observations[rows], device=model.device)
    gen = torch.Generator(device=model.device).manual_seed(seed)

    def random_policy(obs: torch.Tensor) -> torch.Tensor:
        return torch.rand(len(obs), ds.act_dim, device=obs.device, generator=gen) * 2 - 1

    closed = model_error(model, None, random_policy, start_states, horizon, oracle, obs_std=std, seed=seed)
    return {
        "random_policy_model_error": {
            k: closed.to_dict()[k] for k in ("overall", "median", "per_step", "reward_abs_error", "transitions")
        },
        "open_loop_error_per_step": open_loop_error(model, ds, horizon, obs_std=std, seed=seed),
    }


def _act_dim(dynamics) -> int:
    return dynamics.task.act_dim
