"""Model rollouts: the batched engine and its pluggable :class:`Selector` (:mod:`.engine`), the
device-resident model buffer (:mod:`.buffer`), the policies rollouts and checks run
(:mod:`.policies`) and the error of rollouts against the MuJoCo oracle (:mod:`.model_error`).
:class:`RolloutConfig` is torch-free (:mod:`.config`)."""

from morec.lazy import lazy_attributes
from morec.rollout.config import RolloutConfig

_LAZY = {  # name -> submodule
    **dict.fromkeys(
        ["Policy", "RandomEliteSelector", "RolloutEngine", "RolloutStats", "Selection", "Selector", "StepRecord"],
        ".engine",
    ),
    **dict.fromkeys(["ModelBuffer", "TransitionBatch"], ".buffer"),
    **dict.fromkeys(["ModelErrorReport", "model_error", "open_loop_error", "oracle_report"], ".model_error"),
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "ModelBuffer",
    "ModelErrorReport",
    "Policy",
    "RandomEliteSelector",
    "RolloutConfig",
    "RolloutEngine",
    "RolloutStats",
    "Selection",
    "Selector",
    "StepRecord",
    "TransitionBatch",
    "model_error",
    "open_loop_error",
    "oracle_report",
]
