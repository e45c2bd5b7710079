"""Policy learners on tianshou (MOPO, MOBILE), each with MOREC on or off (the MOREC filter lives
in the rollout engine; the learners only see transitions)."""

from .base import AgentConfig, MixedBatch, MixedSampler, ModelBasedSAC, ModelBasedStats
from .mobile import MOBILE, MobileConfig
from .mopo import MOPO
from .networks import TwinCritic, build_actor, sample_action

__all__ = ["AgentConfig", "MOBILE", "MOPO", "MixedBatch", "MixedSampler", "MobileConfig", "ModelBasedSAC",
           "ModelBasedStats", "TwinCritic", "build_actor", "sample_action"]
