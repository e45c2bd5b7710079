"""Reward shaping: the transforms (:mod:`.transforms`: clip, delta, potential-based, gated,
noise, pattern bonus, per episode or per model step), the training config's ``shaping:`` section
(:mod:`.config`, torch-free) and building it for a run (:mod:`.setup`)."""

from morec.lazy import lazy_attributes
from morec.shaping.config import ShapingConfig

_LAZY = {"RewardShaping": ".setup", "build_shaping": ".setup"}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

__all__ = ["RewardShaping", "ShapingConfig", "build_shaping"]
