"""morec: offline model-based RL with reward-consistent dynamics models (MOREC).

Concepts, one folder each: :mod:`morec.data` (datasets), :mod:`morec.dynamics` (the ensemble,
termination, the MuJoCo oracle), :mod:`morec.dynamics_reward` (MOREC's reward, filter and check),
:mod:`morec.rollout` (the rollout engine), :mod:`morec.learners` (MOPO, MOBILE), :mod:`morec.training`
(configs, the run, the loop), :mod:`morec.shaping`, :mod:`morec.credit`, :mod:`morec.collect` and
:mod:`morec.runs` (suites, sweeps, the jobs behind the commands); :mod:`morec.commands` is the
command line. The names below load on first use, so ``import morec`` does not load torch.
"""

from morec.lazy import lazy_attributes

_LAZY = {  # name -> submodule
    **dict.fromkeys(["ModelBuffer", "TransitionBatch"], ".rollout.buffer"),
    **dict.fromkeys(["RandomEliteSelector", "RolloutEngine", "RolloutStats", "Selection"], ".rollout.engine"),
    "RolloutConfig": ".rollout.config",
    "DynamicsReward": ".dynamics_reward.model",
    **dict.fromkeys(["DynamicsRewardConfig", "MorecFilterConfig"], ".dynamics_reward.config"),
    "MorecSelector": ".dynamics_reward.filter",
    "TrainConfig": ".training.config",
    **dict.fromkeys(["TrainResult", "train"], ".training.api"),
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
    "TrainConfig",
    "TrainResult",
    "TransitionBatch",
    "train",
]
