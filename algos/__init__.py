"""Policy learners on tianshou (MOPO, MOBILE), each with MOREC on or off (the MOREC filter lives
in the rollout engine; the learners only see transitions)."""

from algos.base import AgentConfig, MixedBatch, MixedSampler, ModelBasedSAC, ModelBasedStats
from algos.mobile import MOBILE, MobileConfig
from algos.mopo import MOPO
from algos.networks import TwinCritic, build_actor, sample_action

__all__ = ["AgentConfig", "MOBILE", "MOPO", "MixedBatch", "MixedSampler", "MobileConfig", "ModelBasedSAC",
           "ModelBasedStats", "TwinCritic", "build_actor", "sample_action"]
