"""Reward shaping from a :class:`~morec.shaping.config.ShapingConfig`: the :mod:`morec.shaping.transforms`
transform it names, the learner's shaped real data, the rollout engine's ``reward_transform`` hook
for model rewards, and a JSON record of what changed.

- :func:`build_shaping`: everything a training run needs (:class:`RewardShaping`);
- :func:`shape_dataset`: one dataset's rewards shaped (``morec relabel --shaping``);
- :func:`fit_value_potential`: the ``fitted`` potential, a linear value estimate from the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from morec.data import OfflineDataset
from morec.dynamics.termination import TerminationFn
from morec.errors import UserError
from morec.shaping.config import ShapingConfig
from morec.shaping.transforms import (
    Clip,
    ClipDelta,
    Delta,
    FlipNoise,
    GatedAccumulation,
    PatternBonus,
    PotentialShaping,
    StepAdapter,
    Transform,
    apply_per_episode,
    describe,
)


# ---------------------------------------------------------------------------------------- potentials
@dataclass
class LinearPotential:
    """``Phi(s) = scale * (weights . s + bias)`` on observations ``[T, O]`` (numpy or torch, any
    device) -> ``[T]`` in the same backend."""

    weights: tuple[float, ...]
    bias: float = 0.0
    scale: float = 1.0
    _tensors: dict[Any, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.weights = tuple(float(w) for w in self.weights)
        self.bias, self.scale = float(self.bias), float(self.scale)
        if not self.weights or not np.isfinite([*self.weights, self.bias, self.scale]).all():
            raise ValueError("LinearPotential needs finite weights (at least one), bias and scale")

    def __call__(self, obs):
        if obs.shape[-1] != len(self.weights):
            raise ValueError(
                f"LinearPotential has {len(self.weights)} weights but observations have {obs.shape[-1]} dimensions"
            )
        if isinstance(obs, torch.Tensor):
            key = (obs.device, obs.dtype)
            if key not in self._tensors:  # built once per device: nothing crosses to the device inside rollouts
                w = torch.tensor(self.weights, dtype=torch.float64) * self.scale
                self._tensors[key] = (
                    w.to(obs.device, obs.dtype),
                    torch.tensor(self.bias * self.scale).to(obs.device, obs.dtype),
                )
            w, b = self._tensors[key]
            return obs @ w + b
        w = np.asarray(self.weights, np.float64) * self.scale
        return np.asarray(obs, np.float64) @ w + self.bias * self.scale


def discounted_returns_to_go(dataset: OfflineDataset, gamma: float) -> np.ndarray:
    """``[N]`` float64: ``sum_k gamma^k r_{t+k}`` from each step to the end of its episode
    (``dataset.episodes()``; no bootstrap after a timeout or an unfinished tail)."""
    rewards = dataset.rewards.astype(np.float64).tolist()
    is_end = np.zeros(len(dataset), bool)
    is_end[dataset.episode_ends()] = True
    out, g = np.empty(len(dataset)), 0.0
    for i in range(len(dataset) - 1, -1, -1):
        g = rewards[i] + (0.0 if is_end[i] else gamma * g)
        out[i] = g
    return out


def fit_value_potential(
    dataset: OfflineDataset, gamma: float, scale: float = 1.0
) -> tuple[LinearPotential, dict[str, float]]:
    """The ``fitted`` potential: least squares of the discounted return-to-go on ``[s, 1]``, i.e. a
    linear estimate of the behaviour policy's value. Returns it and fit statistics (``r2``)."""
    target = discounted_returns_to_go(dataset, gamma)
    x = np.concatenate([dataset.observations.astype(np.float64), np.ones((len(dataset), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(x, target, rcond=None)
    residual = target - x @ coef
    spread = float(((target - target.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / spread if spread > 0 else 1.0
    potential = LinearPotential(tuple(coef[:-1]), float(coef[-1]), scale)
    return potential, {
        "r2": r2,
        "return_to_go_mean": float(target.mean()),
        "potential_mean": float(potential(dataset.observations).mean()),
    }


# ---------------------------------------------------------------------------------------- transforms
def build_transform(
    config: ShapingConfig, dataset: OfflineDataset, *, gamma: float, seed: int
) -> tuple[Transform, dict[str, Any]]:
    """The :mod:`morec.shaping.transforms` transform ``config`` names and notes for the record (a fitted
    potential's statistics). ``gamma``: the learner's discount, used where ``config.gamma`` is null;
    ``seed``: flip noise's seed where ``config.seed`` is null. ``dataset`` fits the ``fitted``
    potential and is checked for the columns and dimensions the transform needs."""
    c, notes = config, {}
    if not c.enabled:
        raise ValueError("shaping transform is none: there is nothing to build")
    if c.transform == "clip":
        return Clip(-np.inf if c.low is None else c.low, np.inf if c.high is None else c.high), notes
    if c.transform == "potential":
        gamma = gamma if c.gamma is None else c.gamma
        scale = 1.0 if c.potential_scale is None else c.potential_scale
        if c.potential == "fitted":
            potential, notes["potential_fit"] = fit_value_potential(dataset, gamma, scale)
        else:
            if len(c.weights) != dataset.obs_dim:
                raise UserError(
                    f"shaping.weights has {len(c.weights)} numbers but the dataset's observations have "
                    f"{dataset.obs_dim} dimensions; give one weight per dimension"
                )
            potential = LinearPotential(c.weights, 0.0 if c.bias is None else c.bias, scale)
        return PotentialShaping(potential, gamma), notes
    if c.transform == "flip_noise":
        kw = {k: getattr(c, k) for k in ("center", "scope") if getattr(c, k) is not None}
        return FlipNoise(c.p, seed=seed if c.seed is None else c.seed, **kw), notes
    if c.transform == "delta":
        return Delta(**({} if c.initial is None else {"initial": c.initial})), notes
    if c.transform == "clip_delta":
        return ClipDelta(c.eta), notes
    if c.transform == "pattern_bonus":
        kw = {k: getattr(c, k) for k in ("weight", "threshold", "cap", "bonus_key") if getattr(c, k) is not None}
        transform = PatternBonus(**kw)
        _require_infos(dataset, [transform.bonus_key], "shaping.bonus_key")
        return transform, notes
    if c.transform == "gated":
        _require_infos(dataset, [ch for ch in c.channels if ch != "rewards"], "shaping.channels")
        return GatedAccumulation(c.channels, c.thresholds), notes
    raise AssertionError(f"unhandled shaping transform {c.transform!r}")  # ShapingConfig admits no other


def _require_infos(dataset: OfflineDataset, names: list[str], key: str) -> None:
    missing = [n for n in names if n not in dataset.infos]
    if missing:
        have = ", ".join(sorted(dataset.infos)) or "none"
        raise UserError(
            f"{key}: the dataset has no infos column {missing[0]!r} (its infos columns: {have}); "
            "name one it has (or 'rewards' for a gated channel)"
        )


# ---------------------------------------------------------------------------------------- model rewards
class ModelRewardShaping:
    """The rollout engine's ``reward_transform``: a :class:`~morec.shaping.transforms.StepAdapter` of a per-step
    transform that also sums the model rewards before and after it (on the device; read by
    :meth:`stats`)."""

    def __init__(self, transform: Transform, termination_fn: TerminationFn | None):
        self.adapter = StepAdapter(transform, termination_fn)
        self._before: torch.Tensor | None = None
        self._after: torch.Tensor | None = None
        self.transitions = 0

    def __call__(
        self, rewards: torch.Tensor, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        shaped = self.adapter(rewards, obs, act, next_obs)
        if self._before is None:
            self._before = torch.zeros((), dtype=torch.float64, device=rewards.device)
            self._after = torch.zeros((), dtype=torch.float64, device=rewards.device)
        self._before += rewards.sum(dtype=torch.float64)
        self._after += shaped.sum(dtype=torch.float64)
        self.transitions += rewards.shape[0]
        return shaped

    def stats(self) -> dict[str, float | int | None]:
        """Mean model reward before and after shaping over the transitions shaped so far (this process)."""
        n = max(self.transitions, 1)
        before = None if self._before is None else float(self._before) / n
        after = None if self._after is None else float(self._after) / n
        return {"transitions_this_session": self.transitions, "reward_mean_before": before, "reward_mean_after": after}


# ---------------------------------------------------------------------------------------- runs and files
@dataclass
class RewardShaping:
    """A training run's shaping: ``real`` is the dataset whose rewards the learner samples (the
    loaded one itself when dataset rewards are not shaped); ``model_hook`` the rollout engine's
    ``reward_transform`` (``None`` when model rewards are not shaped)."""

    config: ShapingConfig
    real: OfflineDataset
    model_hook: ModelRewardShaping | None = None
    transform: Transform | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly: the transform as configured and as built, and the rewards before and after."""
        out = {"transform": self.config.transform}
        if not self.config.enabled:
            return out
        out.update(apply_to=self.config.apply_to, **self.record)
        if self.model_hook is not None:
            out["model"] = self.model_hook.stats()
        return out


def build_shaping(
    config: ShapingConfig, dataset: OfflineDataset, *, gamma: float, termination_fn: TerminationFn | None, seed: int
) -> RewardShaping:
    """A training run's :class:`RewardShaping` of ``dataset`` (as loaded, unshaped). ``gamma``: the
    learner's discount; ``termination_fn``: the task's, which potential shaping of model steps needs
    (``Phi(s') = 0`` where it says terminal). With ``transform: none`` nothing is built or drawn."""
    if not config.enabled:
        return RewardShaping(config, dataset)
    transform, notes = build_transform(config, dataset, gamma=gamma, seed=seed)
    record = {"parameters": config.parameters(), "built": _finite_or_text(describe(transform)), **notes}
    real = dataset
    if config.shapes_dataset:
        real = _shaped(transform, dataset)
        record["dataset"] = reward_change(dataset, real)
    hook = ModelRewardShaping(transform, termination_fn) if config.shapes_model else None
    return RewardShaping(config, real, hook, transform, record)


def shape_dataset(
    config: ShapingConfig, dataset: OfflineDataset, *, gamma: float, seed: int
) -> tuple[OfflineDataset, dict[str, Any]]:
    """``dataset`` with its rewards shaped by ``config``'s transform (whatever ``config.apply_to``
    says: this is the file's own data) and a JSON record; ``metadata["reward_shaping"]`` lists it."""
    if not config.enabled:
        raise UserError("the shaping config's transform is none; set shaping.transform (e.g. clip or potential)")
    transform, notes = build_transform(config, dataset, gamma=gamma, seed=seed)
    shaped = _shaped(transform, dataset)
    record = {
        "transform": config.transform,
        "parameters": config.parameters(),
        "built": _finite_or_text(describe(transform)),
        **notes,
        "dataset": reward_change(dataset, shaped),
    }
    return shaped, record


def _shaped(transform: Transform, dataset: OfflineDataset) -> OfflineDataset:
    shaped = apply_per_episode(transform, dataset)
    shaped.metadata["reward_shaping"][-1] = _finite_or_text(shaped.metadata["reward_shaping"][-1])
    return shaped


def _finite_or_text(value: Any) -> Any:
    """Infinite numbers (a one-sided clip's open bound) as ``"inf"``/``"-inf"``, so the record is strict JSON."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite_or_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_text(v) for v in value]
    return value


def reward_change(before: OfflineDataset, after: OfflineDataset) -> dict[str, float]:
    """Reward and return statistics of a dataset before and after shaping."""
    r0, r1 = before.rewards.astype(np.float64), after.rewards.astype(np.float64)
    return {
        "reward_mean_before": float(r0.mean()),
        "reward_mean_after": float(r1.mean()),
        "reward_min_after": float(r1.min()),
        "reward_max_after": float(r1.max()),
        "return_mean_before": float(before.returns().mean()),
        "return_mean_after": float(after.returns().mean()),
        "changed_fraction": float((before.rewards != after.rewards).mean()),
    }
