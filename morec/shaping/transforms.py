"""Reward-shaping transforms on per-episode reward arrays (numpy or torch).

Every transform is a callable object ``transform(rewards, **context) -> rewards``:

- ``rewards [T]`` is one episode's step rewards, a floating numpy array or torch tensor; the result
  has the same type, dtype and length (torch results stay on the input's device; nothing is copied
  to the host);
- ``context`` holds per-step extras of the same backend and length ``T``, by name:
  ``observations [T, O]``, ``actions [T, A]``, ``next_observations [T, O]``, ``terminals [T]``
  (bool), ``timeouts [T]`` (bool) and any named extra channel (``[T]``). A transform reads the keys
  it needs and ignores the rest, so :class:`Compose` passes the same context to every part.
- ``per_step`` says whether the transform also makes sense on single steps (model rollouts), where
  the ``[B]`` rows are unrelated transitions rather than one episode: only elementwise transforms
  do (:class:`Clip`, step-scope :class:`FlipNoise`, :class:`PotentialShaping`); wrap them in
  :class:`StepAdapter` for ``RolloutEngine(reward_transform=...)``.

:func:`apply_per_episode` relabels an :class:`~morec.data.OfflineDataset` episode by episode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import torch

from morec.data import OfflineDataset
from morec.dynamics.termination import TerminationFn
from morec.io import plain

Array = TypeVar("Array", np.ndarray, torch.Tensor)
Potential = Callable[[Any], Any]  # observations [T, O] -> potentials [T] (or [T, 1]), same backend


class Transform(Protocol):
    """``__call__(rewards [T], **context) -> rewards [T]``; ``per_step``: valid on single steps."""

    per_step: bool

    def __call__(self, rewards: Array, **context: Any) -> Array: ...


# ---------------------------------------------------------------------------- array helpers
def _check_rewards(rewards: Any, name: str = "rewards") -> None:
    if not isinstance(rewards, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(rewards).__name__}")
    if rewards.ndim != 1:
        raise ValueError(f"{name} must be 1-D [T], got shape {tuple(rewards.shape)}")
    floating = (
        rewards.is_floating_point() if isinstance(rewards, torch.Tensor) else np.issubdtype(rewards.dtype, np.floating)
    )
    if not floating:
        raise ValueError(f"{name} must have a floating-point dtype, got {rewards.dtype}")


def _matching(value: Any, rewards: Array, name: str, owner: str) -> Array:
    """Check that a context array has the rewards' backend (and device) and ``T`` rows."""
    if isinstance(rewards, torch.Tensor):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{owner}: '{name}' must be a torch tensor like rewards, got {type(value).__name__}")
        if value.device != rewards.device:
            raise ValueError(f"{owner}: '{name}' is on {value.device} but rewards are on {rewards.device}")
    elif not isinstance(value, np.ndarray):
        raise TypeError(f"{owner}: '{name}' must be a numpy array like rewards, got {type(value).__name__}")
    if value.ndim < 1 or value.shape[0] != rewards.shape[0]:
        raise ValueError(
            f"{owner}: '{name}' must have {rewards.shape[0]} rows like rewards, got shape {tuple(value.shape)}"
        )
    return value


def _require(context: dict[str, Any], name: str, rewards: Array, owner: str) -> Array:
    if context.get(name) is None:
        raise ValueError(f"{owner} needs context '{name}' (keys given: {sorted(context)})")
    return _matching(context[name], rewards, name, owner)


def _vector(value: Array, rewards: Array, name: str, owner: str) -> Array:
    """A ``[T]`` (or ``[T, 1]``) float array as ``[T]`` in the rewards' dtype."""
    if value.ndim == 2 and value.shape[1] == 1:
        value = value[:, 0]
    if value.ndim != 1:
        raise ValueError(f"{owner}: '{name}' must have shape [T] or [T, 1], got {tuple(value.shape)}")
    return value.to(rewards.dtype) if isinstance(value, torch.Tensor) else value.astype(rewards.dtype, copy=False)


def _bool_vector(value: Array, name: str, owner: str) -> Array:
    if value.ndim != 1 or value.dtype not in (torch.bool, np.bool_):
        raise ValueError(f"{owner}: context '{name}' must be a bool [T] array, got {value.dtype} {tuple(value.shape)}")
    return value


