"""Ensemble dynamics models, termination functions and the MuJoCo oracle (imports neither
`morec` nor `algos`)."""

from .ensemble import EnsembleConfig, EnsembleDynamics, TaskInfo
from .oracle import MujocoOracle
from .termination import TerminationFn, get_termination_fn, resolve_termination_fn
from .training import FitReport, fit_ensemble

__all__ = [
    "EnsembleConfig",
    "EnsembleDynamics",
    "FitReport",
    "MujocoOracle",
    "TaskInfo",
    "TerminationFn",
    "fit_ensemble",
    "get_termination_fn",
    "resolve_termination_fn",
]
