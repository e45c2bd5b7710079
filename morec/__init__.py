"""morec: offline model-based RL with reward-consistent dynamics models (MOREC)."""

from .buffer import ModelBuffer, TransitionBatch
from .dynamics_reward import DynamicsReward, DynamicsRewardConfig
from .filter import MorecFilterConfig, MorecSelector
from .rollout import RandomEliteSelector, RolloutConfig, RolloutEngine, RolloutStats, Selection

__version__ = "0.1.0"

__all__ = [
    "DynamicsReward",
    "DynamicsRewardConfig",
    "ModelBuffer",
    "MorecFilterConfig",
    "MorecSelector",
    "RandomEliteSelector",
    "RolloutConfig",
    "RolloutEngine",
    "RolloutStats",
    "Selection",
    "TransitionBatch",
]