def _copy(x: Array) -> Array:
    return x.clone() if isinstance(x, torch.Tensor) else x.copy()


def _zeros(x: Array) -> Array:
    return torch.zeros_like(x) if isinstance(x, torch.Tensor) else np.zeros_like(x)


def _where(mask: Array, a: Array, b: Array) -> Array:
    return torch.where(mask, a, b) if isinstance(mask, torch.Tensor) else np.where(mask, a, b)


def _number(value: float, name: str) -> float:
    value = float(value)
    if np.isnan(value):
        raise ValueError(f"{name} must be a number, got nan")
    return value


# ---------------------------------------------------------------------------- elementwise
@dataclass(frozen=True)
class Clip:
    """``r_t -> min(max(r_t, low), high)``; bounds may be infinite for one-sided clipping."""

    low: float
    high: float
    per_step = True

    def __post_init__(self) -> None:
        low, high = _number(self.low, "low"), _number(self.high, "high")
        if low > high:
            raise ValueError(f"low must not exceed high, got low={low}, high={high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def __call__(self, rewards: Array, **context: Any) -> Array:
        _check_rewards(rewards)
        if isinstance(rewards, torch.Tensor):
            return rewards.clamp(self.low, self.high)
        return np.clip(rewards, self.low, self.high)


@dataclass
class FlipNoise:
    """Reward-flip noise: with probability ``p`` a reward is reflected about ``center``,
    ``r -> 2 * center - r``. ``center = 0`` flips the sign; ``center = 0.5`` is ``r -> 1 - r``
    for ``{0, 1}`` rewards, whose expectation is ``p + (1 - 2p) E[r]``. In general
    ``E[r~] = 2 * center * p + (1 - 2p) E[r]``.

    ``scope="step"`` draws a coin per step; ``scope="episode"`` draws one coin per call and flips
    the whole array (all rollouts of a prompt group flip together). Draws come from a generator
    seeded with ``seed`` (numpy, or torch on the rewards' device), so a fresh instance with the same
    seed reproduces the same flips for the same sequence of calls (in rollouts this stream is
    independent of the ``RolloutEngine`` seed).
    """

    p: float
    seed: int = 0
    center: float = 0.0
    scope: Literal["step", "episode"] = "step"
    _generators: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.p) <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {self.p}")
        if self.scope not in ("step", "episode"):
            raise ValueError(f"scope must be 'step' or 'episode', got {self.scope!r}")
        self.center = _number(self.center, "center")

    @property
    def per_step(self) -> bool:
        return self.scope == "step"

    def _generator(self, rewards: Array) -> Any:
        key = str(rewards.device) if isinstance(rewards, torch.Tensor) else "numpy"
        if key not in self._generators:
            if isinstance(rewards, torch.Tensor):
                self._generators[key] = torch.Generator(device=rewards.device).manual_seed(self.seed)
            else:
                self._generators[key] = np.random.default_rng(self.seed)
        return self._generators[key]

    def flips(self, rewards: Array) -> Array:
        """``[T]`` bool: which steps this call flips (advances the generator)."""
        _check_rewards(rewards)
        gen, n = self._generator(rewards), rewards.shape[0]
        draws = 1 if self.scope == "episode" else n
        if isinstance(rewards, torch.Tensor):
            mask = torch.rand(draws, generator=gen, device=rewards.device) < self.p
            return mask.expand(n) if self.scope == "episode" else mask
        mask = gen.random(draws) < self.p
        return np.broadcast_to(mask, n) if self.scope == "episode" else mask

    def __call__(self, rewards: Array, **context: Any) -> Array:
        return _where(self.flips(rewards), 2.0 * self.center - rewards, rewards)


