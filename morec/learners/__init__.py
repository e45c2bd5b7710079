"""Policy learners: model-based SAC written once (:mod:`.sac_step`), MOPO and MOBILE as its hooks
(:mod:`.mopo`, :mod:`.mobile`), the seed-stacked learner (:mod:`.stacked`), behaviour cloning, the
networks, the batch samplers and CUDA-graph capture. Their settings are torch-free (:mod:`.config`);
everything else loads on first use."""

from morec.lazy import lazy_attributes
from morec.learners.config import AgentConfig, BCConfig, MobileConfig

_LAZY = {  # name -> submodule
    **dict.fromkeys(["ModelBasedSAC"], ".sac"),
    **dict.fromkeys(
        ["LogAlpha", "MixedBatch", "ModelBasedStats", "SACNetworks", "StepSettings", "sac_step"], ".sac_step"
    ),
    "MOPO": ".mopo",
    "MOBILE": ".mobile",
    "StackedSAC": ".stacked",
    **dict.fromkeys(["BehaviourCloning", "train_bc"], ".bc"),
    **dict.fromkeys(["MixedSampler", "StackedSampler"], ".sampler"),
    **dict.fromkeys(["TwinCritic", "build_actor", "sample_action"], ".networks"),
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    "MOBILE",
    "MOPO",
    "AgentConfig",
    "BCConfig",
    "BehaviourCloning",
    "LogAlpha",
    "MixedBatch",
    "MixedSampler",
    "MobileConfig",
    "ModelBasedSAC",
    "ModelBasedStats",
    "SACNetworks",
    "StackedSAC",
    "StackedSampler",
    "StepSettings",
    "TwinCritic",
    "build_actor",
    "train_bc",
    "sac_step",
    "sample_action",
]
