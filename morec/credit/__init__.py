"""Episodic credit assignment: return decomposition and LLM-written latent reward factors."""

from .decomposers import (
    IRCR,
    Decomposer,
    FitReport,
    IRCRConfig,
    LaReConfig,
    LatentRewardDecoder,
    RandomizedReturnDecomposition,
    RDConfig,
    ReturnDecomposition,
    RRDConfig,
    episodic,
    load_decomposer,
    return_decomposition_loss,
    split_episodes,
)
from .factors import (
    FactorEncoder,
    HalfCheetahFactors,
    HopperFactors,
    IdentityFactors,
    Walker2dFactors,
    hand_written_factors,
)

__all__ = [
    "IRCR",
    "Decomposer",
    "FactorEncoder",
    "FitReport",
    "HalfCheetahFactors",
    "HopperFactors",
    "IRCRConfig",
    "IdentityFactors",
    "LaReConfig",
    "LatentRewardDecoder",
    "RDConfig",
    "RRDConfig",
    "RandomizedReturnDecomposition",
    "ReturnDecomposition",
    "Walker2dFactors",
    "episodic",
    "hand_written_factors",
    "load_decomposer",
    "return_decomposition_loss",
    "split_episodes",
]