@dataclass(frozen=True)
class PatternBonus:
    """RPR-style calibration: a reward below ``threshold`` gets a weighted auxiliary
    score added, capped at ``cap``; other rewards are unchanged:

    ``r_t -> min(cap, r_t + weight * b_t)  if r_t < threshold  else  r_t``

    where ``b [T]`` is the context entry named ``bonus_key`` (e.g. a pattern score in ``[0, 1]``).
    The HelpSteer3 setting of RPR is ``weight=0.1, threshold=0.5, cap=1``. Requires ``weight >= 0`` and
    ``threshold <= cap`` so a non-negative bonus never lowers a reward.
    """

    weight: float = 0.1
    threshold: float = 0.5
    cap: float = 1.0
    bonus_key: str = "bonus"
    per_step = False  # the bonus is an episode-level extra, not available in model rollouts

    def __post_init__(self) -> None:
        if not _number(self.weight, "weight") >= 0.0:
            raise ValueError(f"weight must be >= 0, got {self.weight}")
        if _number(self.threshold, "threshold") > _number(self.cap, "cap"):
            raise ValueError(f"threshold must not exceed cap, got threshold={self.threshold}, cap={self.cap}")

    def __call__(self, rewards: Array, **context: Any) -> Array:
        _check_rewards(rewards)
        bonus = _vector(
            _require(context, self.bonus_key, rewards, "PatternBonus"), rewards, self.bonus_key, "PatternBonus"
        )
        boosted = rewards + self.weight * bonus
        boosted = boosted.clamp(max=self.cap) if isinstance(boosted, torch.Tensor) else np.minimum(boosted, self.cap)
        return _where(rewards < self.threshold, boosted, rewards)


# ---------------------------------------------------------------------------- sequence transforms
@dataclass(frozen=True)
class Delta:
    """Backward difference ``d_t = r_t - r_{t-1}`` with ``r_{-1} = initial``, so ``d_0 = r_0 - initial``
    and ``sum_t d_t = r_{T-1} - initial``. (Not Clip-Delta's difference, which is a forward one; see
    :class:`ClipDelta`.)"""

    initial: float = 0.0
    per_step = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "initial", _number(self.initial, "initial"))

    def __call__(self, rewards: Array, **context: Any) -> Array:
        _check_rewards(rewards)
        out = _copy(rewards)
        out[1:] -= rewards[:-1]
        out[:1] -= self.initial
        return out


@dataclass(frozen=True)
class ClipDelta:
    """Process-reward refinement Clip-Delta (Gao et al. 2024).

    ``rewards [K]`` are one solution's per-step process-reward scores ``r_k`` (step ``K``, the last,
    holds the answer). Clip: ``c_k = min(r_k - eta, 0)``. Delta on the clipped scores::

        out_k = c_k - c_{k+1}   if k < K-1
              = c_{K-1}         if k = K-1
              = 0               if k = K

    so the return-to-go from step ``t <= K-1`` is ``c_t <= 0`` and the last step contributes 0 (the
    outcome reward, added separately, covers it). ``K = 1`` gives ``[0]``.
    """

    eta: float
    per_step = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "eta", _number(self.eta, "eta"))

    def __call__(self, rewards: Array, **context: Any) -> Array:
        _check_rewards(rewards)
        shifted = rewards - self.eta
        clipped = shifted.clamp(max=0.0) if isinstance(shifted, torch.Tensor) else np.minimum(shifted, 0.0)
        out = _zeros(clipped)
        k = rewards.shape[0]
        if k >= 2:
            out[: k - 2] = clipped[: k - 2] - clipped[1 : k - 1]
            out[k - 2] = clipped[k - 2]
        return out


