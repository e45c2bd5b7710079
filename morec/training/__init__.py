"""Training a policy: the config (:mod:`.config`, torch-free: it validates without torch), the
pipeline that builds a run (:mod:`.pipeline`), the loop (:mod:`.loop`), the model cache, evaluation
(in the training loop or a background process), seeds in one process (:mod:`.seeds`) and the Python
entry point :func:`morec.train` (:mod:`.api`)."""

from morec.lazy import lazy_attributes
from morec.training.config import ConfigError, TrainConfig, load_config

_LAZY = {
    **dict.fromkeys(["build_components", "run_training", "start_run"], ".pipeline"),
    **dict.fromkeys(["TrainingLoop", "UpdateRequest"], ".loop"),
    "RunDirectory": ".run_directory",
    "train_seeds": ".seeds",
    **dict.fromkeys(["TrainResult", "train"], ".api"),
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "ConfigError",
    "RunDirectory",
    "TrainConfig",
    "TrainResult",
    "TrainingLoop",
    "UpdateRequest",
    "build_components",
    "load_config",
    "run_training",
    "start_run",
    "train",
    "train_seeds",
]
