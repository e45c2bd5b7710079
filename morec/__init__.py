"""morec: offline model-based RL with reward-consistent dynamics models (MOREC)."""

import importlib

_LAZY = {  # name -> submodule; imported on first use, so `morec --help` does not load torch
    "ModelBuffer": ".buffer", "TransitionBatch": ".buffer",
    "DynamicsReward": ".dynamics_reward", "DynamicsRewardConfig": ".dynamics_reward",
    "MorecFilterConfig": ".filter", "MorecSelector": ".filter",
    **dict.fromkeys(["RandomEliteSelector", "RolloutEngine", "RolloutStats", "Selection"], ".rollout"),
    "RolloutConfig": ".rollout_config",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