@dataclass(frozen=True)
class PotentialShaping:
    """Potential-based shaping ``r_t + gamma * Phi(s'_t) - Phi(s_t)``, with ``Phi(s'_t) = 0`` where
    ``terminals[t]`` (timeouts keep ``Phi(s'_t)``).

    Call as ``shaping(rewards [T], observations=[T, O], next_observations=[T, O], terminals=[T])``
    (``terminals`` bool; all three required). ``potential`` maps ``observations [T, O]`` to
    ``[T]`` or ``[T, 1]`` in the same backend. Over a contiguous episode
    ``sum_t gamma^t F_t = gamma^T Phi(s_T) [not terminal] - Phi(s_0)``, so optimal policies are
    unchanged.
    """

    potential: Potential
    gamma: float = 0.99
    per_step = True

    def __post_init__(self) -> None:
        if not callable(self.potential):
            raise TypeError(f"potential must be callable, got {type(self.potential).__name__}")
        if not 0.0 <= float(self.gamma) <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")

    def _phi(self, obs: Array, rewards: Array, name: str) -> Array:
        value = self.potential(obs)
        if not isinstance(value, torch.Tensor if isinstance(rewards, torch.Tensor) else np.ndarray):
            raise TypeError(
                f"PotentialShaping: potential({name}) must return a {type(rewards).__name__}, got "
                f"{type(value).__name__}"
            )
        return _vector(
            _matching(value, rewards, f"potential({name})", "PotentialShaping"),
            rewards,
            f"potential({name})",
            "PotentialShaping",
        )

    def __call__(self, rewards: Array, **context: Any) -> Array:
        _check_rewards(rewards)
        obs = _require(context, "observations", rewards, "PotentialShaping")
        next_obs = _require(context, "next_observations", rewards, "PotentialShaping")
        terminals = _bool_vector(
            _require(context, "terminals", rewards, "PotentialShaping"), "terminals", "PotentialShaping"
        )
        phi_next = _where(terminals, _zeros(rewards), self._phi(next_obs, rewards, "next_observations"))
        return rewards + self.gamma * phi_next - self._phi(obs, rewards, "observations")


@dataclass(frozen=True)
class GatedAccumulation:
    """G-RA, gated reward accumulation (Sun et al. 2025).

    ``channels`` name reward channels in priority order, highest first: ``"rewards"`` is the array
    passed in, any other name a ``[T]`` context entry (e.g. a dataset ``infos`` column).
    ``thresholds[i]`` applies to channel ``i`` (one per channel but the last). The gate is
    **cumulative over the episode**: with totals ``R_i = sum_t r_{i,t}``,

    ``g_j = prod_{i < j} 1[R_i >= theta_i]`` (``g_0 = 1``) and ``out_t = sum_j g_j * r_{j,t}``,

    so ``sum_t out_t = sum_j g_j R_j`` (the paper's ``R_total``): a lower-priority channel counts only if every
    higher one meets its threshold. ``-inf`` thresholds give plain accumulation (D-RA).
    """

    channels: tuple[str, ...]
    thresholds: tuple[float, ...]
    per_step = False

    def __post_init__(self) -> None:
        channels, thresholds = tuple(self.channels), tuple(_number(t, "thresholds") for t in self.thresholds)
        if not channels or len(set(channels)) != len(channels):
            raise ValueError(f"channels must be non-empty, distinct names, got {channels}")
        if len(thresholds) != len(channels) - 1:
            raise ValueError(
                f"thresholds needs one value per channel but the last ({len(channels) - 1}), got {len(thresholds)}"
            )
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "thresholds", thresholds)

    def gates(self, rewards: Array, **context: Any) -> Array:
        """``[C]`` 0/1 gate per channel for this episode (rewards' dtype)."""
        return self._gates(self._stack(rewards, context))

    def _gates(self, stacked: Array) -> Array:
        passed = stacked[:-1].sum(1)
        if isinstance(stacked, torch.Tensor):
            passed = passed >= torch.as_tensor(self.thresholds, dtype=stacked.dtype, device=stacked.device)
            return torch.cat([passed.new_ones(1), passed]).to(stacked.dtype).cumprod(0)
        passed = passed >= np.asarray(self.thresholds, stacked.dtype)
        return np.concatenate([[True], passed]).astype(stacked.dtype).cumprod()

    def _stack(self, rewards: Array, context: dict[str, Any]) -> Array:
        _check_rewards(rewards)
        rows = [
            rewards
            if name == "rewards"
            else _vector(_require(context, name, rewards, "GatedAccumulation"), rewards, name, "GatedAccumulation")
            for name in self.channels
        ]
        return torch.stack(rows) if isinstance(rewards, torch.Tensor) else np.stack(rows)

    def __call__(self, rewards: Array, **context: Any) -> Array:
        stacked = self._stack(rewards, context)
        return (self._gates(stacked)[:, None] * stacked).sum(0)


