"""morec: offline model-based RL with reward-consistent dynamics models (MOREC)."""

from .buffer import ModelBuffer, TransitionBatch
from .rollout import RandomEliteSelector, RolloutConfig, RolloutEngine, RolloutStats, Selection

__version__ = "0.1.0"

__all__ = [
    "ModelBuffer",
    "RandomEliteSelector",
    "RolloutConfig",
    "RolloutEngine",
    "RolloutStats",
    "Selection",
    "TransitionBatch",
]
