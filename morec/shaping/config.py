"""`ShapingConfig`: the ``shaping:`` section of a training config (torch-free, so the command line
loads and checks it at once). :mod:`morec.shaping.setup` turns it into :mod:`morec.shaping.transforms`
transforms.

One transform with its parameters, applied to the learner's rewards::

    shaping:
      transform: clip        # none (default) | clip | potential | flip_noise | delta | clip_delta | pattern_bonus |
      gated
      low: -1.0
      high: 1.0
      apply_to: both         # dataset | model | both

``apply_to`` names whose rewards change: ``dataset`` the real transitions the learner samples,
``model`` the model-rollout rewards (through the rollout engine's ``reward_transform`` hook, before
MOPO's penalty), ``both`` both. The dynamics model and the MOREC dynamics reward always train on the
dataset as loaded, so their caches are shared with unshaped runs. (To train the dynamics on shaped
rewards instead, shape the file with ``morec relabel --method none --shaping FILE`` and train on it.)

Transforms and their parameters (unset ones take :mod:`morec.shaping.transforms`'s defaults):

- ``clip``: ``r -> min(max(r, low), high)``; ``low``/``high`` (at least one; an unset one is no
  bound). Any ``apply_to``.
- ``potential``: ``r + gamma * Phi(s') - Phi(s)``, ``Phi(s') = 0`` on terminal transitions
  (Ng et al. 1999: optimal policies are unchanged). Any ``apply_to``. ``gamma``: null (default)
  takes ``agent.gamma``, the learner's discount, which the guarantee needs. ``potential`` picks Phi:

  - ``fitted`` (default): a linear value estimate from the data, ``Phi(s) = w . s + b`` with
    ``(w, b)`` the least-squares fit of each dataset step's discounted return-to-go
    (``sum_k gamma^k r_{t+k}`` to its episode's end, from the rewards as loaded) on its observation;
  - ``linear``: ``Phi(s) = weights . s + bias`` as given (``weights``: one number per observation
    dimension, e.g. ``[0, 1, 0, ...]`` for the second one; ``bias`` default 0).

  ``potential_scale`` (default 1) multiplies Phi.
- ``flip_noise``: with probability ``p`` a reward is reflected about ``center`` (default 0):
  ``r -> 2 center - r``; ``scope`` ``step`` (default) or ``episode``; ``seed`` null: the run's seed.
  Dataset only.
- ``delta``: ``r_t - r_{t-1}`` within each episode (``initial`` before the first step, default 0).
  Dataset only.
- ``clip_delta``: Clip-Delta of process-reward scores with ``eta`` (required). Dataset only.
- ``pattern_bonus``: ``min(cap, r + weight * b)`` where ``r < threshold``, ``b`` the dataset's
  ``infos`` column ``bonus_key`` (defaults 0.1, 0.5, 1.0, ``bonus``). Dataset only.
- ``gated``: gated reward accumulation over ``channels`` (``rewards`` or ``infos`` column names,
  highest priority first) with one of ``thresholds`` per channel but the last. Dataset only.

"Dataset only" transforms need whole episodes (or, for ``flip_noise``, would draw coin flips that
``--resume`` cannot replay), so they require ``apply_to: dataset``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

TRANSFORMS = ("none", "clip", "potential", "flip_noise", "delta", "clip_delta", "pattern_bonus", "gated")
APPLY_TO = ("dataset", "model", "both")
POTENTIALS = ("fitted", "linear")

# transform -> the ShapingConfig fields it reads (every other parameter must stay unset)
PARAMETERS: dict[str, tuple[str, ...]] = {
    "none": (),
    "clip": ("low", "high"),
    "potential": ("potential", "gamma", "weights", "bias", "potential_scale"),
    "flip_noise": ("p", "center", "scope", "seed"),
    "delta": ("initial",),
    "clip_delta": ("eta",),
    "pattern_bonus": ("weight", "threshold", "cap", "bonus_key"),
    "gated": ("channels", "thresholds"),
}
PER_STEP = ("clip", "potential")  # valid on single model-rollout steps


@dataclass
class ShapingConfig:
    """Reward shaping for `morec train` and `morec relabel --shaping` (see the module docstring)."""

    transform: str = "none"
    apply_to: str = "both"  # "dataset", "model" or "both"
    # clip
    low: float | None = None
    high: float | None = None
    # potential
    potential: str | None = None  # "fitted" (default) or "linear"
    gamma: float | None = None  # null: agent.gamma
    weights: tuple[float, ...] | None = None  # linear: one per observation dimension
    bias: float | None = None  # linear: default 0
    potential_scale: float | None = None  # default 1
    # flip_noise
    p: float | None = None
    center: float | None = None
    scope: str | None = None  # "step" or "episode"
    seed: int | None = None  # null: the run's seed
    # delta
    initial: float | None = None
    # clip_delta
    eta: float | None = None
    # pattern_bonus
    weight: float | None = None
    threshold: float | None = None
    cap: float | None = None
    bonus_key: str | None = None
    # gated
    channels: tuple[str, ...] | None = None
    thresholds: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("weights", "channels", "thresholds"):
            if getattr(self, name) is not None:
                setattr(self, name, tuple(getattr(self, name)))
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}, got {self.transform!r}")
        if self.apply_to not in APPLY_TO:
            raise ValueError(f"apply_to must be one of {', '.join(APPLY_TO)}, got {self.apply_to!r}")
        own = PARAMETERS[self.transform]
        for f in fields(self):
            if f.name in ("transform", "apply_to") or f.name in own or getattr(self, f.name) is None:
                continue
            owners = [t for t, names in PARAMETERS.items() if f.name in names]
            takes = f"{self.transform} takes {', '.join(own)}" if own else "transform none takes no parameters"
            raise ValueError(
                f"{f.name} is a parameter of {' and '.join(owners)}, not of {self.transform} ({takes}); "
                f"remove shaping.{f.name} or set shaping.transform={owners[0]}"
            )
        for name in (
            "low",
            "high",
            "gamma",
            "bias",
            "potential_scale",
            "center",
            "initial",
            "eta",
            "weight",
            "threshold",
            "cap",
            "weights",
            "thresholds",
        ):
            value = getattr(self, name)
            for v in value if isinstance(value, tuple) else (value,):
                if v is not None and math.isnan(v):
                    raise ValueError(f"{name} must be a number, got nan")
        getattr(self, f"_check_{self.transform}", lambda: None)()
        if self.apply_to != "dataset" and self.transform not in PER_STEP + ("none",):
            why = (
                "its coin flips in model rollouts would not be replayed by --resume"
                if self.transform == "flip_noise"
                else "it needs whole episodes, and model rollouts give single steps"
            )
            raise ValueError(
                f"transform {self.transform} shapes dataset rewards only ({why}); set shaping.apply_to=dataset"
            )

    @property
    def enabled(self) -> bool:
        return self.transform != "none"

    @property
    def shapes_dataset(self) -> bool:
        return self.enabled and self.apply_to in ("dataset", "both")

    @property
    def shapes_model(self) -> bool:
        return self.enabled and self.apply_to in ("model", "both")

    def parameters(self) -> dict[str, object]:
        """The transform's parameters that are set, by name (for summaries)."""
        return {name: getattr(self, name) for name in PARAMETERS[self.transform] if getattr(self, name) is not None}

    # ------------------------------------------------------------------ per-transform checks
    def _check_clip(self) -> None:
        if self.low is None and self.high is None:
            raise ValueError("transform clip needs shaping.low or shaping.high (or both)")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low must not exceed high, got low={self.low}, high={self.high}")

    def _check_potential(self) -> None:
        if self.potential is None:
            self.potential = "fitted"
        if self.potential not in POTENTIALS:
            raise ValueError(f"potential must be one of {', '.join(POTENTIALS)}, got {self.potential!r}")
        if self.gamma is not None and not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1] (or null for agent.gamma), got {self.gamma}")
        if self.potential == "linear" and not self.weights:
            raise ValueError("potential linear needs shaping.weights, one number per observation dimension")
        if self.potential == "fitted" and (self.weights is not None or self.bias is not None):
            raise ValueError(
                "potential fitted learns its own weights and bias; remove shaping.weights/shaping.bias "
                "or set shaping.potential=linear"
            )
        if self.potential_scale is not None and not math.isfinite(self.potential_scale):
            raise ValueError(f"potential_scale must be finite, got {self.potential_scale}")

    def _check_flip_noise(self) -> None:
        if self.p is None:
            raise ValueError("transform flip_noise needs shaping.p, the flip probability")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {self.p}")
        if self.scope is not None and self.scope not in ("step", "episode"):
            raise ValueError(f"scope must be 'step' or 'episode', got {self.scope!r}")

    def _check_clip_delta(self) -> None:
        if self.eta is None:
            raise ValueError("transform clip_delta needs shaping.eta")

    def _check_pattern_bonus(self) -> None:
        if self.weight is not None and self.weight < 0:
            raise ValueError(f"weight must be >= 0, got {self.weight}")
        threshold = 0.5 if self.threshold is None else self.threshold
        cap = 1.0 if self.cap is None else self.cap
        if threshold > cap:
            raise ValueError(f"threshold must not exceed cap, got threshold={threshold}, cap={cap}")

    def _check_gated(self) -> None:
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise ValueError(
                f"transform gated needs shaping.channels, distinct names (rewards or infos columns), got "
                f"{self.channels}"
            )
        if len(self.thresholds or ()) != len(self.channels) - 1:
            raise ValueError(
                f"thresholds needs one value per channel but the last ({len(self.channels) - 1}), "
                f"got {len(self.thresholds or ())}"
            )
