"""``morec collect``: a behaviour SAC trained online (:mod:`.behaviour`), its evaluation and acting
(:mod:`.episodes`), environments and recording (:mod:`.envs`) and the D4RL recipe that writes the
datasets (:mod:`.recipe`). Settings are torch-free (:mod:`.config`)."""

from morec.collect.config import CollectConfig, SACConfig
from morec.lazy import lazy_attributes

_LAZY = {
    **dict.fromkeys(["collect", "dataset_file_name", "log_to_dataset", "pick_medium", "uniform_actions"], ".recipe"),
    **dict.fromkeys(["BehaviourTrainer", "Evaluation"], ".behaviour"),
    **dict.fromkeys(["TransitionLog", "make_env", "record_episodes", "record_episodes_batched"], ".envs"),
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "BehaviourTrainer",
    "CollectConfig",
    "Evaluation",
    "SACConfig",
    "TransitionLog",
    "collect",
    "dataset_file_name",
    "log_to_dataset",
    "make_env",
    "pick_medium",
    "record_episodes",
    "record_episodes_batched",
    "uniform_actions",
]
