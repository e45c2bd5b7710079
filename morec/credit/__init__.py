"""Episodic credit assignment: return decomposition and LLM-written latent reward factors."""

from morec.credit.configs import IRCRConfig, LaReConfig, RDConfig, RRDConfig
from morec.lazy import lazy_attributes

_LAZY = {  # name -> submodule; imported on first use, so `morec --help` does not load torch
    **dict.fromkeys(
        [
            "IRCR",
            "Decomposer",
            "FitReport",
            "LatentRewardDecoder",
            "RandomizedReturnDecomposition",
            "ReturnDecomposition",
            "episodic",
            "load_decomposer",
            "return_decomposition_loss",
            "split_episodes",
        ],
        ".decomposers",
    ),
    **dict.fromkeys(
        [
            "FactorEncoder",
            "HalfCheetahFactors",
            "HopperFactors",
            "IdentityFactors",
            "Walker2dFactors",
            "hand_written_factors",
        ],
        ".factors",
    ),
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


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
