"""MOREC's own concept, the dynamics reward r_D and what uses it: the reward (:mod:`.model`), its
adversarial training (:mod:`.training`), its one-network distillation (:mod:`.distillation`), the
rollout filter (:mod:`.filter`), the threshold calibration (:mod:`.threshold`) and the check
against the simulator (:mod:`.check`). Settings are torch-free (:mod:`.config`)."""

from morec.dynamics_reward.config import (
    AUTO,
    DistillationConfig,
    DynamicsRewardConfig,
    FewSnapshotsWarning,
    FilterCheckConfig,
    MorecFilterConfig,
)
from morec.lazy import lazy_attributes

_LAZY = {  # name -> submodule
    **dict.fromkeys(["Discriminator", "DynamicsReward"], ".model"),
    **dict.fromkeys(["fit_dynamics_reward"], ".training"),
    **dict.fromkeys(["distil_reward"], ".distillation"),
    "MorecSelector": ".filter",
    **dict.fromkeys(["calibrate_threshold", "resolve_threshold"], ".threshold"),
    **dict.fromkeys(["check_filter", "discrimination_report"], ".check"),
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "AUTO",
    "Discriminator",
    "DistillationConfig",
    "DynamicsReward",
    "DynamicsRewardConfig",
    "FewSnapshotsWarning",
    "FilterCheckConfig",
    "MorecFilterConfig",
    "MorecSelector",
    "calibrate_threshold",
    "check_filter",
    "discrimination_report",
    "distil_reward",
    "fit_dynamics_reward",
    "resolve_threshold",
]
