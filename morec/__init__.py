"""morec: offline model-based RL with reward-consistent dynamics models (MOREC)."""

from dynamics.lazy import lazy_attributes

_LAZY = {  # name -> submodule; imported on first use, so `morec --help` does not load torch
    "ModelBuffer": ".buffer", "TransitionBatch": ".buffer",
    "DynamicsReward": ".dynamics_reward", "DynamicsRewardConfig": ".dynamics_reward",
    "MorecFilterConfig": ".filter", "MorecSelector": ".filter",
    **dict.fromkeys(["RandomEliteSelector", "RolloutEngine", "RolloutStats", "Selection"], ".rollout"),
    "RolloutConfig": ".rollout_config",
    "train": ".training_api", "TrainResult": ".training_api",
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


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
    "TrainResult",
    "TransitionBatch",
    "train",
]