# ---------------------------------------------------------------------------- composition
@dataclass(frozen=True)
class Compose:
    """Apply ``transforms`` left to right, each with the same context. ``per_step`` if all parts are."""

    transforms: tuple[Transform, ...]

    def __post_init__(self) -> None:
        transforms = tuple(self.transforms)
        if not transforms:
            raise ValueError("transforms must name at least one transform")
        for t in transforms:
            if not callable(t):
                raise TypeError(f"transforms must be callables, got {type(t).__name__}")
        object.__setattr__(self, "transforms", transforms)

    @property
    def per_step(self) -> bool:
        return all(getattr(t, "per_step", False) for t in self.transforms)

    def __call__(self, rewards: Array, **context: Any) -> Array:
        for t in self.transforms:
            rewards = t(rewards, **context)
        return rewards


def describe(transform: Transform) -> dict[str, Any]:
    """JSON-friendly description: ``{"name": class name, **parameters}`` (callables by qualified name)."""
    if isinstance(transform, Compose):
        return {"name": "Compose", "transforms": [describe(t) for t in transform.transforms]}
    if not dataclasses.is_dataclass(transform):
        return {"name": plain(transform)}
    return {
        "name": type(transform).__name__,
        **{f.name: _parameter(getattr(transform, f.name)) for f in dataclasses.fields(transform) if f.init},
    }


def _parameter(value: Any) -> Any:
    """A transform's parameter as data: a dataclass (e.g. a potential) by :func:`describe`, with its
    own parameters; anything else by :func:`morec.io.plain`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return describe(value)
    return plain(value)


# ---------------------------------------------------------------------------- datasets and rollouts
def apply_per_episode(transform: Transform, dataset: OfflineDataset) -> OfflineDataset:
    """A copy of ``dataset`` whose rewards are ``transform`` applied to each episode of
    ``dataset.episodes()``, with context ``observations``, ``actions``, ``next_observations``,
    ``terminals``, ``timeouts`` and every ``infos`` column (sliced to the episode).
    ``metadata["reward_shaping"]`` lists :func:`describe` of each transform applied so far."""
    if not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    fixed = {k: v for k, v in dataset.arrays().items() if k != "rewards"}
    clash = set(fixed) & set(dataset.infos)
    if clash:
        raise ValueError(f"dataset infos {sorted(clash)} shadow transition fields; rename them before shaping")
    rewards = np.empty_like(dataset.rewards)
    for episode in dataset.episodes():
        context = {k: v[episode] for k, v in {**fixed, **dataset.infos}.items()}
        out = transform(dataset.rewards[episode], **context)
        if not isinstance(out, np.ndarray) or out.shape != rewards[episode].shape:
            raise ValueError(
                f"transform must return a numpy array of shape {rewards[episode].shape} per episode, "
                f"got {type(out).__name__} {getattr(out, 'shape', '')}"
            )
        rewards[episode] = out
    metadata = dict(dataset.metadata)
    metadata["reward_shaping"] = [*metadata.get("reward_shaping", []), describe(transform)]
    return dataclasses.replace(dataset, rewards=rewards, metadata=metadata, infos=dict(dataset.infos))


@dataclass(frozen=True)
class StepAdapter:
    """A per-step transform as a ``RolloutEngine`` ``reward_transform``:
    ``(rewards [B], obs [B, O], act [B, A], next_obs [B, O]) -> rewards [B]``.

    Only ``per_step`` transforms are accepted (:class:`Clip`, step-scope :class:`FlipNoise`,
    :class:`PotentialShaping` or a :class:`Compose` of them); episode-level ones (Delta, ClipDelta,
    G-RA, PatternBonus) need a whole episode. With ``termination_fn`` the context gets
    ``terminals = termination_fn(obs, act, next_obs)``, which :class:`PotentialShaping` requires.
    """

    transform: Transform
    termination_fn: TerminationFn | None = None

    def __post_init__(self) -> None:
        if not getattr(self.transform, "per_step", False):
            raise ValueError(
                f"transform {type(self.transform).__name__} is not per_step; it needs whole episodes "
                "and cannot shape single model-rollout steps"
            )

    def __call__(
        self, rewards: torch.Tensor, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
    ) -> torch.Tensor:
        context = {"observations": obs, "actions": act, "next_observations": next_obs}
        if self.termination_fn is not None:
            context["terminals"] = self.termination_fn(obs, act, next_obs)
        return self.transform(rewards, **context)
